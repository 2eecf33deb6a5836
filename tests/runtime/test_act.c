/* test_act.c: tests of the kernels in runtime/act.c, reduce.c and
 * random.c (the unary activations, reductions, log_softmax and
 * random_normal).
 *
 * Each kernel is compared with a reference written here in a different
 * way, in double: the textbook formulas (gelu through erf from libm),
 * reductions through explicitly unravelled indices, the random stream
 * through a sequential splitmix64.  Infinities and NaN are checked against
 * a table of exact answers.  The normal stream is also checked for
 * determinism and, statistically, for its moments and shape.  A mismatch
 * prints the first elements with OK/NOT OK and the max abs/rel difference.
 *
 *   test_act          run everything; the last line is the summary
 */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kiln.h"
#include "testutil.h"

#define TOL 1e-5
#define countof(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* ---- helpers ------------------------------------------------------ */

static float *
randf(int64_t n, float scale)
{
	float *p = t_alloc((size_t)n * sizeof *p);

	for (int64_t i = 0; i < n; i++)
		p[i] = t_frand() * scale;
	return p;
}

/* got[n] against ref[n] within TOL * (1 + |ref|), NaN matching only NaN and
 * an infinity only itself.  A failure also shows the inputs x (when
 * given) of the elements t_close prints. */
static void
check(const char *what, const float *x, const float *got, const double *ref,
      int64_t n)
{
	int64_t first = 0;

	if (t_close(what, got, ref, n, TOL, TOL) || !x)
		return;
	while (t_near(got[first], ref[first], TOL, TOL))
		first++;
	printf("  x[%lld..]:", (long long)first);
	for (int64_t i = first; i < n && i < first + 5; i++)
		printf(" %.9g", x[i]);
	printf("\n");
}

/* ---- unary ops ------------------------------------------------------- */

enum { EXP, LOG, SQRT, NEG, ABS, LEAKY, ELU, SELU, GELU, GELU_TANH, SILU,
	HSWISH, HSIG, CLIP };

static const char *const uname[] = {
	"exp", "log", "sqrt", "neg", "abs", "leaky_relu", "elu", "selu", "gelu",
	"gelu tanh", "silu", "hardswish", "hardsigmoid", "clip",
};

/* One case: an op and up to two float attributes. */
struct ucase {
	int op;
	float a, b;
};

static void
run_unary(const struct ucase *c, float *y, const float *x, int64_t n)
{
	switch (c->op) {
	case EXP: kiln_exp_f32(y, x, n); break;
	case LOG: kiln_log_f32(y, x, n); break;
	case SQRT: kiln_sqrt_f32(y, x, n); break;
	case NEG: kiln_neg_f32(y, x, n); break;
	case ABS: kiln_abs_f32(y, x, n); break;
	case LEAKY: kiln_leaky_relu_f32(y, x, n, c->a); break;
	case ELU: kiln_elu_f32(y, x, n, c->a); break;
	case SELU: kiln_selu_f32(y, x, n, c->a, c->b); break;
	case GELU: kiln_gelu_f32(y, x, n, 0); break;
	case GELU_TANH: kiln_gelu_f32(y, x, n, 1); break;
	case SILU: kiln_silu_f32(y, x, n); break;
	case HSWISH: kiln_hardswish_f32(y, x, n); break;
	case HSIG: kiln_hardsigmoid_f32(y, x, n, c->a, c->b); break;
	case CLIP: kiln_clip_f32(y, x, n, c->a, c->b); break;
	}
}

/* The formulas as ONNX and the papers write them, in double. */
static double
ref_unary(const struct ucase *c, double x)
{
	double a = c->a, b = c->b, pi = 3.14159265358979323846;

	switch (c->op) {
	case EXP: return exp(x);
	case LOG: return log(x);
	case SQRT: return sqrt(x);
	case NEG: return -x;
	case ABS: return x < 0 ? -x : x;
	case LEAKY: return fmax(x, 0) + a * fmin(x, 0);
	case ELU: return x < 0 ? a * (exp(x) - 1) : x;
	case SELU: return x <= 0 ? b * (a * exp(x) - a) : b * x;
	case GELU: return 0.5 * x * (1 + erf(x / sqrt(2.0)));
	case GELU_TANH:
		return 0.5 * x * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 * pow(x, 3))));
	case SILU: return x / (1 + exp(-x));
	case HSWISH: return x * fmax(0, fmin(1, x / 6 + 0.5));
	case HSIG: return fmax(0, fmin(1, a * x + b));
	case CLIP: return fmin(fmax(x, a), b);
	}
	return NAN;
}

