/* test_runtime.c: tests of the runtime kernels and of .npy I/O.
 *
 * Every kernel is compared with a naive reference written here in a
 * different way (double precision, explicit padding and transposes,
 * unravelled indices), on deterministic pseudo-random data and awkward
 * shapes.  A mismatch prints the first elements with OK/NOT OK and the max
 * abs/rel difference, llm.c style, and the exit status is non-zero.
 *
 *   test_runtime kernels          all kernels
 *   test_runtime npy DIR          .npy round trips and errors (files in DIR)
 *   test_runtime npy-write DIR    one file per dtype, for Inputs/npy_numpy.py
 *   test_runtime npy-read FILE T  loads FILE as type T (f32[2,3]), prints sums
 */
#define _POSIX_C_SOURCE 200809L

#include <dirent.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "kiln.h"
#include "testutil.h"

#define TOL 1e-5
#define countof(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* ---- gemm and matmul ------------------------------------------------- */

enum { C_NONE, C_SCALAR, C_ROW, C_COL, C_FULL };
static const char *const cform[] = {"none", "scalar", "row", "column", "full"};

/* Element (i,j) of c for each broadcast form; c is a scalar, a row [n],
 * a column [m,1] or the full [m,n]. */
static double
c_at(const float *c, int form, int64_t i, int64_t j, int64_t n)
{
	switch (form) {
	case C_SCALAR: return c[0];
	case C_ROW: return c[j];
	case C_COL: return c[i];
	case C_FULL: return c[i * n + j];
	}
	return 0;
}

static void
gemm_case(int64_t m, int64_t n, int64_t k, int ta, int tb, float alpha,
          float beta, int form)
{
	static const int64_t rs[] = {0, 0, 0, 1, -1}, cs[] = {0, 0, 1, 0, 1};
	float *a = t_randf(m * k), *b = t_randf(k * n), *c = t_randf(m * n);
	float *y = t_randf(m * n);
	double *A = t_zerod(m * k), *B = t_zerod(k * n), *ref = t_zerod(m * n);
	char what[160];

	/* op(a) and op(b) as explicit m x k and k x n matrices */
	for (int64_t i = 0; i < m; i++)
		for (int64_t p = 0; p < k; p++)
			A[i * k + p] = ta ? a[p * m + i] : a[i * k + p];
	for (int64_t p = 0; p < k; p++)
		for (int64_t j = 0; j < n; j++)
			B[p * n + j] = tb ? b[j * k + p] : b[p * n + j];
	for (int64_t i = 0; i < m; i++) {
		for (int64_t j = 0; j < n; j++) {
			double dot = 0;
			for (int64_t p = 0; p < k; p++)
				dot += A[i * k + p] * B[p * n + j];
			ref[i * n + j] = alpha * dot + beta * c_at(c, form, i, j, n);
		}
	}
	kiln_gemm_f32(y, a, b, form == C_NONE ? NULL : c, m, n, k, ta, tb,
	              alpha, beta, rs[form] < 0 ? n : rs[form], cs[form]);
	snprintf(what, sizeof what, "gemm m=%lld n=%lld k=%lld ta=%d tb=%d "
	         "alpha=%g beta=%g c=%s", (long long)m, (long long)n,
	         (long long)k, ta, tb, alpha, beta, cform[form]);
	t_close(what, y, ref, m * n, TOL, TOL);
	free(a), free(b), free(c), free(y), free(A), free(B), free(ref);
}

/* As in BLAS, beta == 0 means c is not read: NaNs there must not leak. */
static void
gemm_beta0_nan(void)
{
	float a[2] = {1, 2}, b[2] = {3, 4}, c[1] = {NAN}, y[1];
	double ref[1] = {11};

	kiln_gemm_f32(y, a, b, c, 1, 1, 2, 0, 0, 1.0f, 0.0f, 0, 0);
	t_close("gemm beta=0 ignores a NaN c", y, ref, 1, TOL, TOL);
}

static void
test_gemm(void)
{
	static const int64_t shapes[][3] = {
		{1, 1, 1}, {3, 5, 7}, {1, 7, 4}, {13, 1, 9}, {4, 6, 1}, {16, 17, 33},
	};
	static const float ab[][2] = {{1, 0}, {0.5f, 2}, {-1.5f, 1}};

	for (int s = 0; s < countof(shapes); s++)
		for (int t = 0; t < 4; t++)
			for (int q = 0; q < countof(ab); q++)
				for (int f = C_NONE; f <= C_FULL; f++)
					gemm_case(shapes[s][0], shapes[s][1], shapes[s][2],
					          t & 1, t >> 1, ab[q][0], ab[q][1], f);
	gemm_beta0_nan();
}

/* bcast_a/bcast_b: that operand is one matrix shared by every batch. */
static void
matmul_case(int64_t batch, int64_t m, int64_t n, int64_t k, int bcast_a,
            int bcast_b)
{
	int64_t na = bcast_a ? 1 : batch, nb = bcast_b ? 1 : batch;
	float *a = t_randf(na * m * k), *b = t_randf(nb * k * n);
	float *y = t_randf(batch * m * n);
	double *ref = t_zerod(batch * m * n);
	char what[128];

	for (int64_t p = 0; p < batch; p++) {
		const float *ap = a + p % na * m * k, *bp = b + p % nb * k * n;
		for (int64_t i = 0; i < m; i++)
			for (int64_t j = 0; j < n; j++)
				for (int64_t q = 0; q < k; q++)
					ref[(p * m + i) * n + j] +=
						(double)ap[i * k + q] * bp[q * n + j];
	}
	kiln_matmul_f32(y, a, b, batch, m, n, k, bcast_a ? 0 : m * k,
	                bcast_b ? 0 : k * n);
	snprintf(what, sizeof what, "matmul batch=%lld m=%lld n=%lld k=%lld "
	         "a_bs%s b_bs%s", (long long)batch, (long long)m, (long long)n,
	         (long long)k, bcast_a ? "=0" : "", bcast_b ? "=0" : "");
	t_close(what, y, ref, batch * m * n, TOL, TOL);
	free(a), free(b), free(y), free(ref);
}

static void
test_matmul(void)
{
	for (int f = 0; f < 4; f++) {
		matmul_case(1, 3, 4, 5, f & 1, f >> 1);
		matmul_case(3, 2, 5, 7, f & 1, f >> 1);
		matmul_case(4, 1, 1, 3, f & 1, f >> 1);
		matmul_case(2, 9, 1, 1, f & 1, f >> 1);
	}
}

/* ---- conv ------------------------------------------------------------ */

struct conv_case {
	int64_t n, c, h, w, oc, kh, kw, sh, sw, pt, pb, pl, pr, dh, dw, group;
	int bias;
};

/* Output size for the given total padding, as ONNX computes it. */
static int64_t
out_size(int64_t in, int64_t pads, int64_t k, int64_t d, int64_t s)
{
	return (in + pads - d * (k - 1) - 1) / s + 1;
}

/* x copied into the middle of a zero array of [n,c,hp,wp]. */
static double *
zero_pad(const float *x, int64_t n, int64_t c, int64_t h, int64_t w,
         int64_t pt, int64_t pl, int64_t hp, int64_t wp)
{
	double *xp = t_zerod(n * c * hp * wp);

	for (int64_t b = 0; b < n * c; b++)
		for (int64_t i = 0; i < h; i++)
			for (int64_t j = 0; j < w; j++)
				xp[(b * hp + pt + i) * wp + pl + j] = x[(b * h + i) * w + j];
	return xp;
}

