/* test_index.c: tests of the index kernels of runtime/index.c (gather_nd,
 * scatter_nd, scatter_elements, topk).
 *
 * Each kernel is compared with a naive reference written here another
 * way: gather_nd and the scatters element by element over unravelled
 * full-rank index vectors (the kernels copy rows and combine in 64-bit
 * arithmetic; the references use the element type's own C arithmetic),
 * topk as a selection of the best remaining element, lowest position
 * first among equals (the kernel inserts into a sorted list).  Outputs
 * must match byte for byte; out-of-range indices must fail with
 * KILN_ERR_RANGE and leave y alone.
 *
 *   test_index       all checks; exit status 1 on any failure
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kiln.h"
#include "testutil.h"

#define countof(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* n random elements of dtype t: small numbers, so products stay exact in
 * floats and wrap visibly in narrow integers. */
static void *
rand_data(kiln_dtype t, int64_t n)
{
	size_t es = kiln_dtype_size(t);
	unsigned char *p = t_alloc((size_t)n * es + 1);
	for (int64_t i = 0; i < n; i++) {
		int64_t v = t_irand(200) - 100;
		float f = (float)v / 8;
		double d = (double)v / 8;
		int32_t i32 = (int32_t)v * 1000003;
		int8_t i8 = (int8_t)v;
		uint8_t u8 = (uint8_t)(v + 100);
		const void *src = t == KILN_F32 ? (void *)&f : t == KILN_F64 ?
		                  (void *)&d : t == KILN_I64 ? (void *)&v :
		                  t == KILN_I32 ? (void *)&i32 : t == KILN_I8 ?
		                  (void *)&i8 : (void *)&u8;
		memcpy(p + i * (int64_t)es, src, es);
	}
	return p;
}

/* Random indices in [-len[k % m], len[k % m]) for n entries, both as i64
 * and i32. */
static void
rand_indices(int64_t *i64, int32_t *i32, int64_t n, const int64_t *len, int m)
{
	for (int64_t k = 0; k < n; k++) {
		int64_t l = len[k % m];
		i64[k] = t_irand(2 * l) - l;
		i32[k] = (int32_t)i64[k];
	}
}

/* ---- gather_nd ---------------------------------------------------- */

static void
gather_nd_case(int r, const int64_t *xd, int q, const int64_t *id, int b,
               kiln_dtype it, kiln_dtype dt)
{
	int m = (int)id[q - 1], yr = q - 1 + r - b - m;
	int64_t yd[KILN_MAXRANK], yi[KILN_MAXRANK], xi[KILN_MAXRANK];
	int64_t nidx = t_numel(q, id), nx = t_numel(r, xd);
	size_t es = kiln_dtype_size(dt);
	memcpy(yd, id, (q - 1) * sizeof *yd);
	memcpy(yd + q - 1, xd + b + m, (r - b - m) * sizeof *yd);
	int64_t ny = t_numel(yr, yd);
	unsigned char *x = rand_data(dt, nx), *y = rand_data(dt, ny);
	unsigned char *ref = t_alloc((size_t)ny * es), *save = t_alloc(ny * es);
	int64_t *i64 = t_alloc((size_t)nidx * 8);
	int32_t *i32 = t_alloc((size_t)nidx * 4);
	const void *idx = it == KILN_I64 ? (void *)i64 : (void *)i32;
	char what[96];

	rand_indices(i64, i32, nidx, xd + b, m);
	/* y[o] = x[batch coords of o, tuple at o's leading coords, rest of o] */
	for (int64_t f = 0; f < ny; f++) {
		t_unravel(f, yr, yd, yi);
		int64_t t = t_ravel(yi, q - 1, id);   /* which tuple */
		for (int d = 0; d < b; d++)
			xi[d] = yi[d];
		for (int j = 0; j < m; j++) {
			int64_t k = i64[t * m + j];
			xi[b + j] = k < 0 ? k + xd[b + j] : k;
		}
		for (int d = b + m; d < r; d++)
			xi[d] = yi[q - 1 + d - b - m];
		memcpy(ref + f * (int64_t)es, x + t_ravel(xi, r, xd) * (int64_t)es, es);
	}
	int64_t batch = t_numel(b, xd), ntuple = t_numel(q - 1 - b, id + b);
	int64_t inner = t_numel(r - b - m, xd + b + m);
	snprintf(what, sizeof what, "gather_nd rank %d/%d b %d m %d %s %s", r, q,
	         b, m, kiln_dtype_name(it), kiln_dtype_name(dt));
	t_expect(kiln_gather_nd(y, x, idx, it, batch, ntuple, m, xd + b, inner,
	                        es) == KILN_OK, what);
	t_bytes(what, y, ref, (size_t)ny * es);
	memcpy(save, y, (size_t)ny * es);
	i64[nidx - 1] = xd[b + m - 1], i32[nidx - 1] = (int32_t)xd[b + m - 1];
	t_expect(kiln_gather_nd(y, x, idx, it, batch, ntuple, m, xd + b, inner,
	                        es) == KILN_ERR_RANGE,
	         "gather_nd index out of range fails");
	t_bytes("gather_nd leaves y alone on error", y, save,
	        (size_t)ny * es);
	free(x), free(y), free(ref), free(save), free(i64), free(i32);
}

