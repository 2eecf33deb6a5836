/* test_data2.c: tests of the ONNX data-movement, index and reduction
 * kernels (runtime/layout2.c, reduce2.c, the min and product reductions
 * of reduce.c, and kiln_strided_copy used as expand).
 *
 * Each kernel is compared with a naive reference written here another
 * way: element by element with unravelled index vectors where the kernels
 * walk rows or odometers; argmax in two passes (find the extreme value,
 * then its first or last position) where the kernel keeps a running best;
 * cumsum as an O(len^2) sum per output where the kernel keeps a running
 * one; reductions by scattering each input into its output slot.  Byte
 * kernels run for several element sizes and must match exactly; float
 * ones within TOL, printing the first elements with OK/NOT OK on a
 * mismatch.
 *
 *   test_data2       all checks; exit status 1 on any failure
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

/* ---- expand (kiln_strided_copy with stride 0) -------------------------- */

/* x of rank xr broadcast to y dims yd of rank yr (yr >= xr). */
static void
expand_case(int xr, const int64_t *xd, int yr, const int64_t *yd, size_t es)
{
	int64_t nx = t_numel(xr, xd), ny = t_numel(yr, yd), st[KILN_MAXRANK];
	int64_t yi[KILN_MAXRANK], xi[KILN_MAXRANK];
	unsigned char *x = t_randb(nx * (int64_t)es), *y = t_randb(ny * (int64_t)es);
	unsigned char *ref = t_alloc((size_t)ny * es);
	char what[64];

	/* the strides the C backend passes: dense in x, 0 where x is 1 */
	for (int d = yr - 1, step = 1; d >= 0; d--) {
		int k = d - (yr - xr);
		st[d] = k < 0 || xd[k] == 1 ? 0 : step;
		step *= k < 0 ? 1 : (int)xd[k];
	}
	for (int64_t f = 0; f < ny; f++) {
		t_unravel(f, yr, yd, yi);
		for (int k = 0; k < xr; k++)
			xi[k] = xd[k] == 1 ? 0 : yi[k + yr - xr];
		memcpy(ref + f * (int64_t)es, x + t_ravel(xi, xr, xd) * (int64_t)es, es);
	}
	kiln_strided_copy(y, x, es, yr, yd, st, 0);
	snprintf(what, sizeof what, "expand rank %d->%d esize %zu", xr, yr, es);
	t_bytes(what, y, ref, (size_t)ny * es);
	free(x), free(y), free(ref);
}

static void
test_expand(void)
{
	static const int64_t x1[] = {3, 1}, y1[] = {2, 3, 5};
	static const int64_t x2[] = {1, 4, 1, 1}, y2[] = {2, 4, 3, 1};
	static const int64_t x3[] = {1}, y3[] = {7};
	static const int64_t x4[] = {5}, y4[] = {5};

	for (int e = 0; e < countof(esizes); e++) {
		expand_case(2, x1, 3, y1, esizes[e]);
		expand_case(4, x2, 4, y2, esizes[e]);
		expand_case(1, x3, 1, y3, esizes[e]);
		expand_case(1, x4, 1, y4, esizes[e]);
		expand_case(0, x3, 2, y1, esizes[e]);
	}
}

/* ---- tile ---------------------------------------------------------- */

static void
tile_case(int rank, const int64_t *xd, const int64_t *reps, size_t es)
{
	int64_t yd[KILN_MAXRANK], yi[KILN_MAXRANK], xi[KILN_MAXRANK];
	char what[64];

	for (int d = 0; d < rank; d++)
		yd[d] = xd[d] * reps[d];
	int64_t nx = t_numel(rank, xd), ny = t_numel(rank, yd);
	unsigned char *x = t_randb(nx * (int64_t)es), *y = t_randb(ny * (int64_t)es);
	unsigned char *ref = t_alloc((size_t)ny * es);
	for (int64_t f = 0; f < ny; f++) {
		t_unravel(f, rank, yd, yi);
		for (int d = 0; d < rank; d++)
			xi[d] = yi[d] % xd[d];
		memcpy(ref + f * (int64_t)es, x + t_ravel(xi, rank, xd) * (int64_t)es,
		       es);
	}
	kiln_tile(y, x, es, rank, xd, reps);
	snprintf(what, sizeof what, "tile rank %d esize %zu", rank, es);
	t_bytes(what, y, ref, (size_t)ny * es);
	free(x), free(y), free(ref);
}

