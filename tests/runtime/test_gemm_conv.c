/* test_gemm_conv.c: the blocked matrix product of runtime/gemm.c and the
 * im2col convolutions built on it (kiln_conv2d_f32,
 * kiln_conv2d_transpose_f32 in runtime/conv.c, kiln_conv2d_grad_w_f32 in
 * runtime/train_ops.c), against naive loops in double.
 *
 * Shapes are chosen to hit every edge of the blocking: sizes just below,
 * at and above the micro-tile (6 x 8 or 6 x 16) and block sizes (96, 256,
 * 128) in m, n and k, all four transposes, alpha/beta and each c form,
 * and kiln_gemm_ld_f32 on padded operands whose padding is NaN (so a read
 * of it shows) and a y whose padding must stay untouched.  The
 * convolutions run odd and 1-wide images, strides 2 and 3, dilation 2,
 * groups, depthwise, asymmetric pads, 1x1 (in place of im2col, and not)
 * and 5x5 kernels, and channel counts that cut the im2col matrix into
 * several pieces of columns, of rows, or both.  The tolerance of an
 * element is 1e-5 * sqrt(k) times the root sum of squares of its k terms:
 * far above float rounding, far below one term.  Results must also be
 * bitwise the same when the operands sit at other addresses.
 *
 *   test_gemm_conv     run everything; the last line is the summary
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

/* got[i] against ref[i], within TOL * sqrt(k) * sqrt(ss[i]), ss[i] the
 * sum of the squares of the terms of element i. */
static void
check(const char *what, const float *got, const double *ref,
      const double *ss, int64_t k, int64_t n)
{
	double *tol = t_alloc((size_t)n * sizeof *tol);

	for (int64_t i = 0; i < n; i++)
		tol[i] = TOL * sqrt((double)k) * sqrt(ss[i]);
	t_close_tol(what, got, ref, tol, n);
	free(tol);
}

/* A copy of x[n] at a misaligned address: offset floats into a fresh
 * block.  Free with free(p - offset). */
static float *
shifted(const float *x, int64_t n, int offset)
{
	float *p = (float *)t_alloc((size_t)(n + offset) * sizeof *p) + offset;

	memcpy(p, x, (size_t)n * sizeof *p);
	return p;
}

/* ---- gemm ------------------------------------------------------------ */

enum { C_NONE, C_SCALAR, C_ROW, C_COL, C_FULL, NFORM };
static const int64_t form_rs[] = {0, 0, 0, 1, -1}, form_cs[] = {0, 0, 1, 0, 1};

struct gemm_case {
	int64_t m, n, k;
	int ta, tb, form;
	float alpha, beta;
};

/* ab[i,j] = sum_p op(a)[i,p] * op(b)[p,j] in double, ss its squares. */
static void
ref_product(double *ab, double *ss, const float *a, const float *b,
            const struct gemm_case *t)
{
	for (int64_t i = 0; i < t->m; i++)
		for (int64_t j = 0; j < t->n; j++) {
			double s = 0, q = 0;
			for (int64_t p = 0; p < t->k; p++) {
				double x = t->ta ? a[p * t->m + i] : a[i * t->k + p];
				double y = t->tb ? b[j * t->k + p] : b[p * t->n + j];
				s += x * y;
				q += x * y * x * y;
			}
			ab[i * t->n + j] = s;
			ss[i * t->n + j] = q;
		}
}

static void
describe_gemm(char *buf, size_t len, const char *fn, const struct gemm_case *t)
{
	static const char *const name[] = {"none", "scalar", "row", "column",
	                                   "full"};

	snprintf(buf, len, "%s m=%lld n=%lld k=%lld ta=%d tb=%d alpha=%g "
	         "beta=%g c=%s", fn, (long long)t->m, (long long)t->n,
	         (long long)t->k, t->ta, t->tb, t->alpha, t->beta, name[t->form]);
}

/* kiln_gemm_f32 with c in the case's form, and again on operands at
 * other addresses, which must give the same bits. */
