/* test_data.c: tests of the layout, normalization and transposed
 * convolution kernels (runtime/layout.c, norm.c, conv.c).
 *
 * Each kernel is compared with a naive reference written here another
 * way: element by element with unravelled indices where the kernel walks
 * rows, a gather-form transposed convolution where the kernel scatters
 * (resize has its own test_resize.c).  Byte kernels run for every element
 * size and must match exactly; float ones within TOL, printing the first
 * elements with OK/NOT OK on a mismatch.
 *
 *   test_data        all checks; exit status 1 on any failure
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

static const size_t esizes[] = {1, 2, 4, 8};

/* ---- transpose and slice (kiln_strided_copy) --------------------------- */

static void
transpose_case(int rank, const int64_t *xdim, const int *perm, size_t es)
{
	int64_t ydim[KILN_MAXRANK], xs[KILN_MAXRANK], st[KILN_MAXRANK];
	int64_t yi[KILN_MAXRANK], xi[KILN_MAXRANK], n = t_numel(rank, xdim);
	unsigned char *x = t_randb(n * (int64_t)es), *y = t_randb(n * (int64_t)es);
	unsigned char *ref = t_alloc((size_t)n * es);
	char what[80];

	for (int d = rank - 1, step = 1; d >= 0; d--) {
		xs[d] = step;
		step *= (int)xdim[d];
	}
	for (int d = 0; d < rank; d++) {
		ydim[d] = xdim[perm[d]];
		st[d] = xs[perm[d]];
	}
	for (int64_t f = 0; f < n; f++) {
		t_unravel(f, rank, ydim, yi);
		for (int d = 0; d < rank; d++)
			xi[perm[d]] = yi[d];
		memcpy(ref + f * (int64_t)es, x + t_ravel(xi, rank, xdim) * (int64_t)es,
		       es);
	}
	kiln_strided_copy(y, x, es, rank, ydim, st, 0);
	snprintf(what, sizeof what, "transpose rank %d esize %zu perm %d%d%d%d",
	         rank, es, perm[0], rank > 1 ? perm[1] : 0, rank > 2 ? perm[2] : 0,
	         rank > 3 ? perm[3] : 0);
	t_bytes(what, y, ref, (size_t)n * es);
	free(x), free(y), free(ref);
}

static void
test_transpose(void)
{
	static const int64_t d4[] = {2, 3, 4, 5}, d3[] = {3, 1, 7};
	static const int64_t d8[] = {2, 1, 3, 2, 1, 2, 3, 2};
	static const int p4[][4] = {{0, 1, 2, 3}, {3, 2, 1, 0}, {0, 2, 3, 1},
	                            {1, 0, 3, 2}, {2, 3, 0, 1}};
	static const int p3[][3] = {{2, 0, 1}, {1, 2, 0}};
	static const int p8[] = {7, 0, 6, 1, 5, 2, 4, 3};
	static const int p1[] = {0};
	static const int64_t d1[] = {9};

	for (int e = 0; e < countof(esizes); e++) {
		for (int i = 0; i < countof(p4); i++)
			transpose_case(4, d4, p4[i], esizes[e]);
		for (int i = 0; i < countof(p3); i++)
			transpose_case(3, d3, p3[i], esizes[e]);
		transpose_case(8, d8, p8, esizes[e]);
		transpose_case(1, d1, p1, esizes[e]);
		transpose_case(0, d1, p1, esizes[e]);
	}
}

