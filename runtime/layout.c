/* layout.c: kernels that move elements without arithmetic (transpose,
 * slice, concat, gather) and pad, which also makes new ones (resize, the
 * other such kernel, has runtime/resize.c).
 *
 * The any-dtype kernels work on bytes: the caller passes the element size,
 * and copy_row() switches on it once per row, so one kernel serves every
 * dtype.  Transpose and slice are the same kernel, a copy through strides
 * (kiln_strided_copy); the compiler works out the strides and the start.
 * Pad works on esize-byte elements too and maps each output index to an
 * input index (or the fill value).
 */
#include <string.h>

#include "kiln.h"

/* y[j] = x[j*xs] for j < n elements of esize bytes; xs in elements. */
static void
copy_row(char *y, const char *x, int64_t xs, int64_t n, size_t esize)
{
	switch (esize) {
	case 1:
		for (int64_t j = 0; j < n; j++)
			y[j] = x[j * xs];
		break;
	case 4:
		for (int64_t j = 0; j < n; j++)
			memcpy(y + j * 4, x + j * xs * 4, 4);
		break;
	case 8:
		for (int64_t j = 0; j < n; j++)
			memcpy(y + j * 8, x + j * xs * 8, 8);
		break;
	default:
		for (int64_t j = 0; j < n; j++)
			memcpy(y + j * (int64_t)esize, x + j * xs * (int64_t)esize,
			       esize);
	}
}

void
kiln_strided_copy(void *y, const void *x, size_t esize, int rank,
                  const int64_t *ydim, const int64_t *xst, int64_t xoff)
{
	int64_t idx[KILN_MAXRANK] = {0}, rows = 1, len, off = xoff;
	char *yp = y;
	const char *xp = x;
	int k;

	if (rank == 0) {
		memcpy(y, xp + xoff * (int64_t)esize, esize);
		return;
	}
	for (int i = 0; i < rank - 1; i++)
		rows *= ydim[i];
	len = ydim[rank - 1];
	/* one row per index of the leading dims, idx counting like an
	 * odometer and off following it */
	for (int64_t r = 0; r < rows; r++) {
		copy_row(yp + r * len * (int64_t)esize, xp + off * (int64_t)esize,
		         xst[rank - 1], len, esize);
		for (k = rank - 2; k >= 0 && ++idx[k] == ydim[k]; k--) {
			idx[k] = 0;
			off -= xst[k] * (ydim[k] - 1);
		}
		if (k >= 0)
			off += xst[k];
	}
}

void
kiln_concat(void *y, const void *const *x, int nx, const int64_t *len,
            int64_t outer, int64_t inner, size_t esize)
{
	char *yp = y;

	for (int64_t o = 0; o < outer; o++) {
		for (int k = 0; k < nx; k++) {
			size_t n = (size_t)(len[k] * inner) * esize;
			memcpy(yp, (const char *)x[k] + (size_t)o * n, n);
			yp += n;
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
kiln_gather(void *y, const void *x, const void *idx, kiln_dtype idx_dtype,
            int64_t outer, int64_t len, int64_t nidx, int64_t inner,
            size_t esize)
{
	size_t row = (size_t)inner * esize;
	char *yp = y;

	if (idx_dtype != KILN_I64 && idx_dtype != KILN_I32)
		return KILN_ERR_DTYPE;
	for (int64_t j = 0; j < nidx; j++) {
		int64_t k = index_at(idx, idx_dtype, j);
		if (k < -len || k >= len)
			return KILN_ERR_RANGE;
	}
	for (int64_t o = 0; o < outer; o++) {
		const char *xo = (const char *)x + (size_t)(o * len) * row;
		for (int64_t j = 0; j < nidx; j++) {
			int64_t k = index_at(idx, idx_dtype, j);
			memcpy(yp, xo + (size_t)(k < 0 ? k + len : k) * row, row);
			yp += row;
		}
	}
	return KILN_OK;
}

/* The input index that output index j reads along dim d, or -1 for the
 * constant.  Negative pads crop first: the dim keeps input indices
 * lo..lo+n-1, and reflect and edge work on those. */
static int64_t
pad_source(int64_t j, int d, const struct kiln_pad *p)
{
	int64_t b = p->before[d], e = p->after[d];
	int64_t lo = b < 0 ? -b : 0, n = p->xdim[d] + (b < 0 ? b : 0) +
	                                  (e < 0 ? e : 0);
	int64_t i = j - (b > 0 ? b : 0);

	if (i < 0 || i >= n) {
		switch (p->mode) {
		case KILN_PAD_REFLECT: i = i < 0 ? -i : 2 * (n - 1) - i; break;
		case KILN_PAD_EDGE: i = i < 0 ? 0 : n - 1; break;
		default: return -1;
		}
	}
	return lo + i;
}

/* Offset in x of the row of output index idx[0..rank-1) (the last dim is
 * left out), or -1 when that row lies in the constant padding. */
static int64_t
pad_row(const int64_t *idx, const struct kiln_pad *p)
{
	int64_t off = 0;

	for (int d = 0; d < p->rank - 1; d++) {
		int64_t s = pad_source(idx[d], d, p);
		if (s < 0)
			return -1;
		off = off * p->xdim[d] + s;
	}
	return off * p->xdim[p->rank - 1];
}

void
kiln_pad(void *y, const void *x, size_t esize, const void *value,
         const struct kiln_pad *p)
{
	int64_t idx[KILN_MAXRANK] = {0}, ydim[KILN_MAXRANK], rows = 1;
	int last = p->rank - 1, k;
	const char *xb = x;
	char *yb = y;

	if (p->rank == 0) {
		memcpy(y, x, esize);
		return;
	}
	for (int d = 0; d <= last; d++)
		ydim[d] = p->before[d] + p->xdim[d] + p->after[d];
	for (int d = 0; d < last; d++)
		rows *= ydim[d];
	for (int64_t r = 0; r < rows; r++) {
		int64_t off = pad_row(idx, p);
		for (int64_t j = 0; j < ydim[last]; j++) {
			int64_t s = pad_source(j, last, p);
			memcpy(yb, off < 0 || s < 0 ? value : xb + (off + s) * esize,
			       esize);
			yb += esize;
		}
		for (k = last - 1; k >= 0 && ++idx[k] == ydim[k]; k--)
			idx[k] = 0;
	}
}

void
kiln_pad_f32(float *y, const float *x, const struct kiln_pad *p)
{
	kiln_pad(y, x, sizeof *y, &p->value, p);
}

