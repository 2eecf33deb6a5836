/* test_grad_ops.c: tests of the gradient kernels of runtime/grad_ops.c
 * (avgpool2d_grad, avgpool3d_grad, maxpool3d_grad, conv3d_grad_w).
 *
 * Each kernel is checked against a reference written another way, in
 * double, that tests every tap against the input's bounds: the average
 * pools' against a per-window spread of dy / count, with windows partly
 * or wholly in the padding, counted or not; maxpool3d's against a window
 * walk with ties, -inf and NaN runs; conv3d's weight gradient against the
 * 9-loop sum of its definition.  Each is also checked through its adjoint
 * identity against the forward kernel itself, <f(x), dy> = <x, f'(dy)>
 * (<conv3d(x, w), dy> = <w, dw>), so backward cannot drift from forward.
 *
 *   test_grad_ops     all checks; the last line is the summary
 */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kiln.h"
#include "testutil.h"

#define countof(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* Output size of a window along one dim, as the shape rule computes it. */
static int64_t
out_size(int64_t size, int64_t k, int64_t s, int64_t p0, int64_t p1,
         int64_t d, int ceil)
{
	int64_t room = size + p0 + p1 - d * (k - 1) - 1;
	return (ceil ? (room + s - 1) / s : room / s) + 1;
}

/* One window case: 2-D when d = kd = sd = dd = 1 and the depth pads are
 * 0.  pads: front, top, left, back, bottom, right. */
struct win {
	int64_t n, c, d, h, w, kd, kh, kw, sd, sh, sw;
	int64_t pf, pt, pl, pk, pb, pr, dd, dh, dw;
	int ceil, cip;
	int fill;            /* maxpool: 0 random ties, 1 -inf and NaN runs */
};

static struct kiln_pool3d
pool_params(const struct win *t)
{
	return (struct kiln_pool3d){
		.hw = {
			.n = t->n, .c = t->c, .h = t->h, .w = t->w,
			.oh = out_size(t->h, t->kh, t->sh, t->pt, t->pb, t->dh, t->ceil),
			.ow = out_size(t->w, t->kw, t->sw, t->pl, t->pr, t->dw, t->ceil),
			.kh = t->kh, .kw = t->kw, .sh = t->sh, .sw = t->sw,
			.pt = t->pt, .pl = t->pl, .dh = t->dh, .dw = t->dw,
			.count_include_pad = t->cip,
		},
		.d = t->d,
		.od = out_size(t->d, t->kd, t->sd, t->pf, t->pk, t->dd, t->ceil),
		.kd = t->kd, .sd = t->sd, .pf = t->pf, .dd = t->dd,
	};
}

static void
describe(char *buf, size_t size, const char *op, const struct win *t)
{
	snprintf(buf, size, "%s x[%lld,%lld,%lld,%lld,%lld] k %lldx%lldx%lld "
	         "s %lld,%lld,%lld pads %lld,%lld,%lld,%lld,%lld,%lld d "
	         "%lld,%lld,%lld ceil %d cip %d fill %d", op, (long long)t->n,
	         (long long)t->c, (long long)t->d, (long long)t->h,
	         (long long)t->w, (long long)t->kd, (long long)t->kh,
	         (long long)t->kw, (long long)t->sd, (long long)t->sh,
	         (long long)t->sw, (long long)t->pf, (long long)t->pt,
	         (long long)t->pl, (long long)t->pk, (long long)t->pb,
	         (long long)t->pr, (long long)t->dd, (long long)t->dh,
	         (long long)t->dw, t->ceil, t->cip, t->fill);
}

/* The flat position in volume [d,h,w] of tap (a,u,v) of output (k,i,j),
 * or -1 when it lies in the padding. */