/* Slices dim d of x from start[d] by step[d] for count[d] elements. */
static void
slice_case(int rank, const int64_t *xdim, const int64_t *start,
           const int64_t *step, const int64_t *count, size_t es)
{
	int64_t st[KILN_MAXRANK], yi[KILN_MAXRANK], xi[KILN_MAXRANK];
	int64_t nx = t_numel(rank, xdim), ny = t_numel(rank, count), off = 0;
	unsigned char *x = t_randb(nx * (int64_t)es), *y = t_randb(ny * (int64_t)es);
	unsigned char *ref = t_alloc((size_t)ny * es);
	char what[80];

	for (int d = rank - 1, size = 1; d >= 0; d--) {
		off += start[d] * size;
		st[d] = step[d] * size;
		size *= (int)xdim[d];
	}
	for (int64_t f = 0; f < ny; f++) {
		t_unravel(f, rank, count, yi);
		for (int d = 0; d < rank; d++)
			xi[d] = start[d] + yi[d] * step[d];
		memcpy(ref + f * (int64_t)es, x + t_ravel(xi, rank, xdim) * (int64_t)es,
		       es);
	}
	kiln_strided_copy(y, x, es, rank, count, st, off);
	snprintf(what, sizeof what, "slice rank %d esize %zu", rank, es);
	t_bytes(what, y, ref, (size_t)ny * es);
	free(x), free(y), free(ref);
}

/* Random slices of a random rank-1..5 tensor, steps in [-3, 3]. */
static void
test_slice(void)
{
	for (int t = 0; t < 60; t++) {
		int rank = 1 + (int)t_irand(5);
		int64_t xdim[5], start[5], step[5], count[5];
		for (int d = 0; d < rank; d++) {
			xdim[d] = 1 + t_irand(6);
			step[d] = 1 + t_irand(3);
			if (t_irand(2))
				step[d] = -step[d];
			start[d] = t_irand(xdim[d]);
			/* elements start, start+step, ... that stay inside */
			int64_t room = step[d] > 0 ? (xdim[d] - 1 - start[d]) / step[d] :
			                             start[d] / -step[d];
			count[d] = 1 + t_irand(room + 1);
		}
		slice_case(rank, xdim, start, step, count, esizes[t % 4]);
	}
}

/* ---- concat ------------------------------------------------------------ */

static void
concat_case(int64_t outer, int64_t inner, int nx, const int64_t *len,
            size_t es)
{
	int64_t total = 0, k, i;
	const void *xs[8];
	unsigned char *x[8], *y, *ref;
	char what[64];

	for (k = 0; k < nx; k++) {
		x[k] = t_randb(outer * len[k] * inner * (int64_t)es);
		xs[k] = x[k];
		total += len[k];
	}
	y = t_randb(outer * total * inner * (int64_t)es);
	ref = t_alloc((size_t)(outer * total * inner) * es);
	/* output [o, a, i]: find the operand k that axis index a falls in */
	for (int64_t f = 0; f < outer * total * inner; f++) {
		int64_t o = f / (total * inner), a = f / inner % total;
		i = f % inner;
		for (k = 0; a >= len[k]; k++)
			a -= len[k];
		memcpy(ref + f * (int64_t)es,
		       x[k] + ((o * len[k] + a) * inner + i) * (int64_t)es, es);
	}
	kiln_concat(y, xs, nx, len, outer, inner, es);
	snprintf(what, sizeof what, "concat of %d, outer %lld inner %lld esize "
	         "%zu", nx, (long long)outer, (long long)inner, es);
	t_bytes(what, y, ref, (size_t)(outer * total * inner) * es);
	for (k = 0; k < nx; k++)
		free(x[k]);
	free(y), free(ref);
}

static void
test_concat(void)
{
	static const int64_t l3[] = {2, 1, 3}, l1[] = {4}, l8[] = {1, 2, 1, 3,
	                                                           1, 1, 2, 5};

	for (int e = 0; e < countof(esizes); e++) {
		concat_case(3, 5, 3, l3, esizes[e]);
		concat_case(1, 1, 3, l3, esizes[e]);
		concat_case(4, 1, 1, l1, esizes[e]);
		concat_case(2, 3, 8, l8, esizes[e]);
	}
}

/* ---- gather ------------------------------------------------------------ */

