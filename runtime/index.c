/* index.c: the index ops ONNX needs beyond gather: gather_nd, scatter_nd,
 * scatter_elements (all on esize-byte elements of any dtype, arithmetic
 * per dtype for the add and mul reductions) and topk.
 *
 * Index kernels check every index before writing anything, so a run that
 * fails with KILN_ERR_RANGE leaves y untouched.  Scatters copy x to y and
 * then apply the updates in index order, so with reduction "none" the
 * last update of an element wins.  topk keeps its best k per line in the
 * output itself (insertion, O(len * k)), since kernels allocate nothing.
 */
#include <string.h>

#include "kiln.h"

/* Index i of idx as an int64_t. */
static int64_t
index_at(const void *idx, kiln_dtype t, int64_t i)
{
	if (t == KILN_I32)
		return ((const int32_t *)idx)[i];
	return ((const int64_t *)idx)[i];
}

static int
bad_index_dtype(kiln_dtype t)
{
	return t != KILN_I64 && t != KILN_I32;
}

/* Are all n tuples of m indices in range, entry j against dim[j]? */
static int
tuples_ok(const void *idx, kiln_dtype t, int64_t n, int m,
          const int64_t *dim)
{
	for (int64_t i = 0; i < n * m; i++) {
		int64_t k = index_at(idx, t, i), len = dim[i % m];
		if (k < -len || k >= len)
			return 0;
	}
	return 1;
}

/* Element offset, in units of the slice after the m dims, of tuple t. */
static int64_t
tuple_offset(const void *idx, kiln_dtype it, int64_t t, int m,
             const int64_t *dim)
{
	int64_t off = 0;
	for (int j = 0; j < m; j++) {
		int64_t k = index_at(idx, it, t * m + j);
		off = off * dim[j] + (k < 0 ? k + dim[j] : k);
	}
	return off;
}

kiln_status
kiln_gather_nd(void *y, const void *x, const void *idx, kiln_dtype idx_dtype,
               int64_t batch, int64_t ntuple, int m, const int64_t *dim,
               int64_t inner, size_t esize)
{
	int64_t span = inner;           /* elements of x per batch */
	size_t row = (size_t)inner * esize;
	char *yp = y;

	if (bad_index_dtype(idx_dtype))
		return KILN_ERR_DTYPE;
	if (!tuples_ok(idx, idx_dtype, batch * ntuple, m, dim))
		return KILN_ERR_RANGE;
	for (int j = 0; j < m; j++)
		span *= dim[j];
	for (int64_t b = 0; b < batch; b++) {
		const char *xb = (const char *)x + b * span * (int64_t)esize;
		for (int64_t t = 0; t < ntuple; t++, yp += row) {
			int64_t off = tuple_offset(idx, idx_dtype, b * ntuple + t, m, dim);
			memcpy(yp, xb + off * (int64_t)row, row);
		}
	}
	return KILN_OK;
}

/* ---- the reductions of a scatter ---- */

/* *y = *y op *u for one element of dtype t.  Floats combine in double
 * (exact for one add or mul of f32 operands, then rounded once); integers
 * in uint64_t, which wraps as the narrow type would once truncated. */
static void
combine(void *y, const void *u, kiln_dtype t, int red)
{
	switch (t) {
	case KILN_F32: {
		float a, b;
		memcpy(&a, y, 4), memcpy(&b, u, 4);
		a = red == KILN_SCATTER_ADD ? (float)((double)a + b) :
		                              (float)((double)a * b);
		memcpy(y, &a, 4);
		return;
	}
	case KILN_F64: {
		double a, b;
		memcpy(&a, y, 8), memcpy(&b, u, 8);
		a = red == KILN_SCATTER_ADD ? a + b : a * b;
		memcpy(y, &a, 8);
		return;
	}
	default: {
		/* little-endian two's complement: the low bytes of the 64-bit
		 * result are the narrow result */
		size_t n = kiln_dtype_size(t);
		uint64_t a = 0, b = 0;
		memcpy(&a, y, n), memcpy(&b, u, n);
		a = red == KILN_SCATTER_ADD ? a + b : a * b;
		memcpy(y, &a, n);
	}
	}
}

/* Writes update u (n elements) over y with the reduction. */
static void
apply(char *y, const char *u, int64_t n, kiln_dtype t, int red)
{
	size_t es = kiln_dtype_size(t);
	if (red == KILN_SCATTER_NONE) {
		memcpy(y, u, (size_t)n * es);
		return;
	}
	for (int64_t i = 0; i < n; i++)
		combine(y + i * (int64_t)es, u + i * (int64_t)es, t, red);
}

static int
bad_scatter(kiln_dtype t, kiln_dtype it, int red)
{
	if (t >= KILN_NDTYPE || bad_index_dtype(it))
		return 1;
	if (red == KILN_SCATTER_NONE)
		return 0;
	return (red != KILN_SCATTER_ADD && red != KILN_SCATTER_MUL) ||
	       t == KILN_BOOL;
}

