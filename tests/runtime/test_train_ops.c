/* test_train_ops.c: tests of the training kernels of runtime/train_ops.c
 * (relu_grad, conv2d_grad_w, maxpool2d_grad, dropout_train,
 * softmax_cross_entropy and its gradient).
 *
 * Each kernel is checked against references written another way, in
 * double: conv2d_grad_w against the 7-loop sum of its definition and,
 * through the adjoint identity <conv2d(x, w), dy> = <w, conv2d_grad_w(x,
 * dy)>, against kiln_conv2d_f32 itself; maxpool2d_grad against a window
 * walk here, against the positions kiln_maxpool2d_indices_f32 reports and
 * through <maxpool2d(x), dy> = <x, maxpool2d_grad(dy, x)>, with ties,
 * -inf and NaN windows and windows wholly in the padding; dropout against
 * its documented splitmix64 recipe (testutil's stream is splitmix64), for
 * its rate, determinism and use as its own gradient; the loss against
 * the plain log-softmax formula, and its gradient against central finite
 * differences of that formula and of the kernel.
 *
 *   test_train_ops     all checks; the last line is the summary
 */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kiln.h"
#include "testutil.h"

#define countof(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* ---- relu_grad ------------------------------------------------------- */

static void
test_relu_grad(void)
{
	enum { N = 1000 };
	float x[N], dy[N], dx[N];
	double want[N];

	for (int i = 0; i < N; i++) {
		x[i] = i % 7 == 0 ? 0.0f : i % 11 == 0 ? -0.0f : i % 13 == 0 ?
		       NAN : t_frand();
		dy[i] = t_frand();
		want[i] = isnan(x[i]) || signbit(x[i]) || x[i] == 0 ? 0 : dy[i];
	}
	kiln_relu_grad_f32(dx, dy, x, N);
	t_close("relu_grad", dx, want, N, 0, 0);
	kiln_relu_grad_f32(dy, dy, x, N);
	t_close("relu_grad in place", dy, want, N, 0, 0);
}

/* ---- conv2d_grad_w --------------------------------------------------- */

struct conv_case {
	int64_t n, c, h, w, oc, kh, kw;
	int64_t sh, sw, pt, pl, pb, pr, dh, dw, group;
};

static struct kiln_conv2d
conv_params(const struct conv_case *t)
{
	return (struct kiln_conv2d){
		.n = t->n, .c = t->c, .h = t->h, .w = t->w, .oc = t->oc,
		.kh = t->kh, .kw = t->kw,
		.oh = (t->h + t->pt + t->pb - t->dh * (t->kh - 1) - 1) / t->sh + 1,
		.ow = (t->w + t->pl + t->pr - t->dw * (t->kw - 1) - 1) / t->sw + 1,
		.sh = t->sh, .sw = t->sw, .pt = t->pt, .pl = t->pl, .dh = t->dh,
		.dw = t->dw, .group = t->group,
	};
}

/* dw[o,q,u,v] = sum_{n,i,j} dy[n,o,i,j] * x[n, g*cg + q, ih, iw], every
 * tap tested against the input's bounds. */
static void
ref_grad_w(double *dw, const float *x, const float *dy,
           const struct kiln_conv2d *p)
{
	int64_t cg = p->c / p->group, og = p->oc / p->group;

	for (int64_t o = 0; o < p->oc; o++)
	for (int64_t q = 0; q < cg; q++)
	for (int64_t u = 0; u < p->kh; u++)
	for (int64_t v = 0; v < p->kw; v++) {
		double s = 0;
		int64_t c = o / og * cg + q;
		for (int64_t n = 0; n < p->n; n++)
		for (int64_t i = 0; i < p->oh; i++)
		for (int64_t j = 0; j < p->ow; j++) {
			int64_t ih = i * p->sh - p->pt + u * p->dh;
			int64_t iw = j * p->sw - p->pl + v * p->dw;
			if (ih >= 0 && ih < p->h && iw >= 0 && iw < p->w)
				s += (double)dy[((n * p->oc + o) * p->oh + i) * p->ow + j] *
				     x[((n * p->c + c) * p->h + ih) * p->w + iw];
		}
		*dw++ = s;
	}
}

