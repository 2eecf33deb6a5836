/* reduce.c: reductions (sum, mean, max, min, product over any set of
 * dimensions) and log_softmax.
 *
 * A reduction first splits the dimensions of x into the kept and the
 * reduced ones (split()): size-1 dimensions go, and neighbours of the same
 * kind merge, as they are contiguous in a dense tensor.  Reducing the last
 * axis thus becomes one flat inner loop per output, and axes = [0, 2] of a
 * rank-3 tensor a strided one.  Each output element is gathered in double
 * from its reduced elements, so y is written once and never accumulated.
 */
#include <math.h>

#include "kiln.h"

enum { SUM, MEAN, MAX, MIN, PROD };

/* Dimensions with their strides in x, innermost first. */
struct dims {
	int n;
	int64_t dim[KILN_MAXRANK], st[KILN_MAXRANK];
};

static void
split(int rank, const int64_t *dim, unsigned mask, struct dims *keep,
      struct dims *red)
{
	int64_t st = 1;
	int last = -1;      /* kind of the last dim placed: 0 kept, 1 reduced */

	keep->n = red->n = 0;
	for (int d = rank - 1; d >= 0; d--) {
		int r = mask >> d & 1;
		struct dims *s = r ? red : keep;
		if (dim[d] == 1)
			continue;
		if (r == last) {
			s->dim[s->n - 1] *= dim[d];
		} else {
			s->dim[s->n] = dim[d];
			s->st[s->n] = st;
			s->n++;
		}
		last = r;
		st *= dim[d];
	}
}

/* The next index of an odometer over dims 1.. of s (dim 0 is the inner
 * loop), moving *off along; false when it wraps around. */
static int
step(const struct dims *s, int64_t *idx, int64_t *off)
{
	for (int k = 1; k < s->n; k++) {
		*off += s->st[k];
		if (++idx[k] < s->dim[k])
			return 1;
		*off -= s->st[k] * s->dim[k];
		idx[k] = 0;
	}
	return 0;
}

/* Sum (or, for MAX and MIN, the maximum or minimum, NaN winning; for
 * PROD, the product) of the elements of x that red spans. */
static double
gather(int op, const float *x, const struct dims *red)
{
	int64_t idx[KILN_MAXRANK] = {0}, off = 0;
	int64_t n0 = red->n ? red->dim[0] : 1, s0 = red->n ? red->st[0] : 0;
	double acc = op == MAX ? -INFINITY : op == MIN ? INFINITY :
	             op == PROD ? 1.0 : 0.0;

	do {
		const float *p = x + off;
		if (op == MAX) {
			/* once acc is NaN, nothing compares greater */
			for (int64_t i = 0; i < n0; i++)
				if (p[i * s0] > acc || isnan(p[i * s0]))
					acc = p[i * s0];
		} else if (op == MIN) {
			for (int64_t i = 0; i < n0; i++)
				if (p[i * s0] < acc || isnan(p[i * s0]))
					acc = p[i * s0];
		} else if (op == PROD) {
			for (int64_t i = 0; i < n0; i++)
				acc *= p[i * s0];
		} else {
			for (int64_t i = 0; i < n0; i++)
				acc += p[i * s0];
		}
	} while (step(red, idx, &off));
	return acc;
}

static void
reduce(int op, float *y, const float *x, int rank, const int64_t *dim,
       unsigned mask)
{
	struct dims keep, red;
	int64_t idx[KILN_MAXRANK] = {0}, off = 0, count = 1;

	for (int d = 0; d < rank; d++)
		if (mask >> d & 1)
			count *= dim[d];
	split(rank, dim, mask, &keep, &red);
	int64_t n0 = keep.n ? keep.dim[0] : 1, s0 = keep.n ? keep.st[0] : 0;
	do {
		for (int64_t i = 0; i < n0; i++) {
			double v = gather(op, x + off + i * s0, &red);
			*y++ = (float)(op == MEAN ? v / (double)count : v);
		}
	} while (step(&keep, idx, &off));
}

void
kiln_reduce_sum_f32(float *y, const float *x, int rank, const int64_t *dim,
                    unsigned mask)
{
	reduce(SUM, y, x, rank, dim, mask);
}

void
kiln_reduce_mean_f32(float *y, const float *x, int rank, const int64_t *dim,
                     unsigned mask)
{
	reduce(MEAN, y, x, rank, dim, mask);
}

void
kiln_reduce_max_f32(float *y, const float *x, int rank, const int64_t *dim,
                    unsigned mask)
{
	reduce(MAX, y, x, rank, dim, mask);
}

void
kiln_reduce_min_f32(float *y, const float *x, int rank, const int64_t *dim,
                    unsigned mask)
{
	reduce(MIN, y, x, rank, dim, mask);
}

void
kiln_reduce_prod_f32(float *y, const float *x, int rank, const int64_t *dim,
                     unsigned mask)
{
	reduce(PROD, y, x, rank, dim, mask);
}

/* Log-softmax of the len elements x[0], x[st], ... into y likewise:
 * (x - m) - ln(sum e^(x - m)) with m the maximum, so nothing overflows. */
static void
log_softmax_vec(float *y, const float *x, int64_t len, int64_t st)
{
	float m = -INFINITY, s = 0.0f, lse;

	for (int64_t l = 0; l < len; l++)
		if (x[l * st] > m)
			m = x[l * st];
	for (int64_t l = 0; l < len; l++)
		s += expf(x[l * st] - m);
	lse = logf(s);
	for (int64_t l = 0; l < len; l++)
		y[l * st] = (x[l * st] - m) - lse;
}

void
kiln_log_softmax_f32(float *y, const float *x, int64_t outer, int64_t len,
                     int64_t inner)
{
	for (int64_t o = 0; o < outer; o++) {
		int64_t base = o * len * inner;
		for (int64_t t = 0; t < inner; t++)
			log_softmax_vec(y + base + t, x + base + t, len, inner);
	}
}