static void
gather_case(int64_t outer, int64_t len, int64_t nidx, int64_t inner,
            kiln_dtype it, size_t es)
{
	int64_t ny = outer * nidx * inner, *i64 = t_alloc((size_t)nidx * 8);
	int32_t *i32 = t_alloc((size_t)nidx * 4);
	unsigned char *x = t_randb(outer * len * inner * (int64_t)es);
	unsigned char *y = t_randb(ny * (int64_t)es), *ref = t_alloc((size_t)ny * es);
	char what[80];

	for (int64_t j = 0; j < nidx; j++) {
		i64[j] = t_irand(2 * len) - len;   /* [-len, len) */
		i32[j] = (int32_t)i64[j];
	}
	for (int64_t f = 0; f < ny; f++) {
		int64_t o = f / (nidx * inner), j = f / inner % nidx, i = f % inner;
		int64_t k = i64[j] < 0 ? len + i64[j] : i64[j];
		memcpy(ref + f * (int64_t)es, x + ((o * len + k) * inner + i) *
		       (int64_t)es, es);
	}
	snprintf(what, sizeof what, "gather %s outer %lld len %lld nidx %lld "
	         "inner %lld esize %zu", kiln_dtype_name(it), (long long)outer,
	         (long long)len, (long long)nidx, (long long)inner, es);
	t_expect(kiln_gather(y, x, it == KILN_I32 ? (void *)i32 : (void *)i64,
	                     it, outer, len, nidx, inner, es) == KILN_OK, what);
	t_bytes(what, y, ref, (size_t)ny * es);
	free(i64), free(i32), free(x), free(y), free(ref);
}

/* An index outside [-len, len) fails the call before anything is written. */
static void
gather_range(void)
{
	float x[6] = {1, 2, 3, 4, 5, 6}, y[4] = {-1, -1, -1, -1};
	int64_t bad_hi[2] = {0, 3}, bad_lo[2] = {-4, 0}, ok[2] = {-3, 2};
	int32_t bad32[2] = {1, 7};

	t_expect(kiln_gather(y, x, bad_hi, KILN_I64, 2, 3, 2, 1, 4) ==
	         KILN_ERR_RANGE, "gather index len is out of range");
	t_expect(kiln_gather(y, x, bad_lo, KILN_I64, 2, 3, 2, 1, 4) ==
	         KILN_ERR_RANGE, "gather index -len-1 is out of range");
	t_expect(kiln_gather(y, x, bad32, KILN_I32, 2, 3, 2, 1, 4) ==
	         KILN_ERR_RANGE, "gather i32 index out of range");
	t_expect(y[0] == -1 && y[3] == -1, "gather writes nothing on error");
	t_expect(kiln_gather(y, x, ok, KILN_F32, 2, 3, 2, 1, 4) ==
	         KILN_ERR_DTYPE, "gather f32 indices");
	t_expect(kiln_gather(y, x, ok, KILN_I64, 2, 3, 2, 1, 4) == KILN_OK &&
	         y[0] == 1 && y[1] == 3 && y[2] == 4 && y[3] == 6,
	         "gather -len and len-1");
}

static void
test_gather(void)
{
	for (int e = 0; e < countof(esizes); e++) {
		for (int t = 0; t < 2; t++) {
			kiln_dtype it = t ? KILN_I32 : KILN_I64;
			gather_case(1, 5, 7, 1, it, esizes[e]);
			gather_case(3, 4, 2, 5, it, esizes[e]);
			gather_case(2, 1, 3, 2, it, esizes[e]);
			gather_case(1, 6, 1, 3, it, esizes[e]);
		}
	}
	gather_range();
}

/* ---- pad --------------------------------------------------------------- */

/* The index read by padded position i along a dim of n elements,
 * mirroring or clamping step by step; -1 for the constant. */