static void
test_tile(void)
{
	static const int64_t d3[] = {2, 3, 5}, r3[] = {3, 1, 2};
	static const int64_t d4[] = {1, 3, 1, 2}, r4[] = {2, 2, 3, 1};
	static const int64_t d1[] = {7}, r1[] = {3}, one[] = {1};
	static const int64_t d2[] = {3, 1}, r2[] = {1, 1};

	for (int e = 0; e < countof(esizes); e++) {
		tile_case(3, d3, r3, esizes[e]);
		tile_case(4, d4, r4, esizes[e]);
		tile_case(1, d1, r1, esizes[e]);
		tile_case(1, one, r1, esizes[e]);
		tile_case(2, d2, r2, esizes[e]);
		tile_case(0, d1, r1, esizes[e]);
	}
}

/* ---- trilu --------------------------------------------------------- */

static void
trilu_case(int64_t batch, int64_t rows, int64_t cols, int upper, int64_t k,
           size_t es)
{
	int64_t n = batch * rows * cols, dim[3] = {batch, rows, cols}, i[3];
	unsigned char *x = t_randb(n * (int64_t)es), *y = t_randb(n * (int64_t)es);
	unsigned char *ref = t_alloc((size_t)n * es);
	char what[80];

	for (int64_t f = 0; f < n; f++) {
		t_unravel(f, 3, dim, i);
		bool keep = upper ? i[2] >= i[1] + k : i[2] <= i[1] + k;
		for (size_t b = 0; b < es; b++)
			ref[f * (int64_t)es + (int64_t)b] = keep ? x[f * (int64_t)es +
			                                   (int64_t)b] : 0;
	}
	kiln_trilu(y, x, es, batch, rows, cols, upper, k);
	snprintf(what, sizeof what, "trilu %lldx%lldx%lld upper %d k %lld esize "
	         "%zu", (long long)batch, (long long)rows, (long long)cols, upper,
	         (long long)k, es);
	t_bytes(what, y, ref, (size_t)n * es);
	free(x), free(y), free(ref);
}

static void
test_trilu(void)
{
	static const int64_t ks[] = {0, 1, -1, 2, -3, 7, -7};

	for (int e = 0; e < countof(esizes); e++)
		for (int k = 0; k < countof(ks); k++)
			for (int up = 0; up < 2; up++) {
				trilu_case(2, 3, 5, up, ks[k], esizes[e]);
				trilu_case(1, 5, 3, up, ks[k], esizes[e]);
				trilu_case(3, 1, 4, up, ks[k], esizes[e]);
				trilu_case(1, 4, 1, up, ks[k], esizes[e]);
			}
}

/* ---- gather_elements ------------------------------------------------ */

static void
gather_elements_case(int rank, const int64_t *xd, const int64_t *id, int axis,
                     kiln_dtype it, size_t es)
{
	int64_t nx = t_numel(rank, xd), ni = t_numel(rank, id), len = xd[axis];
	int64_t yi[KILN_MAXRANK];
	unsigned char *x = t_randb(nx * (int64_t)es), *y = t_randb(ni * (int64_t)es);
	unsigned char *ref = t_alloc((size_t)ni * es), *save;
	int64_t *i64 = t_alloc((size_t)ni * sizeof *i64);
	int32_t *i32 = t_alloc((size_t)ni * sizeof *i32);
	const void *idx = it == KILN_I64 ? (void *)i64 : (void *)i32;
	char what[80];

	for (int64_t f = 0; f < ni; f++)
		i32[f] = (int32_t)(i64[f] = t_irand(2 * len) - len);
	for (int64_t f = 0; f < ni; f++) {
		t_unravel(f, rank, id, yi);
		yi[axis] = i64[f] < 0 ? i64[f] + len : i64[f];
		memcpy(ref + f * (int64_t)es, x + t_ravel(yi, rank, xd) * (int64_t)es,
		       es);
	}
	snprintf(what, sizeof what, "gather_elements rank %d axis %d %s esize %zu",
	         rank, axis, kiln_dtype_name(it), es);
	t_expect(kiln_gather_elements(y, x, idx, it, rank, xd, id, axis, es) ==
	         KILN_OK, what);
	t_bytes(what, y, ref, (size_t)ni * es);
	/* one index out of range, at either end: an error, y untouched */
	save = t_alloc((size_t)ni * es);
	memcpy(save, y, (size_t)ni * es);
	for (int side = 0; side < 2; side++) {
		int64_t bad = side ? len : -len - 1;
		i64[ni - 1] = bad, i32[ni - 1] = (int32_t)bad;
		t_expect(kiln_gather_elements(y, x, idx, it, rank, xd, id, axis,
		                              es) == KILN_ERR_RANGE,
		         "gather_elements out of range fails");
		t_bytes("gather_elements leaves y alone on error", y, save,
		        (size_t)ni * es);
	}
	free(x), free(y), free(ref), free(save), free(i64), free(i32);
}