static void
conv_ref(double *ref, const double *xp, const float *w, const float *b,
         const struct conv_case *t, int64_t oh, int64_t ow)
{
	int64_t hp = t->h + t->pt + t->pb, wp = t->w + t->pl + t->pr;
	int64_t cg = t->c / t->group, og = t->oc / t->group;

	for (int64_t n = 0; n < t->n; n++)
	for (int64_t o = 0; o < t->oc; o++)
	for (int64_t i = 0; i < oh; i++)
	for (int64_t j = 0; j < ow; j++) {
		double s = b ? b[o] : 0;
		for (int64_t q = 0; q < cg; q++)
		for (int64_t u = 0; u < t->kh; u++)
		for (int64_t v = 0; v < t->kw; v++) {
			int64_t ch = o / og * cg + q;
			int64_t r = i * t->sh + u * t->dh, col = j * t->sw + v * t->dw;
			s += xp[((n * t->c + ch) * hp + r) * wp + col] *
			     w[((o * cg + q) * t->kh + u) * t->kw + v];
		}
		ref[((n * t->oc + o) * oh + i) * ow + j] = s;
	}
}

static void
conv_case(const struct conv_case *t)
{
	int64_t oh = out_size(t->h, t->pt + t->pb, t->kh, t->dh, t->sh);
	int64_t ow = out_size(t->w, t->pl + t->pr, t->kw, t->dw, t->sw);
	int64_t ny = t->n * t->oc * oh * ow;
	float *x = t_randf(t->n * t->c * t->h * t->w);
	float *w = t_randf(t->oc * (t->c / t->group) * t->kh * t->kw);
	float *b = t->bias ? t_randf(t->oc) : NULL, *y = t_randf(ny);
	double *xp = zero_pad(x, t->n, t->c, t->h, t->w, t->pt, t->pl,
	                      t->h + t->pt + t->pb, t->w + t->pl + t->pr);
	double *ref = t_zerod(ny);
	struct kiln_conv2d p = {
		.n = t->n, .c = t->c, .h = t->h, .w = t->w, .oc = t->oc,
		.kh = t->kh, .kw = t->kw, .oh = oh, .ow = ow, .sh = t->sh,
		.sw = t->sw, .pt = t->pt, .pl = t->pl, .dh = t->dh, .dw = t->dw,
		.group = t->group,
	};
	char what[200];

	conv_ref(ref, xp, w, b, t, oh, ow);
	kiln_conv2d_f32(y, x, w, b, &p);
	snprintf(what, sizeof what, "conv x[%lld,%lld,%lld,%lld] w[%lld,%lld,"
	         "%lld,%lld] stride %lldx%lld pads t%lld b%lld l%lld r%lld "
	         "dilation %lldx%lld group %lld%s", (long long)t->n,
	         (long long)t->c, (long long)t->h, (long long)t->w,
	         (long long)t->oc, (long long)(t->c / t->group),
	         (long long)t->kh, (long long)t->kw, (long long)t->sh,
	         (long long)t->sw, (long long)t->pt, (long long)t->pb,
	         (long long)t->pl, (long long)t->pr, (long long)t->dh,
	         (long long)t->dw, (long long)t->group, t->bias ? " bias" : "");
	t_close(what, y, ref, ny, TOL, TOL);
	free(x), free(w), free(b), free(y), free(xp), free(ref);
}

static void
test_conv(void)
{
	/* n c h w oc kh kw sh sw pt pb pl pr dh dw group bias */
	static const struct conv_case cases[] = {
		{1, 1, 5, 5, 1, 3, 3, 1, 1, 0, 0, 0, 0, 1, 1, 1, 0},
		{2, 3, 6, 7, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1},
		{1, 2, 7, 6, 3, 3, 2, 2, 2, 1, 2, 0, 1, 1, 1, 1, 1}, /* asym */
		{1, 2, 8, 9, 2, 3, 3, 3, 3, 1, 1, 2, 0, 1, 1, 1, 1}, /* floor */
		{1, 3, 9, 9, 2, 3, 3, 1, 1, 2, 2, 2, 2, 2, 2, 1, 1}, /* dilation */
		{2, 4, 7, 8, 6, 3, 3, 2, 1, 1, 1, 0, 0, 2, 1, 2, 1}, /* groups */
		{1, 3, 5, 5, 3, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 3, 1}, /* depthwise */
		{1, 3, 6, 5, 6, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 3, 0}, /* dw x2 */
		{1, 4, 6, 6, 4, 3, 3, 1, 1, 0, 2, 2, 0, 1, 1, 4, 1}, /* dw asym */
		{1, 2, 1, 9, 3, 1, 3, 1, 1, 0, 0, 1, 1, 1, 1, 1, 1}, /* 1 high */
		{1, 1, 9, 1, 2, 3, 1, 2, 1, 1, 0, 0, 0, 1, 1, 1, 1}, /* 1 wide */
		{2, 5, 4, 4, 3, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1}, /* 1x1 */
		{1, 2, 2, 2, 2, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1}, /* k > in */
		{1, 1, 3, 3, 1, 3, 3, 1, 1, 3, 3, 3, 3, 1, 1, 1, 1}, /* all pad */
		{1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1},
		{1, 6, 5, 7, 4, 2, 3, 2, 3, 0, 1, 2, 1, 2, 2, 2, 1}, /* mixed */
		{3, 8, 11, 13, 8, 5, 3, 2, 3, 2, 1, 1, 2, 1, 2, 4, 1},
	};

	for (int i = 0; i < countof(cases); i++)
		conv_case(&cases[i]);
}

/* ---- pooling --------------------------------------------------------- */

struct pool_case {
	int64_t n, c, h, w, kh, kw, sh, sw, pt, pb, pl, pr, dh, dw;
};

/* Reference pooling over an explicitly padded copy; mask marks the taps
 * inside the input.  avg: 0 max, 1 average, 2 average counting pads. */
static void
pool_ref(double *ref, const double *xp, const double *mask,
         const struct pool_case *t, int64_t oh, int64_t ow, int avg)
{
	int64_t hp = t->h + t->pt + t->pb, wp = t->w + t->pl + t->pr;

	for (int64_t b = 0; b < t->n * t->c; b++)
	for (int64_t i = 0; i < oh; i++)
	for (int64_t j = 0; j < ow; j++) {
		double mx = -INFINITY, sum = 0, cnt = 0;
		for (int64_t u = 0; u < t->kh; u++)
		for (int64_t v = 0; v < t->kw; v++) {
			int64_t at = (b * hp + i * t->sh + u * t->dh) * wp +
			             j * t->sw + v * t->dw;
			if (mask[at] != 0 && xp[at] > mx)
				mx = xp[at];
			sum += xp[at];
			cnt += mask[at];
		}
		if (avg == 2)
			cnt = (double)(t->kh * t->kw);
		ref[(b * oh + i) * ow + j] = !avg ? mx : cnt ? sum / cnt : 0;
	}
}

