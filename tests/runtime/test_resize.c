/* test_resize.c: tests of the resize kernel (runtime/resize.c) against a
 * transcription of the ONNX reference (interpolate_nd_with_x in
 * onnx/backend/test/case/node/resize.py).
 *
 * The reference works the way ONNX's does and the kernel does not: it
 * interpolates dim by dim over whole rows, innermost first; it pads each
 * row with its edge values and takes the n input indices nearest the
 * coordinate (ties to the smaller), with the fraction in (0, 1], not
 * [0, 1); and it renormalizes exclude_outside weights per row.  Random
 * shapes of rank 1 to 4 run through every mode, coordinate mode and
 * nearest mode, with sizes and with scales that do not divide, plus the
 * first outputs of three ONNX test cases as fixed points.
 *
 *   test_resize      all checks; exit status 1 on any failure
 */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "kiln.h"
#include "testutil.h"

#define TOL 1e-5
#define MAXDIM 16               /* the largest dim a reference row holds */

/* ---- the reference ------------------------------------------------------ */

/* ONNX's input coordinate of output index o along dim d; *out is set when
 * tf_crop_and_resize falls outside the input. */
static double
ref_coord(const struct kiln_resize *p, int d, int64_t o, bool *out)
{
	double s = p->scale[d], len = p->olen[d], n = (double)p->xdim[d], c;
	double lo = p->roi[d], hi = p->roi[p->rank + d];

	*out = false;
	switch (p->coord) {
	case KILN_COORD_HALF_PIXEL: return (o + 0.5) / s - 0.5;
	case KILN_COORD_PYTORCH_HALF_PIXEL:
		return len == 1 ? -0.5 : (o + 0.5) / s - 0.5;
	case KILN_COORD_TF_HALF_PIXEL_FOR_NN: return (o + 0.5) / s;
	case KILN_COORD_ASYMMETRIC: return o / s;
	case KILN_COORD_ALIGN_CORNERS:
		return len == 1 ? 0 : o * (n - 1) / (len - 1);
	default:
		c = len == 1 ? (hi - lo) * (n - 1) / 2 : o * (hi - lo) * (n - 1) /
		    (len - 1);
		c += lo * (n - 1);
		*out = c < 0 || c > n - 1;
		return c;
	}
}

/* ONNX's get_coeffs for the fraction r in (0, 1]; returns their count. */
static int
coeffs(const struct kiln_resize *p, double r, double *w)
{
	double a = p->cubic_a;

	switch (p->mode) {
	case KILN_RESIZE_NEAREST:
		if (r == 1) {
			w[0] = 0, w[1] = 1;
		} else {
			bool up = p->nearest == KILN_ROUND_PREFER_FLOOR ? r > 0.5 :
			          p->nearest == KILN_ROUND_PREFER_CEIL ? r >= 0.5 :
			          p->nearest == KILN_ROUND_CEIL;
			w[0] = !up, w[1] = up;
		}
		return 2;
	case KILN_RESIZE_LINEAR:
		w[0] = 1 - r, w[1] = r;
		return 2;
	default:
		w[0] = ((a * (r + 1) - 5 * a) * (r + 1) + 8 * a) * (r + 1) - 4 * a;
		w[1] = ((a + 2) * r - (a + 3)) * r * r + 1;
		w[2] = ((a + 2) * (1 - r) - (a + 3)) * (1 - r) * (1 - r) + 1;
		w[3] = ((a * (2 - r) - 5 * a) * (2 - r) + 8 * a) * (2 - r) - 4 * a;
		return 4;
	}
}

/* ONNX's interpolate_1d_with_x: the value of row v[n] at coordinate c.
 * The row is padded by ceil(k/2) edge values on each side and the k
 * padded indices nearest c (ties to the smaller) are the taps. */