static void
conv_case(const struct conv_case *t)
{
	struct kiln_conv2d p = conv_params(t);
	int64_t nx = p.n * p.c * p.h * p.w, ny = p.n * p.oc * p.oh * p.ow;
	int64_t nw = p.oc * (p.c / p.group) * p.kh * p.kw;
	float *x = t_randf(nx), *dy = t_randf(ny), *w = t_randf(nw);
	float *dw = t_randf(nw), *y = t_alloc((size_t)ny * sizeof *y);
	double *want = t_alloc((size_t)nw * sizeof *want);
	char what[200];

	snprintf(what, sizeof what, "conv2d_grad_w x[%lld,%lld,%lld,%lld] "
	         "dy[%lld,%lld,%lld,%lld] k %lldx%lld s %lld,%lld pads "
	         "%lld,%lld,%lld,%lld d %lld,%lld group %lld", (long long)p.n,
	         (long long)p.c, (long long)p.h, (long long)p.w, (long long)p.n,
	         (long long)p.oc, (long long)p.oh, (long long)p.ow,
	         (long long)p.kh, (long long)p.kw, (long long)p.sh,
	         (long long)p.sw, (long long)t->pt, (long long)t->pl,
	         (long long)t->pb, (long long)t->pr, (long long)p.dh,
	         (long long)p.dw, (long long)p.group);
	ref_grad_w(want, x, dy, &p);
	kiln_conv2d_grad_w_f32(dw, x, dy, &p);
	t_close(what, dw, want, nw, 5e-5, 1e-5);

	/* <conv2d(x, w), dy> = <w, dw>: the gradient is the adjoint of the
	 * forward kernel's own taps */
	kiln_conv2d_f32(y, x, w, NULL, &p);
	t_adjoint(what, y, dy, ny, w, dw, nw, 1e-5);
	free(x), free(dy), free(w), free(dw), free(y), free(want);
}

/* n c h w oc kh kw, sh sw, pt pl pb pr, dh dw, group */
static const struct conv_case conv_cases[] = {
	{1, 1, 5, 5, 1, 3, 3, 1, 1, 0, 0, 0, 0, 1, 1, 1},
	{2, 3, 7, 6, 4, 3, 2, 1, 1, 1, 0, 1, 1, 1, 1, 1},  /* non-square, pads */
	{2, 2, 9, 8, 3, 3, 3, 2, 3, 1, 2, 0, 1, 1, 1, 1},  /* strides */
	{1, 2, 10, 9, 2, 3, 2, 1, 1, 2, 1, 2, 1, 2, 3, 1}, /* dilations */
	{3, 4, 6, 7, 6, 2, 3, 2, 1, 0, 1, 1, 0, 1, 2, 2},  /* groups */
	{2, 3, 5, 5, 3, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 3},  /* depthwise */
	{1, 2, 4, 4, 2, 3, 3, 1, 1, 3, 3, 3, 3, 1, 1, 1},  /* taps all pad */
	{2, 4, 7, 5, 4, 1, 1, 2, 2, 0, 0, 0, 0, 1, 1, 2},  /* 1x1, stride 2 */
	{1, 3, 8, 3, 2, 5, 1, 3, 1, 1, 0, 2, 0, 1, 1, 1},  /* column kernel */
	{4, 16, 14, 14, 32, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1}, /* a CNN layer */
};

/* ---- maxpool2d_grad -------------------------------------------------- */

struct pool_case {
	int64_t n, c, h, w, kh, kw, sh, sw, pt, pl, pb, pr, dh, dw;
	int ceil;
	int fill;            /* 0 random ties, 1 with -inf and NaN runs */
};

static int64_t
pool_out(int64_t size, int64_t k, int64_t s, int64_t p0, int64_t p1,
         int64_t d, int ceil)
{
	int64_t room = size + p0 + p1 - d * (k - 1) - 1;
	return (ceil ? (room + s - 1) / s : room / s) + 1;
}