static void
pool_case(const struct pool_case *t, int avg)
{
	int64_t oh = out_size(t->h, t->pt + t->pb, t->kh, t->dh, t->sh);
	int64_t ow = out_size(t->w, t->pl + t->pr, t->kw, t->dw, t->sw);
	int64_t nx = t->n * t->c * t->h * t->w, ny = t->n * t->c * oh * ow;
	int64_t hp = t->h + t->pt + t->pb, wp = t->w + t->pl + t->pr;
	float *x = t_randf(nx), *ones = t_alloc((size_t)nx * sizeof *ones);
	float *y = t_randf(ny);
	double *xp, *mask, *ref = t_zerod(ny);
	struct kiln_pool2d p = {
		.n = t->n, .c = t->c, .h = t->h, .w = t->w, .oh = oh, .ow = ow,
		.kh = t->kh, .kw = t->kw, .sh = t->sh, .sw = t->sw, .pt = t->pt,
		.pl = t->pl, .dh = t->dh, .dw = t->dw, .count_include_pad = avg == 2,
	};
	char what[200];

	for (int64_t i = 0; i < nx; i++)
		ones[i] = 1;
	xp = zero_pad(x, t->n, t->c, t->h, t->w, t->pt, t->pl, hp, wp);
	mask = zero_pad(ones, t->n, t->c, t->h, t->w, t->pt, t->pl, hp, wp);
	pool_ref(ref, xp, mask, t, oh, ow, avg);
	if (avg)
		kiln_avgpool2d_f32(y, x, &p);
	else
		kiln_maxpool2d_f32(y, x, &p);
	snprintf(what, sizeof what, "%s x[%lld,%lld,%lld,%lld] k %lldx%lld "
	         "stride %lldx%lld pads t%lld b%lld l%lld r%lld dilation "
	         "%lldx%lld", avg == 0 ? "maxpool" : avg == 1 ? "avgpool" :
	         "avgpool count_include_pad", (long long)t->n, (long long)t->c,
	         (long long)t->h, (long long)t->w, (long long)t->kh,
	         (long long)t->kw, (long long)t->sh, (long long)t->sw,
	         (long long)t->pt, (long long)t->pb, (long long)t->pl,
	         (long long)t->pr, (long long)t->dh, (long long)t->dw);
	t_close(what, y, ref, ny, TOL, TOL);
	/* The 2-D kernels run along rows, the 3-D ones window by window: a
	 * depth of 1 must give the same bits, special values included. */
	static const float sp[] = {NAN, -INFINITY, INFINITY, -0.0f, 0.0f};
	struct kiln_pool3d q = {p, 1, 1, 1, 1, 0, 1};
	float *y3 = t_randf(ny);
	for (int64_t i = 0; i < nx; i++)
		x[i] = i % 4 ? sp[(i * 7 / 3) % 5] : x[i];
	if (avg) {
		kiln_avgpool2d_f32(y, x, &p);
		kiln_avgpool3d_f32(y3, x, &q);
	} else {
		kiln_maxpool2d_f32(y, x, &p);
		kiln_maxpool3d_f32(y3, x, &q);
	}
	strncat(what, " = 3-D, special values", sizeof what - strlen(what) - 1);
	t_expect(!memcmp(y, y3, (size_t)ny * sizeof *y), what);
	free(y3);
	free(x), free(ones), free(y), free(xp), free(mask), free(ref);
}

/* kiln_maxpool2d_indices_f32 against a naive argmax: the input holds
 * small integers so that windows have ties (the first in window order
 * wins); positions are row-major (col_major 0) or column-major per plane,
 * offset by the plane.  A window wholly in the padding gives -1. */
static void
pool_indices_case(const struct pool_case *t, int col_major)
{
	int64_t oh = out_size(t->h, t->pt + t->pb, t->kh, t->dh, t->sh);
	int64_t ow = out_size(t->w, t->pl + t->pr, t->kw, t->dw, t->sw);
	int64_t nx = t->n * t->c * t->h * t->w, ny = t->n * t->c * oh * ow;
	float *x = t_alloc((size_t)nx * sizeof *x);
	int64_t *y = t_alloc((size_t)ny * sizeof *y);
	struct kiln_pool2d p = {
		.n = t->n, .c = t->c, .h = t->h, .w = t->w, .oh = oh, .ow = ow,
		.kh = t->kh, .kw = t->kw, .sh = t->sh, .sw = t->sw, .pt = t->pt,
		.pl = t->pl, .dh = t->dh, .dw = t->dw,
	};
	int64_t bad = 0;

	for (int64_t i = 0; i < nx; i++)
		x[i] = (float)(int)(t_frand() * 3);     /* -2 .. 2 */
	kiln_maxpool2d_indices_f32(y, x, &p, col_major);
	for (int64_t b = 0; b < t->n * t->c; b++)
	for (int64_t i = 0; i < oh; i++)
	for (int64_t j = 0; j < ow; j++) {
		int64_t want = -1;
		float mx = 0;
		for (int64_t u = 0; u < t->kh; u++)
		for (int64_t v = 0; v < t->kw; v++) {
			int64_t ih = i * t->sh - t->pt + u * t->dh;
			int64_t iw = j * t->sw - t->pl + v * t->dw;
			if (ih < 0 || ih >= t->h || iw < 0 || iw >= t->w)
				continue;
			float xv = x[(b * t->h + ih) * t->w + iw];
			if (want < 0 || xv > mx) {
				mx = xv;
				want = b * t->h * t->w +
				       (col_major ? iw * t->h + ih : ih * t->w + iw);
			}
		}
		bad += y[(b * oh + i) * ow + j] != want;
	}
	char what[160];
	snprintf(what, sizeof what, "maxpool2d_indices x[%lld,%lld,%lld,%lld] "
	         "k %lldx%lld col_major %d: %lld wrong", (long long)t->n,
	         (long long)t->c, (long long)t->h, (long long)t->w,
	         (long long)t->kh, (long long)t->kw, col_major, (long long)bad);
	t_expect(bad == 0, what);
	free(x), free(y);
}

static void
test_pool(void)
{
	/* n c h w kh kw sh sw pt pb pl pr dh dw */
	static const struct pool_case cases[] = {
		{1, 1, 4, 4, 2, 2, 2, 2, 0, 0, 0, 0, 1, 1},
		{2, 3, 5, 5, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1},
		{1, 2, 7, 6, 3, 2, 2, 3, 1, 2, 0, 1, 1, 1}, /* asym */
		{1, 2, 8, 9, 3, 3, 3, 3, 1, 1, 2, 0, 1, 1}, /* floor */
		{1, 1, 6, 7, 3, 3, 1, 1, 1, 1, 1, 1, 2, 2}, /* dilation */
		{1, 2, 9, 8, 2, 3, 2, 1, 1, 0, 2, 1, 3, 2}, /* dilation asym */
		{1, 2, 1, 8, 1, 3, 1, 2, 0, 0, 1, 1, 1, 1}, /* 1 high */
		{1, 1, 8, 1, 3, 1, 3, 1, 1, 1, 0, 0, 1, 1}, /* 1 wide */
		{1, 1, 3, 3, 3, 3, 1, 1, 3, 3, 3, 3, 1, 1}, /* all pad */
		{1, 2, 5, 5, 5, 5, 1, 1, 0, 0, 0, 0, 1, 1}, /* global */
		{1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1},
		/* 2x2 of stride 2 in one pass: odd sizes (floor), many
		 * planes; with a pad, the general path */
		{1, 2, 7, 9, 2, 2, 2, 2, 0, 0, 0, 0, 1, 1},
		{2, 3, 28, 28, 2, 2, 2, 2, 0, 0, 0, 0, 1, 1},
		{1, 2, 5, 5, 2, 2, 2, 2, 0, 1, 0, 1, 1, 1},
		/* the others through the stride-phase copy: blocks of rows
		 * (3 of them), stride 3 with dilation; and the rows path
		 * again: rows wider than the copy, more taps than it takes */
		{1, 2, 150, 131, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1},
		{1, 2, 20, 23, 3, 3, 3, 3, 1, 2, 2, 1, 2, 2},
		{1, 1, 3, 9000, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1},
		{1, 1, 12, 12, 9, 9, 1, 1, 4, 4, 4, 4, 1, 1},
	};

	for (int i = 0; i < countof(cases); i++) {
		pool_case(&cases[i], 0);
		pool_case(&cases[i], 1);
		pool_case(&cases[i], 2);
		pool_indices_case(&cases[i], 0);
		pool_indices_case(&cases[i], 1);
	}
}

