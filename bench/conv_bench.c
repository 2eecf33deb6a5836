/* conv_bench.c: times the blocked gemm and the im2col convolutions of the
 * runtime against the naive kernels they replaced (copied below as
 * old_*), in the same run, on the shapes of examples/fashion_cnn.kiln at
 * batch 64 (conv 1->32 on 28x28 and 32->64 on 14x14, 3x3, pad 1: forward,
 * weight gradient and input gradient, the transposed convolution) and
 * on its dense layer 3136 -> 128, and a few other products.  The old
 * and new kernel run in turns for 1 s, at least 5 times each; the best
 * time counts, as other work shares the machine.  It prints old/new
 * ratios (the absolute times vary with the machine's load) and the
 * largest difference between the results, relative to the largest one.
 * Not part of the test suite: it proves nothing, it measures.
 *
 *   cc -O2 -std=c11 -Iruntime bench/conv_bench.c \
 *      build/runtime/libkiln_runtime.a -lm -lz -o conv_bench && ./conv_bench
 */
#define _POSIX_C_SOURCE 200809L

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "kiln.h"

/* ---- the old kernels: tap by tap, and unblocked gemm ---------------- */

static void
span(int64_t off, int64_t s, int64_t len, int64_t n, int64_t *lo, int64_t *hi)
{
	int64_t a = off >= 0 ? 0 : (-off + s - 1) / s;
	int64_t b = len - off <= 0 ? 0 : (len - off - 1) / s + 1;

	*hi = b < n ? b : n;
	*lo = a < *hi ? a : *hi;
}

static void
add_tap(float *yp, const float *xp, float wv, int64_t u, int64_t v,
        const struct kiln_conv2d *p)
{
	int64_t i0, i1, j0, j1;
	int64_t du = u * p->dh - p->pt, dv = v * p->dw - p->pl;

	span(du, p->sh, p->h, p->oh, &i0, &i1);
	span(dv, p->sw, p->w, p->ow, &j0, &j1);
	for (int64_t i = i0; i < i1; i++) {
		float *yr = yp + i * p->ow;
		int64_t xr = (i * p->sh + du) * p->w + dv;
		for (int64_t j = j0; j < j1; j++)
			yr[j] += wv * xp[xr + j * p->sw];
	}
}

static void
old_conv2d(float *y, const float *x, const float *w, const float *b,
           const struct kiln_conv2d *p)
{
	int64_t cg = p->c / p->group, og = p->oc / p->group;
	int64_t plane = p->h * p->w, oplane = p->oh * p->ow, taps = p->kh * p->kw;

	for (int64_t n = 0; n < p->n; n++)
		for (int64_t o = 0; o < p->oc; o++) {
			float *yp = y + (n * p->oc + o) * oplane;
			const float *xg = x + (n * p->c + o / og * cg) * plane;
			for (int64_t i = 0; i < oplane; i++)
				yp[i] = b ? b[o] : 0.0f;
			for (int64_t q = 0; q < cg; q++)
				for (int64_t t = 0; t < taps; t++)
					add_tap(yp, xg + q * plane, w[(o * cg + q) * taps + t],
					        t / p->kw, t % p->kw, p);
		}
}

static float
tap_dot(const float *dyp, const float *xp, int64_t u, int64_t v,
        const struct kiln_conv2d *p)
{
	int64_t r0, r1, c0, c1;
	int64_t top = u * p->dh - p->pt, left = v * p->dw - p->pl;
	float s = 0.0f;

	span(top, p->sh, p->h, p->oh, &r0, &r1);
	span(left, p->sw, p->w, p->ow, &c0, &c1);
	for (int64_t i = r0; i < r1; i++) {
		const float *dyr = dyp + i * p->ow;
		const float *xr = xp + (i * p->sh + top) * p->w + left;
		for (int64_t j = c0; j < c1; j++)
			s += dyr[j] * xr[j * p->sw];
	}
	return s;
}