/* Where the gradient of output (i,j) goes in plane xp: the first tap in
 * window order that is strictly the largest so far (so neither NaN nor
 * -inf ever wins), else the first tap inside the input, else -1. */
static int64_t
ref_argmax(const float *xp, const struct kiln_pool2d *p, int64_t i, int64_t j)
{
	int64_t best = -1, first = -1;
	float m = -INFINITY;

	for (int64_t k = 0; k < p->kh * p->kw; k++) {
		int64_t ih = i * p->sh - p->pt + k / p->kw * p->dh;
		int64_t iw = j * p->sw - p->pl + k % p->kw * p->dw;
		bool inside = ih >= 0 && ih < p->h && iw >= 0 && iw < p->w;
		if (inside && first < 0)
			first = ih * p->w + iw;
		if (inside && xp[ih * p->w + iw] > m) {
			m = xp[ih * p->w + iw];
			best = ih * p->w + iw;
		}
	}
	return best >= 0 ? best : first;
}

static void
pool_case(const struct pool_case *t)
{
	struct kiln_pool2d p = {
		.n = t->n, .c = t->c, .h = t->h, .w = t->w,
		.oh = pool_out(t->h, t->kh, t->sh, t->pt, t->pb, t->dh, t->ceil),
		.ow = pool_out(t->w, t->kw, t->sw, t->pl, t->pr, t->dw, t->ceil),
		.kh = t->kh, .kw = t->kw, .sh = t->sh, .sw = t->sw, .pt = t->pt,
		.pl = t->pl, .dh = t->dh, .dw = t->dw,
	};
	int64_t plane = p.h * p.w, nx = p.n * p.c * plane;
	int64_t ny = p.n * p.c * p.oh * p.ow;
	float *x = t_pool_input(nx, t->fill, 6), *dy = t_randf(ny);
	float *dx = t_randf(nx), *viaidx = t_alloc((size_t)nx * sizeof *viaidx);
	float *y = t_alloc((size_t)ny * sizeof *y);
	int64_t *idx = t_alloc((size_t)ny * sizeof *idx);
	double *want = t_alloc((size_t)nx * sizeof *want);
	char what[200];

	snprintf(what, sizeof what, "maxpool2d_grad x[%lld,%lld,%lld,%lld] k "
	         "%lldx%lld s %lld,%lld pads %lld,%lld,%lld,%lld d %lld,%lld "
	         "ceil %d fill %d", (long long)p.n, (long long)p.c,
	         (long long)p.h, (long long)p.w, (long long)p.kh,
	         (long long)p.kw, (long long)p.sh, (long long)p.sw,
	         (long long)t->pt, (long long)t->pl, (long long)t->pb,
	         (long long)t->pr, (long long)p.dh, (long long)p.dw, t->ceil,
	         t->fill);
	memset(want, 0, (size_t)nx * sizeof *want);
	for (int64_t nc = 0, k = 0; nc < p.n * p.c; nc++)
		for (int64_t i = 0; i < p.oh; i++)
			for (int64_t j = 0; j < p.ow; j++, k++) {
				int64_t at = ref_argmax(x + nc * plane, &p, i, j);
				if (at >= 0)
					want[nc * plane + at] += dy[k];
			}
	kiln_maxpool2d_grad_f32(dx, dy, x, &p);
	t_close(what, dx, want, nx, 1e-6, 1e-6);

	/* exactly where maxpool2d_indices says the maxima are */
	kiln_maxpool2d_indices_f32(idx, x, &p, 0);
	memset(viaidx, 0, (size_t)nx * sizeof *viaidx);
	for (int64_t k = 0; k < ny; k++)
		if (idx[k] >= 0)
			viaidx[idx[k]] += dy[k];
	strncat(what, " = indices", sizeof what - strlen(what) - 1);
	t_expect(memcmp(dx, viaidx, (size_t)nx * sizeof *dx) == 0, what);

	/* <maxpool2d(x), dy> = <x, dx> when every window has a finite max
	 * (up to dx's f32 sums where windows overlap) */
	kiln_maxpool2d_f32(y, x, &p);
	bool finite = true;
	for (int64_t k = 0; k < ny; k++)
		finite &= isfinite(y[k]) != 0;
	if (finite && !t->fill) {
		double lhs = t_dot(y, dy, ny), rhs = t_dot(x, dx, nx);
		t_expectf(fabs(lhs - rhs) <= 1e-6 * (1 + fabs(lhs)),
		          "%s, adjoint: <f(x), dy> = %.9g, <x, f'(dy)> = %.9g",
		          what, lhs, rhs);
	}
	free(x), free(dy), free(dx), free(viaidx), free(y), free(idx);
	free(want);
}

