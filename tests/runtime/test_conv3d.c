/* test_conv3d.c: tests of the 3-D kernels of runtime/conv.c and pool.c
 * (kiln_conv3d_f32, kiln_conv3d_transpose_f32, kiln_maxpool3d_f32,
 * kiln_avgpool3d_f32).
 *
 * The kernels work plane by plane and clip each tap's rows and columns
 * beforehand; the references here are the definitions, written as one
 * gather loop per output element in double that tests every tap against
 * the input bounds (the transposed one inverts the tap: output z takes
 * input (z + pad - a*dil) / stride when that divides exactly).  Cases
 * cover strides, asymmetric padding, dilations, groups, windows wholly in
 * the padding, ceil-mode outputs and sizes of 1 in each axis.
 *
 *   test_conv3d       run everything; the last line is the summary
 */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "kiln.h"
#include "testutil.h"

#define TOL 1e-5
#define countof(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* Spatial arrays are indexed depth, height, width.  p0/p1 are the
 * front/top/left and back/bottom/right pads. */
struct win {
	int64_t n, c, oc, group;
	int64_t in[3], k[3], s[3], p0[3], p1[3], dl[3];
	int64_t op[3];                  /* transposed: output padding */
	int bias, ceil;                 /* pools: ceil-mode output size */
};

/* Flat index of [a,b,z,i,j] in a tensor of dims [.,nb,d[0],d[1],d[2]]. */
static int64_t
at(int64_t a, int64_t b, int64_t nb, const int64_t *d, int64_t z, int64_t i,
   int64_t j)
{
	return (((a * nb + b) * d[0] + z) * d[1] + i) * d[2] + j;
}

static void
describe(char *buf, size_t len, const char *op, const struct win *t)
{
	snprintf(buf, len, "%s x[%lld,%lld,%lld,%lld,%lld] oc %lld k %lldx%lldx"
	         "%lld s %lldx%lldx%lld pads %lld,%lld,%lld/%lld,%lld,%lld d "
	         "%lldx%lldx%lld group %lld%s", op, (long long)t->n,
	         (long long)t->c, (long long)t->in[0], (long long)t->in[1],
	         (long long)t->in[2], (long long)t->oc, (long long)t->k[0],
	         (long long)t->k[1], (long long)t->k[2], (long long)t->s[0],
	         (long long)t->s[1], (long long)t->s[2], (long long)t->p0[0],
	         (long long)t->p0[1], (long long)t->p0[2], (long long)t->p1[0],
	         (long long)t->p1[1], (long long)t->p1[2], (long long)t->dl[0],
	         (long long)t->dl[1], (long long)t->dl[2], (long long)t->group,
	         t->bias ? " bias" : "");
}

/* Output size of a window along axis a (floor, or ceil for pools). */
static int64_t
out_size(const struct win *t, int a)
{
	int64_t room = t->in[a] + t->p0[a] + t->p1[a] - t->dl[a] * (t->k[a] - 1)
	               - 1;
	return (t->ceil ? (room + t->s[a] - 1) / t->s[a] : room / t->s[a]) + 1;
}

static int64_t
numel(int64_t n, int64_t c, const int64_t *d)
{
	return n * c * d[0] * d[1] * d[2];
}

/* The input position of output o through tap u along axis a, or -1. */
static int64_t
tap(const struct win *t, int a, int64_t o, int64_t u)
{
	int64_t i = o * t->s[a] - t->p0[a] + u * t->dl[a];
	return i >= 0 && i < t->in[a] ? i : -1;
}

/* ---- conv3d ---------------------------------------------------------- */

static double
conv_at(const float *x, const float *w, const float *b, const struct win *t,
        int64_t n, int64_t o, const int64_t *y)
{
	int64_t cg = t->c / t->group, g = o / (t->oc / t->group);
	double s = b ? b[o] : 0;

	for (int64_t q = 0; q < cg; q++)
	for (int64_t a = 0; a < t->k[0]; a++)
	for (int64_t u = 0; u < t->k[1]; u++)
	for (int64_t v = 0; v < t->k[2]; v++) {
		int64_t z = tap(t, 0, y[0], a), i = tap(t, 1, y[1], u);
		int64_t j = tap(t, 2, y[2], v);
		if (z >= 0 && i >= 0 && j >= 0)
			s += (double)x[at(n, g * cg + q, t->c, t->in, z, i, j)] *
			     w[at(o, q, cg, t->k, a, u, v)];
	}
	return s;
}