static void
old_grad_w(float *dw, const float *x, const float *dy,
           const struct kiln_conv2d *p)
{
	int64_t cg = p->c / p->group, og = p->oc / p->group;
	int64_t plane = p->h * p->w, oplane = p->oh * p->ow, taps = p->kh * p->kw;

	for (int64_t i = 0; i < p->oc * cg * taps; i++)
		dw[i] = 0.0f;
	for (int64_t n = 0; n < p->n; n++)
		for (int64_t o = 0; o < p->oc; o++) {
			const float *dyp = dy + (n * p->oc + o) * oplane;
			const float *xg = x + (n * p->c + o / og * cg) * plane;
			float *dwo = dw + o * cg * taps;
			for (int64_t q = 0; q < cg; q++)
				for (int64_t k = 0; k < taps; k++)
					dwo[q * taps + k] += tap_dot(dyp, xg + q * plane,
					                             k / p->kw, k % p->kw, p);
		}
}

static void
scatter_tap(float *yp, const float *xp, float wv, int64_t u, int64_t v,
            const struct kiln_conv2d *p)
{
	int64_t i0, i1, j0, j1;
	int64_t du = u * p->dh - p->pt, dv = v * p->dw - p->pl;

	span(du, p->sh, p->oh, p->h, &i0, &i1);
	span(dv, p->sw, p->ow, p->w, &j0, &j1);
	for (int64_t i = i0; i < i1; i++) {
		const float *xr = xp + i * p->w;
		int64_t yr = (i * p->sh + du) * p->ow + dv;
		for (int64_t j = j0; j < j1; j++)
			yp[yr + j * p->sw] += wv * xr[j];
	}
}

static void
old_conv2d_transpose(float *y, const float *x, const float *w,
                     const float *b, const struct kiln_conv2d *p)
{
	int64_t cg = p->c / p->group, og = p->oc / p->group;
	int64_t plane = p->h * p->w, oplane = p->oh * p->ow, taps = p->kh * p->kw;

	for (int64_t n = 0; n < p->n; n++)
		for (int64_t o = 0; o < p->oc; o++) {
			float *yp = y + (n * p->oc + o) * oplane;
			for (int64_t i = 0; i < oplane; i++)
				yp[i] = b ? b[o] : 0.0f;
			for (int64_t c = o / og * cg; c < (o / og + 1) * cg; c++)
				for (int64_t t = 0; t < taps; t++)
					scatter_tap(yp, x + (n * p->c + c) * plane,
					            w[(c * og + o % og) * taps + t], t / p->kw,
					            t % p->kw, p);
		}
}

/* The old gemm without c: i-k-j, or dot products with trans_b. */
static void
old_gemm(float *y, const float *a, const float *b, int64_t m, int64_t n,
         int64_t k, int ta, int tb)
{
	for (int64_t i = 0; i < m; i++) {
		float *yr = y + i * n;
		for (int64_t j = 0; j < n; j++)
			yr[j] = 0.0f;
		for (int64_t p = 0; !tb && p < k; p++) {
			float s = ta ? a[p * m + i] : a[i * k + p];
			for (int64_t j = 0; j < n; j++)
				yr[j] += s * b[p * n + j];
		}
		for (int64_t j = 0; tb && j < n; j++) {
			float s = 0.0f;
			for (int64_t p = 0; p < k; p++)
				s += (ta ? a[p * m + i] : a[i * k + p]) * b[j * k + p];
			yr[j] = s;
		}
	}
}

/* ---- timing ----------------------------------------------------------- */

/* One call of a kernel under test, old or new. */
struct run {
	int op;                 /* CONV, GRAD_W, CONVT, GEMM */
	int old;
	struct kiln_conv2d p;
	int64_t m, n, k;
	int ta, tb;
	const float *x, *w;
	float *y;
};
enum { CONV, GRAD_W, CONVT, GEMM };

static void
call(const struct run *r)
{
	switch (r->op) {
	case CONV:
		(r->old ? old_conv2d : kiln_conv2d_f32)(r->y, r->x, r->w, NULL, &r->p);
		break;
	case GRAD_W:
		(r->old ? old_grad_w : kiln_conv2d_grad_w_f32)(r->y, r->x, r->w, &r->p);
		break;
	case CONVT:
		(r->old ? old_conv2d_transpose : kiln_conv2d_transpose_f32)(r->y,
		    r->x, r->w, NULL, &r->p);
		break;
	case GEMM:
		if (r->old)
			old_gemm(r->y, r->x, r->w, r->m, r->n, r->k, r->ta, r->tb);
		else
			kiln_gemm_f32(r->y, r->x, r->w, NULL, r->m, r->n, r->k, r->ta,
			              r->tb, 1.0f, 0.0f, 0, 0);
		break;
	}
}