static void
test_gather_elements(void)
{
	static const int64_t x3[] = {3, 4, 5}, i3[] = {2, 6, 5}, i3b[] = {3, 4, 1};
	static const int64_t x1[] = {7}, i1[] = {9};
	static const int64_t x4[] = {2, 1, 3, 2}, i4[] = {1, 4, 2, 2};
	int64_t a[] = {1};
	float y;

	for (int e = 0; e < countof(esizes); e++) {
		for (int t = 0; t < 2; t++) {
			kiln_dtype it = t ? KILN_I32 : KILN_I64;
			gather_elements_case(3, x3, i3, 1, it, esizes[e]);
			gather_elements_case(3, x3, i3b, 2, it, esizes[e]);
			gather_elements_case(1, x1, i1, 0, it, esizes[e]);
			gather_elements_case(4, x4, i4, 1, it, esizes[e]);
		}
	}
	t_expect(kiln_gather_elements(&y, &y, a, KILN_F32, 1, x1, x1, 0, 4) ==
	         KILN_ERR_DTYPE, "gather_elements refuses f32 indices");
}

/* ---- argmax, argmin, hardmax ----------------------------------------- */

static double
getd(const void *x, kiln_dtype t, int64_t i)
{
	switch (t) {
	case KILN_F32: return ((const float *)x)[i];
	case KILN_F64: return ((const double *)x)[i];
	case KILN_I64: return (double)((const int64_t *)x)[i];
	case KILN_I32: return ((const int32_t *)x)[i];
	case KILN_I8: return ((const int8_t *)x)[i];
	default: return ((const uint8_t *)x)[i];
	}
}

static void
setd(void *x, kiln_dtype t, int64_t i, double v)
{
	switch (t) {
	case KILN_F32: ((float *)x)[i] = (float)v; break;
	case KILN_F64: ((double *)x)[i] = v; break;
	case KILN_I64: ((int64_t *)x)[i] = (int64_t)v; break;
	case KILN_I32: ((int32_t *)x)[i] = (int32_t)v; break;
	case KILN_I8: ((int8_t *)x)[i] = (int8_t)v; break;
	default: ((uint8_t *)x)[i] = (uint8_t)v; break;
	}
}

/* Two passes: the extreme value of the line (NaN if there is one), then
 * its first or last position. */
static int64_t
ref_arg(const void *x, kiln_dtype t, int64_t base, int64_t len, int64_t st,
        int sign, bool last)
{
	double m = getd(x, t, base);
	int64_t at = -1;

	for (int64_t l = 0; l < len; l++) {
		double v = getd(x, t, base + l * st);
		if (isnan(v) || (!isnan(m) && sign * v > sign * m))
			m = v;
	}
	for (int64_t l = 0; l < len; l++) {
		double v = getd(x, t, base + l * st);
		if ((v == m || (isnan(v) && isnan(m))) && (at < 0 || last))
			at = l;
	}
	return at;
}