/* n c h w, kh kw, sh sw, pt pl pb pr, dh dw, ceil, fill */
static const struct pool_case pool_cases[] = {
	{1, 1, 4, 4, 2, 2, 2, 2, 0, 0, 0, 0, 1, 1, 0, 0},
	{2, 3, 7, 6, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0}, /* overlapping */
	{1, 2, 7, 8, 3, 2, 2, 3, 1, 0, 2, 1, 1, 1, 1, 0}, /* asym, ceil */
	{1, 2, 9, 9, 3, 3, 2, 2, 2, 2, 2, 2, 2, 2, 0, 0}, /* dilations */
	{1, 1, 3, 3, 2, 2, 2, 2, 2, 2, 2, 2, 1, 1, 0, 0}, /* windows all pad */
	{2, 2, 8, 6, 2, 3, 1, 2, 0, 1, 1, 1, 1, 1, 0, 1}, /* -inf and NaN */
	{1, 3, 12, 6, 3, 3, 2, 1, 1, 0, 1, 2, 1, 1, 1, 1}, /* -inf, ceil */
	/* 2x2 of stride 2, a row at a time: odd sizes (a row and column
	 * no window covers), ties, -inf and NaN runs */
	{2, 3, 9, 11, 2, 2, 2, 2, 0, 0, 0, 0, 1, 1, 0, 0},
	{2, 3, 9, 11, 2, 2, 2, 2, 0, 0, 0, 0, 1, 1, 0, 1},
	{1, 6, 28, 28, 2, 2, 2, 2, 0, 0, 0, 0, 1, 1, 0, 1},
};

/* ---- dropout_train --------------------------------------------------- */

/* Element i's keep decision by the recipe in kiln.h, through testutil's
 * splitmix64 stream: state s's output j is the (j+1)-th draw after
 * t_seed(s). */
static bool
ref_keep(uint64_t seed, int64_t t, int64_t i, float rate)
{
	uint64_t s = 0, u = 0;

	t_seed(seed);
	for (int64_t k = 0; k <= t; k++)
		s = t_rand_u64();
	t_seed(s);
	for (int64_t k = 0; k <= i; k++)
		u = t_rand_u64();
	return (double)(u >> 11) / 9007199254740992.0 >= rate;
}

/* Kept fraction of n ones with rate, in 5 standard deviations of
 * 1 - rate; the kept ones scaled by exactly 1.0f / (1.0f - rate). */
static void
dropout_rate(float rate, int64_t n)
{
	float *x = t_alloc((size_t)n * sizeof *x), *y = t_randf(n);
	float s = 1.0f / (1.0f - rate);
	int64_t kept = 0, other = 0;
	char what[100];

	for (int64_t i = 0; i < n; i++)
		x[i] = 1.0f;
	kiln_dropout_train_f32(y, x, n, rate, 12345, 7);
	for (int64_t i = 0; i < n; i++) {
		kept += y[i] == s;
		other += y[i] != s && y[i] != 0;
	}
	double p = 1.0 - rate, frac = (double)kept / (double)n;
	snprintf(what, sizeof what, "dropout_train rate %g: kept %.5f of %lld",
	         rate, frac, (long long)n);
	t_expect(other == 0 &&
	         fabs(frac - p) <= 5 * sqrt(p * (1 - p) / n) + 1e-12, what);
	free(x), free(y);
}