static int64_t
pad_ref_index(int64_t i, int64_t n, int mode)
{
	if (mode == KILN_PAD_CONSTANT)
		return i >= 0 && i < n ? i : -1;
	if (mode == KILN_PAD_EDGE)
		return i < 0 ? 0 : i >= n ? n - 1 : i;
	while (i < 0 || i >= n)
		i = i < 0 ? -i : 2 * (n - 1) - i;
	return i;
}

/* pads as ONNX orders them: the start of every dim, then the end.  The
 * reference crops x into c by the negative pads, then pads c. */
static void
pad_case(int rank, const int64_t *xdim, const int64_t *pads, int mode)
{
	static const char *const modes[] = {"constant", "reflect", "edge"};
	struct kiln_pad p = {.rank = rank, .mode = mode, .value = 0.25f};
	int64_t cdim[KILN_MAXRANK], lo[KILN_MAXRANK], ydim[KILN_MAXRANK];
	int64_t yi[KILN_MAXRANK], ci[KILN_MAXRANK];
	char what[80];

	for (int d = 0; d < rank; d++) {
		int64_t b = pads[d], e = pads[rank + d];
		p.xdim[d] = xdim[d];
		p.before[d] = b;
		p.after[d] = e;
		lo[d] = b < 0 ? -b : 0;
		cdim[d] = xdim[d] - lo[d] - (e < 0 ? -e : 0);
		ydim[d] = b + xdim[d] + e;
	}
	int64_t nx = t_numel(rank, xdim), nc = t_numel(rank, cdim);
	int64_t ny = t_numel(rank, ydim);
	float *x = t_randf(nx), *y = t_randf(ny), *c = t_randf(nc);
	double *ref = t_alloc((size_t)ny * sizeof *ref);
	for (int64_t f = 0; f < nc; f++) {
		t_unravel(f, rank, cdim, ci);
		for (int d = 0; d < rank; d++)
			yi[d] = ci[d] + lo[d];
		c[f] = x[t_ravel(yi, rank, xdim)];
	}
	for (int64_t f = 0; f < ny; f++) {
		bool inside = true;
		t_unravel(f, rank, ydim, yi);
		for (int d = 0; d < rank; d++) {
			ci[d] = pad_ref_index(yi[d] - (pads[d] > 0 ? pads[d] : 0),
			                      cdim[d], mode);
			inside = inside && ci[d] >= 0;
		}
		ref[f] = inside ? c[t_ravel(ci, rank, cdim)] : 0.25;
	}
	kiln_pad_f32(y, x, &p);
	snprintf(what, sizeof what, "pad %s rank %d", modes[mode], rank);
	t_close(what, y, ref, ny, TOL, TOL);
	free(x), free(y), free(c), free(ref);
}

static void
test_pad(void)
{
	static const int64_t d4[] = {2, 3, 4, 5}, d2[] = {5, 4}, d1[] = {6};
	static const int64_t p4[] = {0, 1, 2, 3, 1, 0, 3, 4};
	static const int64_t p2[] = {-1, 1, 3, -2};   /* crops too */
	static const int64_t p2b[] = {-3, 2, 1, -1};  /* reflects the crop */
	static const int64_t p1[] = {5, 5}, p0[] = {0, 0};

	for (int m = KILN_PAD_CONSTANT; m <= KILN_PAD_EDGE; m++) {
		pad_case(4, d4, p4, m);
		pad_case(2, d2, p2, m);
		pad_case(2, d2, p2b, m);
		pad_case(1, d1, p0, m);
		pad_case(0, d1, p0, m);
		pad_case(1, d1, p1, m);
	}
}

/* ---- batchnorm and layernorm ------------------------------------------- */