static int64_t
tap(const struct kiln_pool3d *p, int64_t k, int64_t i, int64_t j, int64_t a,
    int64_t u, int64_t v)
{
	const struct kiln_pool2d *q = &p->hw;
	int64_t id = k * p->sd - p->pf + a * p->dd;
	int64_t ih = i * q->sh - q->pt + u * q->dh;
	int64_t iw = j * q->sw - q->pl + v * q->dw;
	if (id < 0 || id >= p->d || ih < 0 || ih >= q->h || iw < 0 || iw >= q->w)
		return -1;
	return (id * q->h + ih) * q->w + iw;
}

/* ---- avgpool2d_grad, avgpool3d_grad ----------------------------------- */

/* dx: each window's dy / count added to its taps inside the input; count
 * kd*kh*kw with cip, else the taps inside (0: nothing). */
static void
ref_avg_grad(double *dx, const float *dy, const struct kiln_pool3d *p)
{
	const struct kiln_pool2d *q = &p->hw;
	int64_t vol = p->d * q->h * q->w, taps = p->kd * q->kh * q->kw;

	memset(dx, 0, (size_t)(q->n * q->c * vol) * sizeof *dx);
	for (int64_t nc = 0; nc < q->n * q->c; nc++)
	for (int64_t k = 0; k < p->od; k++)
	for (int64_t i = 0; i < q->oh; i++)
	for (int64_t j = 0; j < q->ow; j++, dy++) {
		int64_t cnt = 0;
		for (int64_t t = 0; t < taps; t++)
			cnt += tap(p, k, i, j, t / (q->kh * q->kw), t / q->kw % q->kh,
			           t % q->kw) >= 0;
		if (q->count_include_pad)
			cnt = taps;
		for (int64_t t = 0; t < taps && cnt > 0; t++) {
			int64_t at = tap(p, k, i, j, t / (q->kh * q->kw),
			                 t / q->kw % q->kh, t % q->kw);
			if (at >= 0)
				dx[nc * vol + at] += (double)*dy / (double)cnt;
		}
	}
}

static void
avg_case(const struct win *t)
{
	struct kiln_pool3d p = pool_params(t);
	const struct kiln_pool2d *q = &p.hw;
	bool two = t->d == 1 && t->kd == 1 && t->pf == 0 && t->pk == 0;
	int64_t nx = q->n * q->c * p.d * q->h * q->w;
	int64_t ny = q->n * q->c * p.od * q->oh * q->ow;
	float *x = t_randf(nx), *dy = t_randf(ny), *dx = t_randf(nx);
	float *y = t_alloc((size_t)ny * sizeof *y);
	double *want = t_alloc((size_t)nx * sizeof *want);
	char what[300];

	describe(what, sizeof what, two ? "avgpool2d_grad" : "avgpool3d_grad", t);
	ref_avg_grad(want, dy, &p);
	if (two) {
		kiln_avgpool2d_grad_f32(dx, dy, q);
		kiln_avgpool2d_f32(y, x, q);
	} else {
		kiln_avgpool3d_grad_f32(dx, dy, &p);
		kiln_avgpool3d_f32(y, x, &p);
	}
	t_close(what, dx, want, nx, 1e-6, 1e-5);
	t_adjoint(what, y, dy, ny, x, dx, nx, 1e-5);
	free(x), free(dy), free(dx), free(y), free(want);
}

/* n c d h w, kd kh kw, sd sh sw, pads (front top left back bottom right),
 * dd dh dw, ceil, cip */
