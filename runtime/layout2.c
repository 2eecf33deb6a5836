/* layout2.c: element moves for the ONNX data-movement ops: tile, trilu
 * and gather_elements.  (expand, depth_to_space and space_to_depth need no
 * kernel of their own: the compiler turns them into kiln_strided_copy,
 * broadcast dims getting stride 0.)
 *
 * Like layout.c these work on esize-byte elements of any dtype and walk
 * the output in order with an odometer over its index vector, so each
 * output element is written exactly once.
 */
#include <string.h>

#include "kiln.h"

/* Advances the index vector idx over dims dim[0..rank) like an odometer;
 * returns the lowest dim that changed, or -1 when it wrapped around. */
static int
next_index(int64_t *idx, const int64_t *dim, int rank)
{
	for (int d = rank - 1; d >= 0; d--) {
		if (++idx[d] < dim[d])
			return d;
		idx[d] = 0;
	}
	return -1;
}

void
kiln_tile(void *y, const void *x, size_t esize, int rank,
          const int64_t *xdim, const int64_t *reps)
{
	int64_t ydim[KILN_MAXRANK], idx[KILN_MAXRANK] = {0}, rows = 1;
	int64_t es = (int64_t)esize;
	char *yp = y;

	if (rank == 0) {
		memcpy(y, x, esize);
		return;
	}
	for (int d = 0; d < rank; d++)
		ydim[d] = xdim[d] * reps[d];
	for (int d = 0; d < rank - 1; d++)
		rows *= ydim[d];
	/* Each output row is its source row of x repeated reps[rank-1] times;
	 * the source row's offset comes from the leading indices mod xdim. */
	int64_t len = xdim[rank - 1] * es;
	for (int64_t r = 0; r < rows; r++) {
		int64_t off = 0;
		for (int d = 0; d < rank - 1; d++)
			off = off * xdim[d] + idx[d] % xdim[d];
		for (int64_t k = 0; k < reps[rank - 1]; k++, yp += len)
			memcpy(yp, (const char *)x + off * len, (size_t)len);
		next_index(idx, ydim, rank - 1);
	}
}

void
kiln_trilu(void *y, const void *x, size_t esize, int64_t batch, int64_t rows,
           int64_t cols, int upper, int64_t k)
{
	int64_t es = (int64_t)esize;
	char *yp = y;
	const char *xp = x;

	for (int64_t b = 0; b < batch; b++) {
		for (int64_t i = 0; i < rows; i++) {
			for (int64_t j = 0; j < cols; j++) {
				/* j - i cannot overflow: both are below 2^60 */
				int keep = upper ? j - i >= k : j - i <= k;
				if (keep)
					memcpy(yp, xp, esize);
				else
					memset(yp, 0, esize);
				yp += es;
				xp += es;
			}
		}
	}
}

/* Index i of idx as an int64_t. */
static int64_t
index_at(const void *idx, kiln_dtype t, int64_t i)
{
	if (t == KILN_I32)
		return ((const int32_t *)idx)[i];
	return ((const int64_t *)idx)[i];
}

kiln_status
kiln_gather_elements(void *y, const void *x, const void *idx,
                     kiln_dtype idx_dtype, int rank, const int64_t *xdim,
                     const int64_t *idim, int axis, size_t esize)
{
	int64_t i[KILN_MAXRANK] = {0}, n = 1, len = xdim[axis];
	int64_t xst[KILN_MAXRANK], st = 1;
	char *yp = y;

	if (idx_dtype != KILN_I64 && idx_dtype != KILN_I32)
		return KILN_ERR_DTYPE;
	for (int d = 0; d < rank; d++)
		n *= idim[d];
	for (int64_t f = 0; f < n; f++) {
		int64_t k = index_at(idx, idx_dtype, f);
		if (k < -len || k >= len)
			return KILN_ERR_RANGE;
	}
	for (int d = rank - 1; d >= 0; d--) {
		xst[d] = st;
		st *= xdim[d];
	}
	/* Output element i reads x at i with i[axis] replaced by its index. */
	for (int64_t f = 0; f < n; f++) {
		int64_t k = index_at(idx, idx_dtype, f), off = 0;
		for (int d = 0; d < rank; d++)
			off += (d == axis ? (k < 0 ? k + len : k) : i[d]) * xst[d];
		memcpy(yp + f * (int64_t)esize,
		       (const char *)x + off * (int64_t)esize, esize);
		next_index(i, idim, rank);
	}
	return KILN_OK;
}