static void
test_gather_nd(void)
{
	static const int64_t x1[] = {2, 2}, i1[] = {2, 2};       /* ONNX ex. */
	static const int64_t x2[] = {4, 3, 5}, i2[] = {2, 3, 1};
	static const int64_t x3[] = {2, 3, 4}, i3[] = {2, 2};
	static const int64_t x4[] = {3, 4, 2, 5}, i4[] = {3, 2, 2}; /* b 1 */
	static const int64_t x5[] = {2, 3, 4, 2}, i5[] = {2, 3, 1, 2}; /* b 2 */
	static const int64_t x6[] = {6}, i6[] = {4, 1};
	static const kiln_dtype dts[] = {KILN_F32, KILN_I64, KILN_I8, KILN_F64};
	int64_t one = 1, idx = 0;
	float y;

	for (int t = 0; t < 2; t++)
		for (int e = 0; e < countof(dts); e++) {
			kiln_dtype it = t ? KILN_I32 : KILN_I64;
			gather_nd_case(2, x1, 2, i1, 0, it, dts[e]);
			gather_nd_case(3, x2, 3, i2, 0, it, dts[e]);
			gather_nd_case(3, x3, 2, i3, 0, it, dts[e]);
			gather_nd_case(4, x4, 3, i4, 1, it, dts[e]);
			gather_nd_case(4, x5, 4, i5, 2, it, dts[e]);
			gather_nd_case(1, x6, 2, i6, 0, it, dts[e]);
		}
	t_expect(kiln_gather_nd(&y, &y, &idx, KILN_F32, 1, 1, 1, &one, 1, 4) ==
	         KILN_ERR_DTYPE, "gather_nd refuses f32 indices");
}

/* ---- scatters: the reference's arithmetic, per element type ------- */

static void
ref_combine(void *y, const void *u, kiln_dtype t, int red)
{
	int add = red == KILN_SCATTER_ADD;
	if (red == KILN_SCATTER_NONE) {
		memcpy(y, u, kiln_dtype_size(t));
		return;
	}
	switch (t) {
	case KILN_F32: {
		float *a = y, b = *(const float *)u;
		*a = add ? *a + b : *a * b;
		break;
	}
	case KILN_F64: {
		double *a = y, b = *(const double *)u;
		*a = add ? *a + b : *a * b;
		break;
	}
	case KILN_I64: {
		uint64_t a = (uint64_t)*(int64_t *)y, b = (uint64_t)*(const int64_t *)u;
		*(int64_t *)y = (int64_t)(add ? a + b : a * b);
		break;
	}
	case KILN_I32: {
		uint32_t a = (uint32_t)*(int32_t *)y, b = (uint32_t)*(const int32_t *)u;
		*(int32_t *)y = (int32_t)(add ? a + b : a * b);
		break;
	}
	case KILN_I8: {
		unsigned a = (uint8_t)*(int8_t *)y, b = (uint8_t)*(const int8_t *)u;
		*(int8_t *)y = (int8_t)(uint8_t)(add ? a + b : a * b);
		break;
	}
	default: {
		unsigned a = *(uint8_t *)y, b = *(const uint8_t *)u;
		*(uint8_t *)y = (uint8_t)(add ? a + b : a * b);
	}
	}
}