/* ---- broadcasting binary ops ----------------------------------------- */

struct shape {
	int rank;
	int64_t d[KILN_MAXRANK];
};

static int64_t
numel(const struct shape *s)
{
	int64_t n = 1;

	for (int i = 0; i < s->rank; i++)
		n *= s->d[i];
	return n;
}

/* Dimension i of s with s aligned to the right of a rank-r shape. */
static int64_t
dim_r(const struct shape *s, int r, int i)
{
	int k = i - (r - s->rank);

	return k < 0 ? 1 : s->d[k];
}

/* Kernel strides of s seen as a rank-r operand: 0 where it broadcasts. */
static void
bcast_strides(const struct shape *s, int r, int64_t *st)
{
	int64_t step = 1;

	for (int i = r - 1; i >= 0; i--) {
		int64_t d = dim_r(s, r, i);
		st[i] = d == 1 ? 0 : step;
		step *= d;
	}
}

/* Offset in s of the element that y's flat index f reads: unravel f over
 * y's dims, reduce each index modulo s's dim, ravel over s's dims. */
static int64_t
bcast_offset(int64_t f, const struct shape *y, const struct shape *s)
{
	int64_t off = 0, step = 1;

	for (int i = y->rank - 1; i >= 0; i--) {
		int64_t idx = f % y->d[i], ds = dim_r(s, y->rank, i);
		f /= y->d[i];
		off += idx % ds * step;
		step *= ds;
	}
	return off;
}

static double
apply(int op, double a, double b)
{
	switch (op) {
	case 0: return a + b;
	case 1: return a - b;
	case 2: return a * b;
	}
	return a / b;
}

typedef void binary_fn(float *, const float *, const float *, int,
                       const int64_t *, const int64_t *, const int64_t *);
static binary_fn *const binary_fns[] = {
	kiln_add_f32, kiln_sub_f32, kiln_mul_f32, kiln_div_f32,
};

static void
binary_case(const struct shape *sa, const struct shape *sb, int op)
{
	static const char *const name[] = {"add", "sub", "mul", "div"};
	struct shape sy = {.rank = sa->rank > sb->rank ? sa->rank : sb->rank};
	int64_t as[KILN_MAXRANK], bs[KILN_MAXRANK], ny;
	float *a, *b, *y;
	double *ref;
	char what[200];
	int k;

	for (int i = 0; i < sy.rank; i++) {
		int64_t da = dim_r(sa, sy.rank, i), db = dim_r(sb, sy.rank, i);
		if (da != db && da != 1 && db != 1) {
			fprintf(stderr, "test_runtime: bad broadcast case\n");
			exit(1);
		}
		sy.d[i] = da == 1 ? db : da;
	}
	ny = numel(&sy);
	a = t_randf(numel(sa)), b = t_randf(numel(sb)), y = t_randf(ny);
	for (int64_t i = 0; op == 3 && i < numel(sb); i++)
		b[i] = b[i] < 0 ? b[i] - 0.5f : b[i] + 0.5f;
	ref = t_zerod(ny);
	for (int64_t f = 0; f < ny; f++)
		ref[f] = apply(op, a[bcast_offset(f, &sy, sa)],
		               b[bcast_offset(f, &sy, sb)]);
	bcast_strides(sa, sy.rank, as);
	bcast_strides(sb, sy.rank, bs);
	binary_fns[op](y, a, b, sy.rank, sy.d, as, bs);
	k = snprintf(what, sizeof what, "%s [", name[op]);
	for (int i = 0; i < sa->rank; i++)
		k += snprintf(what + k, sizeof what - k, "%s%lld", i ? "," : "",
		              (long long)sa->d[i]);
	k += snprintf(what + k, sizeof what - k, "] [");
	for (int i = 0; i < sb->rank; i++)
		k += snprintf(what + k, sizeof what - k, "%s%lld", i ? "," : "",
		              (long long)sb->d[i]);
	snprintf(what + k, sizeof what - k, "]");
	t_close(what, y, ref, ny, TOL, TOL);
	free(a), free(b), free(y), free(ref);
}

/* y = a + b with y == a, the in-place form a planner may produce. */
static void
binary_inplace(void)
{
	int64_t dim[2] = {3, 5}, st[2] = {5, 1}, bst[2] = {0, 1};
	float *a = t_randf(15), *b = t_randf(5);
	double ref[15];

	for (int i = 0; i < 15; i++)
		ref[i] = (double)a[i] + b[i % 5];
	kiln_add_f32(a, a, b, 2, dim, st, bst);
	t_close("add in place, b broadcast", a, ref, 15, TOL, TOL);
	free(a), free(b);
}

static void
test_binary(void)
{
	static const struct shape cases[][2] = {
		{{0, {0}}, {0, {0}}},
		{{0, {0}}, {3, {2, 3, 4}}},
		{{3, {2, 3, 4}}, {0, {0}}},
		{{1, {5}}, {1, {1}}},
		{{1, {1}}, {1, {5}}},
		{{1, {1}}, {1, {1}}},
		{{2, {2, 3}}, {1, {3}}},
		{{2, {4, 1}}, {2, {1, 5}}},
		{{3, {2, 1, 4}}, {2, {3, 1}}},
		{{3, {2, 3, 1}}, {3, {2, 3, 4}}},
		{{4, {1, 3, 1, 5}}, {4, {2, 1, 4, 1}}},
		{{4, {2, 3, 4, 5}}, {4, {2, 3, 4, 5}}},
		{{4, {2, 3, 4, 5}}, {1, {5}}},
		{{4, {2, 3, 4, 5}}, {2, {4, 1}}},
		{{4, {1, 1, 1, 1}}, {4, {1, 1, 1, 1}}},
		{{4, {3, 1, 1, 2}}, {3, {1, 7, 1}}},
		{{1, {7}}, {4, {2, 1, 3, 1}}},
		{{2, {0, 3}}, {1, {3}}},
		{{6, {2, 1, 3, 1, 2, 1}}, {5, {2, 1, 3, 1, 1}}},
	};

	for (int i = 0; i < countof(cases); i++)
		for (int op = 0; op < 4; op++)
			binary_case(&cases[i][0], &cases[i][1], op);
	binary_inplace();
}

/* ---- unary ops, softmax, copy ---------------------------------------- */

static double
ref_unary(int op, double x)
{
	switch (op) {
	case 0: return x > 0 ? x : 0;
	case 1: return 1 / (1 + exp(-x));
	}
	return tanh(x);
}

typedef void unary_fn(float *, const float *, int64_t);

