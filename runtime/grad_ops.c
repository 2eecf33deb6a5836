/* grad_ops.c: the gradient kernels of the pools and of conv3d, f32
 * (average pooling's in 2-D and 3-D, 3-D max pooling's and conv3d's
 * weight gradient; the 2-D ones of max pooling and conv2d are in
 * train_ops.c).
 *
 * Each walks the windows of the forward op as runtime/pool.c and
 * runtime/conv.c do, and sends dy back along the same taps: average
 * pooling spreads dy / count over the taps inside the input, counted as
 * the forward kernel counts them; max pooling routes dy to the first tap
 * holding the window's maximum, the one the forward kernel returns;
 * conv3d's weight gradient sums kiln_conv2d_tap_dot() (runtime/conv.c,
 * the adjoint of the forward kernel's plane code) over the depth taps.
 * Each kernel writes its whole result.
 */
#include <math.h>

#include "kiln.h"

static void
zero(float *y, int64_t n)
{
	for (int64_t i = 0; i < n; i++)
		y[i] = 0.0f;
}

/* The input rows (or columns) tap positions o*s - p + u*d, u < k, of
 * output position o, in [0, len): tap u lands at *first + u*d, and
 * taps [*lo, *hi) are inside. */
static void
taps(int64_t o, int64_t s, int64_t p, int64_t d, int64_t k, int64_t len,
     int64_t *first, int64_t *lo, int64_t *hi)
{
	*first = o * s - p;
	*lo = 0;
	while (*lo < k && *first + *lo * d < 0)
		(*lo)++;
	*hi = *lo;
	while (*hi < k && *first + *hi * d < len)
		(*hi)++;
}

/* Adds g to each tap of the window of output (i,j) inside plane xp[h,w];
 * returns how many there are. */
static int64_t
spread(float *xp, int64_t i, int64_t j, float g, const struct kiln_pool2d *p)
{
	int64_t r0, u0, u1, c0, v0, v1;

	taps(i, p->sh, p->pt, p->dh, p->kh, p->h, &r0, &u0, &u1);
	taps(j, p->sw, p->pl, p->dw, p->kw, p->w, &c0, &v0, &v1);
	for (int64_t u = u0; u < u1; u++)
		for (int64_t v = v0; v < v1; v++)
			xp[(r0 + u * p->dh) * p->w + c0 + v * p->dw] += g;
	return (u1 - u0) * (v1 - v0);
}

/* The number of taps of the window of output (i,j) inside the plane. */
static int64_t
inside(int64_t i, int64_t j, const struct kiln_pool2d *p)
{
	int64_t f, u0, u1, v0, v1;

	taps(i, p->sh, p->pt, p->dh, p->kh, p->h, &f, &u0, &u1);
	taps(j, p->sw, p->pl, p->dw, p->kw, p->w, &f, &v0, &v1);
	return (u1 - u0) * (v1 - v0);
}

void
kiln_avgpool2d_grad_f32(float *dx, const float *dy,
                        const struct kiln_pool2d *p)
{
	int64_t plane = p->h * p->w;

	zero(dx, p->n * p->c * plane);
	for (int64_t nc = 0; nc < p->n * p->c; nc++)
		for (int64_t i = 0; i < p->oh; i++)
			for (int64_t j = 0; j < p->ow; j++, dy++) {
				int64_t cnt = p->count_include_pad ? p->kh * p->kw :
				              inside(i, j, p);
				if (cnt > 0)
					spread(dx + nc * plane, i, j, *dy / (float)cnt, p);
			}
}

/* 3-D: the depth taps inside the input, each a 2-D window. */
void
kiln_avgpool3d_grad_f32(float *dx, const float *dy,
                        const struct kiln_pool3d *p)
{
	const struct kiln_pool2d *q = &p->hw;
	int64_t plane = q->h * q->w, vol = p->d * plane;

	zero(dx, q->n * q->c * vol);
	for (int64_t nc = 0; nc < q->n * q->c; nc++)
		for (int64_t k = 0; k < p->od; k++) {
			int64_t f, a0, a1;
			taps(k, p->sd, p->pf, p->dd, p->kd, p->d, &f, &a0, &a1);
			for (int64_t i = 0; i < q->oh; i++)
				for (int64_t j = 0; j < q->ow; j++, dy++) {
					int64_t cnt = q->count_include_pad ?
					              p->kd * q->kh * q->kw :
					              (a1 - a0) * inside(i, j, q);
					if (cnt == 0)
						continue;
					for (int64_t a = a0; a < a1; a++)
						spread(dx + nc * vol + (f + a * p->dd) * plane, i, j,
						       *dy / (float)cnt, q);
				}
		}
}