static const struct win avg_cases[] = {
	{1, 1, 1, 4, 4, 1, 2, 2, 1, 2, 2, 0, 0, 0, 0, 0, 0, 1, 1, 1, 0, 0, 0},
	{2, 3, 1, 7, 6, 1, 3, 2, 1, 2, 2, 0, 1, 0, 0, 1, 1, 1, 1, 1, 0, 0, 0},
	{2, 3, 1, 7, 6, 1, 3, 3, 1, 2, 1, 0, 1, 1, 0, 0, 2, 1, 1, 1, 0, 1, 0},
	{1, 2, 1, 7, 8, 1, 3, 2, 1, 2, 3, 0, 1, 0, 0, 2, 1, 1, 1, 1, 1, 0, 0},
	{1, 2, 1, 7, 8, 1, 3, 2, 1, 2, 3, 0, 1, 0, 0, 2, 1, 1, 1, 1, 1, 1, 0},
	{1, 2, 1, 9, 9, 1, 3, 3, 1, 2, 2, 0, 2, 2, 0, 2, 2, 1, 2, 2, 0, 0, 0},
	/* windows wholly in the padding: nothing to spread, counted or not */
	{1, 1, 1, 3, 3, 1, 2, 2, 1, 3, 3, 0, 2, 2, 0, 2, 2, 1, 1, 1, 0, 0, 0},
	{1, 1, 1, 3, 3, 1, 2, 2, 1, 3, 3, 0, 2, 2, 0, 2, 2, 1, 1, 1, 0, 1, 0},
	{4, 16, 1, 14, 14, 1, 2, 2, 1, 2, 2, 0, 0, 0, 0, 0, 0, 1, 1, 1, 0, 0, 0},
	/* 3-D */
	{1, 1, 4, 4, 4, 2, 2, 2, 2, 2, 2, 0, 0, 0, 0, 0, 0, 1, 1, 1, 0, 0, 0},
	{2, 2, 5, 6, 5, 2, 3, 2, 2, 2, 1, 1, 1, 0, 0, 1, 1, 1, 1, 1, 0, 0, 0},
	{2, 2, 5, 6, 5, 3, 2, 2, 1, 2, 2, 1, 0, 1, 1, 1, 0, 1, 1, 1, 1, 1, 0},
	{1, 3, 6, 5, 7, 2, 2, 3, 2, 1, 2, 1, 1, 1, 2, 0, 1, 2, 1, 2, 1, 0, 0},
	{1, 1, 2, 3, 3, 2, 2, 2, 3, 3, 3, 2, 2, 2, 2, 2, 2, 1, 1, 1, 0, 1, 0},
};

/* ---- maxpool3d_grad -------------------------------------------------- */

/* Where the gradient of output (k,i,j) goes: the first tap in window
 * order strictly above everything before it (neither NaN nor -inf ever
 * wins), else the first tap inside the input, else -1. */
static int64_t
ref_argmax3d(const float *xv, const struct kiln_pool3d *p, int64_t k,
             int64_t i, int64_t j)
{
	const struct kiln_pool2d *q = &p->hw;
	int64_t best = -1, first = -1, taps = p->kd * q->kh * q->kw;
	float m = -INFINITY;

	for (int64_t t = 0; t < taps; t++) {
		int64_t at = tap(p, k, i, j, t / (q->kh * q->kw), t / q->kw % q->kh,
		                 t % q->kw);
		if (at >= 0 && first < 0)
			first = at;
		if (at >= 0 && xv[at] > m) {
			m = xv[at];
			best = at;
		}
	}
	return best >= 0 ? best : first;
}

static void
max_case(const struct win *t)
{
	struct kiln_pool3d p = pool_params(t);
	const struct kiln_pool2d *q = &p.hw;
	int64_t vol = p.d * q->h * q->w, nx = q->n * q->c * vol;
	int64_t ny = q->n * q->c * p.od * q->oh * q->ow;
	float *x = t_pool_input(nx, t->fill, 20), *dy = t_randf(ny);
	float *dx = t_randf(nx), *y = t_alloc((size_t)ny * sizeof *y);
	double *want = t_alloc((size_t)nx * sizeof *want);
	char what[300];

	describe(what, sizeof what, "maxpool3d_grad", t);
	memset(want, 0, (size_t)nx * sizeof *want);
	for (int64_t nc = 0, o = 0; nc < q->n * q->c; nc++)
		for (int64_t k = 0; k < p.od; k++)
			for (int64_t i = 0; i < q->oh; i++)
				for (int64_t j = 0; j < q->ow; j++, o++) {
					int64_t at = ref_argmax3d(x + nc * vol, &p, k, i, j);
					if (at >= 0)
						want[nc * vol + at] += dy[o];
				}
	kiln_maxpool3d_grad_f32(dx, dy, x, &p);
	t_close(what, dx, want, nx, 1e-6, 1e-6);

	/* the forward kernel picks the value the gradient goes to */
	kiln_maxpool3d_f32(y, x, &p);
	bool finite = true;
	for (int64_t k = 0; k < ny; k++)
		finite &= isfinite(y[k]) != 0;
	if (finite && !t->fill)
		t_adjoint(what, y, dy, ny, x, dx, nx, 1e-5);
	free(x), free(dy), free(dx), free(y), free(want);
}