static void
test_batchnorm(void)
{
	static const int64_t shapes[][3] = {{2, 3, 5}, {1, 4, 1}, {3, 1, 7}};

	for (int s = 0; s < countof(shapes); s++) {
		int64_t n = shapes[s][0], c = shapes[s][1], in = shapes[s][2];
		float *x = t_randf(n * c * in), *y = t_randf(n * c * in);
		float *sc = t_randf(c), *b = t_randf(c), *m = t_randf(c), *v = t_randf(c);
		double *ref = t_alloc((size_t)(n * c * in) * sizeof *ref);
		for (int64_t k = 0; k < c; k++)
			v[k] = v[k] * v[k];     /* a variance, possibly 0 */
		for (int64_t f = 0; f < n * c * in; f++) {
			int64_t k = f / in % c;
			ref[f] = (x[f] - (double)m[k]) / sqrt((double)v[k] + 1e-3f) *
			         sc[k] + b[k];
		}
		kiln_batchnorm_f32(y, x, sc, b, m, v, n, c, in, 1e-3f);
		t_close("batchnorm", y, ref, n * c * in, TOL, TOL);
		free(x), free(y), free(sc), free(b), free(m), free(v), free(ref);
	}
}

static void
layernorm_case(int64_t outer, int64_t len, bool bias, float shift)
{
	float *x = t_randf(outer * len), *y = t_randf(outer * len);
	float *sc = t_randf(len), *b = t_randf(len);
	double *ref = t_alloc((size_t)(outer * len) * sizeof *ref);
	char what[64];

	for (int64_t i = 0; i < outer * len; i++)
		x[i] += shift;
	for (int64_t o = 0; o < outer; o++) {
		double mean = 0, var = 0;
		for (int64_t i = 0; i < len; i++)
			mean += x[o * len + i] / (double)len;
		for (int64_t i = 0; i < len; i++)
			var += pow(x[o * len + i] - mean, 2) / (double)len;
		for (int64_t i = 0; i < len; i++)
			ref[o * len + i] = (x[o * len + i] - mean) / sqrt(var + 1e-5f) *
			                   sc[i] + (bias ? b[i] : 0);
	}
	kiln_layernorm_f32(y, x, sc, bias ? b : NULL, outer, len, 1e-5f);
	snprintf(what, sizeof what, "layernorm %lldx%lld%s shift %g",
	         (long long)outer, (long long)len, bias ? " bias" : "", shift);
	t_close(what, y, ref, outer * len, TOL, TOL);
	free(x), free(y), free(sc), free(b), free(ref);
}

static void
test_layernorm(void)
{
	layernorm_case(3, 10, true, 0);
	layernorm_case(1, 1, true, 0);
	layernorm_case(4, 257, false, 0);
	layernorm_case(2, 64, true, 100);
}

/* ---- conv2d_transpose -------------------------------------------------- */

struct convt_case {
	int64_t n, c, h, w, oc, kh, kw, sh, sw, pt, pb, pl, pr, dh, dw, oph, opw;
	int64_t group;
	int bias;
};

/* Gather form: output (i,j) sums the taps (u,v) whose input position
 * (i + pt - u*dh) / sh lands exactly on an input row, likewise columns. */
static double
convt_at(const float *x, const float *w, const struct convt_case *t,
         int64_t n, int64_t o, int64_t i, int64_t j)
{
	int64_t cg = t->c / t->group, og = t->oc / t->group, g = o / og;
	double s = 0;

	for (int64_t c = g * cg; c < (g + 1) * cg; c++)
	for (int64_t u = 0; u < t->kh; u++)
	for (int64_t v = 0; v < t->kw; v++) {
		int64_t a = i + t->pt - u * t->dh, b = j + t->pl - v * t->dw;
		if (a < 0 || b < 0 || a % t->sh || b % t->sw ||
		    a / t->sh >= t->h || b / t->sw >= t->w)
			continue;
		s += (double)x[((n * t->c + c) * t->h + a / t->sh) * t->w + b / t->sw] *
		     w[((c * og + o % og) * t->kh + u) * t->kw + v];
	}
	return s;
}