static void
arg_case(kiln_dtype t, int64_t outer, int64_t len, int64_t inner, int nan)
{
	int64_t n = outer * len * inner;
	void *x = t_alloc((size_t)n * kiln_dtype_size(t));
	int64_t *y = t_alloc((size_t)(outer * inner) * sizeof *y);
	int64_t *ref = t_alloc((size_t)(outer * inner) * sizeof *ref);
	char what[96];

	/* few distinct values, so lines have ties; NaN only in floats */
	for (int64_t i = 0; i < n; i++)
		setd(x, t, i, (double)(t_irand(4) - (t == KILN_U8 ? 0 : 2)));
	for (int64_t k = 0; k < nan; k++)
		setd(x, t, t_irand(n), NAN);
	for (int sign = -1; sign <= 1; sign += 2) {
		for (int last = 0; last < 2; last++) {
			for (int64_t o = 0; o < outer; o++)
				for (int64_t i = 0; i < inner; i++)
					ref[o * inner + i] = ref_arg(x, t, o * len * inner + i,
					                             len, inner, sign, last);
			(sign > 0 ? kiln_argmax : kiln_argmin)(y, x, t, outer, len,
			                                       inner, last);
			snprintf(what, sizeof what, "%s %s [%lld,%lld,%lld] last %d nan %d",
			         sign > 0 ? "argmax" : "argmin", kiln_dtype_name(t),
			         (long long)outer, (long long)len, (long long)inner,
			         last, nan);
			t_bytes(what, y, ref,
			        (size_t)(outer * inner) * sizeof *y);
		}
	}
	free(x), free(y), free(ref);
}

static void
test_arg(void)
{
	static const kiln_dtype ts[] = {KILN_F32, KILN_F64, KILN_I64, KILN_I32,
	                                KILN_I8, KILN_U8};

	for (int k = 0; k < countof(ts); k++) {
		arg_case(ts[k], 3, 5, 4, 0);
		arg_case(ts[k], 1, 7, 1, 0);
		arg_case(ts[k], 2, 1, 3, 0);
		arg_case(ts[k], 5, 9, 1, 0);
	}
	arg_case(KILN_F32, 3, 5, 4, 6);
	arg_case(KILN_F64, 4, 3, 2, 5);
	/* large values in i64 differ below double precision */
	int64_t big[3] = {((int64_t)1 << 60) + 1, ((int64_t)1 << 60) + 3,
	                  ((int64_t)1 << 60) + 2}, y;
	kiln_argmax(&y, big, KILN_I64, 1, 3, 1, 0);
	t_expect(y == 1, "argmax i64 compares exactly");
}

static void
hardmax_case(int64_t outer, int64_t len, int64_t inner, int nan)
{
	int64_t n = outer * len * inner;
	float *x = t_randf(n), *y = t_randf(n);
	double *ref = t_alloc((size_t)n * sizeof *ref);
	char what[64];

	for (int64_t i = 0; i < n; i++)
		x[i] = (float)t_irand(3);     /* ties: the first one wins */
	for (int k = 0; k < nan; k++)
		x[t_irand(n)] = NAN;
	for (int64_t o = 0; o < outer; o++)
		for (int64_t i = 0; i < inner; i++) {
			int64_t base = o * len * inner + i;
			int64_t at = ref_arg(x, KILN_F32, base, len, inner, 1, false);
			for (int64_t l = 0; l < len; l++)
				ref[base + l * inner] = l == at;
		}
	kiln_hardmax_f32(y, x, outer, len, inner);
	snprintf(what, sizeof what, "hardmax [%lld,%lld,%lld] nan %d",
	         (long long)outer, (long long)len, (long long)inner, nan);
	t_close(what, y, ref, n, TOL, TOL);
	free(x), free(y), free(ref);
}

static void
test_hardmax(void)
{
	hardmax_case(3, 5, 4, 0);
	hardmax_case(1, 1, 6, 0);
	hardmax_case(6, 7, 1, 0);
	hardmax_case(2, 4, 3, 3);
}

/* ---- cumsum -------------------------------------------------------- */

/* An int64 sum wrapped to the width of t, done arithmetically. */
static int64_t
wrap(int64_t v, kiln_dtype t)
{
	int64_t m = t == KILN_I32 ? (int64_t)1 << 32 : t == KILN_I64 ? 0 : 256;
	int64_t lo = t == KILN_U8 ? 0 : -m / 2;
	if (m == 0)
		return v;
	v = (v - lo) % m;
	return (v < 0 ? v + m : v) + lo;
}

