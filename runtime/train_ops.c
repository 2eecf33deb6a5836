/* train_ops.c: the kernels of the training ops (the last section of
 * ir/ops.def): relu's, conv2d's weight and maxpool2d's gradients,
 * training-mode dropout, and softmax cross-entropy with its gradient.
 *
 * The gradients reuse the forward kernels' own pieces, so forward and
 * backward cannot disagree: conv2d's weight gradient multiplies dy by the
 * forward kernel's im2col matrix, a piece at a time (kiln_conv2d_im2col()
 * in runtime/conv.c, then kiln_gemm_ld_f32()), maxpool2d's routes each dy
 * to kiln_maxpool2d_argmax_f32() (runtime/pool.c, what maxpool2d_indices
 * reports), and dropout draws its mask from kiln_splitmix64()
 * (runtime/random.c) as a pure function of (seed, step, position), so the
 * forward call on dy is its own gradient.  conv2d's weight gradient is
 * split over the threads (runtime/threads.c) by blocks of dw.
 * The losses sum in double; labels are checked before anything is written.
 */
#include <math.h>

#include "gemm_kern.h"
#include "kiln.h"

/* dy is read whatever x is, so the loop is a select the compiler can
 * vectorize rather than a branch per element (dx may be dy).  The
 * clones are static: clang gives an external function's no symbol. */
KILN_CLONES static void
relu_grad(float *dx, const float *dy, const float *x, int64_t n)
{
	for (int64_t i = 0; i < n; i++) {
		float g = dy[i];
		dx[i] = x[i] > 0 ? g : 0.0f;
	}
}

void
kiln_relu_grad_f32(float *dx, const float *dy, const float *x, int64_t n)
{
	relu_grad(dx, dy, x, n);
}

static void
zero(float *y, int64_t n)
{
	for (int64_t i = 0; i < n; i++)
		y[i] = 0.0f;
}

/* A block of one group of one image: dwg[rows, klo:khi] += dyg[rows,
 * oh*ow] @ col[klo:khi, :]^T, col the group's im2col matrix [K, oh*ow],
 * one piece of it at a time.  The columns are cut where they are with
 * the whole of dw, and an element's sum depends on that alone (see
 * runtime/gemm.c), not on the block. */
static void
grad_w_group(float *dwg, const float *xg, const float *dyg, float *col,
             int64_t rows, int64_t klo, int64_t khi,
             const struct kiln_conv2d *p)
{
	int64_t k = p->c / p->group * p->kh * p->kw;
	int64_t oplane = p->oh * p->ow, nr, nc, ld;

	kiln_conv2d_chunks(p, k, oplane, &nr, &nc);
	for (int64_t j0 = 0; j0 < oplane; j0 += nc)
		for (int64_t k0 = klo; k0 < khi; k0 += nr) {
			int64_t jn = nc < oplane - j0 ? nc : oplane - j0;
			int64_t kn = nr < khi - k0 ? nr : khi - k0;
			const float *m = kiln_conv2d_im2col(col, &ld, xg, k0, kn, j0,
			                                    jn, p);
			kiln_gemm_ld_f32(dwg + k0, k, dyg + j0, oplane, m, ld, rows,
			                 kn, jn, 0, 1, 1.0f, 1.0f);
		}
}

/* conv2d's weight gradient split over the threads: part u is column u
 * of dw[oc, K] (an element of the kernel window, by_k), else row u (an
 * output channel). */
struct grad_w_job {
	float *dw;
	const float *x, *dy;
	const struct kiln_conv2d *p;
	int by_k;
};

/* The block of dw of rows olo..ohi-1, columns klo..khi-1, summed over
 * the images in order as with one thread. */