static const struct win max_cases[] = {
	{1, 1, 4, 4, 4, 2, 2, 2, 2, 2, 2, 0, 0, 0, 0, 0, 0, 1, 1, 1, 0, 0, 0},
	{2, 2, 5, 6, 5, 2, 2, 3, 2, 1, 2, 0, 1, 1, 1, 0, 1, 1, 1, 1, 0, 0, 0},
	{1, 2, 5, 7, 6, 3, 3, 2, 1, 2, 2, 1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 0, 0},
	{1, 2, 7, 7, 7, 2, 2, 2, 2, 2, 2, 1, 1, 1, 1, 1, 1, 2, 2, 2, 0, 0, 0},
	{2, 3, 5, 6, 6, 2, 2, 2, 1, 1, 1, 0, 0, 0, 0, 0, 0, 1, 1, 1, 0, 0, 1},
	{1, 1, 2, 3, 3, 2, 2, 2, 3, 3, 3, 2, 2, 2, 2, 2, 2, 1, 1, 1, 0, 0, 0},
};

/* ---- conv3d_grad_w --------------------------------------------------- */

struct conv_case {
	int64_t n, c, d, h, w, oc, kd, kh, kw;
	int64_t sd, sh, sw, pf, pt, pl, pk, pb, pr, dd, dh, dw, group;
};

static struct kiln_conv3d
conv_params(const struct conv_case *t)
{
	return (struct kiln_conv3d){
		.hw = {
			.n = t->n, .c = t->c, .h = t->h, .w = t->w, .oc = t->oc,
			.kh = t->kh, .kw = t->kw,
			.oh = out_size(t->h, t->kh, t->sh, t->pt, t->pb, t->dh, 0),
			.ow = out_size(t->w, t->kw, t->sw, t->pl, t->pr, t->dw, 0),
			.sh = t->sh, .sw = t->sw, .pt = t->pt, .pl = t->pl,
			.dh = t->dh, .dw = t->dw, .group = t->group,
		},
		.d = t->d, .kd = t->kd,
		.od = out_size(t->d, t->kd, t->sd, t->pf, t->pk, t->dd, 0),
		.sd = t->sd, .pf = t->pf, .dd = t->dd,
	};
}

/* dw[o,q,a,u,v] = sum_{n,k,i,j} dy[n,o,k,i,j] * x[n, g*cg + q, id, ih, iw],
 * every tap tested against the input's bounds. */
static void
ref_grad_w(double *dw, const float *x, const float *dy,
           const struct kiln_conv3d *p)
{
	const struct kiln_conv2d *q = &p->hw;
	int64_t cg = q->c / q->group, og = q->oc / q->group;

	for (int64_t o = 0; o < q->oc; o++)
	for (int64_t c = 0; c < cg; c++)
	for (int64_t a = 0; a < p->kd; a++)
	for (int64_t u = 0; u < q->kh; u++)
	for (int64_t v = 0; v < q->kw; v++) {
		double s = 0;
		int64_t ch = o / og * cg + c;
		for (int64_t n = 0; n < q->n; n++)
		for (int64_t k = 0; k < p->od; k++)
		for (int64_t i = 0; i < q->oh; i++)
		for (int64_t j = 0; j < q->ow; j++) {
			int64_t id = k * p->sd - p->pf + a * p->dd;
			int64_t ih = i * q->sh - q->pt + u * q->dh;
			int64_t iw = j * q->sw - q->pl + v * q->dw;
			if (id < 0 || id >= p->d || ih < 0 || ih >= q->h || iw < 0 ||
			    iw >= q->w)
				continue;
			s += (double)dy[(((n * q->oc + o) * p->od + k) * q->oh + i) *
			                q->ow + j] *
			     x[(((n * q->c + ch) * p->d + id) * q->h + ih) * q->w + iw];
		}
		*dw++ = s;
	}
}

