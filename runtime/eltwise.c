/* eltwise.c: elementwise kernels: broadcasting binary ops, activations,
 * softmax and the byte copy that implements reshape.
 *
 * A binary op first simplifies its iteration space (coalesce()): size-1
 * dimensions go, and neighbours that both operands walk contiguously merge.
 * Equal shapes thus become one flat loop (the fast path) and only genuine
 * broadcasting keeps an outer index vector.  The op is switched on once per
 * row, never per element.
 */
#include <math.h>
#include <string.h>

#include "kiln.h"
#include "kiln_scalar.h"

enum { ADD, SUB, MUL, DIV };

/* Drops size-1 dimensions and merges dimension i into the previous one
 * when both a and b step across it exactly as they would inside it.
 * Returns the new rank; d/sa/sb receive dims and strides. */
static int
coalesce(int rank, const int64_t *ydim, const int64_t *as, const int64_t *bs,
         int64_t *d, int64_t *sa, int64_t *sb)
{
	int r = 0;

	for (int i = 0; i < rank; i++) {
		if (ydim[i] == 1)
			continue;
		if (r > 0 && sa[r - 1] == as[i] * ydim[i] &&
		    sb[r - 1] == bs[i] * ydim[i]) {
			d[r - 1] *= ydim[i];
		} else {
			d[r] = ydim[i];
			r++;
		}
		sa[r - 1] = as[i];
		sb[r - 1] = bs[i];
	}
	return r;
}

/* y[j] = a[j*sa] op b[j*sb] for j < n. */
static void
row(int op, float *y, const float *a, int64_t sa, const float *b, int64_t sb,
    int64_t n)
{
	switch (op) {
	case ADD:
		for (int64_t j = 0; j < n; j++)
			y[j] = a[j * sa] + b[j * sb];
		break;
	case SUB:
		for (int64_t j = 0; j < n; j++)
			y[j] = a[j * sa] - b[j * sb];
		break;
	case MUL:
		for (int64_t j = 0; j < n; j++)
			y[j] = a[j * sa] * b[j * sb];
		break;
	case DIV:
		for (int64_t j = 0; j < n; j++)
			y[j] = a[j * sa] / b[j * sb];
		break;
	}
}

/* Runs row() over the last dimension for every index of the others, the
 * index vector idx counting like an odometer. */
static void
binary(int op, float *y, const float *a, const float *b, int rank,
       const int64_t *ydim, const int64_t *as, const int64_t *bs)
{
	int64_t d[KILN_MAXRANK], sa[KILN_MAXRANK], sb[KILN_MAXRANK];
	int64_t idx[KILN_MAXRANK] = {0}, oa = 0, ob = 0;
	int r, k;

	for (int i = 0; i < rank; i++)
		if (ydim[i] == 0)
			return;
	r = coalesce(rank, ydim, as, bs, d, sa, sb);
	if (r == 0) {
		row(op, y, a, 0, b, 0, 1);
		return;
	}
	for (;;) {
		row(op, y, a + oa, sa[r - 1], b + ob, sb[r - 1], d[r - 1]);
		y += d[r - 1];
		for (k = r - 2; k >= 0; k--) {
			oa += sa[k];
			ob += sb[k];
			if (++idx[k] < d[k])
				break;
			oa -= sa[k] * d[k];
			ob -= sb[k] * d[k];
			idx[k] = 0;
		}
		if (k < 0)
			return;
	}
}

void
kiln_add_f32(float *y, const float *a, const float *b, int rank,
             const int64_t *ydim, const int64_t *as, const int64_t *bs)
{
	binary(ADD, y, a, b, rank, ydim, as, bs);
}

void
kiln_sub_f32(float *y, const float *a, const float *b, int rank,
             const int64_t *ydim, const int64_t *as, const int64_t *bs)
{
	binary(SUB, y, a, b, rank, ydim, as, bs);
}

void
kiln_mul_f32(float *y, const float *a, const float *b, int rank,
             const int64_t *ydim, const int64_t *as, const int64_t *bs)
{
	binary(MUL, y, a, b, rank, ydim, as, bs);
}

void
kiln_div_f32(float *y, const float *a, const float *b, int rank,
             const int64_t *ydim, const int64_t *as, const int64_t *bs)
{
	binary(DIV, y, a, b, rank, ydim, as, bs);
}

void
kiln_relu_f32(float *y, const float *x, int64_t n)
{
	for (int64_t i = 0; i < n; i++)
		y[i] = kiln_s_relu(x[i]);
}

void
kiln_sigmoid_f32(float *y, const float *x, int64_t n)
{
	for (int64_t i = 0; i < n; i++)
		y[i] = kiln_s_sigmoid(x[i]);
}

void
kiln_tanh_f32(float *y, const float *x, int64_t n)
{
	for (int64_t i = 0; i < n; i++)
		y[i] = kiln_s_tanh(x[i]);
}

/* Softmax of the len elements x[0], x[st], x[2*st], ... into y likewise. */
static void
softmax_vec(float *y, const float *x, int64_t len, int64_t st)
{
	float m = -INFINITY, s = 0.0f;

	for (int64_t l = 0; l < len; l++)
		if (x[l * st] > m)
			m = x[l * st];
	for (int64_t l = 0; l < len; l++) {
		y[l * st] = expf(x[l * st] - m);
		s += y[l * st];
	}
	for (int64_t l = 0; l < len; l++)
		y[l * st] /= s;
}

void
kiln_softmax_f32(float *y, const float *x, int64_t outer, int64_t len,
                 int64_t inner)
{
	for (int64_t o = 0; o < outer; o++) {
		int64_t base = o * len * inner;
		for (int64_t t = 0; t < inner; t++)
			softmax_vec(y + base + t, x + base + t, len, inner);
	}
}

/* memmove, not memcpy: a planner may hand over overlapping buffers. */
void
kiln_copy(void *y, const void *x, size_t nbytes)
{
	if (y != x && nbytes > 0)
		memmove(y, x, nbytes);
}