static void
conv_case(const struct win *t)
{
	int64_t od[3] = {out_size(t, 0), out_size(t, 1), out_size(t, 2)};
	int64_t ny = numel(t->n, t->oc, od);
	float *x = t_randf(numel(t->n, t->c, t->in));
	float *w = t_randf(numel(t->oc, t->c / t->group, t->k));
	float *b = t->bias ? t_randf(t->oc) : NULL, *y = t_randf(ny);
	double *ref = t_alloc((size_t)ny * sizeof *ref);
	struct kiln_conv3d p = {
		.hw = {.n = t->n, .c = t->c, .h = t->in[1], .w = t->in[2],
		       .oc = t->oc, .kh = t->k[1], .kw = t->k[2], .oh = od[1],
		       .ow = od[2], .sh = t->s[1], .sw = t->s[2], .pt = t->p0[1],
		       .pl = t->p0[2], .dh = t->dl[1], .dw = t->dl[2],
		       .group = t->group},
		.d = t->in[0], .kd = t->k[0], .od = od[0], .sd = t->s[0],
		.pf = t->p0[0], .dd = t->dl[0],
	};
	char what[300];

	for (int64_t n = 0; n < t->n; n++)
	for (int64_t o = 0; o < t->oc; o++)
	for (int64_t z = 0; z < od[0]; z++)
	for (int64_t i = 0; i < od[1]; i++)
	for (int64_t j = 0; j < od[2]; j++)
		ref[at(n, o, t->oc, od, z, i, j)] =
			conv_at(x, w, b, t, n, o, (int64_t[]){z, i, j});
	kiln_conv3d_f32(y, x, w, b, &p);
	describe(what, sizeof what, "conv3d", t);
	t_close(what, y, ref, ny, TOL, TOL);
	free(x), free(w), free(b), free(y), free(ref);
}

/* n c oc group, in, k, s, p0, p1, dl, op, bias */
static const struct win conv_cases[] = {
	{1, 1, 1, 1, {3, 3, 3}, {3, 3, 3}, {1, 1, 1}, {0, 0, 0}, {0, 0, 0},
	 {1, 1, 1}, {0}, 0, 0},
	{2, 3, 4, 1, {4, 5, 6}, {3, 3, 3}, {1, 1, 1}, {1, 1, 1}, {1, 1, 1},
	 {1, 1, 1}, {0}, 1, 0},
	{1, 2, 3, 1, {5, 6, 7}, {2, 3, 2}, {2, 1, 3}, {1, 0, 2}, {0, 2, 1},
	 {1, 1, 1}, {0}, 1, 0},                         /* strides, asym */
	{1, 2, 2, 1, {7, 6, 8}, {3, 2, 3}, {1, 2, 1}, {2, 1, 0}, {2, 0, 1},
	 {3, 2, 2}, {0}, 1, 0},                         /* dilations */
	{2, 4, 6, 2, {4, 4, 5}, {2, 3, 3}, {2, 1, 2}, {0, 1, 1}, {1, 1, 0},
	 {1, 1, 2}, {0}, 1, 0},                         /* groups */
	{1, 3, 3, 3, {3, 5, 4}, {3, 3, 3}, {1, 1, 1}, {1, 1, 1}, {1, 1, 1},
	 {1, 1, 1}, {0}, 0, 0},                         /* depthwise */
	{1, 2, 2, 1, {1, 4, 4}, {1, 3, 3}, {1, 1, 1}, {0, 1, 1}, {0, 1, 1},
	 {1, 1, 1}, {0}, 1, 0},                         /* depth 1 */
	{1, 2, 3, 1, {2, 2, 2}, {3, 3, 3}, {1, 1, 1}, {3, 1, 1}, {2, 1, 1},
	 {1, 1, 1}, {0}, 1, 0},                         /* depth all pad */
	{1, 1, 2, 1, {6, 1, 1}, {3, 1, 1}, {2, 1, 1}, {1, 0, 0}, {0, 0, 0},
	 {1, 1, 1}, {0}, 1, 0},                         /* only depth */
	{3, 6, 4, 2, {5, 7, 6}, {3, 2, 3}, {2, 3, 2}, {1, 0, 2}, {2, 1, 0},
	 {2, 1, 1}, {0}, 1, 0},                         /* mixed */
};

/* ---- conv3d_transpose ------------------------------------------------ */

/* Input position of output o through tap u along axis a, or -1 when no
 * input element lands there. */
static int64_t
untap(const struct win *t, int a, int64_t o, int64_t u)
{
	int64_t q = o + t->p0[a] - u * t->dl[a];
	return q >= 0 && q % t->s[a] == 0 && q / t->s[a] < t->in[a] ?
	       q / t->s[a] : -1;
}