static double
ref_interp1(const struct kiln_resize *p, const double *v, int64_t n, double c)
{
	double w[4], r = c == floor(c) ? 1 : c - floor(c), sum = 0, dot = 0;
	int k = coeffs(p, r, w), pad = (k + 1) / 2;
	int64_t idx[4], nidx = 0;

	/* the k nearest of -pad .. n+pad-1: scan outward from floor(c) */
	for (int64_t lo = (int64_t)ceil(c) - 1, hi = lo + 1; nidx < k;) {
		bool lok = lo >= -pad, hik = hi < n + pad;
		if (lok && (!hik || c - lo <= hi - c))
			idx[nidx++] = lo--;
		else
			idx[nidx++] = hi++;
	}
	/* ascending order, as np.sort leaves them */
	for (int i = 1; i < k; i++)
		for (int j = i; j > 0 && idx[j - 1] > idx[j]; j--) {
			int64_t t = idx[j];
			idx[j] = idx[j - 1], idx[j - 1] = t;
		}
	if (p->exclude_outside) {
		for (int i = 0; i < k; i++)
			sum += w[i] *= idx[i] >= 0 && idx[i] < n;
		for (int i = 0; i < k; i++)
			w[i] /= sum;
	}
	for (int i = 0; i < k; i++)
		dot += w[i] * v[idx[i] < 0 ? 0 : idx[i] >= n ? n - 1 : idx[i]];
	return dot;
}

/* ONNX's interpolate_nd_with_x: output element o[] of the block x of dims
 * d..rank-1 (strides xst). */
static double
ref_nd(const struct kiln_resize *p, const float *x, const int64_t *xst,
       const int64_t *o, int d)
{
	double row[MAXDIM];
	bool out;

	if (d == p->rank)
		return *x;
	for (int64_t i = 0; i < p->xdim[d]; i++)
		row[i] = ref_nd(p, x + i * xst[d], xst, o, d + 1);
	double c = ref_coord(p, d, o[d], &out);
	return out ? p->extrapolation : ref_interp1(p, row, p->xdim[d], c);
}

/* ---- cases -------------------------------------------------------------- */

static const char *const mode_name[] = {"nearest", "linear", "cubic"};
static const char *const coord_name[] = {"half_pixel", "pytorch_half_pixel",
	"asymmetric", "align_corners", "tf_half_pixel_for_nn",
	"tf_crop_and_resize"};

/* Runs p on random x and compares every element with the reference. */
static void
check_case(const struct kiln_resize *p, const char *how)
{
	int64_t nx = 1, ny = 1, xst[KILN_MAXRANK], o[KILN_MAXRANK];
	char what[160];

	for (int d = p->rank - 1; d >= 0; d--) {
		xst[d] = nx;
		nx *= p->xdim[d], ny *= p->ydim[d];
	}
	float *x = t_alloc((size_t)nx * sizeof *x), *y = t_alloc((size_t)ny * 4);
	double *want = t_alloc((size_t)ny * sizeof *want);
	for (int64_t i = 0; i < nx; i++)
		x[i] = t_frand();
	kiln_resize_f32(y, x, p);
	for (int64_t j = 0; j < ny; j++) {
		for (int64_t f = j, d = p->rank - 1; d >= 0; d--)
			o[d] = f % p->ydim[d], f /= p->ydim[d];
		want[j] = ref_nd(p, x, xst, o, 0);
	}
	snprintf(what, sizeof what, "resize rank %d mode %s coord %s nearest "
	         "%d a %g exclude %d (%s)", p->rank, mode_name[p->mode],
	         coord_name[p->coord], p->nearest, p->cubic_a,
	         p->exclude_outside, how);
	t_close(what, y, want, ny, TOL, TOL);
	free(x), free(y), free(want);
}

/* Random dims for p: with sizes (scale = ydim/xdim) or with a scale that
 * need not give a whole size (ydim = floor(xdim * scale)); dim d stays
 * unresized when keep has bit d. */
static void
random_dims(struct kiln_resize *p, bool scaled, unsigned keep)
{
	static const float scales[] = {0.6f, 0.8f, 1.7f, 2.5f, 2, 0.5f, 3};

	for (int d = 0; d < p->rank; d++) {
		int64_t n = 1 + t_irand(5);
		double s;
		p->xdim[d] = n;
		if (keep >> d & 1) {
			p->ydim[d] = n, p->scale[d] = 1, p->olen[d] = (double)n;
			p->roi[d] = 0, p->roi[p->rank + d] = 1;
			continue;
		}
		do
			s = scaled ? scales[t_irand(7)] :
			    (1 + t_irand(9)) / (double)n;
		while (floor(n * s) < 1);
		p->ydim[d] = (int64_t)floor(n * s);
		p->scale[d] = s;
		p->olen[d] = scaled ? n * s : (double)p->ydim[d];
		p->roi[d] = t_irand(3) == 0 ? 0 : -0.2 + 0.1 * t_irand(8);
		p->roi[p->rank + d] = t_irand(3) == 0 ? 1 :
		                      0.4 + 0.1 * t_irand(9);
	}
}