static void
gemm_plain(const struct gemm_case *t, const float *a, const float *b,
           const double *ab, const double *ss)
{
	int64_t m = t->m, n = t->n, k = t->k, mn = m * n;
	int64_t rs = form_rs[t->form] < 0 ? n : form_rs[t->form];
	int64_t cs = form_cs[t->form];
	float *c = t_randf(mn), *y = t_randf(mn), *y2, *a2, *b2, *c2;
	const float *cp = t->form == C_NONE ? NULL : c;
	double *ref = t_zerod(mn), *sq = t_zerod(mn);
	char what[200];

	for (int64_t i = 0; i < m; i++)
		for (int64_t j = 0; j < n; j++) {
			double cv = cp ? t->beta * (double)c[i * rs + j * cs] : 0;
			ref[i * n + j] = t->alpha * ab[i * n + j] + cv;
			sq[i * n + j] = (double)t->alpha * t->alpha * ss[i * n + j] +
			                cv * cv;
		}
	kiln_gemm_f32(y, a, b, cp, m, n, k, t->ta, t->tb, t->alpha, t->beta,
	              rs, cs);
	describe_gemm(what, sizeof what, "gemm", t);
	check(what, y, ref, sq, k, mn);

	a2 = shifted(a, m * k, 1), b2 = shifted(b, k * n, 3);
	c2 = shifted(c, mn, 2), y2 = shifted(y, mn, 1);
	kiln_gemm_f32(y2, a2, b2, cp ? c2 : NULL, m, n, k, t->ta, t->tb,
	              t->alpha, t->beta, rs, cs);
	strncat(what, " moved", sizeof what - strlen(what) - 1);
	t_expect(!memcmp(y, y2, (size_t)mn * sizeof *y), what);
	free(a2 - 1), free(b2 - 3), free(c2 - 2), free(y2 - 1);
	free(c), free(y), free(ref), free(sq);
}

/* x[rows, cols] copied into rows of ld floats padded with NaN. */
static float *
pad_nan(const float *x, int64_t rows, int64_t cols, int64_t ld)
{
	float *p = t_alloc((size_t)(rows * ld) * sizeof *p);

	for (int64_t i = 0; i < rows; i++)
		for (int64_t j = 0; j < ld; j++)
			p[i * ld + j] = j < cols ? x[i * cols + j] : NAN;
	return p;
}

/* kiln_gemm_ld_f32 on padded operands: y = alpha*ab + beta*y0, y0 NaN
 * when beta is 0 (it must not be read), y's padding left alone. */
static void
gemm_ld(const struct gemm_case *t, const float *a, const float *b,
        const double *ab, const double *ss)
{
	int64_t m = t->m, n = t->n, k = t->k;
	int64_t ar = t->ta ? k : m, ac = t->ta ? m : k;
	int64_t br = t->tb ? n : k, bc = t->tb ? k : n;
	int64_t lda = ac + 3, ldb = bc + 1, ldy = n + 2;
	float *ap = pad_nan(a, ar, ac, lda), *bp = pad_nan(b, br, bc, ldb);
	float *y0 = t_randf(m * n), *y = t_alloc((size_t)(m * ldy) * sizeof *y);
	float *got = t_alloc((size_t)(m * n) * sizeof *got);
	double *ref = t_zerod(m * n), *sq = t_zerod(m * n);
	bool kept = true;
	char what[200];

	for (int64_t i = 0; i < m; i++)
		for (int64_t j = 0; j < ldy; j++)
			y[i * ldy + j] = j >= n ? 12345.0f :
			                 t->beta == 0 ? NAN : y0[i * n + j];
	for (int64_t i = 0; i < m * n; i++) {
		double cv = t->beta == 0 ? 0 : (double)t->beta * y0[i];
		ref[i] = t->alpha * ab[i] + cv;
		sq[i] = (double)t->alpha * t->alpha * ss[i] + cv * cv;
	}
	kiln_gemm_ld_f32(y, ldy, ap, lda, bp, ldb, m, n, k, t->ta, t->tb,
	                 t->alpha, t->beta);
	for (int64_t i = 0; i < m; i++)
		for (int64_t j = 0; j < ldy; j++) {
			if (j < n)
				got[i * n + j] = y[i * ldy + j];
			else
				kept &= y[i * ldy + j] == 12345.0f;
		}
	describe_gemm(what, sizeof what, "gemm_ld", t);
	check(what, got, ref, sq, k, m * n);
	strncat(what, " padding kept", sizeof what - strlen(what) - 1);
	t_expect(kept, what);
	free(ap), free(bp), free(y0), free(y), free(got), free(ref), free(sq);
}

static void
gemm_case(const struct gemm_case *t)
{
	float *a = t_randf(t->m * t->k), *b = t_randf(t->k * t->n);
	double *ab = t_zerod(t->m * t->n), *ss = t_zerod(t->m * t->n);

	ref_product(ab, ss, a, b, t);
	gemm_plain(t, a, b, ab, ss);
	gemm_ld(t, a, b, ab, ss);
	free(a), free(b), free(ab), free(ss);
}

/* Every triple of sizes up to 64K multiply-adds, the transposes, c forms
 * and alpha/beta pairs taking turns, then a few large ones with every
 * transpose: several blocks in m, n and k at once. */