static void
unary_case(const struct ucase *c, const float *x, int64_t n)
{
	float *y = t_alloc((size_t)n * sizeof *y);
	double *ref = t_alloc((size_t)n * sizeof *ref);
	char what[96];

	/* rounded to f32: exp(89) is inf there */
	for (int64_t i = 0; i < n; i++)
		ref[i] = (float)ref_unary(c, x[i]);
	run_unary(c, y, x, n);
	snprintf(what, sizeof what, "%s a=%g b=%g", uname[c->op], c->a, c->b);
	check(what, x, y, ref, n);
	memcpy(y, x, (size_t)n * sizeof *y);
	run_unary(c, y, y, n);
	snprintf(what, sizeof what, "%s a=%g b=%g in place", uname[c->op], c->a,
	         c->b);
	check(what, x, y, ref, n);
	free(y), free(ref);
}

static void
test_unary(void)
{
	static const float special[] = {
		0.0f, -0.0f, 1e-8f, -1e-8f, 1e-30f, -1e-30f, 0.5f, -0.5f, 3, -3,
		6, -6, 20, -20, 88, -88, 89, -89, 100, -100, 1000, -1000, 1e30f,
		-1e30f,
	};
	static const struct ucase cases[] = {
		{EXP, 0, 0}, {LOG, 0, 0}, {SQRT, 0, 0}, {NEG, 0, 0}, {ABS, 0, 0},
		{LEAKY, 0.01f, 0}, {LEAKY, 0.3f, 0}, {ELU, 1, 0}, {ELU, 0.5f, 0},
		{SELU, 1.67326319217681884765625f, 1.05070102214813232421875f},
		{SELU, 2, 0.5f}, {GELU, 0, 0}, {GELU_TANH, 0, 0}, {SILU, 0, 0},
		{HSWISH, 0, 0}, {HSIG, 0.2f, 0.5f}, {HSIG, 1.0f / 6, 0.5f},
		{CLIP, -1, 2}, {CLIP, 0, INFINITY}, {CLIP, -INFINITY, INFINITY},
		{CLIP, 2, 1},
	};
	int64_t n = 2000 + countof(special);
	float *x = randf(n, 10);

	for (int i = 0; i < countof(special); i++)
		x[i] = special[i];
	for (int i = 0; i < countof(cases); i++)
		unary_case(&cases[i], x, n);
	free(x);
}

/* Infinities and NaN: the answers the kernels promise, exactly. */
static void
test_unary_limits(void)
{
	static const struct {
		struct ucase c;
		float x, want;
	} cases[] = {
		{{EXP, 0, 0}, -INFINITY, 0}, {{EXP, 0, 0}, INFINITY, INFINITY},
		{{EXP, 0, 0}, NAN, NAN}, {{LOG, 0, 0}, 0, -INFINITY},
		{{LOG, 0, 0}, -1, NAN}, {{LOG, 0, 0}, INFINITY, INFINITY},
		{{SQRT, 0, 0}, -1, NAN}, {{SQRT, 0, 0}, INFINITY, INFINITY},
		{{ABS, 0, 0}, -INFINITY, INFINITY}, {{NEG, 0, 0}, NAN, NAN},
		{{LEAKY, 0.01f, 0}, -INFINITY, -INFINITY},
		{{LEAKY, 0.01f, 0}, NAN, NAN}, {{ELU, 0.5f, 0}, -INFINITY, -0.5f},
		{{ELU, 1, 0}, INFINITY, INFINITY}, {{SELU, 2, 0.5f}, -INFINITY, -1},
		{{SELU, 2, 0.5f}, INFINITY, INFINITY},
		{{GELU, 0, 0}, INFINITY, INFINITY}, {{GELU, 0, 0}, NAN, NAN},
		{{GELU_TANH, 0, 0}, INFINITY, INFINITY},
		{{GELU_TANH, 0, 0}, -1e30f, 0}, {{SILU, 0, 0}, INFINITY, INFINITY},
		{{SILU, 0, 0}, -1e30f, 0}, {{HSWISH, 0, 0}, -INFINITY, 0},
		{{HSWISH, 0, 0}, INFINITY, INFINITY}, {{HSWISH, 0, 0}, NAN, NAN},
		{{HSIG, 0.2f, 0.5f}, -INFINITY, 0}, {{HSIG, 0.2f, 0.5f}, INFINITY, 1},
		{{HSIG, 0.2f, 0.5f}, NAN, NAN}, {{CLIP, -1, 2}, NAN, NAN},
		{{CLIP, -1, 2}, INFINITY, 2}, {{CLIP, -1, 2}, -INFINITY, -1},
		{{CLIP, -INFINITY, INFINITY}, -INFINITY, -INFINITY},
		{{CLIP, 2, 1}, 0, 1},
	};
	char what[96];

	for (int i = 0; i < countof(cases); i++) {
		float y;
		double want = cases[i].want;
		run_unary(&cases[i].c, &y, &cases[i].x, 1);
		snprintf(what, sizeof what, "%s(%g) a=%g b=%g", uname[cases[i].c.op],
		         cases[i].x, cases[i].c.a, cases[i].c.b);
		check(what, &cases[i].x, &y, &want, 1);
	}
}