static void
test_random(void)
{
	char how[64];

	for (int it = 0; it < 40; it++) {
		for (int m = KILN_RESIZE_NEAREST; m <= KILN_RESIZE_CUBIC; m++) {
			for (int c = 0; c <= KILN_COORD_TF_CROP_AND_RESIZE; c++) {
				struct kiln_resize p = {.rank = 1 + it % 4, .mode = m,
					.coord = c, .nearest = (int)t_irand(4),
					.cubic_a = -0.75, .extrapolation = 10};
				bool scaled = it % 2;
				/* one dim in three kept, as ONNX tests keep n and c */
				random_dims(&p, scaled,
				            (unsigned)t_irand(1u << p.rank) &
				            (unsigned)t_irand(1u << p.rank));
				if (m != KILN_RESIZE_NEAREST && t_irand(2)) {
					p.cubic_a = -0.5;
					p.exclude_outside = 1;
				}
				snprintf(how, sizeof how, "%s, iteration %d",
				         scaled ? "scales" : "sizes", it);
				check_case(&p, how);
			}
		}
	}
}

/* Every tap's index is clamped into the input even for a scale far from
 * ydim/xdim (the shape rule refuses those; the kernel must not read out
 * of bounds, which ASan would catch). */
static void
test_wild_scale(void)
{
	struct kiln_resize p = {.rank = 1, .xdim = {3}, .ydim = {6},
		.scale = {1e-30}, .olen = {6}, .mode = KILN_RESIZE_CUBIC,
		.cubic_a = -0.75};
	float x[3] = {1, 2, 3}, y[6];
	static const double edge[5] = {3, 3, 3, 3, 3};

	kiln_resize_f32(y, x, &p);
	t_close("wild scale: y[1..5] the edge 3", y + 1, edge, 5, 0, 0);
}

/* The first outputs of ONNX's test_resize_upsample_scales_cubic,
 * test_resize_downsample_scales_linear_align_corners (length_resized is
 * xdim * scale = 2.4, not 2) and test_resize_tf_crop_and_resize. */
static void
test_onnx_points(void)
{
	float x[16], y[64];
	struct kiln_resize cub = {.rank = 2, .xdim = {4, 4}, .ydim = {8, 8},
		.scale = {2, 2}, .olen = {8, 8}, .mode = KILN_RESIZE_CUBIC,
		.cubic_a = -0.75};
	struct kiln_resize ac = {.rank = 2, .xdim = {2, 4}, .ydim = {1, 2},
		.scale = {0.6f, 0.6f}, .olen = {2 * 0.6f, 4 * 0.6f},
		.mode = KILN_RESIZE_LINEAR, .coord = KILN_COORD_ALIGN_CORNERS};
	struct kiln_resize crop = {.rank = 2, .xdim = {4, 4}, .ydim = {3, 3},
		.scale = {0.75, 0.75}, .olen = {3, 3}, .roi = {0.4, 0.6, 1.2, 1.7},
		.mode = KILN_RESIZE_LINEAR, .coord = KILN_COORD_TF_CROP_AND_RESIZE,
		.extrapolation = 10};
	static const double want_cub[4] = {0.47265625, 0.76953125, 1.24609375,
		1.875};
	static const double want_ac[2] = {1, 3.142857};
	static const double want_crop[4] = {7.6, 10, 10, 12.4};

	for (int i = 0; i < 16; i++)
		x[i] = (float)(i + 1);
	kiln_resize_f32(y, x, &cub);
	t_close("onnx cubic", y, want_cub, 4, TOL, TOL);
	kiln_resize_f32(y, x, &ac);
	t_close("onnx align_corners", y, want_ac, 2, TOL, TOL);
	kiln_resize_f32(y, x, &crop);
	t_close("onnx tf_crop_and_resize", y, want_crop, 4, TOL, TOL);
}

int
main(void)
{
	t_seed(0x9e3779b97f4a7c15u);
	test_onnx_points();
	test_wild_scale();
	test_random();
	return t_report("resize kernel");
}