static void
test_gemm(void)
{
	static const int64_t size[] = {1, 2, 3, 5, 7, 15, 16, 17, 31, 33, 64, 65,
	                               130, 257, 300};
	static const float ab[][2] = {{1, 0}, {0.5f, 2}, {-1.5f, 1}, {2, -0.5f}};
	static const int64_t big[][3] = {
		{300, 257, 130}, {257, 33, 300}, {17, 300, 257}, {130, 130, 513},
	};
	int turn = 0;

	for (int i = 0; i < countof(size); i++)
	for (int j = 0; j < countof(size); j++)
	for (int l = 0; l < countof(size); l++) {
		struct gemm_case t = {size[i], size[j], size[l], turn & 1,
		                      turn >> 1 & 1, turn % NFORM,
		                      ab[turn % countof(ab)][0],
		                      ab[turn % countof(ab)][1]};
		if (t.m * t.n * t.k > 65536)
			continue;
		gemm_case(&t);
		turn++;
	}
	for (int i = 0; i < countof(big); i++)
		for (int tr = 0; tr < 4; tr++) {
			struct gemm_case t = {big[i][0], big[i][1], big[i][2], tr & 1,
			                      tr >> 1, (i + tr) % NFORM, 0.75f,
			                      tr & 1 ? 0.0f : 1.0f};
			gemm_case(&t);
		}
}

/* As in BLAS, beta == 0 means c is not read, also on the blocked path. */
static void
gemm_beta0_nan(void)
{
	int64_t m = 40, n = 50, k = 60;
	float *a = t_randf(m * k), *b = t_randf(k * n), *y = t_randf(m * n);
	float c = NAN;
	bool finite = true;

	kiln_gemm_f32(y, a, b, &c, m, n, k, 0, 0, 1.0f, 0.0f, 0, 0);
	for (int64_t i = 0; i < m * n; i++)
		finite &= isfinite(y[i]);
	t_expect(finite, "gemm 40x50x60 beta=0 ignores a NaN c");
	free(a), free(b), free(y);
}

/* ---- conv ------------------------------------------------------------ */

/* A 2-D convolution; the transposed one runs as its input gradient. */
struct conv_case {
	int64_t n, c, h, w, oc, kh, kw, sh, sw, pt, pb, pl, pr, dh, dw, group;
	int bias;
};

static struct kiln_conv2d
conv_params(const struct conv_case *t)
{
	struct kiln_conv2d p = {
		.n = t->n, .c = t->c, .h = t->h, .w = t->w, .oc = t->oc,
		.kh = t->kh, .kw = t->kw, .sh = t->sh, .sw = t->sw, .pt = t->pt,
		.pl = t->pl, .dh = t->dh, .dw = t->dw, .group = t->group,
	};

	p.oh = (t->h + t->pt + t->pb - t->dh * (t->kh - 1) - 1) / t->sh + 1;
	p.ow = (t->w + t->pl + t->pr - t->dw * (t->kw - 1) - 1) / t->sw + 1;
	return p;
}

/* The input position of output position o through tap u along an axis
 * of length len, or -1 in the padding. */
static int64_t
tap(int64_t o, int64_t u, int64_t s, int64_t pad, int64_t d, int64_t len)
{
	int64_t i = o * s - pad + u * d;

	return i >= 0 && i < len ? i : -1;
}

/* y[n,o,i,j] = b[o] + sum x * w over the taps inside x. */
static void
ref_conv(double *y, double *ss, const float *x, const float *w,
         const float *b, const struct kiln_conv2d *p)
{
	int64_t cg = p->c / p->group, og = p->oc / p->group;

	for (int64_t n = 0; n < p->n; n++)
	for (int64_t o = 0; o < p->oc; o++)
	for (int64_t i = 0; i < p->oh; i++)
	for (int64_t j = 0; j < p->ow; j++) {
		double s = b ? b[o] : 0, q = s * s;
		for (int64_t c = 0; c < cg; c++)
		for (int64_t u = 0; u < p->kh; u++)
		for (int64_t v = 0; v < p->kw; v++) {
			int64_t ih = tap(i, u, p->sh, p->pt, p->dh, p->h);
			int64_t iw = tap(j, v, p->sw, p->pl, p->dw, p->w);
			if (ih < 0 || iw < 0)
				continue;
			double t = (double)x[((n * p->c + o / og * cg + c) * p->h + ih) *
			                     p->w + iw] *
			           w[((o * cg + c) * p->kh + u) * p->kw + v];
			s += t;
			q += t * t;
		}
		*y++ = s;
		*ss++ = q;
	}
}