static void
cumsum_case(kiln_dtype t, int64_t outer, int64_t len, int64_t inner,
            int excl, int rev)
{
	int64_t n = outer * len * inner;
	size_t es = kiln_dtype_size(t);
	void *x = t_alloc((size_t)n * es), *y = t_alloc((size_t)n * es);
	void *ref = t_alloc((size_t)n * es);
	bool fl = t == KILN_F32 || t == KILN_F64;
	char what[96];

	/* integers near the top of i32 and i8 wrap after a few terms */
	for (int64_t i = 0; i < n; i++)
		setd(x, t, i, fl ? t_frand() * 10 :
		     t == KILN_I32 ? 2147483000.0 - (double)t_irand(1000) :
		     t == KILN_U8 ? (double)t_irand(256) : (double)(t_irand(200) - 100));
	for (int64_t o = 0; o < outer; o++)
		for (int64_t i = 0; i < inner; i++)
			for (int64_t j = 0; j < len; j++) {
				double s = 0;
				int64_t si = 0;
				for (int64_t l = 0; l < len; l++) {
					bool in = rev ? (excl ? l > j : l >= j) :
					                (excl ? l < j : l <= j);
					int64_t e = (o * len + l) * inner + i;
					if (!in)
						continue;
					s += getd(x, t, e);
					if (!fl)
						si += t == KILN_I64 ? ((int64_t *)x)[e] :
						      (int64_t)getd(x, t, e);
				}
				int64_t e = (o * len + j) * inner + i;
				if (fl)
					setd(ref, t, e, s);
				else if (t == KILN_I64)
					((int64_t *)ref)[e] = si;
				else
					setd(ref, t, e, (double)wrap(si, t));
			}
	kiln_cumsum(y, x, t, outer, len, inner, excl, rev);
	snprintf(what, sizeof what, "cumsum %s [%lld,%lld,%lld] excl %d rev %d",
	         kiln_dtype_name(t), (long long)outer, (long long)len,
	         (long long)inner, excl, rev);
	if (fl) {
		float *yf = t_alloc((size_t)n * sizeof *yf);
		double *rd = t_alloc((size_t)n * sizeof *rd);
		for (int64_t i = 0; i < n; i++)
			yf[i] = (float)getd(y, t, i), rd[i] = getd(ref, t, i);
		t_close(what, yf, rd, n, TOL, TOL);
		free(yf), free(rd);
	} else {
		t_bytes(what, y, ref, (size_t)n * es);
	}
	free(x), free(y), free(ref);
}

static void
test_cumsum(void)
{
	static const kiln_dtype ts[] = {KILN_F32, KILN_F64, KILN_I64, KILN_I32,
	                                KILN_I8, KILN_U8};

	for (int k = 0; k < countof(ts); k++)
		for (int e = 0; e < 2; e++)
			for (int r = 0; r < 2; r++) {
				cumsum_case(ts[k], 2, 5, 3, e, r);
				cumsum_case(ts[k], 1, 7, 1, e, r);
				cumsum_case(ts[k], 3, 1, 2, e, r);
			}
}

/* ---- reduce_min, reduce_prod ----------------------------------------- */

static void
reduce_case(int rank, const int64_t *dim, unsigned mask, bool prod, int nan)
{
	int64_t n = t_numel(rank, dim), yd[KILN_MAXRANK], idx[KILN_MAXRANK];
	float *x = t_randf(n);
	char what[64];

	for (int d = 0; d < rank; d++)
		yd[d] = mask >> d & 1 ? 1 : dim[d];
	int64_t ny = t_numel(rank, yd);
	float *y = t_randf(ny);
	double *ref = t_alloc((size_t)ny * sizeof *ref);
	for (int64_t i = 0; i < n; i++)
		x[i] = prod ? 0.5f + (x[i] + 1) : x[i];     /* products stay finite */
	for (int k = 0; k < nan; k++)
		x[t_irand(n)] = NAN;
	for (int64_t i = 0; i < ny; i++)
		ref[i] = prod ? 1.0 : INFINITY;
	/* scatter: every x element meets its output slot */
	for (int64_t f = 0; f < n; f++) {
		t_unravel(f, rank, dim, idx);
		for (int d = 0; d < rank; d++)
			if (mask >> d & 1)
				idx[d] = 0;
		double *r = &ref[t_ravel(idx, rank, yd)];
		*r = prod ? *r * x[f] : isnan(x[f]) || isnan(*r) ? NAN : fmin(*r, x[f]);
	}
	(prod ? kiln_reduce_prod_f32 : kiln_reduce_min_f32)(y, x, rank, dim, mask);
	snprintf(what, sizeof what, "reduce_%s rank %d mask 0x%x nan %d",
	         prod ? "prod" : "min", rank, mask, nan);
	t_close(what, y, ref, ny, TOL, TOL);
	free(x), free(y), free(ref);
}