/* ---- log_softmax ------------------------------------------------------ */

/* Reference along the middle axis: x - (m + ln sum e^(x - m)), in double. */
static void
log_softmax_ref(double *ref, const float *x, int64_t outer, int64_t len,
                int64_t inner)
{
	for (int64_t o = 0; o < outer; o++) {
		for (int64_t t = 0; t < inner; t++) {
			double m = -INFINITY, s = 0;
			for (int64_t l = 0; l < len; l++)
				m = fmax(m, x[(o * len + l) * inner + t]);
			for (int64_t l = 0; l < len; l++)
				s += exp(x[(o * len + l) * inner + t] - m);
			for (int64_t l = 0; l < len; l++)
				ref[(o * len + l) * inner + t] =
					x[(o * len + l) * inner + t] - (m + log(s));
		}
	}
}

static void
log_softmax_case(const float *x0, int64_t outer, int64_t len, int64_t inner,
                 float scale)
{
	int64_t n = outer * len * inner;
	float *x = randf(n, scale), *y = randf(n, 1);
	double *ref = t_alloc((size_t)n * sizeof *ref);
	char what[128];

	for (int64_t i = 0; x0 && i < n; i++)
		x[i] = x0[i];
	log_softmax_ref(ref, x, outer, len, inner);
	kiln_log_softmax_f32(y, x, outer, len, inner);
	snprintf(what, sizeof what, "log_softmax [%lld,%lld,%lld]%s",
	         (long long)outer, (long long)len, (long long)inner,
	         x0 ? " fixed values" : "");
	check(what, x, y, ref, n);
	kiln_log_softmax_f32(x, x, outer, len, inner);
	snprintf(what, sizeof what, "log_softmax [%lld,%lld,%lld] in place",
	         (long long)outer, (long long)len, (long long)inner);
	check(what, NULL, x, ref, n);
	free(x), free(y), free(ref);
}

static void
test_log_softmax(void)
{
	static const float big[] = {1000, -1000, 999, 0};
	static const float same[] = {-1000, -1000, -1000};
	static const float cols[] = {1000, -1000, 0, 1000, 1000, 0};

	log_softmax_case(NULL, 2, 5, 1, 3);
	log_softmax_case(NULL, 3, 4, 3, 3);
	log_softmax_case(NULL, 1, 1, 1, 1);
	log_softmax_case(NULL, 1, 7, 5, 30);
	log_softmax_case(NULL, 4, 1, 2, 1);
	log_softmax_case(NULL, 2, 10, 1, 200);
	log_softmax_case(NULL, 1, 1000, 1, 5);
	log_softmax_case(big, 1, 4, 1, 0);
	log_softmax_case(same, 1, 3, 1, 0);
	log_softmax_case(cols, 1, 3, 2, 0);
}

/* ---- reductions ------------------------------------------------------ */

enum { SUM, MEAN, MAX };
static const char *const rname[] = {"reduce_sum", "reduce_mean",
                                    "reduce_max"};

typedef void reduce_fn(float *, const float *, int, const int64_t *,
                       unsigned);