/* dw[o,c,u,v] = sum over n, i, j of dy[n,o,i,j] * x at the tap. */
static void
ref_grad_w(double *dw, double *ss, const float *x, const float *dy,
           const struct kiln_conv2d *p)
{
	int64_t cg = p->c / p->group, og = p->oc / p->group;

	for (int64_t o = 0; o < p->oc; o++)
	for (int64_t c = 0; c < cg; c++)
	for (int64_t u = 0; u < p->kh; u++)
	for (int64_t v = 0; v < p->kw; v++) {
		double s = 0, q = 0;
		for (int64_t n = 0; n < p->n; n++)
		for (int64_t i = 0; i < p->oh; i++)
		for (int64_t j = 0; j < p->ow; j++) {
			int64_t ih = tap(i, u, p->sh, p->pt, p->dh, p->h);
			int64_t iw = tap(j, v, p->sw, p->pl, p->dw, p->w);
			if (ih < 0 || iw < 0)
				continue;
			double t = (double)dy[((n * p->oc + o) * p->oh + i) * p->ow + j] *
			           x[((n * p->c + o / og * cg + c) * p->h + ih) * p->w +
			             iw];
			s += t;
			q += t * t;
		}
		*dw++ = s;
		*ss++ = q;
	}
}

/* The transposed convolution by its definition in kiln.h: y = b, then
 * every x[n,c,i,j] * w[c,o,u,v] lands on y at the tap, when inside. */
static void
ref_convt(double *y, double *ss, const float *x, const float *w,
          const float *b, const struct kiln_conv2d *p)
{
	int64_t cg = p->c / p->group, og = p->oc / p->group;
	int64_t oplane = p->oh * p->ow;

	for (int64_t n = 0; n < p->n; n++)
		for (int64_t o = 0; o < p->oc; o++)
			for (int64_t i = 0; i < oplane; i++) {
				double v = b ? b[o] : 0;
				y[(n * p->oc + o) * oplane + i] = v;
				ss[(n * p->oc + o) * oplane + i] = v * v;
			}
	for (int64_t n = 0; n < p->n; n++)
	for (int64_t c = 0; c < p->c; c++)
	for (int64_t i = 0; i < p->h; i++)
	for (int64_t j = 0; j < p->w; j++)
	for (int64_t o = 0; o < og; o++)
	for (int64_t u = 0; u < p->kh; u++)
	for (int64_t v = 0; v < p->kw; v++) {
		int64_t yi = tap(i, u, p->sh, p->pt, p->dh, p->oh);
		int64_t yj = tap(j, v, p->sw, p->pl, p->dw, p->ow);
		if (yi < 0 || yj < 0)
			continue;
		int64_t at = ((n * p->oc + c / cg * og + o) * p->oh + yi) * p->ow + yj;
		double t = (double)x[((n * p->c + c) * p->h + i) * p->w + j] *
		           w[((c * og + o) * p->kh + u) * p->kw + v];
		y[at] += t;
		ss[at] += t * t;
	}
}

static void
describe_conv(char *buf, size_t len, const char *op,
              const struct conv_case *t)
{
	snprintf(buf, len, "%s x[%lld,%lld,%lld,%lld] oc %lld k %lldx%lld s "
	         "%lld,%lld pads t%lld b%lld l%lld r%lld d %lld,%lld group %lld%s",
	         op, (long long)t->n, (long long)t->c, (long long)t->h,
	         (long long)t->w, (long long)t->oc, (long long)t->kh,
	         (long long)t->kw, (long long)t->sh, (long long)t->sw,
	         (long long)t->pt, (long long)t->pb, (long long)t->pl,
	         (long long)t->pr, (long long)t->dh, (long long)t->dw,
	         (long long)t->group, t->bias ? " bias" : "");
}

/* The epilogue e (an activation and maybe a residual) the unfused way:
 * kiln_add_f32 then the activation's own kernel, on y in place. */
static void
unfused(float *y, int64_t n, const struct kiln_epilogue *e)
{
	int64_t one = n, st = 1;
	float a = e->alpha, b = e->beta;

	if (e->res)
		kiln_add_f32(y, y, e->res, 1, &one, &st, &st);
	switch (e->act) {
	case KILN_ACT_NONE: break;
	case KILN_ACT_RELU: kiln_relu_f32(y, y, n); break;
	case KILN_ACT_CLIP: kiln_clip_f32(y, y, n, a, b); break;
	case KILN_ACT_LEAKY_RELU: kiln_leaky_relu_f32(y, y, n, a); break;
	case KILN_ACT_SIGMOID: kiln_sigmoid_f32(y, y, n); break;
	case KILN_ACT_TANH: kiln_tanh_f32(y, y, n); break;
	case KILN_ACT_HARDSWISH: kiln_hardswish_f32(y, y, n); break;
	case KILN_ACT_HARDSIGMOID: kiln_hardsigmoid_f32(y, y, n, a, b); break;
	case KILN_ACT_GELU: kiln_gelu_f32(y, y, n, 0); break;
	case KILN_ACT_GELU_TANH: kiln_gelu_f32(y, y, n, 1); break;
	case KILN_ACT_SILU: kiln_silu_f32(y, y, n); break;
	}
}