static void
test_dropout(void)
{
	enum { N = 4096 };
	float rate = 0.3f, s = 1.0f / (1.0f - rate);
	float *x = t_randf(N), *y = t_randf(N), *again = t_randf(N);
	float *dy = t_randf(N), *dx = t_randf(N);
	int64_t differ = 0, bad = 0, wrong = 0;

	for (int64_t i = 0; i < N; i++)
		x[i] = x[i] == 0 ? 0.5f : x[i];
	kiln_dropout_train_f32(y, x, N, rate, 99, 3);
	for (int64_t i = 0; i < N; i++) {
		bool keep = ref_keep(99, 3, i, rate);
		wrong += (y[i] != 0) != keep;
		bad += y[i] != 0 && y[i] != x[i] * s;
	}
	t_expect(wrong == 0,
	         "dropout_train mask follows the splitmix64 recipe");
	t_expect(bad == 0,
	         "dropout_train keeps x * 1.0f/(1.0f - rate) exactly");

	kiln_dropout_train_f32(again, x, N, rate, 99, 3);
	t_expect(memcmp(y, again, sizeof *y * N) == 0,
	         "dropout_train deterministic");
	memcpy(again, x, sizeof *x * N);
	kiln_dropout_train_f32(again, again, N, rate, 99, 3);
	t_expect(memcmp(y, again, sizeof *y * N) == 0,
	         "dropout_train in place");

	/* the gradient is the same call on dy: dy * s where x was kept */
	kiln_dropout_train_f32(dx, dy, N, rate, 99, 3);
	bad = 0;
	for (int64_t i = 0; i < N; i++)
		bad += dx[i] != (y[i] != 0 ? dy[i] * s : 0.0f);
	t_expect(bad == 0, "dropout_train on dy masks as on x");

	/* another step or another seed: another mask */
	kiln_dropout_train_f32(again, x, N, rate, 99, 4);
	for (int64_t i = 0; i < N; i++)
		differ += (again[i] != 0) != (y[i] != 0);
	t_expect(differ > N / 5,
	         "dropout_train: step 4 masks differently from 3");
	kiln_dropout_train_f32(again, x, N, rate, 100, 3);
	differ = 0;
	for (int64_t i = 0; i < N; i++)
		differ += (again[i] != 0) != (y[i] != 0);
	t_expect(differ > N / 5,
	         "dropout_train: seed 100 masks differently from 99");

	kiln_dropout_train_f32(again, x, N, 0.0f, 99, 3);
	t_expect(memcmp(x, again, sizeof *x * N) == 0,
	         "dropout_train rate 0 copies");
	dropout_rate(0.1f, 1000000);
	dropout_rate(0.5f, 1000000);
	dropout_rate(0.9f, 1000000);
	free(x), free(y), free(again), free(dy), free(dx);
}

/* ---- softmax_cross_entropy and its gradient -------------------------- */

/* -1/n sum_r sum_k q[r,k] (z[r,k] - ln sum_l e^z[r,l]), without the max
 * subtracted (so keep |z| small). */
static double
ref_loss(const double *z, const int64_t *labels, int64_t n, int64_t c,
         double ls)
{
	double total = 0;

	for (int64_t r = 0; r < n; r++) {
		double se = 0;
		for (int64_t k = 0; k < c; k++)
			se += exp(z[r * c + k]);
		for (int64_t k = 0; k < c; k++) {
			double q = (1 - ls) * (k == labels[r]) + ls / (double)c;
			total -= q * (z[r * c + k] - log(se));
		}
	}
	return total / (double)n;
}

/* Labels as dtype t. */
static void *
labels_as(const int64_t *lab, int64_t n, kiln_dtype t)
{
	unsigned char *p = t_alloc((size_t)n * 8);
	for (int64_t r = 0; r < n; r++) {
		int32_t i32 = (int32_t)lab[r];
		int8_t i8 = (int8_t)lab[r];
		uint8_t u8 = (uint8_t)lab[r];
		size_t es = kiln_dtype_size(t);
		memcpy(p + r * (int64_t)es, t == KILN_I64 ? (void *)&lab[r] :
		       t == KILN_I32 ? (void *)&i32 : t == KILN_I8 ? (void *)&i8 :
		       (void *)&u8, es);
	}
	return p;
}

