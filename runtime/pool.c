/* pool.c: 2-D and 3-D max and average pooling, NCHW and NCDHW.
 *
 * The reference form is one output element at a time: walk the kh x kw
 * window, skipping taps that fall in the padding.  2-D max pooling gets
 * the same bits faster: 2x2 windows of stride 2 a row at a time, the
 * others a block of rows at a time from phase.h's copy of the input,
 * or a row at a time where that copy does not fit.  Max pooling never
 * sees the padding (a window wholly in it yields -INFINITY); average
 * pooling divides by kh*kw when
 * count_include_pad, else by the taps inside the input (0 taps yield 0).
 * A 3-D window is the 2-D windows of the depth taps inside the input,
 * combined: the same plane code serves both.  maxpool2d_indices reports
 * where each max of a 2-D window is.
 */
#include <math.h>
#include <stdbool.h>

#include "gemm_kern.h"
#include "kiln.h"
#include "phase.h"

/* Where in plane xp the max of the window of output (i,j) is: the first
 * tap holding it, in window order, as h*W + w, or w*H + h when col_major;
 * -1 when no tap exceeds -inf (all -inf or NaN, or none inside the input).
 * *first is the first tap inside the input, -1 for none. */
static int64_t
argmax_window(const float *xp, int64_t i, int64_t j,
              const struct kiln_pool2d *p, int col_major, int64_t *first)
{
	float m = -INFINITY;
	int64_t at = -1;

	*first = -1;
	for (int64_t u = 0; u < p->kh; u++) {
		int64_t ih = i * p->sh - p->pt + u * p->dh;
		if (ih < 0 || ih >= p->h)
			continue;
		for (int64_t v = 0; v < p->kw; v++) {
			int64_t iw = j * p->sw - p->pl + v * p->dw;
			if (iw < 0 || iw >= p->w)
				continue;
			int64_t pos = col_major ? iw * p->h + ih : ih * p->w + iw;
			if (*first < 0)
				*first = pos;
			if (xp[ih * p->w + iw] > m) {
				m = xp[ih * p->w + iw];
				at = pos;
			}
		}
	}
	return at;
}

/* argmax_window()'s tap, or when nothing exceeds -inf the first tap
 * inside the input: where maxpool2d_indices and maxpool2d_grad (runtime/
 * train_ops.c) put the max; -1 for a window wholly in the padding. */
int64_t
kiln_maxpool2d_argmax_f32(const float *xp, int64_t i, int64_t j,
                          const struct kiln_pool2d *p, int col_major)
{
	int64_t first, at = argmax_window(xp, i, j, p, col_major, &first);
	return at < 0 ? first : at;
}

/* Max of the window of output (i,j) over input plane xp: padding never
 * wins, and a window with nothing above -inf gives -inf. */
static float
max_window(const float *xp, int64_t i, int64_t j, const struct kiln_pool2d *p)
{
	int64_t first, at = argmax_window(xp, i, j, p, 0, &first);
	return at < 0 ? -INFINITY : xp[at];
}

/* Adds the taps of the window of output (i,j) over input plane xp that
 * lie inside the input to *s, and their number to *cnt. */
static void
sum_window(const float *xp, int64_t i, int64_t j, const struct kiln_pool2d *p,
           float *s, int64_t *cnt)
{
	for (int64_t u = 0; u < p->kh; u++) {
		int64_t ih = i * p->sh - p->pt + u * p->dh;
		if (ih < 0 || ih >= p->h)
			continue;
		for (int64_t v = 0; v < p->kw; v++) {
			int64_t iw = j * p->sw - p->pl + v * p->dw;
			if (iw >= 0 && iw < p->w) {
				*s += xp[ih * p->w + iw];
				(*cnt)++;
			}
		}
	}
}

/* Mean of the window of output (i,j) over input plane xp. */
static float
avg_window(const float *xp, int64_t i, int64_t j, const struct kiln_pool2d *p)
{
	float s = 0.0f;
	int64_t cnt = 0;

	sum_window(xp, i, j, p, &s, &cnt);
	if (p->count_include_pad)
		cnt = p->kh * p->kw;
	return cnt ? s / (float)cnt : 0.0f;
}

/* Output row i over plane xp, a tap at a time over the
 * whole row: each output takes its taps in window order, as
 * max_window() does (padding skipped, NaN never wins), but the loops
 * run along the row, without per-tap tests. */