/* ---- scatter_nd --------------------------------------------------- */

static void
scatter_nd_case(int r, const int64_t *xd, int q, const int64_t *id,
                kiln_dtype it, kiln_dtype dt, int red)
{
	int m = (int)id[q - 1], ur = q - 1 + r - m;
	int64_t ud[KILN_MAXRANK], ui[KILN_MAXRANK], xi[KILN_MAXRANK];
	int64_t nidx = t_numel(q, id), nx = t_numel(r, xd);
	size_t es = kiln_dtype_size(dt);
	memcpy(ud, id, (q - 1) * sizeof *ud);
	memcpy(ud + q - 1, xd + m, (r - m) * sizeof *ud);
	int64_t nu = t_numel(ur, ud);
	unsigned char *x = rand_data(dt, nx), *u = rand_data(dt, nu);
	unsigned char *y = rand_data(dt, nx), *ref = t_alloc((size_t)nx * es);
	unsigned char *save = t_alloc((size_t)nx * es);
	int64_t *i64 = t_alloc((size_t)nidx * 8);
	int32_t *i32 = t_alloc((size_t)nidx * 4);
	const void *idx = it == KILN_I64 ? (void *)i64 : (void *)i32;
	char what[96];

	rand_indices(i64, i32, nidx, xd, m);
	memcpy(ref, x, (size_t)nx * es);
	for (int64_t f = 0; f < nu; f++) {     /* in order: tuples ascend */
		t_unravel(f, ur, ud, ui);
		int64_t t = t_ravel(ui, q - 1, id);
		for (int j = 0; j < m; j++) {
			int64_t k = i64[t * m + j];
			xi[j] = k < 0 ? k + xd[j] : k;
		}
		for (int d = m; d < r; d++)
			xi[d] = ui[q - 1 + d - m];
		ref_combine(ref + t_ravel(xi, r, xd) * (int64_t)es,
		            u + f * (int64_t)es, dt, red);
	}
	snprintf(what, sizeof what, "scatter_nd rank %d/%d m %d %s %s red %d",
	         r, q, m, kiln_dtype_name(it), kiln_dtype_name(dt), red);
	int64_t ntuple = t_numel(q - 1, id), inner = t_numel(r - m, xd + m);
	t_expect(kiln_scatter_nd(y, x, idx, it, u, dt, red, ntuple, m, xd,
	                         inner) == KILN_OK, what);
	t_bytes(what, y, ref, (size_t)nx * es);
	memcpy(save, y, (size_t)nx * es);
	i64[0] = -xd[0] - 1, i32[0] = (int32_t)i64[0];
	t_expect(kiln_scatter_nd(y, x, idx, it, u, dt, red, ntuple, m, xd,
	                         inner) == KILN_ERR_RANGE,
	         "scatter_nd index out of range fails");
	t_bytes("scatter_nd leaves y alone on error", y, save,
	        (size_t)nx * es);
	free(x), free(u), free(y), free(ref), free(save), free(i64), free(i32);
}

static void
test_scatter_nd(void)
{
	static const int64_t x1[] = {4, 4, 4}, i1[] = {2, 1};   /* ONNX ex. */
	static const int64_t x2[] = {8}, i2[] = {12, 1};      /* duplicates */
	static const int64_t x3[] = {3, 2, 5}, i3[] = {2, 3, 2};
	static const int64_t x4[] = {2, 3}, i4[] = {7, 2};
	static const kiln_dtype dts[] = {KILN_F32, KILN_F64, KILN_I64, KILN_I32,
	                                 KILN_I8, KILN_U8};
	int64_t one = 1, idx = 0;
	float y = 0;

	for (int t = 0; t < 2; t++)
		for (int e = 0; e < countof(dts); e++)
			for (int red = 0; red < 3; red++) {
				kiln_dtype it = t ? KILN_I32 : KILN_I64;
				scatter_nd_case(3, x1, 2, i1, it, dts[e], red);
				scatter_nd_case(1, x2, 2, i2, it, dts[e], red);
				scatter_nd_case(3, x3, 3, i3, it, dts[e], red);
				scatter_nd_case(2, x4, 2, i4, it, dts[e], red);
			}
	scatter_nd_case(2, x4, 2, i4, KILN_I64, KILN_BOOL, KILN_SCATTER_NONE);
	t_expect(kiln_scatter_nd(&y, &y, &idx, KILN_I64, &y, KILN_BOOL,
	                         KILN_SCATTER_ADD, 1, 1, &one, 1) ==
	         KILN_ERR_ARG, "scatter_nd refuses add on bool");
	t_expect(kiln_scatter_nd(&y, &y, &idx, KILN_F32, &y, KILN_F32,
	                         KILN_SCATTER_NONE, 1, 1, &one, 1) ==
	         KILN_ERR_ARG, "scatter_nd refuses f32 indices");
}