static double
convt_at(const float *x, const float *w, const float *b, const struct win *t,
         int64_t n, int64_t o, const int64_t *y)
{
	int64_t cg = t->c / t->group, og = t->oc / t->group, g = o / og;
	double s = b ? b[o] : 0;

	for (int64_t c = g * cg; c < (g + 1) * cg; c++)
	for (int64_t a = 0; a < t->k[0]; a++)
	for (int64_t u = 0; u < t->k[1]; u++)
	for (int64_t v = 0; v < t->k[2]; v++) {
		int64_t z = untap(t, 0, y[0], a), i = untap(t, 1, y[1], u);
		int64_t j = untap(t, 2, y[2], v);
		if (z >= 0 && i >= 0 && j >= 0)
			s += (double)x[at(n, c, t->c, t->in, z, i, j)] *
			     w[at(c, o % og, og, t->k, a, u, v)];
	}
	return s;
}

static void
convt_case(const struct win *t)
{
	int64_t od[3];
	for (int a = 0; a < 3; a++)
		od[a] = t->s[a] * (t->in[a] - 1) + t->op[a] +
		        (t->k[a] - 1) * t->dl[a] + 1 - t->p0[a] - t->p1[a];
	int64_t ny = numel(t->n, t->oc, od);
	float *x = t_randf(numel(t->n, t->c, t->in));
	float *w = t_randf(numel(t->c, t->oc / t->group, t->k));
	float *b = t->bias ? t_randf(t->oc) : NULL, *y = t_randf(ny);
	double *ref = t_alloc((size_t)ny * sizeof *ref);
	struct kiln_conv3d p = {
		.hw = {.n = t->n, .c = t->c, .h = t->in[1], .w = t->in[2],
		       .oc = t->oc, .kh = t->k[1], .kw = t->k[2], .oh = od[1],
		       .ow = od[2], .sh = t->s[1], .sw = t->s[2], .pt = t->p0[1],
		       .pl = t->p0[2], .dh = t->dl[1], .dw = t->dl[2],
		       .group = t->group},
		.d = t->in[0], .kd = t->k[0], .od = od[0], .sd = t->s[0],
		.pf = t->p0[0], .dd = t->dl[0],
	};
	char what[300];

	for (int64_t n = 0; n < t->n; n++)
	for (int64_t o = 0; o < t->oc; o++)
	for (int64_t z = 0; z < od[0]; z++)
	for (int64_t i = 0; i < od[1]; i++)
	for (int64_t j = 0; j < od[2]; j++)
		ref[at(n, o, t->oc, od, z, i, j)] =
			convt_at(x, w, b, t, n, o, (int64_t[]){z, i, j});
	kiln_conv3d_transpose_f32(y, x, w, b, &p);
	describe(what, sizeof what, "conv3d_transpose", t);
	t_close(what, y, ref, ny, TOL, TOL);
	free(x), free(w), free(b), free(y), free(ref);
}

/* n c oc group, in, k, s, p0, p1, dl, op, bias */
static const struct win convt_cases[] = {
	{1, 1, 1, 1, {2, 2, 2}, {3, 3, 3}, {1, 1, 1}, {0, 0, 0}, {0, 0, 0},
	 {1, 1, 1}, {0, 0, 0}, 0, 0},
	{2, 3, 2, 1, {3, 4, 3}, {2, 3, 3}, {2, 2, 1}, {0, 0, 0}, {0, 0, 0},
	 {1, 1, 1}, {0, 0, 0}, 1, 0},
	{1, 2, 3, 1, {3, 3, 4}, {3, 2, 2}, {2, 3, 2}, {1, 0, 1}, {1, 1, 0},
	 {1, 1, 1}, {1, 2, 0}, 1, 0},                   /* pads, out pad */
	{1, 4, 6, 2, {2, 3, 3}, {2, 3, 2}, {3, 1, 2}, {1, 1, 0}, {0, 2, 1},
	 {2, 2, 3}, {2, 0, 1}, 1, 0},                   /* groups, dilations */
	{1, 2, 2, 2, {1, 3, 3}, {1, 2, 2}, {1, 1, 1}, {0, 0, 0}, {0, 0, 0},
	 {1, 1, 1}, {0, 0, 0}, 1, 0},                   /* depth 1 */
	{2, 2, 3, 1, {4, 1, 1}, {3, 1, 1}, {2, 1, 1}, {1, 0, 0}, {2, 0, 0},
	 {2, 1, 1}, {1, 0, 0}, 1, 0},                   /* only depth */
};

/* ---- pools ----------------------------------------------------------- */

