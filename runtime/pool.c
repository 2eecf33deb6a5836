/* pool.c: 2-D max and average pooling, NCHW.
 *
 * One output element at a time: walk the kh x kw window, skipping taps that
 * fall in the padding.  Max pooling never sees the padding (a window wholly
 * in it yields -INFINITY); average pooling divides by kh*kw when
 * count_include_pad, else by the taps inside the input (0 taps yield 0).
 */
#include <math.h>

#include "kiln.h"

/* Max of the window of output (i,j) over input plane xp, dilations dh/dw. */
static float
max_window(const float *xp, int64_t i, int64_t j, const struct kiln_pool2d *p)
{
	float m = -INFINITY;

	for (int64_t u = 0; u < p->kh; u++) {
		int64_t ih = i * p->sh - p->pt + u * p->dh;
		if (ih < 0 || ih >= p->h)
			continue;
		for (int64_t v = 0; v < p->kw; v++) {
			int64_t iw = j * p->sw - p->pl + v * p->dw;
			if (iw >= 0 && iw < p->w && xp[ih * p->w + iw] > m)
				m = xp[ih * p->w + iw];
		}
	}
	return m;
}

/* Mean of the window of output (i,j) over input plane xp, dilations
 * dh/dw. */
static float
avg_window(const float *xp, int64_t i, int64_t j, const struct kiln_pool2d *p)
{
	float s = 0.0f;
	int64_t cnt = 0;

	for (int64_t u = 0; u < p->kh; u++) {
		int64_t ih = i * p->sh - p->pt + u * p->dh;
		if (ih < 0 || ih >= p->h)
			continue;
		for (int64_t v = 0; v < p->kw; v++) {
			int64_t iw = j * p->sw - p->pl + v * p->dw;
			if (iw >= 0 && iw < p->w) {
				s += xp[ih * p->w + iw];
				cnt++;
			}
		}
	}
	if (p->count_include_pad)
		cnt = p->kh * p->kw;
	return cnt ? s / (float)cnt : 0.0f;
}

void
kiln_maxpool2d_f32(float *y, const float *x, const struct kiln_pool2d *p)
{
	for (int64_t nc = 0; nc < p->n * p->c; nc++) {
		const float *xp = x + nc * p->h * p->w;
		for (int64_t i = 0; i < p->oh; i++)
			for (int64_t j = 0; j < p->ow; j++)
				*y++ = max_window(xp, i, j, p);
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