/* Where in volume xv[d,h,w] the max of the window of output (k,i,j) is:
 * the first tap holding it, in window order, as the forward kernel picks
 * it (a later tap wins only when strictly larger); with no tap above
 * -inf the first tap inside; -1 for none inside. */
static int64_t
argmax3d(const float *xv, int64_t k, int64_t i, int64_t j,
         const struct kiln_pool3d *p)
{
	const struct kiln_pool2d *q = &p->hw;
	int64_t fd, a0, a1, fr, u0, u1, fc, v0, v1, at = -1, first = -1;
	float m = -INFINITY;

	taps(k, p->sd, p->pf, p->dd, p->kd, p->d, &fd, &a0, &a1);
	taps(i, q->sh, q->pt, q->dh, q->kh, q->h, &fr, &u0, &u1);
	taps(j, q->sw, q->pl, q->dw, q->kw, q->w, &fc, &v0, &v1);
	for (int64_t a = a0; a < a1; a++)
		for (int64_t u = u0; u < u1; u++)
			for (int64_t v = v0; v < v1; v++) {
				int64_t pos = ((fd + a * p->dd) * q->h + fr + u * q->dh) *
				              q->w + fc + v * q->dw;
				if (first < 0)
					first = pos;
				if (xv[pos] > m) {
					m = xv[pos];
					at = pos;
				}
			}
	return at < 0 ? first : at;
}

void
kiln_maxpool3d_grad_f32(float *dx, const float *dy, const float *x,
                        const struct kiln_pool3d *p)
{
	const struct kiln_pool2d *q = &p->hw;
	int64_t vol = p->d * q->h * q->w;

	zero(dx, q->n * q->c * vol);
	for (int64_t nc = 0; nc < q->n * q->c; nc++)
		for (int64_t k = 0; k < p->od; k++)
			for (int64_t i = 0; i < q->oh; i++)
				for (int64_t j = 0; j < q->ow; j++, dy++) {
					int64_t at = argmax3d(x + nc * vol, k, i, j, p);
					if (at >= 0)
						dx[nc * vol + at] += *dy;
				}
}

/* For each image, output channel, output depth and depth tap landing
 * inside the input, every (input channel of the group, 2-D tap) adds one
 * plane dot product, as kiln_conv2d_grad_w_f32 does without the depth. */
void
kiln_conv3d_grad_w_f32(float *dw, const float *x, const float *dy,
                       const struct kiln_conv3d *p)
{
	const struct kiln_conv2d *q = &p->hw;
	int64_t cg = q->c / q->group, og = q->oc / q->group;
	int64_t plane = q->h * q->w, oplane = q->oh * q->ow, taps2 = q->kh * q->kw;

	zero(dw, q->oc * cg * p->kd * taps2);
	for (int64_t n = 0; n < q->n; n++)
	for (int64_t o = 0; o < q->oc; o++)
	for (int64_t i = 0; i < p->od; i++) {
		const float *dyp = dy + ((n * q->oc + o) * p->od + i) * oplane;
		const float *xg = x + (n * q->c + o / og * cg) * p->d * plane;
		for (int64_t a = 0; a < p->kd; a++) {
			int64_t id = i * p->sd - p->pf + a * p->dd;
			if (id < 0 || id >= p->d)
				continue;
			for (int64_t c = 0; c < cg; c++) {
				float *dwa = dw + ((o * cg + c) * p->kd + a) * taps2;
				const float *xp = xg + (c * p->d + id) * plane;
				for (int64_t t = 0; t < taps2; t++)
					dwa[t] += kiln_conv2d_tap_dot(dyp, xp, t / q->kw,
					                              t % q->kw, q);
			}
		}
	}
}