/* ---- scatter_elements --------------------------------------------- */

static void
scatter_elements_case(int rank, const int64_t *xd, const int64_t *id,
                      int axis, kiln_dtype it, kiln_dtype dt, int red)
{
	int64_t nx = t_numel(rank, xd), ni = t_numel(rank, id), xi[KILN_MAXRANK];
	size_t es = kiln_dtype_size(dt);
	unsigned char *x = rand_data(dt, nx), *u = rand_data(dt, ni);
	unsigned char *y = rand_data(dt, nx), *ref = t_alloc((size_t)nx * es);
	unsigned char *save = t_alloc((size_t)nx * es);
	int64_t *i64 = t_alloc((size_t)ni * 8);
	int32_t *i32 = t_alloc((size_t)ni * 4);
	const void *idx = it == KILN_I64 ? (void *)i64 : (void *)i32;
	char what[96];

	rand_indices(i64, i32, ni, xd + axis, 1);
	memcpy(ref, x, (size_t)nx * es);
	for (int64_t f = 0; f < ni; f++) {
		t_unravel(f, rank, id, xi);
		xi[axis] = i64[f] < 0 ? i64[f] + xd[axis] : i64[f];
		ref_combine(ref + t_ravel(xi, rank, xd) * (int64_t)es,
		            u + f * (int64_t)es, dt, red);
	}
	snprintf(what, sizeof what, "scatter_elements rank %d axis %d %s %s "
	         "red %d", rank, axis, kiln_dtype_name(it), kiln_dtype_name(dt),
	         red);
	t_expect(kiln_scatter_elements(y, x, idx, it, u, dt, red, rank, xd, id,
	                               axis) == KILN_OK, what);
	t_bytes(what, y, ref, (size_t)nx * es);
	memcpy(save, y, (size_t)nx * es);
	i64[ni - 1] = xd[axis], i32[ni - 1] = (int32_t)xd[axis];
	t_expect(kiln_scatter_elements(y, x, idx, it, u, dt, red, rank, xd, id,
	                               axis) == KILN_ERR_RANGE,
	         "scatter_elements out of range fails");
	t_bytes("scatter_elements leaves y alone on error", y, save,
	        (size_t)nx * es);
	free(x), free(u), free(y), free(ref), free(save), free(i64), free(i32);
}

static void
test_scatter_elements(void)
{
	static const int64_t x1[] = {1, 5}, i1[] = {1, 2};       /* ONNX ex. */
	static const int64_t x2[] = {3, 3}, i2[] = {2, 3};
	static const int64_t x3[] = {3, 4, 5}, i3[] = {2, 6, 5};
	static const int64_t x4[] = {4}, i4[] = {9};
	static const kiln_dtype dts[] = {KILN_F32, KILN_F64, KILN_I64, KILN_I32,
	                                 KILN_I8, KILN_U8};

	for (int t = 0; t < 2; t++)
		for (int e = 0; e < countof(dts); e++)
			for (int red = 0; red < 3; red++) {
				kiln_dtype it = t ? KILN_I32 : KILN_I64;
				scatter_elements_case(2, x1, i1, 1, it, dts[e], red);
				scatter_elements_case(2, x2, i2, 0, it, dts[e], red);
				scatter_elements_case(3, x3, i3, 1, it, dts[e], red);
				scatter_elements_case(1, x4, i4, 0, it, dts[e], red);
			}
}

/* ---- topk --------------------------------------------------------- */