/* The next epilogue to test: each activation in turn, with and without a
 * residual r. */
static struct kiln_epilogue
next_epilogue(const float *r)
{
	static int turn;
	struct kiln_epilogue e = {turn % (KILN_ACT_SILU + 1), 0.25f, 0.75f,
	                          turn / (KILN_ACT_SILU + 1) % 2 ? r : NULL};

	if (e.act == KILN_ACT_CLIP)
		e.alpha = -0.5f;
	turn++;
	return e;
}

/* kiln_gemm_ep_f32 and kiln_matmul_ep_f32 give the bits of the product
 * followed by the unfused add and activation, on sizes big enough for
 * the threads. */
static void
gemm_epilogue(void)
{
	static const int64_t dim[][3] = {{5, 7, 3}, {130, 257, 65}, {1, 300, 17}};

	for (int i = 0; i < countof(dim); i++)
		for (int k = 0; k < 2 * (KILN_ACT_SILU + 1); k++) {
			int64_t m = dim[i][0], n = dim[i][1], kk = dim[i][2];
			float *a = t_randf(m * kk), *b = t_randf(kk * n);
			float *c = t_randf(n), *r = t_randf(m * n);
			float *y = t_randf(m * n), *want = t_randf(m * n);
			struct kiln_epilogue e = next_epilogue(r);
			char what[120];

			kiln_gemm_f32(want, a, b, c, m, n, kk, 0, 0, 1.5f, 0.5f, 0, 1);
			unfused(want, m * n, &e);
			kiln_gemm_ep_f32(y, a, b, c, m, n, kk, 0, 0, 1.5f, 0.5f, 0, 1,
			                 &e);
			snprintf(what, sizeof what, "gemm epilogue act %d%s [%lld,%lld,"
			         "%lld]", e.act, e.res ? " residual" : "", (long long)m,
			         (long long)n, (long long)kk);
			t_expect(!memcmp(y, want, (size_t)(m * n) * sizeof *y), what);
			kiln_matmul_f32(want, a, b, 1, m, n, kk, 0, 0);
			unfused(want, m * n, &e);
			kiln_matmul_ep_f32(y, a, b, 1, m, n, kk, 0, 0, &e);
			what[1] = 'M';
			t_expect(!memcmp(y, want, (size_t)(m * n) * sizeof *y), what);
			free(a), free(b), free(c), free(r), free(y), free(want);
		}
}

static int
cmp_float(const void *a, const void *b)
{
	float x = *(const float *)a, y = *(const float *)b;

	return (x > y) - (x < y);
}

/* a[n] and b[n] hold the same values, in any order. */
static bool
same_elements(const float *a, const float *b, int64_t n)
{
	float *sa = shifted(a, n, 0), *sb = shifted(b, n, 0);
	bool same;

	qsort(sa, (size_t)n, sizeof *sa, cmp_float);
	qsort(sb, (size_t)n, sizeof *sb, cmp_float);
	same = !memcmp(sa, sb, (size_t)n * sizeof *sa);
	free(sa), free(sb);
	return same;
}

/* The fused relu and residual of the kernels' stores on special values:
 * NaN stays NaN through relu, negatives and -inf become 0, +inf stays;
 * the bits of the unfused add and relu kernels, in a blocked product
 * and a few-row one. */
static void
epilogue_special(void)
{
	static const float sp[] = {NAN, -INFINITY, INFINITY, -1.0f, 0.0f, 2.0f};
	int64_t dims[][3] = {{30, 40, 5}, {1, 70, 3}};

	for (int d = 0; d < countof(dims); d++) {
		int64_t m = dims[d][0], n = dims[d][1], k = dims[d][2];
		float *a = t_randf(m * k), *b = t_randf(k * n), *r = t_randf(m * n);
		float *y = t_randf(m * n), *want = t_randf(m * n);
		struct kiln_epilogue e = {KILN_ACT_RELU, 0, 0, r};
		char what[80];

		for (int64_t i = 0; i < m * k; i += 3)
			a[i] = sp[i % countof(sp)];
		for (int64_t i = 0; i < m * n; i += 5)
			r[i] = sp[(i / 5) % countof(sp)];
		kiln_gemm_f32(want, a, b, NULL, m, n, k, 0, 0, 1.0f, 0.0f, 0, 0);
		unfused(want, m * n, &e);
		kiln_gemm_ep_f32(y, a, b, NULL, m, n, k, 0, 0, 1.0f, 0.0f, 0, 0, &e);
		snprintf(what, sizeof what, "gemm relu+residual on NaN, inf [%lld,"
		         "%lld,%lld]", (long long)m, (long long)n, (long long)k);
		t_expect(!memcmp(y, want, (size_t)(m * n) * sizeof *y), what);
		free(a), free(b), free(r), free(y), free(want);
	}
}