static void
conv_case(const struct conv_case *t)
{
	struct kiln_conv3d p = conv_params(t);
	const struct kiln_conv2d *q = &p.hw;
	int64_t nx = q->n * q->c * p.d * q->h * q->w;
	int64_t ny = q->n * q->oc * p.od * q->oh * q->ow;
	int64_t nw = q->oc * (q->c / q->group) * p.kd * q->kh * q->kw;
	float *x = t_randf(nx), *dy = t_randf(ny), *w = t_randf(nw);
	float *dw = t_randf(nw), *y = t_alloc((size_t)ny * sizeof *y);
	double *want = t_alloc((size_t)nw * sizeof *want);
	char what[300];

	snprintf(what, sizeof what, "conv3d_grad_w x[%lld,%lld,%lld,%lld,%lld] "
	         "oc %lld k %lldx%lldx%lld s %lld,%lld,%lld pads "
	         "%lld,%lld,%lld,%lld,%lld,%lld d %lld,%lld,%lld group %lld",
	         (long long)t->n, (long long)t->c, (long long)t->d,
	         (long long)t->h, (long long)t->w, (long long)t->oc,
	         (long long)t->kd, (long long)t->kh, (long long)t->kw,
	         (long long)t->sd, (long long)t->sh, (long long)t->sw,
	         (long long)t->pf, (long long)t->pt, (long long)t->pl,
	         (long long)t->pk, (long long)t->pb, (long long)t->pr,
	         (long long)t->dd, (long long)t->dh, (long long)t->dw,
	         (long long)t->group);
	ref_grad_w(want, x, dy, &p);
	kiln_conv3d_grad_w_f32(dw, x, dy, &p);
	t_close(what, dw, want, nw, 5e-5, 1e-5);
	kiln_conv3d_f32(y, x, w, NULL, &p);
	t_adjoint(what, y, dy, ny, w, dw, nw, 1e-5);
	free(x), free(dy), free(w), free(dw), free(y), free(want);
}

/* n c d h w oc, kd kh kw, sd sh sw, pads (front top left back bottom
 * right), dd dh dw, group */
static const struct conv_case conv_cases[] = {
	{1, 1, 4, 4, 4, 1, 2, 2, 2, 1, 1, 1, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1},
	{2, 3, 5, 6, 5, 4, 3, 2, 3, 1, 1, 1, 1, 0, 1, 1, 1, 0, 1, 1, 1, 1},
	{2, 2, 7, 6, 8, 3, 3, 3, 2, 2, 2, 3, 1, 1, 0, 0, 1, 1, 1, 1, 1, 1},
	{1, 2, 8, 7, 7, 2, 2, 3, 2, 1, 1, 1, 1, 2, 0, 1, 1, 1, 3, 2, 2, 1},
	{2, 4, 5, 5, 6, 6, 2, 2, 3, 2, 1, 2, 0, 1, 1, 1, 0, 1, 1, 1, 1, 2},
	{1, 3, 4, 4, 4, 3, 3, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 3},
	{1, 1, 3, 3, 3, 1, 3, 3, 3, 1, 1, 1, 3, 3, 3, 3, 3, 3, 1, 1, 1, 1},
};

int
main(void)
{
	t_seed(0x67726164);
	for (int i = 0; i < countof(avg_cases); i++)
		avg_case(&avg_cases[i]);
	for (int i = 0; i < countof(max_cases); i++)
		max_case(&max_cases[i]);
	for (int i = 0; i < countof(conv_cases); i++)
		conv_case(&conv_cases[i]);
	return t_report("grad_ops");
}