static reduce_fn *const rfn[] = {kiln_reduce_sum_f32, kiln_reduce_mean_f32,
                                 kiln_reduce_max_f32};

/* Output index of x's flat index f: unravel f over dim, then ravel the
 * indices of the dims not in mask. */
static int64_t
out_index(int64_t f, int rank, const int64_t *dim, unsigned mask)
{
	int64_t idx[KILN_MAXRANK], o = 0;

	for (int d = rank - 1; d >= 0; d--) {
		idx[d] = f % dim[d];
		f /= dim[d];
	}
	for (int d = 0; d < rank; d++)
		if (!(mask >> d & 1))
			o = o * dim[d] + idx[d];
	return o;
}

static void
reduce_ref(int op, double *ref, const float *x, int rank, const int64_t *dim,
           unsigned mask, int64_t nx, int64_t ny)
{
	int64_t count = nx / ny;

	for (int64_t o = 0; o < ny; o++)
		ref[o] = op == MAX ? -INFINITY : 0;
	for (int64_t f = 0; f < nx; f++) {
		int64_t o = out_index(f, rank, dim, mask);
		if (op != MAX)
			ref[o] += x[f];
		else
			ref[o] = isnan(ref[o]) || isnan(x[f]) ? NAN : fmax(ref[o], x[f]);
	}
	for (int64_t o = 0; op == MEAN && o < ny; o++)
		ref[o] /= (double)count;
}

static void
reduce_case(int op, int rank, const int64_t *dim, unsigned mask, float *x)
{
	int64_t nx = 1, ny = 1;
	char what[160];
	int k;

	for (int d = 0; d < rank; d++) {
		nx *= dim[d];
		ny *= mask >> d & 1 ? 1 : dim[d];
	}
	float *y = randf(ny, 1), *xr = x ? x : randf(nx, 4);
	double *ref = t_alloc((size_t)ny * sizeof *ref);
	reduce_ref(op, ref, xr, rank, dim, mask, nx, ny);
	rfn[op](y, xr, rank, dim, mask);
	k = snprintf(what, sizeof what, "%s [", rname[op]);
	for (int d = 0; d < rank; d++)
		k += snprintf(what + k, sizeof what - k, "%s%lld", d ? "," : "",
		              (long long)dim[d]);
	snprintf(what + k, sizeof what - k, "] mask 0x%x%s", mask,
	         x ? " fixed values" : "");
	check(what, NULL, y, ref, ny);
	free(y), free(ref);
	if (!x)
		free(xr);
}

struct rshape {
	int rank;
	int64_t d[KILN_MAXRANK];
};

static void
test_reduce(void)
{
	static const struct rshape shapes[] = {
		{0, {0}}, {1, {1}}, {1, {7}}, {2, {3, 5}}, {3, {2, 3, 4}},
		{4, {1, 5, 1, 3}}, {4, {4, 7, 5, 3}}, {5, {2, 1, 3, 1, 2}},
		{8, {2, 1, 2, 3, 1, 2, 1, 2}}, {2, {1000, 37}},
	};
	float nanx[6] = {1, NAN, 3, 4, 5, 6};
	float infx[4] = {-INFINITY, -INFINITY, -INFINITY, 2};
	int64_t d23[2] = {2, 3}, d22[2] = {2, 2};

	for (int s = 0; s < countof(shapes); s++)
		for (unsigned m = 0; m < 1u << shapes[s].rank; m++)
			for (int op = SUM; op <= MAX; op++)
				reduce_case(op, shapes[s].rank, shapes[s].d, m, NULL);
	for (int op = SUM; op <= MAX; op++) {
		reduce_case(op, 2, d23, 1, nanx);
		reduce_case(op, 2, d23, 2, nanx);
		reduce_case(op, 2, d23, 3, nanx);
		reduce_case(MAX, 2, d22, op + 1, infx);
	}
}

/* ---- random_normal ------------------------------------------------------ */

/* The documented recipe, written sequentially: splitmix64 from state
 * seed, two outputs per pair, Box-Muller in double. */