static void
conv_forward(const struct conv_case *t, const float *x, const float *w,
             const float *b, const struct kiln_conv2d *p)
{
	int64_t nx = p->n * p->c * p->h * p->w, nw = p->oc * (p->c / p->group) *
	             p->kh * p->kw, ny = p->n * p->oc * p->oh * p->ow;
	float *y = t_randf(ny), *x2 = shifted(x, nx, 1), *w2 = shifted(w, nw, 3);
	float *y2 = shifted(y, ny, 2);
	double *ref = t_zerod(ny), *ss = t_zerod(ny);
	char what[240];

	ref_conv(ref, ss, x, w, b, p);
	kiln_conv2d_f32(y, x, w, b, p);
	describe_conv(what, sizeof what, "conv2d", t);
	check(what, y, ref, ss, nw / p->oc, ny);
	kiln_conv2d_f32(y2, x2, w2, b, p);
	strncat(what, " moved", sizeof what - strlen(what) - 1);
	t_expect(!memcmp(y, y2, (size_t)ny * sizeof *y), what);
	/* with an epilogue: the bits of conv2d, then add and activation */
	float *r = t_randf(ny);
	struct kiln_epilogue e = next_epilogue(r);
	unfused(y, ny, &e);
	kiln_conv2d_ep_f32(y2, x, w, b, p, &e);
	strncat(what, " epilogue", sizeof what - strlen(what) - 1);
	t_expect(!memcmp(y, y2, (size_t)ny * sizeof *y), what);
	/* weights in panels: the same elements, reordered, and the same bits
	 * as the plain weights, with and without the epilogue */
	float *wp = t_randf(nw), *y3 = t_randf(ny);
	kiln_conv2d_pack_weights(wp, w, p);
	t_expect(same_elements(wp, w, nw), "pack_weights permutes");
	kiln_conv2d_pk_ep_f32(y3, x, wp, b, p, &e);
	strncat(what, " packed", sizeof what - strlen(what) - 1);
	t_expect(!memcmp(y3, y2, (size_t)ny * sizeof *y), what);
	kiln_conv2d_f32(y2, x, w, b, p);
	kiln_conv2d_pk_f32(y3, x, wp, b, p);
	t_expect(!memcmp(y3, y2, (size_t)ny * sizeof *y), what);
	free(wp), free(y3);
	free(r);
	free(y), free(x2 - 1), free(w2 - 3), free(y2 - 2), free(ref), free(ss);
}

static void
conv_grad_w(const struct conv_case *t, const float *x, const float *dy,
            const struct kiln_conv2d *p)
{
	int64_t nw = p->oc * (p->c / p->group) * p->kh * p->kw;
	float *dw = t_randf(nw);
	double *ref = t_zerod(nw), *ss = t_zerod(nw);
	char what[240];

	ref_grad_w(ref, ss, x, dy, p);
	kiln_conv2d_grad_w_f32(dw, x, dy, p);
	describe_conv(what, sizeof what, "conv2d_grad_w", t);
	check(what, dw, ref, ss, p->n * p->oh * p->ow, nw);
	free(dw), free(ref), free(ss);
}

/* The transposed convolution that is conv2d's input gradient: dx =
 * conv2d_transpose(dy, w), the forward shapes swapped. */
static void
conv_transpose(const struct conv_case *t, const float *dy, const float *w,
               const float *b, const struct kiln_conv2d *p)
{
	struct kiln_conv2d q = *p;
	int64_t nx;
	float *dx;
	double *ref, *ss;
	char what[240];

	q.c = p->oc, q.oc = p->c, q.h = p->oh, q.w = p->ow, q.oh = p->h;
	q.ow = p->w;
	nx = q.n * q.oc * q.oh * q.ow;
	dx = t_randf(nx), ref = t_zerod(nx), ss = t_zerod(nx);
	ref_convt(ref, ss, dy, w, b, &q);
	kiln_conv2d_transpose_f32(dx, dy, w, b, &q);
	describe_conv(what, sizeof what, "conv2d_transpose of", t);
	check(what, dx, ref, ss, q.c / q.group * q.kh * q.kw, nx);
	free(dx), free(ref), free(ss);
}