static inline void
max_row(float *restrict yr, const float *restrict xp, int64_t i,
        const struct kiln_pool2d *p)
{
	for (int64_t j = 0; j < p->ow; j++)
		yr[j] = -INFINITY;
	for (int64_t u = 0; u < p->kh; u++) {
		int64_t ih = i * p->sh - p->pt + u * p->dh, lo, hi;
		if (ih < 0 || ih >= p->h)
			continue;
		const float *xr = xp + ih * p->w;
		for (int64_t v = 0; v < p->kw; v++) {
			int64_t off = v * p->dw - p->pl;
			kiln_span(off, p->sw, p->w, p->ow, &lo, &hi);
			if (p->sw == 2)         /* a constant stride vectorizes */
				for (int64_t j = lo; j < hi; j++) {
					float t = xr[2 * j + off];
					yr[j] = t > yr[j] ? t : yr[j];
				}
			else
				for (int64_t j = lo; j < hi; j++) {
					float t = xr[j * p->sw + off];
					yr[j] = t > yr[j] ? t : yr[j];
				}
		}
	}
}

/* The most common window, 2x2 of stride 2 without padding, where every
 * window lies inside the input: max_row()'s four taps in one pass with
 * constant strides, which vectorizes. */
static inline void
max_row_2x2(float *restrict yr, const float *restrict x0, int64_t w,
            int64_t ow)
{
	const float *x1 = x0 + w;

	for (int64_t j = 0; j < ow; j++) {
		float m = -INFINITY, a = x0[2 * j], b = x0[2 * j + 1],
		      c = x1[2 * j], d = x1[2 * j + 1];
		m = a > m ? a : m;
		m = b > m ? b : m;
		m = c > m ? c : m;
		yr[j] = d > m ? d : m;
	}
}

/* Floats of max_block()'s buffers, as the depthwise conv's (conv.c):
 * a block of outputs that stays in L1 while every tap passes over it,
 * and the copy of the input it reads. */
enum { MAXBLOCK = 2048, MAXIN = 8192 };

/* ob[t] = the max of ob[t] and the next three, two or one taps' xs[t]
 * for t < n, taken in the order given. */
static inline void
max_taps(float *restrict ob, int64_t n, const float *const *xs, int cnt)
{
	const float *restrict x0 = xs[0], *restrict x1 = xs[cnt > 1],
	            *restrict x2 = xs[cnt > 2 ? 2 : 0];

	for (int64_t t = 0; t < n; t++) {
		float m = ob[t], a = x0[t], b = x1[t], c = x2[t];
		m = a > m ? a : m;
		if (cnt > 1)
			m = b > m ? b : m;
		if (cnt > 2)
			m = c > m ? c : m;
		ob[t] = m;
	}
}

/* Output rows i0..i0+rows-1 of plane y, from phase.h's copy of the
 * input rows they read with -inf in the padding: each tap in window
 * order is one pass over the whole block, where the rows path above
 * takes a loop per row and tap, most of it overhead on short rows
 * (SqueezeNet's 3x3 pools of stride 2 over 55 to 13 columns).  -inf
 * never wins, so the result is max_window()'s. */
KILN_CLONES static void
max_block(float *restrict y, const float *restrict xp, int64_t i0,
          int64_t rows, const struct kiln_phase *gm,
          const struct kiln_conv2d *c)
{
	_Alignas(64) float xb[MAXIN + KILN_PHASE_VPAD];
	_Alignas(64) float ob[MAXBLOCK + KILN_PHASE_VPAD];
	int64_t q = gm->q, ntap = c->kh * c->kw;
	int64_t m = (rows * q + KILN_PHASE_VPAD - 1) / KILN_PHASE_VPAD *
	            KILN_PHASE_VPAD;

	kiln_phase_copy(xb, xp, -INFINITY, i0, gm, c);
	for (int64_t t = 0; t < m; t++)
		ob[t] = -INFINITY;
	for (int64_t s = 0; s < ntap; s += 3) {
		const float *xs[3] = {xb, xb, xb};
		int cnt = (int)(ntap - s < 3 ? ntap - s : 3);
		for (int k = 0; k < cnt; k++)
			xs[k] = xb + gm->off[s + k];
		max_taps(ob, m, xs, cnt);
	}
	for (int64_t i = 0; i < rows; i++)
		for (int64_t j = 0; j < c->ow; j++)
			y[(i0 + i) * c->ow + j] = ob[i * q + j];
}

/* Output plane y over input plane xp: 2x2 windows of stride 2 a row at
 * a time; others by max_block() when gm is not NULL, else a row at a
 * time. */