/* x[a] as a double (NaN stays NaN); ints here are small enough. */
static double
at(const void *x, kiln_dtype t, int64_t a)
{
	switch (t) {
	case KILN_F32: return ((const float *)x)[a];
	case KILN_F64: return ((const double *)x)[a];
	case KILN_I64: return (double)((const int64_t *)x)[a];
	case KILN_I32: return ((const int32_t *)x)[a];
	case KILN_I8: return ((const int8_t *)x)[a];
	default: return ((const uint8_t *)x)[a];
	}
}

/* Is a strictly better than b?  NaN beats numbers when largest and
 * loses to them when smallest. */
static int
better(double a, double b, int largest)
{
	if (isnan(a) || isnan(b))
		return largest ? isnan(a) && !isnan(b) : isnan(b) && !isnan(a);
	return largest ? a > b : a < b;
}

static void
topk_case(int64_t outer, int64_t len, int64_t inner, int64_t k, kiln_dtype t,
          int largest, int nan)
{
	size_t es = kiln_dtype_size(t);
	int64_t n = outer * len * inner, ny = outer * k * inner;
	unsigned char *x = rand_data(t, n);
	unsigned char *yv = t_alloc((size_t)ny * es), *rv = t_alloc(ny * es);
	int64_t *yi = t_alloc((size_t)ny * 8), *ri = t_alloc((size_t)ny * 8);
	char *taken = t_alloc((size_t)len);
	char what[96];

	/* duplicates: map to a few values; NaNs at random places */
	for (int64_t i = 0; i < n; i++) {
		double v = (double)t_irand(5) - 2;
		if (nan && t_irand(4) == 0)
			v = NAN;
		if (t == KILN_F32)
			((float *)x)[i] = (float)v;
		else if (t == KILN_F64)
			((double *)x)[i] = v;
		else if (t == KILN_I32)
			((int32_t *)x)[i] = (int32_t)v;
		else if (t == KILN_U8)
			((uint8_t *)x)[i] = (uint8_t)(v + 2);
	}
	for (int64_t o = 0; o < outer; o++)
		for (int64_t i = 0; i < inner; i++) {
			memset(taken, 0, (size_t)len);
			for (int64_t p = 0; p < k; p++) {
				int64_t best = -1;
				for (int64_t j = 0; j < len; j++) {
					double v = at(x, t, (o * len + j) * inner + i);
					if (!taken[j] && (best < 0 || better(v, at(x, t,
					    (o * len + best) * inner + i), largest)))
						best = j;
				}
				taken[best] = 1;
				int64_t yo = (o * k + p) * inner + i;
				ri[yo] = best;
				memcpy(rv + yo * (int64_t)es,
				       x + ((o * len + best) * inner + i) * (int64_t)es, es);
			}
		}
	snprintf(what, sizeof what, "topk %lldx%lldx%lld k %lld %s largest %d",
	         (long long)outer, (long long)len, (long long)inner, (long long)k,
	         kiln_dtype_name(t), largest);
	kiln_topk(yv, x, t, outer, len, inner, k, largest, 0);
	kiln_topk(yi, x, t, outer, len, inner, k, largest, 1);
	t_bytes(what, yv, rv, (size_t)ny * es);
	t_bytes(what, yi, ri, (size_t)ny * 8);
	free(x), free(yv), free(rv), free(yi), free(ri), free(taken);
}

static void
test_topk(void)
{
	static const kiln_dtype dts[] = {KILN_F32, KILN_F64, KILN_I32, KILN_U8};
	for (int e = 0; e < countof(dts); e++)
		for (int largest = 0; largest < 2; largest++) {
			int nan = dts[e] == KILN_F32 || dts[e] == KILN_F64;
			topk_case(3, 4, 1, 3, dts[e], largest, 0);
			topk_case(2, 7, 3, 4, dts[e], largest, nan);
			topk_case(1, 9, 2, 9, dts[e], largest, nan);
			topk_case(4, 5, 2, 1, dts[e], largest, nan);
			topk_case(1, 1, 1, 1, dts[e], largest, 0);
		}
}

int
main(void)
{
	t_seed(0xbb67ae8584caa73bu);
	test_gather_nd();
	test_scatter_nd();
	test_scatter_elements();
	test_topk();
	return t_report("index kernels");
}