static void
normal_ref(double *ref, int64_t n, double mean, double scale, uint64_t seed)
{
	uint64_t state = seed;

	for (int64_t i = 0; i < n; i += 2) {
		uint64_t w[2];
		for (int k = 0; k < 2; k++) {
			uint64_t z = (state += 0x9e3779b97f4a7c15u);
			z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
			z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
			w[k] = z ^ (z >> 31);
		}
		double u1 = ((double)(w[0] >> 11) + 1) / 9007199254740992.0;
		double u2 = (double)(w[1] >> 11) / 9007199254740992.0;
		double r = sqrt(-2 * log(u1)), th = 2 * 3.14159265358979323846 * u2;
		ref[i] = mean + scale * r * cos(th);
		if (i + 1 < n)
			ref[i + 1] = mean + scale * r * sin(th);
	}
}

/* Sample mean and standard deviation of y[0], y[st], ... (n of them),
 * and the fractions within one and two deviations of want_mean. */
static void
moments(const float *y, int64_t n, int64_t st, double want_mean,
        double want_std, double out[4])
{
	double s = 0, ss = 0, in1 = 0, in2 = 0;

	for (int64_t i = 0; i < n; i++) {
		double v = y[i * st], z = fabs(v - want_mean) / want_std;
		s += v;
		ss += v * v;
		in1 += z < 1;
		in2 += z < 2;
	}
	out[0] = s / n;
	out[1] = sqrt(ss / n - out[0] * out[0]);
	out[2] = in1 / n;
	out[3] = in2 / n;
}

/* 100000 samples: the standard errors are about 0.0032 std for the mean,
 * 0.0022 std for the deviation, 0.0015 for the one-sigma fraction; the
 * bounds are six times that or more. */
static void
normal_stats(float mean, float scale, uint64_t seed)
{
	enum { N = 100000 };
	float *y = t_alloc(N * sizeof *y);
	double m[4], half[4];
	char what[200];
	bool finite = true;

	kiln_random_normal_f32(y, N, mean, scale, seed);
	for (int i = 0; i < N; i++)
		finite &= isfinite(y[i]) != 0;
	moments(y, N, 1, mean, scale, m);
	snprintf(what, sizeof what, "random_normal mean=%g scale=%g seed=%llu: "
	         "mean %g std %g P1 %g P2 %g", mean, scale,
	         (unsigned long long)seed, m[0], m[1], m[2], m[3]);
	t_expect(finite && fabs(m[0] - mean) < 0.02 * scale &&
	         fabs(m[1] - scale) < 0.015 * scale &&
	         fabs(m[2] - 0.6827) < 0.01 && fabs(m[3] - 0.9545) < 0.006,
	         what);
	for (int k = 0; k < 2; k++) {   /* the cos and the sin halves alone */
		moments(y + k, N / 2, 2, mean, scale, half);
		snprintf(what, sizeof what, "random_normal %s half: mean %g std %g",
		         k ? "odd" : "even", half[0], half[1]);
		t_expect(fabs(half[0] - mean) < 0.03 * scale &&
		         fabs(half[1] - scale) < 0.02 * scale, what);
	}
	free(y);
}

static void
test_random(void)
{
	enum { N = 1001 };
	float a[N], b[N], c[7];
	double ref[N];

	normal_ref(ref, N, 0.5, 2, 42);
	kiln_random_normal_f32(a, N, 0.5f, 2, 42);
	check("random_normal against the sequential recipe", NULL, a, ref, N);
	kiln_random_normal_f32(b, N, 0.5f, 2, 42);
	t_expect(!memcmp(a, b, sizeof a),
	         "random_normal: same seed, same bits");
	kiln_random_normal_f32(c, 7, 0.5f, 2, 42);
	t_expect(!memcmp(a, c, sizeof c), "random_normal: element i does not "
	         "depend on n");
	kiln_random_normal_f32(b, N, 0.5f, 2, 43);
	int same = 0;
	for (int i = 0; i < N; i++)
		same += a[i] == b[i];
	t_expect(same < 5, "random_normal: another seed, other values");
	normal_ref(ref, N, 0, 1, UINT64_MAX);
	kiln_random_normal_f32(a, N, 0, 1, UINT64_MAX);
	check("random_normal seed 2^64-1", NULL, a, ref, N);
	normal_stats(0, 1, 0);
	normal_stats(3, 0.5f, 7);
	normal_stats(-1, 10, 12345);
}

int
main(void)
{
	t_seed(0x2545f4914f6cdd1du);
	test_unary();
	test_unary_limits();
	test_log_softmax();
	test_reduce();
	test_random();
	return t_report("act");

}
