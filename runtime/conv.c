/* conv.c: 2-D convolution and transposed convolution, NCHW, with strides,
 * padding, dilation, groups.
 *
 * For each (image, output channel) the output plane starts as the bias and
 * each kernel tap (q,u,v) then adds w[o,q,u,v] times a strided window of
 * input plane q to it.  The rows and columns whose input position falls in
 * the padding are cut off beforehand (span()), so the inner loop has no
 * bounds tests and padding costs nothing.  Asymmetric padding needs no
 * parameter: the bottom/right pads are whatever oh and ow imply.  The
 * transposed convolution runs the same taps the other way, scattering
 * each input plane into the output (scatter_tap()).
 */
#include "kiln.h"

/* The output positions i in [*lo, *hi) of [0, n) whose input position
 * i*s + off lies in [0, len).  s >= 1. */
static void
span(int64_t off, int64_t s, int64_t len, int64_t n, int64_t *lo, int64_t *hi)
{
	int64_t a = off >= 0 ? 0 : (-off + s - 1) / s;
	int64_t b = len - off <= 0 ? 0 : (len - off - 1) / s + 1;

	*hi = b < n ? b : n;
	*lo = a < *hi ? a : *hi;
}

/* yp[oh,ow] += wv * (input plane xp[h,w] seen through tap (u,v)). */
static void
add_tap(float *yp, const float *xp, float wv, int64_t u, int64_t v,
        const struct kiln_conv2d *p)
{
	int64_t i0, i1, j0, j1;
	int64_t du = u * p->dh - p->pt, dv = v * p->dw - p->pl;

	span(du, p->sh, p->h, p->oh, &i0, &i1);
	span(dv, p->sw, p->w, p->ow, &j0, &j1);
	for (int64_t i = i0; i < i1; i++) {
		float *yr = yp + i * p->ow;
		int64_t xr = (i * p->sh + du) * p->w + dv;
		for (int64_t j = j0; j < j1; j++)
			yr[j] += wv * xp[xr + j * p->sw];
	}
}

/* Output plane yp of channel o, from the cg input planes of its group
 * starting at xg, with wo = w[o]. */
static void
conv_plane(float *yp, const float *xg, const float *wo, float bias,
           int64_t cg, const struct kiln_conv2d *p)
{
	int64_t plane = p->h * p->w;

	for (int64_t i = 0; i < p->oh * p->ow; i++)
		yp[i] = bias;
	for (int64_t q = 0; q < cg; q++) {
		const float *xq = xg + q * plane, *wq = wo + q * p->kh * p->kw;
		for (int64_t u = 0; u < p->kh; u++)
			for (int64_t v = 0; v < p->kw; v++)
				add_tap(yp, xq, wq[u * p->kw + v], u, v, p);
	}
}

void
kiln_conv2d_f32(float *y, const float *x, const float *w, const float *b,
                const struct kiln_conv2d *p)
{
	int64_t cg = p->c / p->group, og = p->oc / p->group;
	int64_t plane = p->h * p->w, oplane = p->oh * p->ow;

	for (int64_t n = 0; n < p->n; n++) {
		for (int64_t o = 0; o < p->oc; o++) {
			const float *xg = x + (n * p->c + o / og * cg) * plane;
			conv_plane(y + (n * p->oc + o) * oplane, xg,
			           w + o * cg * p->kh * p->kw, b ? b[o] : 0.0f,
			           cg, p);
		}
	}
}

/* Transposed convolution, tap by tap: yp[oh,ow] += wv * xp[h,w] scattered
 * through tap (u,v), input (i,j) landing on output (i*sh - pt + u*dh,
 * j*sw - pl + v*dw).  span() keeps the inputs that land inside. */
static void
scatter_tap(float *yp, const float *xp, float wv, int64_t u, int64_t v,
            const struct kiln_conv2d *p)
{
	int64_t i0, i1, j0, j1;
	int64_t du = u * p->dh - p->pt, dv = v * p->dw - p->pl;

	span(du, p->sh, p->oh, p->h, &i0, &i1);
	span(dv, p->sw, p->ow, p->w, &j0, &j1);
	for (int64_t i = i0; i < i1; i++) {
		const float *xr = xp + i * p->w;
		int64_t yr = (i * p->sh + du) * p->ow + dv;
		for (int64_t j = j0; j < j1; j++)
			yp[yr + j * p->sw] += wv * xr[j];
	}
}

void
kiln_conv2d_transpose_f32(float *y, const float *x, const float *w,
                          const float *b, const struct kiln_conv2d *p)
{
	int64_t cg = p->c / p->group, og = p->oc / p->group;
	int64_t plane = p->h * p->w, oplane = p->oh * p->ow, taps = p->kh * p->kw;

	for (int64_t n = 0; n < p->n; n++) {
		for (int64_t o = 0; o < p->oc; o++) {
			float *yp = y + (n * p->oc + o) * oplane;
			for (int64_t i = 0; i < oplane; i++)
				yp[i] = b ? b[o] : 0.0f;
			for (int64_t c = o / og * cg; c < (o / og + 1) * cg; c++) {
				const float *xp = x + (n * p->c + c) * plane;
				const float *wc = w + (c * og + o % og) * taps;
				for (int64_t u = 0; u < p->kh; u++)
					for (int64_t v = 0; v < p->kw; v++)
						scatter_tap(yp, xp, wc[u * p->kw + v], u, v, p);
			}
		}
	}
}