static void
grad_w_block(const struct grad_w_job *s, int64_t olo, int64_t ohi,
             int64_t klo, int64_t khi)
{
	const struct kiln_conv2d *p = s->p;
	float col[KILN_CONV_COLBUF];
	int64_t cg = p->c / p->group, og = p->oc / p->group;
	int64_t k = cg * p->kh * p->kw, plane = p->h * p->w;
	int64_t oplane = p->oh * p->ow;

	for (int64_t o = olo; o < ohi; o++)
		zero(s->dw + o * k + klo, khi - klo);
	for (int64_t n = 0; n < p->n; n++)
		for (int64_t o = olo; o < ohi;) {    /* group by group */
			int64_t g = o / og, end = (g + 1) * og < ohi ? (g + 1) * og : ohi;
			grad_w_group(s->dw + o * k, s->x + (n * p->c + g * cg) * plane,
			             s->dy + (n * p->oc + o) * oplane, col, end - o, klo,
			             khi, p);
			o = end;
		}
}

static void
grad_w_part(void *ctx, int64_t lo, int64_t hi)
{
	const struct grad_w_job *s = ctx;
	int64_t k = s->p->c / s->p->group * s->p->kh * s->p->kw;

	if (s->by_k)
		grad_w_block(s, 0, s->p->oc, lo, hi);
	else
		grad_w_block(s, lo, hi, 0, k);
}

/* A thread owns a block of dw and adds every image into it, so no sum
 * crosses threads.  Splitting the columns splits the im2col work too, so
 * it is the choice unless there are fewer columns than rows (a first
 * layer's few input channels). */
void
kiln_conv2d_grad_w_f32(float *dw, const float *x, const float *dy,
                       const struct kiln_conv2d *p)
{
	int64_t k = p->c / p->group * p->kh * p->kw;
	struct grad_w_job s = {dw, x, dy, p, k >= p->oc};

	if (p->n * p->oc * p->oh * p->ow * k > KILN_PARALLEL_MIN)
		kiln_parallel_for(s.by_k ? k : p->oc, grad_w_part, &s);
	else
		grad_w_block(&s, 0, p->oc, 0, k);
}

/* kiln_maxpool2d_argmax_f32() for a window wholly inside plane xp, its
 * first tap at xp[r]: the first tap above every earlier one and -inf,
 * else the first tap. */
static int64_t
argmax_inside(const float *xp, int64_t r, const struct kiln_pool2d *p)
{
	float m = -INFINITY;
	int64_t at = r;

	for (int64_t u = 0; u < p->kh; u++)
		for (int64_t v = 0; v < p->kw; v++) {
			int64_t t = r + u * p->dh * p->w + v * p->dw;
			if (xp[t] > m) {
				m = xp[t];
				at = t;
			}
		}
	return at;
}

/* Each dy goes to its window's argmax; the windows wholly inside the
 * input (rows i0..i1-1, columns j0..j1-1 of the output, found once)
 * skip the bounds tests. */
void
kiln_maxpool2d_grad_f32(float *dx, const float *dy, const float *x,
                        const struct kiln_pool2d *p)
{
	int64_t plane = p->h * p->w, i0, i1, j0, j1;

	kiln_span(-p->pt, p->sh, p->h - (p->kh - 1) * p->dh, p->oh, &i0, &i1);
	kiln_span(-p->pl, p->sw, p->w - (p->kw - 1) * p->dw, p->ow, &j0, &j1);
	zero(dx, p->n * p->c * plane);
	for (int64_t nc = 0; nc < p->n * p->c; nc++) {
		const float *xp = x + nc * plane;
		float *dp = dx + nc * plane;
		for (int64_t i = 0; i < p->oh; i++)
			for (int64_t j = 0; j < p->ow; j++, dy++) {
				int64_t at;
				if (i >= i0 && i < i1 && j >= j0 && j < j1)
					at = argmax_inside(xp, (i * p->sh - p->pt) * p->w +
					                   j * p->sw - p->pl, p);
				else
					at = kiln_maxpool2d_argmax_f32(xp, i, j, p, 0);
				if (at >= 0)
					dp[at] += *dy;
			}
	}
}

/* Element i of the step's mask is kept when its uniform u(i) in [0, 1)
 * (53 bits of the stream whose state is output t of seed's) reaches
 * rate, which happens with probability 1 - rate. */
