/* conv.c: 2-D and 3-D convolution and transposed convolution, NCHW and
 * NCDHW, with strides, padding, dilation, groups.
 *
 * For each (image, output channel) the output plane starts as the bias and
 * each kernel tap (q,u,v) then adds w[o,q,u,v] times a strided window of
 * input plane q to it.  The rows and columns whose input position falls in
 * the padding are cut off beforehand (span()), so the inner loop has no
 * bounds tests and padding costs nothing.  Asymmetric padding needs no
 * parameter: the bottom/right pads are whatever oh and ow imply.  The
 * transposed convolution runs the same taps the other way, scattering
 * each input plane into the output (scatter_tap()).  The 3-D kernels
 * loop over the depth taps and hand each (output plane, input plane) pair
 * to the same 2-D plane code, so the depth costs no inner-loop work.
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

/* The adjoint of add_tap(): the sum over output plane dyp of dy times
 * input plane xp seen through tap (u,v), conv2d's weight gradient from
 * one (image, output channel, input channel) (runtime/train_ops.c). */
float
kiln_conv2d_tap_dot(const float *dyp, const float *xp, int64_t u, int64_t v,
                    const struct kiln_conv2d *p)
{
	int64_t r0, r1, c0, c1;
	int64_t top = u * p->dh - p->pt, left = v * p->dw - p->pl;
	float s = 0.0f;

	span(top, p->sh, p->h, p->oh, &r0, &r1);
	span(left, p->sw, p->w, p->ow, &c0, &c1);
	for (int64_t i = r0; i < r1; i++) {
		const float *dyr = dyp + i * p->ow;
		const float *xr = xp + (i * p->sh + top) * p->w + left;
		for (int64_t j = c0; j < c1; j++)
			s += dyr[j] * xr[j * p->sw];
	}
	return s;
}

/* yp += input plane xq correlated with the kh x kw kernel slice wq. */
static void
add_plane(float *yp, const float *xq, const float *wq,
          const struct kiln_conv2d *p)
{
	for (int64_t u = 0; u < p->kh; u++)
		for (int64_t v = 0; v < p->kw; v++)
			add_tap(yp, xq, wq[u * p->kw + v], u, v, p);
}

static void
fill(float *y, int64_t n, float v)
{
	for (int64_t i = 0; i < n; i++)
		y[i] = v;
}

/* Output plane yp of channel o, from the cg input planes of its group
 * starting at xg, with wo = w[o]. */
static void
conv_plane(float *yp, const float *xg, const float *wo, float bias,
           int64_t cg, const struct kiln_conv2d *p)
{
	int64_t plane = p->h * p->w;

	fill(yp, p->oh * p->ow, bias);
	for (int64_t q = 0; q < cg; q++)
		add_plane(yp, xg + q * plane, wo + q * p->kh * p->kw, p);
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

/* 3-D: output plane (n,o,i) adds, for every input channel q of the group
 * and depth tap a that lands inside the input (depth i*sd - pf + a*dd),
 * that input plane correlated with the kernel slice w[o,q,a]. */
void
kiln_conv3d_f32(float *y, const float *x, const float *w, const float *b,
                const struct kiln_conv3d *p)
{
	const struct kiln_conv2d *q = &p->hw;
	int64_t cg = q->c / q->group, og = q->oc / q->group;
	int64_t plane = q->h * q->w, oplane = q->oh * q->ow, taps = q->kh * q->kw;

	for (int64_t n = 0; n < q->n; n++)
	for (int64_t o = 0; o < q->oc; o++)
	for (int64_t i = 0; i < p->od; i++) {
		float *yp = y + ((n * q->oc + o) * p->od + i) * oplane;
		const float *xg = x + (n * q->c + o / og * cg) * p->d * plane;
		fill(yp, oplane, b ? b[o] : 0.0f);
		for (int64_t c = 0; c < cg; c++)
			for (int64_t a = 0; a < p->kd; a++) {
				int64_t id = i * p->sd - p->pf + a * p->dd;
				if (id >= 0 && id < p->d)
					add_plane(yp, xg + (c * p->d + id) * plane,
					          w + ((o * cg + c) * p->kd + a) * taps, q);
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

/* yp += input plane xp scattered through the kh x kw kernel slice wc. */
static void
scatter_plane(float *yp, const float *xp, const float *wc,
              const struct kiln_conv2d *p)
{
	for (int64_t u = 0; u < p->kh; u++)
		for (int64_t v = 0; v < p->kw; v++)
			scatter_tap(yp, xp, wc[u * p->kw + v], u, v, p);
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
			fill(yp, oplane, b ? b[o] : 0.0f);
			for (int64_t c = o / og * cg; c < (o / og + 1) * cg; c++)
				scatter_plane(yp, x + (n * p->c + c) * plane,
				              w + (c * og + o % og) * taps, p);
		}
	}
}

/* 3-D transposed: input plane (n,c,i) scatters through depth tap a onto
 * output plane i*sd - pf + a*dd, when that lies inside the output. */
void
kiln_conv3d_transpose_f32(float *y, const float *x, const float *w,
                          const float *b, const struct kiln_conv3d *p)
{
	const struct kiln_conv2d *q = &p->hw;
	int64_t cg = q->c / q->group, og = q->oc / q->group;
	int64_t plane = q->h * q->w, oplane = q->oh * q->ow, taps = q->kh * q->kw;

	for (int64_t n = 0; n < q->n; n++) {
		for (int64_t o = 0; o < q->oc; o++) {
			float *yv = y + (n * q->oc + o) * p->od * oplane;
			fill(yv, p->od * oplane, b ? b[o] : 0.0f);
			for (int64_t c = o / og * cg; c < (o / og + 1) * cg; c++)
			for (int64_t i = 0; i < p->d; i++)
			for (int64_t a = 0; a < p->kd; a++) {
				int64_t id = i * p->sd - p->pf + a * p->dd;
				if (id >= 0 && id < p->od)
					scatter_plane(yv + id * oplane,
					              x + ((n * q->c + c) * p->d + i) * plane,
					              w + ((c * og + o % og) * p->kd + a) * taps,
					              q);
			}
		}
	}
}