static void
conv_case(const struct conv_case *t)
{
	struct kiln_conv2d p = conv_params(t);
	int64_t nx = p.n * p.c * p.h * p.w, ny = p.n * p.oc * p.oh * p.ow;
	int64_t nw = p.oc * (p.c / p.group) * p.kh * p.kw;
	float *x = t_randf(nx), *w = t_randf(nw), *dy = t_randf(ny);
	float *b = t->bias ? t_randf(p.oc) : NULL;
	float *bt = t->bias ? t_randf(p.c) : NULL;

	conv_forward(t, x, w, b, &p);
	conv_grad_w(t, x, dy, &p);
	conv_transpose(t, dy, w, bt, &p);
	free(x), free(w), free(dy), free(b), free(bt);
}

static void
test_conv(void)
{
	/* n c h w oc kh kw sh sw pt pb pl pr dh dw group bias */
	static const struct conv_case cases[] = {
		{2, 3, 7, 5, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1},  /* odd */
		{1, 2, 9, 1, 3, 3, 1, 1, 1, 1, 1, 0, 0, 1, 1, 1, 1},  /* 1 wide */
		{2, 2, 1, 11, 3, 1, 3, 1, 2, 0, 0, 1, 1, 1, 1, 1, 0}, /* 1 high */
		{1, 4, 11, 13, 5, 3, 3, 2, 3, 1, 0, 2, 1, 1, 1, 1, 1}, /* strides */
		{1, 3, 14, 13, 4, 3, 3, 3, 2, 0, 2, 1, 1, 1, 1, 1, 0}, /* strides */
		{1, 3, 12, 10, 4, 3, 3, 1, 1, 2, 2, 2, 2, 2, 2, 1, 1}, /* dilation */
		{1, 2, 13, 12, 3, 3, 5, 2, 1, 1, 2, 4, 0, 2, 2, 1, 1}, /* dil+str */
		{2, 6, 9, 8, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 2, 1},  /* groups */
		{1, 8, 10, 9, 8, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 8, 1}, /* depthwise */
		{1, 4, 7, 7, 8, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 4, 0},  /* dw x2 */
		{1, 2, 9, 8, 30, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 2, 1}, /* dw x15 */
		/* depthwise by rows: stride 1, dilation, asymmetric pads,
		 * a kernel wider than the input */
		{2, 6, 9, 37, 6, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 6, 1},
		{1, 4, 12, 10, 4, 3, 3, 1, 1, 2, 0, 1, 2, 2, 2, 4, 0},
		{1, 3, 5, 2, 3, 3, 5, 1, 1, 1, 1, 2, 2, 1, 1, 3, 1},
		/* depthwise through the padded copy: blocks of rows with
		 * strides 1 and 2, stride 3 with dilation, 5x5 of stride 2;
		 * and the rows path again: a row wider than the copy, more
		 * taps than it takes */
		{1, 3, 70, 60, 3, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 3, 1},
		{1, 2, 150, 131, 2, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 2, 0},
		{1, 2, 20, 23, 2, 3, 3, 3, 3, 1, 2, 2, 1, 2, 2, 2, 1},
		{1, 4, 17, 16, 4, 5, 5, 2, 2, 2, 2, 2, 2, 1, 1, 4, 1},
		{1, 2, 3, 8300, 2, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 2, 1},
		{1, 2, 12, 12, 2, 9, 9, 1, 1, 4, 4, 4, 4, 1, 1, 2, 1},
		{1, 3, 8, 9, 5, 3, 3, 1, 1, 0, 2, 2, 0, 1, 1, 1, 1},  /* asym */
		{2, 16, 7, 9, 24, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1}, /* 1x1 */
		{1, 6, 7, 9, 4, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 2, 0},  /* 1x1 g2 */
		{1, 5, 8, 7, 6, 1, 1, 2, 2, 0, 0, 0, 0, 1, 1, 1, 1},  /* 1x1 s2 */
		{1, 5, 6, 7, 3, 1, 1, 1, 1, 0, 1, 0, 2, 1, 1, 1, 1},  /* 1x1 pad */
		{1, 3, 12, 11, 6, 5, 5, 1, 1, 2, 2, 2, 2, 1, 1, 1, 1}, /* 5x5 */
		{1, 2, 4, 4, 2, 5, 5, 1, 1, 0, 3, 3, 0, 1, 1, 1, 1},  /* 5x5 > in */
		{1, 1, 3, 3, 2, 3, 3, 1, 1, 3, 3, 3, 3, 1, 1, 1, 1},  /* all pad */
		{1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1},
		/* the im2col matrix in pieces: of columns (K = 288, 256
		 * positions), of rows (K = 720), of both (K = 36000) */
		{1, 32, 16, 16, 5, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1},
		{2, 80, 12, 12, 6, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1},
		{1, 64, 20, 17, 4, 3, 3, 2, 1, 1, 0, 1, 1, 1, 1, 2, 1},
		{1, 4000, 5, 5, 2, 3, 3, 1, 1, 0, 0, 0, 0, 1, 1, 1, 0},
		{1, 2, 40, 40, 3, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1},
		/* weight panels (KILN_CONV_PANEL 12 rows): several, a short
		 * last one, per group, with row pieces of the im2col matrix */
		{1, 8, 9, 9, 30, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 2, 1},
		{2, 16, 6, 7, 64, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1},
		{1, 600, 5, 5, 26, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0},
		/* stride 1 with 16 or more channels a group: a product per
		 * tap; groups with dilation and asymmetric pads, output
		 * channels in parts, a 1x5 kernel wider than the input */
		{1, 32, 9, 11, 24, 3, 3, 1, 1, 2, 0, 1, 2, 2, 2, 2, 1},
		{1, 16, 20, 58, 300, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1},
		{1, 17, 5, 3, 13, 1, 5, 1, 1, 0, 0, 2, 2, 1, 1, 1, 0},
		{2, 16, 30, 30, 8, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1},
		/* ... the taps as segments of one product: more of them than
		 * a product takes (81 > KILN_GEMM_MAXSEG), with 3 output
		 * channels (plain weights read in place); a short last
		 * panel */
		{1, 16, 14, 14, 3, 9, 9, 1, 1, 4, 4, 4, 4, 1, 1, 1, 1},
		{1, 20, 12, 12, 14, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0},
		/* few positions, many channels: packed, the product runs
		 * along the channels (panels of KILN_CONV_CPANEL): 1x1 over
		 * 7x7, two images; 3x3 of stride 2 to 7x7 with a last panel
		 * of 8 channels; 5x5 positions; and 14x14, whose im2col
		 * matrix comes in pieces of columns, stays on that path */
		{2, 160, 7, 7, 96, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1},
		{1, 12, 14, 13, 168, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 1, 0},
		{1, 40, 5, 5, 32, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1},
		{1, 200, 14, 14, 64, 3, 3, 1, 1, 1, 1, 1, 1, 2, 2, 1, 1},
		/* the fashion_cnn layers, batch 2 */
		{2, 1, 28, 28, 32, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1},
		{2, 32, 14, 14, 64, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1},
	};

	for (int i = 0; i < countof(cases); i++)
		conv_case(&cases[i]);
}