static void
test_unary(void)
{
	static const char *const name[] = {"relu", "sigmoid", "tanh"};
	static unary_fn *const fn[] = {kiln_relu_f32, kiln_sigmoid_f32,
	                               kiln_tanh_f32};
	static const float special[] = {
		0.0f, -0.0f, 1e-8f, -1e-8f, 20, -20, 88, -88, 89, -89, 100, -100,
		1000, -1000, 1e30f, -1e30f, INFINITY, -INFINITY,
	};
	int64_t n = 100 + countof(special);
	float *x = t_randf(n), *y = t_alloc((size_t)n * sizeof *y);
	double *ref = t_zerod(n);
	char what[64];

	for (int64_t i = 0; i < n; i++)
		x[i] = i < countof(special) ? special[i] : x[i] * 10;
	for (int op = 0; op < 3; op++) {
		for (int64_t i = 0; i < n; i++)
			ref[i] = ref_unary(op, x[i]);
		fn[op](y, x, n);
		t_close(name[op], y, ref, n, TOL, TOL);
		memcpy(y, x, (size_t)n * sizeof *y);
		fn[op](y, y, n);
		snprintf(what, sizeof what, "%s in place", name[op]);
		t_close(what, y, ref, n, TOL, TOL);
	}
	free(x), free(y), free(ref);
}

/* Reference softmax along the middle axis via log-sum-exp in double. */
static void
softmax_ref(double *ref, const float *x, int64_t outer, int64_t len,
            int64_t inner)
{
	for (int64_t o = 0; o < outer; o++) {
		for (int64_t t = 0; t < inner; t++) {
			const float *v = x + o * len * inner + t;
			double m = -INFINITY, s = 0, lse;
			for (int64_t l = 0; l < len; l++)
				m = fmax(m, v[l * inner]);
			for (int64_t l = 0; l < len; l++)
				s += exp(v[l * inner] - m);
			lse = m + log(s);
			for (int64_t l = 0; l < len; l++)
				ref[(o * len + l) * inner + t] = exp(v[l * inner] - lse);
		}
	}
}

/* x: the data, or NULL for random values times scale. */
static void
softmax_case(const float *x0, int64_t outer, int64_t len, int64_t inner,
             float scale)
{
	int64_t n = outer * len * inner;
	float *x = t_randf(n), *y = t_randf(n);
	double *ref = t_zerod(n);
	char what[128];

	for (int64_t i = 0; i < n; i++)
		x[i] = x0 ? x0[i] : x[i] * scale;
	softmax_ref(ref, x, outer, len, inner);
	kiln_softmax_f32(y, x, outer, len, inner);
	snprintf(what, sizeof what, "softmax [%lld,%lld,%lld]%s",
	         (long long)outer, (long long)len, (long long)inner,
	         x0 ? " fixed values" : "");
	t_close(what, y, ref, n, TOL, TOL);
	kiln_softmax_f32(x, x, outer, len, inner);
	snprintf(what, sizeof what, "softmax [%lld,%lld,%lld] in place",
	         (long long)outer, (long long)len, (long long)inner);
	t_close(what, x, ref, n, TOL, TOL);
	free(x), free(y), free(ref);
}

static void
test_softmax(void)
{
	static const float big[] = {1000, -1000, 999, 0};
	static const float same[] = {-1000, -1000, -1000};
	/* [1,3,2]: columns (1000, 0, 1000) and (-1000, 1000, 0) */
	static const float cols[] = {1000, -1000, 0, 1000, 1000, 0};

	softmax_case(NULL, 2, 5, 1, 3);
	softmax_case(NULL, 3, 4, 3, 3);
	softmax_case(NULL, 1, 1, 1, 1);
	softmax_case(NULL, 1, 7, 5, 30);
	softmax_case(NULL, 4, 1, 2, 1);
	softmax_case(NULL, 2, 10, 1, 200);
	softmax_case(big, 1, 4, 1, 0);
	softmax_case(same, 1, 3, 1, 0);
	softmax_case(cols, 1, 3, 2, 0);
}

static void
test_copy(void)
{
	unsigned char a[37], b[37];

	for (int i = 0; i < 37; i++)
		a[i] = (unsigned char)(i * 7 + 1), b[i] = 0;
	kiln_copy(b, a, sizeof a);
	t_expect(!memcmp(a, b, sizeof a), "kiln_copy copies");
	kiln_copy(a, a, sizeof a);
	t_expect(a[36] == (unsigned char)(36 * 7 + 1), "kiln_copy y == x");
	kiln_copy(b, a, 0);
	kiln_copy(a + 1, a, 10);  /* overlapping: behaves as memmove */
	t_expect(a[1] == 1 && a[10] == 64, "kiln_copy overlapping");
}

static void
test_util(void)
{
	static const char *const names[] = {"f32", "f64", "i64", "i32", "i8",
	                                    "u8", "bool", "f16", "bf16", "i16",
	                                    "u16", "u32", "u64"};
	static const size_t sizes[] = {4, 8, 8, 4, 1, 1, 1, 2, 2, 2, 2, 4, 8};

	for (int t = 0; t < KILN_NDTYPE; t++) {
		t_expect(!strcmp(kiln_dtype_name((kiln_dtype)t), names[t]),
		         "kiln_dtype_name");
		t_expect(kiln_dtype_size((kiln_dtype)t) == sizes[t],
		         "kiln_dtype_size");
	}
	t_expect(!strcmp(kiln_dtype_name(KILN_NDTYPE), "?"), "bad dtype name");
	t_expect(kiln_dtype_size(KILN_NDTYPE) == 0, "bad dtype size");
	for (int s = KILN_OK; s <= KILN_ERR_RANGE; s++)
		for (int r = KILN_OK; r < s; r++)
			t_expect(strcmp(kiln_status_str((kiln_status)s),
			                kiln_status_str((kiln_status)r)) != 0,
			         "kiln_status_str distinct");
	t_expect(kiln_status_str((kiln_status)99) != NULL, "bad status string");
}

static int
run_kernels(void)
{
	test_util();
	test_gemm();
	test_matmul();
	test_conv();
	test_pool();
	test_binary();
	test_unary();
	test_softmax();
	test_copy();
	printf("worst error %.2g of the tolerance\n", t_worst);
	return t_report("kernels");
}

/* ---- .npy ------------------------------------------------------------ */

static const char *dir;  /* where the npy tests put their files */

static const char *
in_dir(const char *name)
{
	static char buf[2][4096];
	static int k;

	k ^= 1;
	snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
	return buf[k];
}

static void
write_file(const char *path, const void *data, size_t n)
{
	FILE *f = fopen(path, "wb");

	if (!f || fwrite(data, 1, n, f) != n || fclose(f)) {
		fprintf(stderr, "test_runtime: cannot write %s\n", path);
		exit(1);
	}
}

/* A .npy file of version major.minor with header dict text and nbytes of
 * data, the header padded to 64 bytes as NumPy does. */
static void
craft(const char *path, int major, int minor, const char *dict, size_t nbytes)
{
	size_t pre = major == 1 ? 10 : 12, hl = strlen(dict) + 1;
	unsigned char *b;

	while ((pre + hl) % 64)
		hl++;
	b = t_alloc(pre + hl + nbytes);
	memcpy(b, "\x93NUMPY", 6);
	b[6] = (unsigned char)major, b[7] = (unsigned char)minor;
	for (size_t i = 0; i < pre - 8; i++)
		b[8 + i] = (unsigned char)(hl >> (8 * i));
	memset(b + pre, ' ', hl);
	memcpy(b + pre, dict, strlen(dict));
	b[pre + hl - 1] = '\n';
	for (size_t i = 0; i < nbytes; i++)
		b[pre + hl + i] = (unsigned char)i;
	write_file(path, b, pre + hl + nbytes);
	free(b);
}