/* avg: 0 max, 1 average, 2 average counting padded taps. */
static double
pool_at(const float *x, const struct win *t, int64_t nc, const int64_t *y,
        int avg)
{
	double mx = -INFINITY, sum = 0;
	int64_t cnt = 0;

	for (int64_t a = 0; a < t->k[0]; a++)
	for (int64_t u = 0; u < t->k[1]; u++)
	for (int64_t v = 0; v < t->k[2]; v++) {
		int64_t z = tap(t, 0, y[0], a), i = tap(t, 1, y[1], u);
		int64_t j = tap(t, 2, y[2], v);
		if (z < 0 || i < 0 || j < 0)
			continue;
		double e = x[at(0, nc, 1, t->in, z, i, j)];
		mx = e > mx ? e : mx;
		sum += e;
		cnt++;
	}
	if (avg == 2)
		cnt = t->k[0] * t->k[1] * t->k[2];
	return !avg ? mx : cnt ? sum / (double)cnt : 0;
}

static void
pool_case(const struct win *t, int avg)
{
	int64_t od[3] = {out_size(t, 0), out_size(t, 1), out_size(t, 2)};
	int64_t ny = numel(t->n, t->c, od);
	float *x = t_randf(numel(t->n, t->c, t->in)), *y = t_randf(ny);
	double *ref = t_alloc((size_t)ny * sizeof *ref);
	struct kiln_pool3d p = {
		.hw = {.n = t->n, .c = t->c, .h = t->in[1], .w = t->in[2],
		       .oh = od[1], .ow = od[2], .kh = t->k[1], .kw = t->k[2],
		       .sh = t->s[1], .sw = t->s[2], .pt = t->p0[1],
		       .pl = t->p0[2], .dh = t->dl[1], .dw = t->dl[2],
		       .count_include_pad = avg == 2},
		.d = t->in[0], .od = od[0], .kd = t->k[0], .sd = t->s[0],
		.pf = t->p0[0], .dd = t->dl[0],
	};
	char what[300];

	for (int64_t nc = 0; nc < t->n * t->c; nc++)
	for (int64_t z = 0; z < od[0]; z++)
	for (int64_t i = 0; i < od[1]; i++)
	for (int64_t j = 0; j < od[2]; j++)
		ref[at(0, nc, 1, od, z, i, j)] =
			pool_at(x, t, nc, (int64_t[]){z, i, j}, avg);
	if (avg)
		kiln_avgpool3d_f32(y, x, &p);
	else
		kiln_maxpool3d_f32(y, x, &p);
	describe(what, sizeof what, avg == 0 ? "maxpool3d" : avg == 1 ?
	         "avgpool3d" : "avgpool3d count_include_pad", t);
	t_close(what, y, ref, ny, TOL, TOL);
	free(x), free(y), free(ref);
}

/* n c oc group, in, k, s, p0, p1, dl, op, bias, ceil */
static const struct win pool_cases[] = {
	{1, 1, 0, 1, {4, 4, 4}, {2, 2, 2}, {2, 2, 2}, {0, 0, 0}, {0, 0, 0},
	 {1, 1, 1}, {0}, 0, 0},
	{2, 3, 0, 1, {5, 6, 7}, {3, 3, 3}, {1, 1, 1}, {1, 1, 1}, {1, 1, 1},
	 {1, 1, 1}, {0}, 0, 0},
	{1, 2, 0, 1, {6, 5, 7}, {3, 2, 3}, {2, 2, 3}, {1, 0, 2}, {0, 1, 1},
	 {1, 1, 1}, {0}, 0, 0},                         /* asym */
	{1, 2, 0, 1, {7, 6, 8}, {2, 2, 3}, {2, 1, 2}, {0, 1, 0}, {1, 0, 1},
	 {3, 2, 2}, {0}, 0, 1},                         /* dilated, ceil */
	{1, 1, 0, 1, {2, 3, 3}, {3, 2, 2}, {1, 1, 1}, {3, 1, 0}, {3, 0, 1},
	 {1, 1, 1}, {0}, 0, 0},                         /* depth all pad */
	{2, 2, 0, 1, {1, 5, 5}, {1, 3, 3}, {1, 2, 2}, {0, 1, 1}, {0, 1, 1},
	 {1, 1, 1}, {0}, 0, 1},                         /* depth 1, ceil */
	{1, 3, 0, 1, {9, 1, 1}, {4, 1, 1}, {3, 1, 1}, {1, 0, 0}, {2, 0, 0},
	 {2, 1, 1}, {0}, 0, 1},                         /* only depth */
};

int
main(void)
{
	t_seed(0x9e3779b97f4a7c15u);
	for (int i = 0; i < countof(conv_cases); i++)
		conv_case(&conv_cases[i]);
	for (int i = 0; i < countof(convt_cases); i++)
		convt_case(&convt_cases[i]);
	for (int i = 0; i < countof(pool_cases); i++)
		for (int avg = 0; avg < 3; avg++)
			pool_case(&pool_cases[i], avg);
	return t_report("conv3d");
}