kiln_status
kiln_scatter_nd(void *y, const void *x, const void *idx, kiln_dtype idx_dtype,
                const void *upd, kiln_dtype dtype, int reduction,
                int64_t ntuple, int m, const int64_t *dim, int64_t inner)
{
	int64_t n = inner;
	size_t es = kiln_dtype_size(dtype);

	if (bad_scatter(dtype, idx_dtype, reduction))
		return KILN_ERR_ARG;
	if (!tuples_ok(idx, idx_dtype, ntuple, m, dim))
		return KILN_ERR_RANGE;
	for (int j = 0; j < m; j++)
		n *= dim[j];
	if (y != x)
		memcpy(y, x, (size_t)n * es);
	for (int64_t t = 0; t < ntuple; t++) {
		int64_t off = tuple_offset(idx, idx_dtype, t, m, dim);
		apply((char *)y + off * inner * (int64_t)es,
		      (const char *)upd + t * inner * (int64_t)es, inner, dtype,
		      reduction);
	}
	return KILN_OK;
}

/* Advances the index vector i over dims dim[0..rank) like an odometer. */
static void
next_index(int64_t *i, const int64_t *dim, int rank)
{
	for (int d = rank - 1; d >= 0; d--) {
		if (++i[d] < dim[d])
			return;
		i[d] = 0;
	}
}

kiln_status
kiln_scatter_elements(void *y, const void *x, const void *idx,
                      kiln_dtype idx_dtype, const void *upd, kiln_dtype dtype,
                      int reduction, int rank, const int64_t *xdim,
                      const int64_t *idim, int axis)
{
	int64_t i[KILN_MAXRANK] = {0}, xst[KILN_MAXRANK], nx = 1, n = 1;
	int64_t len = xdim[axis];
	int64_t es = (int64_t)kiln_dtype_size(dtype);

	if (bad_scatter(dtype, idx_dtype, reduction))
		return KILN_ERR_ARG;
	for (int d = rank - 1; d >= 0; d--) {
		xst[d] = nx;
		nx *= xdim[d];
		n *= idim[d];
	}
	for (int64_t f = 0; f < n; f++) {
		int64_t k = index_at(idx, idx_dtype, f);
		if (k < -len || k >= len)
			return KILN_ERR_RANGE;
	}
	if (y != x)
		memcpy(y, x, (size_t)(nx * es));
	/* Update f goes to its own index vector i with i[axis] replaced. */
	for (int64_t f = 0; f < n; f++) {
		int64_t k = index_at(idx, idx_dtype, f), off = 0;
		for (int d = 0; d < rank; d++)
			off += (d == axis ? (k < 0 ? k + len : k) : i[d]) * xst[d];
		apply((char *)y + off * es, (const char *)upd + f * es, 1, dtype,
		      reduction);
		next_index(i, idim, rank);
	}
	return KILN_OK;
}

/* ---- topk ---- */

/* Does element a of dtype t rank before element b?  Larger first (or
 * smaller when !largest), NaN larger than any number; ties do not. */
static int
before(const void *a, const void *b, kiln_dtype t, int largest)
{
	double x, y;
	int64_t i, j;
	switch (t) {
	case KILN_F32: x = *(const float *)a, y = *(const float *)b; break;
	case KILN_F64: x = *(const double *)a, y = *(const double *)b; break;
	case KILN_I64: i = *(const int64_t *)a, j = *(const int64_t *)b;
		return largest ? i > j : i < j;
	case KILN_I32: i = *(const int32_t *)a, j = *(const int32_t *)b;
		return largest ? i > j : i < j;
	case KILN_I8: i = *(const int8_t *)a, j = *(const int8_t *)b;
		return largest ? i > j : i < j;
	default: i = *(const uint8_t *)a, j = *(const uint8_t *)b;
		return largest ? i > j : i < j;
	}
	if (x != x || y != y)
		return largest ? x != x && y == y : y != y && x == x;
	return largest ? x > y : x < y;
}

/* One line of x (len elements, stride st elements) into its k slots of y
 * (stride st too): the values, or their positions when indices. */
static void
topk_line(char *y, const char *x, kiln_dtype t, int64_t len, int64_t st,
          int64_t k, int largest, int indices)
{
	int64_t es = (int64_t)kiln_dtype_size(t), ys = indices ? 8 : es;
	int64_t have = 0;
	for (int64_t j = 0; j < len; j++) {
		const char *v = x + j * st * es;
		/* the slot p the new element takes: after every kept element it
		 * does not rank before, so equal elements keep their order */
		int64_t p = have;
		while (p > 0) {
			const char *w = y + (p - 1) * st * ys;
			if (indices)
				w = x + *(const int64_t *)w * st * es;
			if (!before(v, w, t, largest))
				break;
			p--;
		}
		if (p == k)
			continue;
		int64_t last = have < k ? have : k - 1;
		for (int64_t q = last; q > p; q--)
			memcpy(y + q * st * ys, y + (q - 1) * st * ys, (size_t)ys);
		if (indices)
			memcpy(y + p * st * ys, &j, 8);
		else
			memcpy(y + p * st * ys, v, (size_t)es);
		if (have < k)
			have++;
	}
}

void
kiln_topk(void *y, const void *x, kiln_dtype dtype, int64_t outer,
          int64_t len, int64_t inner, int64_t k, int largest, int indices)
{
	int64_t es = (int64_t)kiln_dtype_size(dtype), ys = indices ? 8 : es;
	for (int64_t o = 0; o < outer; o++)
		for (int64_t i = 0; i < inner; i++)
			topk_line((char *)y + (o * k * inner + i) * ys,
			          (const char *)x + (o * len * inner + i) * es, dtype,
			          len, inner, k, largest, indices);
}