/* Loads path as f32 of shape (rank, dim) and expects status want and a
 * message that contains (or, when exact, equals) text. */
static void
expect_load(const char *path, kiln_dtype t, int rank, const int64_t *dim,
            kiln_status want, const char *text, bool exact)
{
	char msg[1024] = "", what[1200];
	static unsigned char buf[4096];
	kiln_status s = kiln_npy_load(path, "x", t, rank, dim, buf, msg,
	                              sizeof msg);
	bool ok = s == want && (want == KILN_OK ||
	          (exact ? !strcmp(msg, text) : strstr(msg, text) != NULL));

	snprintf(what, sizeof what, "npy load %s: want %s, '%s'; got %s, '%s'",
	         path, kiln_status_str(want), text, kiln_status_str(s), msg);
	t_expect(ok, what);
	if (ok && want != KILN_OK)
		printf("%s: %s\n", kiln_status_str(s), msg);
}

/* Random contents for a tensor of type t; bools are 0 or 1. */
static void
fill_bytes(unsigned char *p, kiln_dtype t, int64_t n)
{
	for (int64_t i = 0; i < n; i++)
		p[i] = (unsigned char)t_rand_u64();
	for (int64_t i = 0; t == KILN_BOOL && i < n; i++)
		p[i] &= 1;
}

static void
npy_roundtrip(kiln_dtype t, int rank, const int64_t *dim)
{
	int64_t n = (int64_t)kiln_dtype_size(t);
	unsigned char *src, *dst;
	struct kiln_npy_info info;
	const char *path = in_dir("rt.npy");
	char msg[512], what[600];
	struct stat st;
	kiln_status s;

	for (int i = 0; i < rank; i++)
		n *= dim[i];
	src = t_alloc((size_t)n), dst = t_alloc((size_t)n);
	fill_bytes(src, t, n);
	s = kiln_npy_save(path, t, rank, dim, src, msg, sizeof msg);
	if (!s)
		s = kiln_npy_info(path, &info, msg, sizeof msg);
	if (!s)
		s = kiln_npy_load(path, "x", t, rank, dim, dst, msg, sizeof msg);
	snprintf(what, sizeof what, "npy round trip %s rank %d: %s",
	         kiln_dtype_name(t), rank, s ? msg : "data differs");
	t_expect(!s && !memcmp(src, dst, (size_t)n), what);
	/* bf16 is written as its raw bits, '<u2', which reads back as u16 */
	t_expect(!s && info.dtype == (t == KILN_BF16 ? KILN_U16 : t) &&
	         info.rank == rank &&
	         !memcmp(info.dim, dim, (size_t)rank * sizeof *dim) &&
	         info.data_offset % 64 == 0 && !stat(path, &st) &&
	         st.st_size == info.data_offset + n, "npy info after save");
	free(src), free(dst);
}

static void
npy_roundtrips(void)
{
	static const struct shape shapes[] = {
		{0, {0}}, {1, {5}}, {2, {2, 3}}, {3, {3, 1, 4}}, {2, {0, 3}},
		{8, {1, 2, 1, 3, 1, 1, 2, 1}}, {2, {1, 784}},
	};

	for (int t = 0; t < KILN_NDTYPE; t++)
		for (int i = 0; i < countof(shapes); i++)
			npy_roundtrip((kiln_dtype)t, shapes[i].rank, shapes[i].d);
}

/* The header is the one NumPy writes, and no temporary file is left. */
static void
npy_header_text(void)
{
	static const char want[] = "{'descr': '<f4', 'fortran_order': False, "
	                           "'shape': (2, 3), }";
	int64_t dim[2] = {2, 3};
	float data[6] = {0};
	char buf[128] = "", msg[256];
	FILE *f;
	DIR *d;
	struct dirent *e;
	bool tmp = false;

	/* 10 + 59 + 1 bytes do not fit in 64, so the header fills 128 */
	kiln_npy_save(in_dir("hdr.npy"), KILN_F32, 2, dim, data, msg, sizeof msg);
	f = fopen(in_dir("hdr.npy"), "rb");
	t_expect(f && fread(buf, 1, 128, f) == 128, "npy read back header");
	if (f)
		fclose(f);
	t_expect(!memcmp(buf, "\x93NUMPY\x01\x00\x76\x00", 10) &&
	         !memcmp(buf + 10, want, strlen(want)) && buf[127] == '\n',
	         "npy header is NumPy's");
	if ((d = opendir(dir))) {
		while ((e = readdir(d)))
			tmp |= strstr(e->d_name, ".tmp") != NULL;
		closedir(d);
	}
	t_expect(!tmp, "npy save leaves no temporary file");
}

static void
npy_save_errors(void)
{
	int64_t dim[1] = {2}, bad[1] = {-1};
	float data[2] = {1, 2};
	char msg[512] = "", small[10];
	kiln_status s;

	s = kiln_npy_save(in_dir("no/such/dir/y.npy"), KILN_F32, 1, dim, data,
	                  msg, sizeof msg);
	t_expect(s == KILN_ERR_IO &&
	         strstr(msg, "no/such/dir/y.npy: cannot write"),
	         "npy save into a missing directory");
	s = kiln_npy_save(in_dir("neg.npy"), KILN_F32, 1, bad, data, msg,
	                  sizeof msg);
	t_expect(s == KILN_ERR_ARG, "npy save of a negative dim");
	s = kiln_npy_save(in_dir("x.npy"), KILN_NDTYPE, 1, dim, data, small,
	                  sizeof small);
	t_expect(s == KILN_ERR_ARG && strlen(small) == sizeof small - 1,
	         "npy message truncated to msglen");
	s = kiln_npy_save(in_dir("x.npy"), KILN_NDTYPE, 1, dim, data, NULL, 0);
	t_expect(s == KILN_ERR_ARG, "npy message buffer may be NULL");
}

/* One malformed or unsupported header: dict text, expected status and a
 * piece of the message. */
struct bad_header {
	int major, minor;
	const char *dict;
	kiln_status want;
	const char *text;
};