static void
test_reduce(void)
{
	static const int64_t d4[] = {3, 1, 4, 5}, d1[] = {6}, d3[] = {2, 7, 3};
	static const unsigned m4[] = {0x0, 0x1, 0x2, 0x5, 0x8, 0xa, 0xf, 0x6};

	for (int p = 0; p < 2; p++) {
		for (int k = 0; k < countof(m4); k++)
			reduce_case(4, d4, m4[k], p, 0);
		reduce_case(1, d1, 1, p, 0);
		reduce_case(3, d3, 0x5, p, 0);
		reduce_case(3, d3, 0x2, p, 2);
		reduce_case(0, d1, 0, p, 0);
	}
}

/* ---- lrn, instance_norm ---------------------------------------------- */

static void
lrn_case(int64_t n, int64_t c, int64_t inner, int64_t size, float alpha,
         float beta, float bias)
{
	int64_t total = n * c * inner;
	float *x = t_randf(total), *y = t_randf(total);
	double *ref = t_alloc((size_t)total * sizeof *ref);
	char what[64];

	for (int64_t b = 0; b < n; b++)
		for (int64_t ch = 0; ch < c; ch++)
			for (int64_t i = 0; i < inner; i++) {
				double s = 0;
				/* ONNX: [c - floor((size-1)/2), c + ceil((size-1)/2)] */
				for (int64_t q = 0; q < c; q++) {
					if (q < ch - floor((size - 1) / 2.0) ||
					    q > ch + ceil((size - 1) / 2.0))
						continue;
					double v = x[(b * c + q) * inner + i];
					s += v * v;
				}
				int64_t e = (b * c + ch) * inner + i;
				ref[e] = x[e] / pow(bias + alpha * s / size, beta);
			}
	kiln_lrn_f32(y, x, n, c, inner, size, alpha, beta, bias);
	snprintf(what, sizeof what, "lrn [%lld,%lld,%lld] size %lld",
	         (long long)n, (long long)c, (long long)inner, (long long)size);
	t_close(what, y, ref, total, TOL, TOL);
	free(x), free(y), free(ref);
}

static void
instance_norm_case(int64_t n, int64_t c, int64_t inner, float eps)
{
	int64_t total = n * c * inner;
	float *x = t_randf(total), *y = t_randf(total), *sc = t_randf(c), *bi = t_randf(c);
	double *ref = t_alloc((size_t)total * sizeof *ref);
	char what[64];

	for (int64_t b = 0; b < n; b++)
		for (int64_t ch = 0; ch < c; ch++) {
			const float *r = x + (b * c + ch) * inner;
			double sum = 0, sq = 0;
			for (int64_t i = 0; i < inner; i++)
				sum += r[i], sq += (double)r[i] * r[i];
			double mean = sum / inner, var = sq / inner - mean * mean;
			for (int64_t i = 0; i < inner; i++)
				ref[(b * c + ch) * inner + i] = (r[i] - mean) /
				    sqrt(var + eps) * sc[ch] + bi[ch];
		}
	kiln_instance_norm_f32(y, x, sc, bi, n, c, inner, eps);
	snprintf(what, sizeof what, "instance_norm [%lld,%lld,%lld]",
	         (long long)n, (long long)c, (long long)inner);
	t_close(what, y, ref, total, TOL, TOL);
	free(x), free(y), free(sc), free(bi), free(ref);
}

static void
test_norms(void)
{
	static const int64_t sizes[] = {1, 2, 3, 4, 5, 11};

	for (int k = 0; k < countof(sizes); k++) {
		lrn_case(2, 5, 6, sizes[k], 1e-4f, 0.75f, 1.0f);
		lrn_case(1, 1, 3, sizes[k], 0.5f, 1.5f, 2.0f);
		lrn_case(3, 4, 1, sizes[k], 0.3f, 0.5f, 1.5f);
	}
	instance_norm_case(2, 3, 20, 1e-5f);
	instance_norm_case(1, 5, 7, 0.01f);
	instance_norm_case(3, 1, 1, 1e-5f);
}

int
main(void)
{
	t_seed(0x6a09e667f3bcc909u);
	test_expand();
	test_tile();
	test_trilu();
	test_gather_elements();
	test_arg();
	test_hardmax();
	test_cumsum();
	test_reduce();
	test_norms();
	return t_report("data2 kernels");
}