/* The loss and its gradient on z[n,c] with label smoothing ls: the loss
 * against ref_loss for each label dtype, the gradient against central
 * differences of ref_loss (step 1e-6, in double) and of the kernel
 * itself (step 2^-6, through the f32 loss). */
static void
xent_case(int64_t n, int64_t c, float ls, float dloss)
{
	float *z = t_randf(n * c), *dz = t_randf(n * c), loss;
	double *zd = t_alloc((size_t)(n * c) * sizeof *zd);
	double *fd = t_alloc((size_t)(n * c) * sizeof *fd);
	double *fdk = t_alloc((size_t)(n * c) * sizeof *fdk);
	int64_t *lab = t_alloc((size_t)n * sizeof *lab);
	static const kiln_dtype types[] = {KILN_I64, KILN_I32, KILN_I8, KILN_U8};
	char what[160];

	for (int64_t r = 0; r < n; r++)
		lab[r] = t_irand(c);
	for (int64_t k = 0; k < n * c; k++)
		zd[k] = z[k] *= 3;
	double want = ref_loss(zd, lab, n, c, ls);
	for (int i = 0; i < countof(types); i++) {
		void *l = labels_as(lab, n, types[i]);
		kiln_status st = kiln_softmax_cross_entropy_f32(&loss, z, l,
		                                                types[i], n, c, ls);
		snprintf(what, sizeof what, "softmax_cross_entropy n %lld c %lld "
		         "ls %g labels %s", (long long)n, (long long)c, ls,
		         kiln_dtype_name(types[i]));
		t_expect(st == KILN_OK, what);
		t_close(what, &loss, &want, 1, 1e-6, 1e-6);
		free(l);
	}

	for (int64_t k = 0; k < n * c; k++) {
		double h = 1e-6, zk = zd[k], lp, lm;
		float zf = z[k], f[2];
		zd[k] = zk + h, lp = ref_loss(zd, lab, n, c, ls);
		zd[k] = zk - h, lm = ref_loss(zd, lab, n, c, ls);
		zd[k] = zk;
		fd[k] = dloss * (lp - lm) / (2 * h);
		z[k] = zf + 0x1p-6f;
		kiln_softmax_cross_entropy_f32(&f[0], z, lab, KILN_I64, n, c, ls);
		double up = z[k];
		z[k] = zf - 0x1p-6f;
		kiln_softmax_cross_entropy_f32(&f[1], z, lab, KILN_I64, n, c, ls);
		fdk[k] = dloss * ((double)f[0] - f[1]) / (up - z[k]);
		z[k] = zf;
	}
	kiln_status st = kiln_softmax_cross_entropy_grad_f32(dz, z, lab, KILN_I64,
	                                                     &dloss, n, c, ls);
	snprintf(what, sizeof what, "softmax_cross_entropy_grad n %lld c %lld "
	         "ls %g dloss %g", (long long)n, (long long)c, ls, dloss);
	t_expect(st == KILN_OK, what);
	t_close(what, dz, fd, n * c, 1e-6, 1e-4);
	strncat(what, " vs the kernel's loss", sizeof what - strlen(what) - 1);
	t_close(what, dz, fdk, n * c, 1e-4, 1e-3);
	free(z), free(dz), free(zd), free(fd), free(fdk), free(lab);
}

/* The loss of 2 x 3 logits with bad labels fails with want, before
 * anything is written. */
static void
xent_bad(const char *what, const void *lab, kiln_dtype t, float ls,
         kiln_status want)
{
	static const float z[6] = {1, 2, 3, 4, 5, 6};
	float loss = 42;

	t_expect(kiln_softmax_cross_entropy_f32(&loss, z, lab, t, 2, 3, ls) ==
	         want && loss == 42, what);
}