static void
convt_case(const struct convt_case *t)
{
	int64_t oh = t->sh * (t->h - 1) + t->oph + (t->kh - 1) * t->dh + 1 -
	             t->pt - t->pb;
	int64_t ow = t->sw * (t->w - 1) + t->opw + (t->kw - 1) * t->dw + 1 -
	             t->pl - t->pr;
	int64_t ny = t->n * t->oc * oh * ow;
	float *x = t_randf(t->n * t->c * t->h * t->w);
	float *w = t_randf(t->c * (t->oc / t->group) * t->kh * t->kw);
	float *b = t->bias ? t_randf(t->oc) : NULL, *y = t_randf(ny);
	double *ref = t_alloc((size_t)ny * sizeof *ref);
	struct kiln_conv2d p = {
		.n = t->n, .c = t->c, .h = t->h, .w = t->w, .oc = t->oc,
		.kh = t->kh, .kw = t->kw, .oh = oh, .ow = ow, .sh = t->sh,
		.sw = t->sw, .pt = t->pt, .pl = t->pl, .dh = t->dh, .dw = t->dw,
		.group = t->group,
	};
	char what[160];

	for (int64_t f = 0; f < ny; f++) {
		int64_t idx[4], dim[4] = {t->n, t->oc, oh, ow};
		t_unravel(f, 4, dim, idx);
		ref[f] = (b ? b[idx[1]] : 0) +
		         convt_at(x, w, t, idx[0], idx[1], idx[2], idx[3]);
	}
	kiln_conv2d_transpose_f32(y, x, w, b, &p);
	snprintf(what, sizeof what, "conv2d_transpose x[%lld,%lld,%lld,%lld] "
	         "oc %lld k %lldx%lld s %lldx%lld d %lldx%lld group %lld -> "
	         "%lldx%lld", (long long)t->n, (long long)t->c, (long long)t->h,
	         (long long)t->w, (long long)t->oc, (long long)t->kh,
	         (long long)t->kw, (long long)t->sh, (long long)t->sw,
	         (long long)t->dh, (long long)t->dw, (long long)t->group,
	         (long long)oh, (long long)ow);
	t_close(what, y, ref, ny, TOL, TOL);
	free(x), free(w), free(b), free(y), free(ref);
}

static void
test_conv_transpose(void)
{
	/* n c h w oc kh kw sh sw pt pb pl pr dh dw oph opw group bias */
	static const struct convt_case cases[] = {
		{1, 1, 3, 3, 1, 3, 3, 1, 1, 0, 0, 0, 0, 1, 1, 0, 0, 1, 0},
		{2, 3, 4, 5, 2, 3, 3, 2, 2, 0, 0, 0, 0, 1, 1, 0, 0, 1, 1},
		{1, 2, 5, 4, 3, 3, 2, 2, 3, 1, 1, 0, 1, 1, 1, 1, 2, 1, 1},
		{1, 4, 3, 3, 6, 3, 3, 2, 2, 1, 2, 2, 1, 2, 2, 1, 0, 2, 1},
		{2, 3, 4, 4, 3, 2, 2, 1, 1, 0, 0, 0, 0, 3, 2, 0, 0, 3, 0},
		{1, 2, 1, 1, 2, 4, 4, 3, 3, 1, 1, 1, 1, 1, 1, 0, 0, 1, 1},
		{1, 1, 6, 2, 1, 1, 1, 3, 2, 0, 0, 0, 0, 1, 1, 2, 1, 1, 1},
		{1, 2, 3, 3, 2, 5, 5, 1, 1, 2, 2, 3, 1, 1, 1, 0, 0, 1, 1},
	};

	for (int i = 0; i < countof(cases); i++)
		convt_case(&cases[i]);
}

int
main(void)
{
	t_seed(0x2545f4914f6cdd1du);
	test_transpose();
	test_slice();
	test_concat();
	test_gather();
	test_pad();
	test_batchnorm();
	test_layernorm();
	test_conv_transpose();
	return t_report("data kernels");

}