/* Which convs the packed form computes along the channels: the panel
 * width kiln_conv2d_wpanel() gives pack_weights. */
static void
test_wpanel(void)
{
	/* n c h w oc kh kw sh sw pt pb pl pr dh dw group bias; panel */
	static const struct {
		struct conv_case c;
		int panel;
	} cases[] = {
		/* ResNet-18's 7x7 layers and downsample, MobileNetV2's 1x1 */
		{{1, 512, 7, 7, 512, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1}, 32},
		{{1, 256, 14, 14, 512, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 1, 1}, 32},
		{{1, 256, 14, 14, 512, 1, 1, 2, 2, 0, 0, 0, 0, 1, 1, 1, 1}, 32},
		{{1, 160, 7, 7, 960, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1}, 32},
		{{1, 576, 14, 14, 96, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1}, 32},
		/* the cases above (and in test_threads) that take it */
		{{2, 160, 7, 7, 96, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1}, 32},
		{{1, 12, 14, 13, 168, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 1, 0}, 32},
		{{1, 40, 5, 5, 32, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1}, 32},
		{{1, 16, 7, 7, 512, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1}, 32},
		{{1, 64, 13, 13, 168, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 1, 1}, 32},
		/* positions fill the lanes (28x28), stride 1 over enough
		 * positions (by taps), too few channels, groups, one input
		 * channel, pieces of columns, too short a k for the
		 * transpose to pay (64) */
		{{1, 64, 14, 14, 384, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1}, 12},
		{{1, 64, 28, 28, 128, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1}, 12},
		{{1, 256, 14, 14, 256, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1}, 12},
		{{1, 160, 7, 7, 24, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1}, 12},
		{{1, 64, 7, 7, 64, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 2, 1}, 12},
		{{1, 1, 7, 7, 64, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1}, 12},
		{{1, 200, 14, 14, 64, 3, 3, 1, 1, 1, 1, 1, 1, 2, 2, 1, 1}, 12},
	};
	char what[240];

	for (int i = 0; i < countof(cases); i++) {
		struct kiln_conv2d p = conv_params(&cases[i].c);
		describe_conv(what, sizeof what, "wpanel of", &cases[i].c);
		t_expect(kiln_conv2d_wpanel(&p) == cases[i].panel, what);
	}
}

int
main(void)
{
	printf("gemm kernels: %s\n", kiln_gemm_isa_name());
	t_seed(42);
	test_gemm();
	gemm_beta0_nan();
	gemm_epilogue();
	epilogue_special();
	test_conv();
	test_wpanel();
	return t_report("gemm_conv");
}