static double
now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec * 1e-9;
}

static double
timed(const struct run *r)
{
	double t = now();

	call(r);
	return now() - t;
}

/* The best times of r's old and new kernel, run in turns (so a burst of
 * other work hits both alike) at least 5 times each and for 1 s. */
static void
best(struct run r, float *y0, float *y1, double *told, double *tnew)
{
	double start = now();

	*told = *tnew = INFINITY;
	for (int i = 0; i < 5 || now() - start < 1.0; i++) {
		r.old = 1, r.y = y0;
		*told = fmin(*told, timed(&r));
		r.old = 0, r.y = y1;
		*tnew = fmin(*tnew, timed(&r));
	}
}

static float *
randf(int64_t n)
{
	float *p = malloc((size_t)n * sizeof *p);

	if (!p)
		exit(1);
	for (int64_t i = 0; i < n; i++)
		p[i] = (float)((double)rand() / RAND_MAX - 0.5);
	return p;
}

/* Times r old and new, prints the ratio and the largest difference of
 * the ny results relative to the largest result. */
static void
compare(const char *name, struct run r, int64_t nx, int64_t nw, int64_t ny)
{
	float *x = randf(nx), *w = randf(nw), *y0 = randf(ny), *y1 = randf(ny);
	double told, tnew, diff = 0, big = 0;

	r.x = x, r.w = w;
	best(r, y0, y1, &told, &tnew);
	for (int64_t i = 0; i < ny; i++) {
		diff = fmax(diff, fabs(y0[i] - y1[i]));
		big = fmax(big, fabs(y0[i]));
	}
	printf("%-34s old/new %6.1fx   (new %7.2f ms)  max diff %.1e\n", name,
	       told / tnew, tnew * 1e3, diff / big);
	free(x), free(w), free(y0), free(y1);
}

/* conv2d 3x3, pad 1, stride 1 over [n,c,h,h] to oc channels, and its
 * weight and input gradients. */
static void
conv3x3(const char *name, int64_t n, int64_t c, int64_t h, int64_t oc)
{
	struct kiln_conv2d p = {
		.n = n, .c = c, .h = h, .w = h, .oc = oc, .kh = 3, .kw = 3,
		.oh = h, .ow = h, .sh = 1, .sw = 1, .pt = 1, .pl = 1, .dh = 1,
		.dw = 1, .group = 1,
	};
	struct kiln_conv2d t = p;
	int64_t nx = n * c * h * h, ny = n * oc * h * h, nw = oc * c * 9;
	char what[64];

	t.c = oc, t.oc = c;
	snprintf(what, sizeof what, "%s forward", name);
	compare(what, (struct run){.op = CONV, .p = p}, nx, nw, ny);
	snprintf(what, sizeof what, "%s grad_w", name);
	compare(what, (struct run){.op = GRAD_W, .p = p}, nx, ny, nw);
	snprintf(what, sizeof what, "%s grad_x (transpose)", name);
	compare(what, (struct run){.op = CONVT, .p = t}, ny, nw, nx);
}

static void
gemm(const char *name, int64_t m, int64_t n, int64_t k, int ta, int tb)
{
	compare(name, (struct run){.op = GEMM, .m = m, .n = n, .k = k,
	        .ta = ta, .tb = tb}, m * k, k * n, m * n);
}

int
main(void)
{
	srand(1);
	conv3x3("conv 1->32 28x28 b64", 64, 1, 28, 32);
	conv3x3("conv 32->64 14x14 b64", 64, 32, 14, 64);
	gemm("dense 64x3136 @ 3136x128", 64, 128, 3136, 0, 0);
	gemm("dense dW 3136x64^T @ 64x128", 3136, 128, 64, 1, 0);
	gemm("dense dx 64x128 @ (3136x128)^T", 64, 3136, 128, 0, 1);
	gemm("gemv 1x3136 @ 3136x128", 1, 128, 3136, 0, 0);
	gemm("gemv 1x3136 @ (128x3136)^T", 1, 128, 3136, 0, 1);
	gemm("gemv 128x3136 @ 3136x1", 128, 1, 3136, 0, 0);
	gemm("gemv (3136x128)^T @ 3136x1", 128, 1, 3136, 1, 0);
	gemm("square 256", 256, 256, 256, 0, 0);
	return 0;
}