static void
xent_errors(void)
{
	float z[6] = {1, 2, 3, 4, 5, 6}, dz[6], unset[6], one = 1;
	int64_t over[2] = {0, 3};
	int32_t neg[2] = {-1, 0};
	int8_t neg8[2] = {0, -1};
	uint8_t u8[2] = {2, 200};
	kiln_status st;

	xent_bad("softmax_cross_entropy label 3 of 3", over, KILN_I64, 0,
	         KILN_ERR_RANGE);
	xent_bad("softmax_cross_entropy label -1", neg, KILN_I32, 0,
	         KILN_ERR_RANGE);
	xent_bad("softmax_cross_entropy i8 label -1", neg8, KILN_I8, 0,
	         KILN_ERR_RANGE);
	xent_bad("softmax_cross_entropy u8 label 200", u8, KILN_U8, 0.1f,
	         KILN_ERR_RANGE);
	xent_bad("softmax_cross_entropy f32 labels", over, KILN_F32, 0,
	         KILN_ERR_DTYPE);
	memset(dz, 0x55, sizeof dz);
	memcpy(unset, dz, sizeof dz);
	st = kiln_softmax_cross_entropy_grad_f32(dz, z, neg, KILN_I32, &one, 2,
	                                         3, 0);
	t_expect(st == KILN_ERR_RANGE && memcmp(dz, unset, sizeof dz) == 0,
	         "softmax_cross_entropy_grad label -1 writes nothing");
}

/* 300 classes, so that u8 label 200 is a class and i8 label -1 read as
 * u8 (255) would be one too. */
static void
xent_wide(void)
{
	enum { C = 300 };
	float z[C], loss = 42;
	double zd[C];
	int64_t lab = 200;
	uint8_t u8 = 200;
	int8_t i8 = -1;

	for (int k = 0; k < C; k++)
		zd[k] = z[k] = t_frand();
	double want = ref_loss(zd, &lab, 1, C, 0.1);
	t_expect(kiln_softmax_cross_entropy_f32(&loss, z, &u8, KILN_U8, 1, C,
	                                        0.1f) == KILN_OK,
	         "softmax_cross_entropy u8 label 200 of 300");
	t_close("softmax_cross_entropy u8 label 200 of 300", &loss, &want, 1,
	        1e-6, 1e-6);
	t_expect(kiln_softmax_cross_entropy_f32(&loss, z, &i8, KILN_I8, 1, C,
	                                        0) == KILN_ERR_RANGE,
	         "softmax_cross_entropy i8 label -1 of 300");
}

/* Logits far from 0: the loss is shift-invariant per row, and an
 * enormous logit neither overflows nor gives NaN. */
static void
xent_stable(void)
{
	enum { N = 3, C = 4 };
	float z[N * C], loss, dz[N * C], one = 1;
	double zd[N * C], sum = 0;
	int64_t lab[N] = {1, 3, 0};

	for (int k = 0; k < N * C; k++) {
		z[k] = 1000 + t_frand();
		zd[k] = (double)z[k] - 1000;
	}
	double want = ref_loss(zd, lab, N, C, 0.2);
	kiln_softmax_cross_entropy_f32(&loss, z, lab, KILN_I64, N, C, 0.2f);
	t_close("softmax_cross_entropy of logits near 1000", &loss, &want, 1,
	        1e-5, 1e-5);
	z[0] = 1e30f;
	kiln_softmax_cross_entropy_grad_f32(dz, z, lab, KILN_I64, &one, N, C, 0);
	for (int k = 0; k < N * C; k++)
		sum += dz[k];
	t_expect(isfinite(sum) && fabs(sum) < 1e-6 &&
	         fabs(dz[0] - 1.0 / N) < 1e-7,
	         "softmax_cross_entropy_grad with a logit of 1e30");
}

int
main(void)
{
	t_seed(0x7472616976);
	test_relu_grad();
	for (int i = 0; i < countof(conv_cases); i++)
		conv_case(&conv_cases[i]);
	for (int i = 0; i < countof(pool_cases); i++)
		pool_case(&pool_cases[i]);
	test_dropout();
	t_seed(0x78656e74);
	xent_case(1, 1, 0, 1);
	xent_case(4, 5, 0, 1);
	xent_case(4, 5, 0.1f, 1);
	xent_case(7, 10, 0.3f, 0.37f);
	xent_case(3, 2, 1, -2);
	xent_case(16, 3, 0.05f, 1);
	xent_errors();
	xent_wide();
	xent_stable();
	return t_report("train_ops");
}