static void
npy_bad_headers(void)
{
	static const int64_t d23[2] = {2, 3};
	static const struct bad_header cases[] = {
		{1, 0, "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }",
		 KILN_ERR_UNSUPPORTED, "fortran_order True is not supported"},
		{1, 0, "{'descr': '>f4', 'fortran_order': False, 'shape': (2, 3), }",
		 KILN_ERR_UNSUPPORTED, "big-endian dtype '>f4' is not supported"},
		{1, 0, "{'descr': '<c8', 'fortran_order': False, 'shape': (2, 3), }",
		 KILN_ERR_UNSUPPORTED, "unsupported dtype '<c8'"},
		{1, 0, "{'descr': '<m8', 'fortran_order': False, 'shape': (2, 3), }",
		 KILN_ERR_UNSUPPORTED, "unsupported dtype '<m8'"},
		{1, 0, "{'descr': [('a', '<f4')], 'fortran_order': False, "
		 "'shape': (2, 3), }", KILN_ERR_UNSUPPORTED, "structured dtypes"},
		{4, 0, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }",
		 KILN_ERR_UNSUPPORTED, "version 4.0 is not supported"},
		{1, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }",
		 KILN_ERR_UNSUPPORTED, "version 1.1 is not supported"},
		{1, 0, "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 1, 1, "
		 "1, 1, 1, 1, 1, 6), }", KILN_ERR_UNSUPPORTED, "more than 8"},
		{1, 0, "{'descr': '<f4', 'shape': (2, 3), }", KILN_ERR_FORMAT,
		 "malformed .npy header: missing key"},
		{1, 0, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), "
		 "'extra': 1}", KILN_ERR_FORMAT, "unknown key"},
		{1, 0, "{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, "
		 "'shape': (2, 3), }", KILN_ERR_FORMAT, "repeated key"},
		{1, 0, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, x), }",
		 KILN_ERR_FORMAT, "non-integer"},
		{1, 0, "{'descr': '<f4', 'fortran_order': False, 'shape': (-6,), }",
		 KILN_ERR_FORMAT, "negative dimension"},
		{1, 0, "{'descr': '<f4', 'fortran_order': False, 'shape': (6), }",
		 KILN_ERR_FORMAT, "not a tuple"},
		{1, 0, "{'descr': '<f4', 'fortran_order': False, 'shape': [2, 3], }",
		 KILN_ERR_FORMAT, "not a tuple"},
		{1, 0, "{'descr': '<f4', 'fortran_order': 0, 'shape': (2, 3), }",
		 KILN_ERR_FORMAT, "not True or False"},
		{1, 0, "{'descr': '<f4', 'fortran_order': False, "
		 "'shape': (99999999999999999999,), }", KILN_ERR_FORMAT,
		 "dimension too large"},
		{1, 0, "{'descr': '<f4', 'fortran_order': False, "
		 "'shape': (4294967296, 4294967296), }", KILN_ERR_FORMAT,
		 "byte count overflows"},
		{1, 0, "{'descr': '<f4', 'fortran_order': False, 'shape': (2 3), }",
		 KILN_ERR_FORMAT, "expected ',' or ')'"},
		{1, 0, "{'descr': '<f4' 'fortran_order': False, 'shape': (2, 3), }",
		 KILN_ERR_FORMAT, "expected ',' or '}'"},
		{1, 0, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3)} x",
		 KILN_ERR_FORMAT, "text after the dict"},
		{1, 0, "{'descr: '<f4', 'fortran_order': False, 'shape': (2, 3), }",
		 KILN_ERR_FORMAT, "malformed"},
		{1, 0, "{'descr': '<f4\x01', 'fortran_order': False, "
		 "'shape': (2, 3), }", KILN_ERR_FORMAT, "bad string"},
		{1, 0, "[1, 2]", KILN_ERR_FORMAT, "not a dict"},
		{1, 0, "", KILN_ERR_FORMAT, "not a dict"},
	};

	for (int i = 0; i < countof(cases); i++) {
		const struct bad_header *c = &cases[i];
		craft(in_dir("bad.npy"), c->major, c->minor, c->dict, 24);
		expect_load(in_dir("bad.npy"), KILN_F32, 2, d23, c->want, c->text,
		            false);
	}
}

/* Headers NumPy may write (or has written) that must be accepted. */
static void
npy_good_headers(void)
{
	static const int64_t d23[2] = {2, 3};
	static const char *const dicts[] = {
		"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }",
		"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3)}",
		"{\"descr\": \"<f4\", \"fortran_order\": False, \"shape\": (2,3,)}",
		"{'shape': (2L, 3L), 'fortran_order': False, 'descr': '<f4'}",
		"  {  'descr':'<f4','fortran_order':False,'shape':(  2 ,3 ) , }  ",
	};

	for (int i = 0; i < countof(dicts); i++) {
		craft(in_dir("good.npy"), 1, 0, dicts[i], 24);
		expect_load(in_dir("good.npy"), KILN_F32, 2, d23, KILN_OK, dicts[i],
		            false);
	}
	craft(in_dir("v2.npy"), 2, 0, dicts[0], 24);
	expect_load(in_dir("v2.npy"), KILN_F32, 2, d23, KILN_OK, "v2", false);
	craft(in_dir("v3.npy"), 3, 0, dicts[0], 24);
	expect_load(in_dir("v3.npy"), KILN_F32, 2, d23, KILN_OK, "v3", false);
}

/* Files cut short, padded or not .npy at all. */
static void
npy_bad_files(void)
{
	/* short enough for the data to start at byte 64 */
	static const char dict[] = "{'descr':'<f4','fortran_order':False,"
	                           "'shape':(2,3)}";
	static const int64_t d23[2] = {2, 3};
	unsigned char buf[128];
	FILE *f;

	expect_load(in_dir("missing.npy"), KILN_F32, 2, d23, KILN_ERR_IO,
	            "missing.npy: cannot open: No such file or directory", false);
	expect_load(dir, KILN_F32, 2, d23, KILN_ERR_IO, "not a regular file",
	            false);
	write_file(in_dir("empty.npy"), "", 0);
	expect_load(in_dir("empty.npy"), KILN_F32, 2, d23, KILN_ERR_FORMAT,
	            "truncated: 0 bytes is too short", false);
	write_file(in_dir("short.npy"), "\x93NUM", 4);
	expect_load(in_dir("short.npy"), KILN_F32, 2, d23, KILN_ERR_FORMAT,
	            "truncated", false);
	write_file(in_dir("magic.npy"), "\x93NUMPZ\x01\x00\x36\x00{}", 12);
	expect_load(in_dir("magic.npy"), KILN_F32, 2, d23, KILN_ERR_FORMAT,
	            "not a .npy file (bad magic)", false);
	write_file(in_dir("text.npy"), "hello, world\n", 13);
	expect_load(in_dir("text.npy"), KILN_F32, 2, d23, KILN_ERR_FORMAT,
	            "bad magic", false);
	craft(in_dir("full.npy"), 1, 0, dict, 24);
	f = fopen(in_dir("full.npy"), "rb");
	if (!f || fread(buf, 1, sizeof buf, f) != 64 + 24)
		exit(1);
	fclose(f);
	write_file(in_dir("cut.npy"), buf, 40);
	expect_load(in_dir("cut.npy"), KILN_F32, 2, d23, KILN_ERR_FORMAT,
	            "truncated: the header runs past the end", false);
	write_file(in_dir("cut.npy"), buf, 64 + 20);
	expect_load(in_dir("cut.npy"), KILN_F32, 2, d23, KILN_ERR_FORMAT,
	            "truncated: header announces 24 bytes of data, file has 20",
	            false);
	craft(in_dir("long.npy"), 1, 0, dict, 28);
	expect_load(in_dir("long.npy"), KILN_F32, 2, d23, KILN_ERR_FORMAT,
	            "file has 28 bytes of data, header announces 24", false);
	write_file(in_dir("v2cut.npy"), "\x93NUMPY\x02\x00\x36\x00", 10);
	expect_load(in_dir("v2cut.npy"), KILN_F32, 2, d23, KILN_ERR_FORMAT,
	            "truncated", false);
}

/* A well-formed file of the wrong type: the message names the tensor and
 * both types. */