void
kiln_dropout_train_f32(float *y, const float *x, int64_t n, float rate,
                       uint64_t seed, int64_t t)
{
	uint64_t s = kiln_splitmix64(seed, (uint64_t)t);
	float scale = 1.0f / (1.0f - rate);

	for (int64_t i = 0; i < n; i++) {
		double u = (double)(kiln_splitmix64(s, (uint64_t)i) >> 11) * 0x1p-53;
		y[i] = u >= rate ? x[i] * scale : 0.0f;
	}
}

/* Label r of labels, of type t (checked by labels_status). */
static int64_t
label_at(const void *labels, kiln_dtype t, int64_t r)
{
	switch (t) {
	case KILN_I32: return ((const int32_t *)labels)[r];
	case KILN_I8: return ((const int8_t *)labels)[r];
	case KILN_U8: return ((const uint8_t *)labels)[r];
	default: return ((const int64_t *)labels)[r];
	}
}

/* KILN_OK when labels[n] has a label dtype and every label lies in
 * [0, c). */
static kiln_status
labels_status(const void *labels, kiln_dtype t, int64_t n, int64_t c)
{
	if (t != KILN_I64 && t != KILN_I32 && t != KILN_I8 && t != KILN_U8)
		return KILN_ERR_DTYPE;
	for (int64_t r = 0; r < n; r++) {
		int64_t k = label_at(labels, t, r);
		if (k < 0 || k >= c)
			return KILN_ERR_RANGE;
	}
	return KILN_OK;
}

/* The maximum of row z[c] in *m, and ln(sum e^(z - m)) over it. */
static double
log_sum_exp(const float *z, int64_t c, double *m)
{
	double s = 0;

	*m = z[0];
	for (int64_t k = 1; k < c; k++)
		*m = z[k] > *m ? z[k] : *m;
	for (int64_t k = 0; k < c; k++)
		s += exp(z[k] - *m);
	return log(s);
}

/* Row loss: -sum_k q[k] (z[k] - m - lse) = m + lse - sum_k q[k] z[k],
 * as q sums to 1.  The smoothing term is left out at ls = 0, where it
 * would turn an infinite logit's 0 * inf into NaN. */
kiln_status
kiln_softmax_cross_entropy_f32(float *loss, const float *z, const void *labels,
                               kiln_dtype label_type, int64_t n, int64_t c,
                               float label_smoothing)
{
	double ls = label_smoothing, total = 0;
	kiln_status st = labels_status(labels, label_type, n, c);

	if (st != KILN_OK)
		return st;
	for (int64_t r = 0; r < n; r++) {
		const float *zr = z + r * c;
		double m, lse = log_sum_exp(zr, c, &m), sum = 0;
		total += m + lse - (1 - ls) * zr[label_at(labels, label_type, r)];
		if (ls != 0) {
			for (int64_t k = 0; k < c; k++)
				sum += zr[k];
			total -= ls / (double)c * sum;
		}
	}
	*loss = (float)(total / (double)n);
	return KILN_OK;
}

kiln_status
kiln_softmax_cross_entropy_grad_f32(float *dz, const float *z,
                                    const void *labels, kiln_dtype label_type,
                                    const float *dloss, int64_t n, int64_t c,
                                    float label_smoothing)
{
	double ls = label_smoothing, scale = (double)*dloss / (double)n;
	kiln_status st = labels_status(labels, label_type, n, c);

	if (st != KILN_OK)
		return st;
	for (int64_t r = 0; r < n; r++) {
		const float *zr = z + r * c;
		int64_t y = label_at(labels, label_type, r);
		double m, lse = log_sum_exp(zr, c, &m);
		for (int64_t k = 0; k < c; k++) {
			double q = ls / (double)c + (k == y ? 1 - ls : 0);
			dz[r * c + k] = (float)((exp(zr[k] - m - lse) - q) * scale);
		}
	}
	return KILN_OK;
}