KILN_CLONES static void
max_plane(float *restrict y, const float *restrict xp,
          const struct kiln_pool2d *p, const struct kiln_phase *gm,
          const struct kiln_conv2d *c)
{
	int two = p->kh == 2 && p->kw == 2 && p->sh == 2 && p->sw == 2 &&
	          p->pt == 0 && p->pl == 0 && p->dh == 1 && p->dw == 1 &&
	          2 * p->oh <= p->h && 2 * p->ow <= p->w;

	if (!two && gm) {
		for (int64_t i0 = 0; i0 < p->oh; i0 += gm->rows)
			max_block(y, xp, i0, p->oh - i0 < gm->rows ? p->oh - i0 :
			          gm->rows, gm, c);
		return;
	}
	for (int64_t i = 0; i < p->oh; i++, y += p->ow)
		if (two)
			max_row_2x2(y, xp + 2 * i * p->w, p->w, p->ow);
		else
			max_row(y, xp, i, p);
}

void
kiln_maxpool2d_f32(float *y, const float *x, const struct kiln_pool2d *p)
{
	/* the window as a conv's, for phase.h */
	struct kiln_conv2d c = {1, 1, p->h, p->w, 1, p->kh, p->kw, p->oh,
	                        p->ow, p->sh, p->sw, p->pt, p->pl, p->dh,
	                        p->dw, 1};
	struct kiln_phase gm;
	int padded = p->oh > 0 && p->ow > 0 &&
	             kiln_phase_geometry(&gm, &c, MAXBLOCK, MAXIN);

	for (int64_t nc = 0; nc < p->n * p->c; nc++, y += p->oh * p->ow)
		max_plane(y, x + nc * p->h * p->w, p, padded ? &gm : NULL, &c);
}

void
kiln_maxpool2d_indices_f32(int64_t *y, const float *x,
                           const struct kiln_pool2d *p, int col_major)
{
	for (int64_t nc = 0; nc < p->n * p->c; nc++) {
		const float *xp = x + nc * p->h * p->w;
		for (int64_t i = 0; i < p->oh; i++)
			for (int64_t j = 0; j < p->ow; j++) {
				int64_t at = kiln_maxpool2d_argmax_f32(xp, i, j, p,
				                                       col_major);
				*y++ = at < 0 ? -1 : nc * p->h * p->w + at;
			}
	}
}

void
kiln_avgpool2d_f32(float *y, const float *x, const struct kiln_pool2d *p)
{
	for (int64_t nc = 0; nc < p->n * p->c; nc++) {
		const float *xp = x + nc * p->h * p->w;
		for (int64_t i = 0; i < p->oh; i++)
			for (int64_t j = 0; j < p->ow; j++)
				*y++ = avg_window(xp, i, j, p);
	}
}

/* Output (k,i,j) of a 3-D pool over the volume xv: the max, or the mean
 * when avg. */
static float
window3d(const float *xv, int64_t k, int64_t i, int64_t j,
         const struct kiln_pool3d *p, bool avg)
{
	const struct kiln_pool2d *q = &p->hw;
	float m = -INFINITY, s = 0.0f;
	int64_t cnt = 0;

	for (int64_t a = 0; a < p->kd; a++) {
		int64_t id = k * p->sd - p->pf + a * p->dd;
		if (id < 0 || id >= p->d)
			continue;
		const float *xp = xv + id * q->h * q->w;
		if (avg) {
			sum_window(xp, i, j, q, &s, &cnt);
		} else {
			float v = max_window(xp, i, j, q);
			if (v > m)
				m = v;
		}
	}
	if (!avg)
		return m;
	if (q->count_include_pad)
		cnt = p->kd * q->kh * q->kw;
	return cnt ? s / (float)cnt : 0.0f;
}

static void
pool3d(float *y, const float *x, const struct kiln_pool3d *p, bool avg)
{
	const struct kiln_pool2d *q = &p->hw;

	for (int64_t nc = 0; nc < q->n * q->c; nc++) {
		const float *xv = x + nc * p->d * q->h * q->w;
		for (int64_t k = 0; k < p->od; k++)
			for (int64_t i = 0; i < q->oh; i++)
				for (int64_t j = 0; j < q->ow; j++)
					*y++ = window3d(xv, k, i, j, p, avg);
	}
}

void
kiln_maxpool3d_f32(float *y, const float *x, const struct kiln_pool3d *p)
{
	pool3d(y, x, p, false);
}

void
kiln_avgpool3d_f32(float *y, const float *x, const struct kiln_pool3d *p)
{
	pool3d(y, x, p, true);
}