static void
npy_mismatch(void)
{
	static const int64_t img[3] = {1, 28, 28}, flat[2] = {1, 784};
	static const int64_t d23[2] = {2, 3}, one[1] = {1};
	static double d[6];
	static float f[784];
	char want[1024], msg[64];

	kiln_npy_save(in_dir("img.npy"), KILN_F32, 3, img, f, msg, sizeof msg);
	snprintf(want, sizeof want, "input 'x': expected f32[1,784], got "
	         "f32[1,28,28] in %s", in_dir("img.npy"));
	expect_load(in_dir("img.npy"), KILN_F32, 2, flat, KILN_ERR_SHAPE, want,
	            true);
	kiln_npy_save(in_dir("f64.npy"), KILN_F64, 2, d23, d, msg, sizeof msg);
	snprintf(want, sizeof want, "input 'x': expected f32[2,3], got "
	         "f64[2,3] in %s", in_dir("f64.npy"));
	expect_load(in_dir("f64.npy"), KILN_F32, 2, d23, KILN_ERR_DTYPE, want,
	            true);
	kiln_npy_save(in_dir("scalar.npy"), KILN_F32, 0, NULL, f, msg,
	              sizeof msg);
	snprintf(want, sizeof want, "input 'x': expected f32[1], got f32[] in %s",
	         in_dir("scalar.npy"));
	expect_load(in_dir("scalar.npy"), KILN_F32, 1, one, KILN_ERR_SHAPE,
	            want, true);
	snprintf(want, sizeof want, "input 'x': expected i64[], got f32[1,28,28]"
	         " in %s", in_dir("img.npy"));
	expect_load(in_dir("img.npy"), KILN_I64, 0, NULL, KILN_ERR_DTYPE, want,
	            true);
	expect_load(in_dir("img.npy"), KILN_F32, KILN_MAXRANK + 1, img,
	            KILN_ERR_ARG, "invalid expected type", false);
}

static int
run_npy(const char *d)
{
	dir = d;
	npy_roundtrips();
	npy_header_text();
	npy_save_errors();
	npy_bad_headers();
	npy_good_headers();
	npy_bad_files();
	npy_mismatch();
	return t_report("npy");
}

/* ---- cross-checks with NumPy ----------------------------------------- */

/* Element i of the test pattern for type t, the same formula as in
 * Inputs/npy_numpy.py; written into p[i]. */
static void
pattern(void *p, kiln_dtype t, int64_t i)
{
	switch (t) {
	case KILN_F32: ((float *)p)[i] = (float)i * 0.5f - 1; break;
	case KILN_F64: ((double *)p)[i] = (double)i * 0.5 - 1; break;
	case KILN_I64: ((int64_t *)p)[i] = i * 3000000007 - 5; break;
	case KILN_I32: ((int32_t *)p)[i] = (int32_t)(i * 100003 - 7000000); break;
	case KILN_I8: ((int8_t *)p)[i] = (int8_t)(i * 37 % 256 - 128); break;
	case KILN_U8: ((uint8_t *)p)[i] = (uint8_t)(i * 37 % 256); break;
	case KILN_BOOL: ((uint8_t *)p)[i] = i % 3 == 0; break;
	default: break;
	}
}

static bool
save_pattern(const char *name, kiln_dtype t, int rank, const int64_t *dim)
{
	int64_t n = 1;
	char msg[512];
	void *p;
	kiln_status s;

	for (int i = 0; i < rank; i++)
		n *= dim[i];
	p = t_alloc((size_t)n * kiln_dtype_size(t));
	for (int64_t i = 0; i < n; i++)
		pattern(p, t, i);
	s = kiln_npy_save(in_dir(name), t, rank, dim, p, msg, sizeof msg);
	if (s)
		fprintf(stderr, "test_runtime: %s\n", msg);
	free(p);
	return !s;
}

/* f32.npy ... bool.npy of shape [3,50], plus scalar, empty and rank 8. */
static int
npy_write(const char *d)
{
	static const int64_t d350[2] = {3, 50}, d03[2] = {0, 3};
	static const int64_t r8[8] = {1, 2, 1, 3, 1, 1, 2, 1};
	char name[32];
	bool ok = true;

	dir = d;
	for (int t = 0; t < KILN_NDTYPE; t++) {
		snprintf(name, sizeof name, "%s.npy", kiln_dtype_name((kiln_dtype)t));
		ok &= save_pattern(name, (kiln_dtype)t, 2, d350);
	}
	ok &= save_pattern("scalar.npy", KILN_F32, 0, NULL);
	ok &= save_pattern("empty.npy", KILN_F32, 2, d03);
	ok &= save_pattern("rank8.npy", KILN_F64, 8, r8);
	return !ok;
}

/* Parses a type such as f32[2,3] or f32[]. */
static bool
parse_type(const char *s, kiln_dtype *t, int *rank, int64_t *dim)
{
	const char *br = strchr(s, '[');
	char *end;

	if (!br)
		return false;
	for (*t = 0; *t < KILN_NDTYPE; (*t)++)
		if (strlen(kiln_dtype_name(*t)) == (size_t)(br - s) &&
		    !strncmp(s, kiln_dtype_name(*t), (size_t)(br - s)))
			break;
	*rank = 0;
	for (s = br + 1; *t < KILN_NDTYPE && *s != ']'; s = end + (*end == ',')) {
		if (*rank == KILN_MAXRANK)
			return false;
		dim[(*rank)++] = strtoll(s, &end, 10);
		if (end == s)
			return false;
	}
	return *t < KILN_NDTYPE && !s[1];
}

/* Element i of p (type t) as an exact integer, for the sums. */
static int64_t
int_at(const void *p, kiln_dtype t, int64_t i)
{
	switch (t) {
	case KILN_I64: return ((const int64_t *)p)[i];
	case KILN_I32: return ((const int32_t *)p)[i];
	case KILN_I8: return ((const int8_t *)p)[i];
	default: return ((const uint8_t *)p)[i];
	}
}

/* Loads file as type, prints "TYPE sum=S wsum=W" with W = sum (i+1)*x[i]. */
static int
npy_read(const char *file, const char *type)
{
	int64_t dim[KILN_MAXRANK], n = 1;
	kiln_dtype t;
	int rank;
	char msg[1024];
	double fs = 0, fw = 0;
	int64_t is = 0, iw = 0;
	void *p;

	if (!parse_type(type, &t, &rank, dim)) {
		fprintf(stderr, "test_runtime: bad type '%s'\n", type);
		return 2;
	}
	for (int i = 0; i < rank; i++)
		n *= dim[i];
	p = t_alloc((size_t)n * kiln_dtype_size(t));
	if (kiln_npy_load(file, "x", t, rank, dim, p, msg, sizeof msg)) {
		fprintf(stderr, "test_runtime: error: %s\n", msg);
		free(p);
		return 1;
	}
	for (int64_t i = 0; i < n; i++) {
		double v = t == KILN_F32 ? ((float *)p)[i] : t == KILN_F64 ?
		           ((double *)p)[i] : 0;
		fs += v, fw += (double)(i + 1) * v;
		if (t != KILN_F32 && t != KILN_F64)
			is += int_at(p, t, i), iw += (i + 1) * int_at(p, t, i);
	}
	if (t == KILN_F32 || t == KILN_F64)
		printf("%s sum=%.17g wsum=%.17g\n", type, fs, fw);
	else
		printf("%s sum=%lld wsum=%lld\n", type, (long long)is, (long long)iw);
	free(p);
	return 0;
}

int
main(int argc, char **argv)
{
	t_seed(0x9e3779b97f4a7c15u);
	if (argc == 2 && !strcmp(argv[1], "kernels"))
		return run_kernels();
	if (argc == 3 && !strcmp(argv[1], "npy"))
		return run_npy(argv[2]);
	if (argc == 3 && !strcmp(argv[1], "npy-write"))
		return npy_write(argv[2]);
	if (argc == 4 && !strcmp(argv[1], "npy-read"))
		return npy_read(argv[2], argv[3]);
	fprintf(stderr, "usage: test_runtime kernels | npy DIR | npy-write DIR | "
	        "npy-read FILE TYPE\n");
	return 2;
}
