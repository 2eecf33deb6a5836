/* resize.c: the resize kernel, f32, with the semantics of ONNX Resize
 * (opset 11-19, every dim at once).
 *
 * Each output element is a separable weighted sum: along every dim d the
 * output index maps to an input coordinate (the coordinate transformation
 * mode), and the mode turns that coordinate into up to four taps, input
 * indices with weights (nearest: one, linear: two, cubic: four).  Taps past
 * either end read the edge element, as ONNX's edge-padded reference does;
 * exclude_outside gives them weight 0 and renormalizes instead.  The kernel
 * walks the output like an odometer and recomputes a dim's taps only when
 * that dim's index moves, and sums in double, as the ONNX reference does.
 */
#include <math.h>
#include <stdbool.h>

#include "kiln.h"

#define MAXTAP 4

/* The taps of one output index along one dim. */
struct taps {
	int n;                      /* taps with a nonzero weight */
	int64_t i[MAXTAP];          /* input indices, clamped to the dim */
	double w[MAXTAP];
	bool outside;               /* tf_crop_and_resize: past the input */
};

/* The input coordinate of output index o along dim d (ONNX
 * coordinate_transformation_mode).  len is ONNX's length_resized: ydim, or
 * xdim * scale when scales were given, so it need not be whole. */
static double
in_coord(const struct kiln_resize *p, int d, int64_t o)
{
	double s = p->scale[d], len = p->olen[d], n = (double)p->xdim[d];
	double lo = p->roi[d], hi = p->roi[p->rank + d];

	switch (p->coord) {
	case KILN_COORD_PYTORCH_HALF_PIXEL:
		return len == 1 ? -0.5 : (o + 0.5) / s - 0.5;
	case KILN_COORD_TF_HALF_PIXEL_FOR_NN:
		return (o + 0.5) / s;
	case KILN_COORD_ASYMMETRIC:
		return o / s;
	case KILN_COORD_ALIGN_CORNERS:
		return len == 1 ? 0 : o * (n - 1) / (len - 1);
	case KILN_COORD_TF_CROP_AND_RESIZE:
		if (len == 1)
			return (hi - lo) * (n - 1) / 2 + lo * (n - 1);
		return o * (hi - lo) * (n - 1) / (len - 1) + lo * (n - 1);
	default:
		return (o + 0.5) / s - 0.5;
	}
}

/* The cubic convolution weights of the four taps floor(c)-1 .. floor(c)+2
 * for c's fraction t, with ONNX's coefficient a (Keys' kernel), written as
 * the ONNX reference writes them so the doubles agree. */
static void
cubic_weights(double t, double a, double *w)
{
	double u = t + 1, v = 1 - t, z = 2 - t;

	w[0] = ((a * u - 5 * a) * u + 8 * a) * u - 4 * a;
	w[1] = ((a + 2) * t - (a + 3)) * t * t + 1;
	w[2] = ((a + 2) * v - (a + 3)) * v * v + 1;
	w[3] = ((a * z - 5 * a) * z + 8 * a) * z - 4 * a;
}

/* Whether nearest mode takes floor(c) + 1 for c's fraction r. */
static bool
round_up(double r, int mode)
{
	switch (mode) {
	case KILN_ROUND_PREFER_CEIL: return r >= 0.5;
	case KILN_ROUND_FLOOR: return false;
	case KILN_ROUND_CEIL: return r > 0;
	default: return r > 0.5;
	}
}

/* Gives taps outside [0, n) weight 0 and rescales the rest to sum to 1
 * (when any are left). */
static void
exclude_outside(int64_t *i, double *w, int k, int64_t n)
{
	double sum = 0;

	for (int j = 0; j < k; j++) {
		if (i[j] < 0 || i[j] >= n)
			w[j] = 0;
		sum += w[j];
	}
	for (int j = 0; j < k && sum != 0; j++)
		w[j] /= sum;
}

/* Fills t for output index o along dim d. */
static void
dim_taps(const struct kiln_resize *p, int d, int64_t o, struct taps *t)
{
	int64_t n = p->xdim[d], i[MAXTAP];
	double c = in_coord(p, d, o), w[MAXTAP];
	int k = 0;

	t->n = 0;
	t->outside = p->coord == KILN_COORD_TF_CROP_AND_RESIZE &&
	             (c < 0 || c > n - 1);
	if (t->outside)
		return;
	/* Coordinates stay within [-0.5, n - 0.5] for any sizes the shape
	 * rule accepts; the clamp keeps floor and the cast defined anyway. */
	c = fmax(-2.0, fmin(c, (double)n + 1));
	double f = floor(c), r = c - f;
	int64_t b = (int64_t)f;
	if (p->mode == KILN_RESIZE_NEAREST) {
		i[k] = b + round_up(r, p->nearest), w[k++] = 1;
	} else if (p->mode == KILN_RESIZE_LINEAR) {
		i[k] = b, w[k++] = 1 - r;
		i[k] = b + 1, w[k++] = r;
	} else {
		cubic_weights(r, p->cubic_a, w);
		for (; k < 4; k++)
			i[k] = b - 1 + k;
	}
	if (p->exclude_outside && p->mode != KILN_RESIZE_NEAREST)
		exclude_outside(i, w, k, n);
	/* zero weights are dropped: an unresized dim costs one tap */
	for (int j = 0; j < k; j++) {
		if (w[j] == 0)
			continue;
		t->i[t->n] = i[j] < 0 ? 0 : i[j] >= n ? n - 1 : i[j];
		t->w[t->n++] = w[j];
	}
}

/* The weighted sum over the taps of dims d.. of the block at x; xst are
 * the input's strides.  Outer dims weigh inner sums, as in ONNX's nested
 * reference. */
static double
gather(const float *x, const struct taps *t, const int64_t *xst, int d,
       int rank)
{
	double s = 0;

	if (d == rank)
		return *x;
	for (int k = 0; k < t[d].n; k++)
		s += t[d].w[k] * gather(x + t[d].i[k] * xst[d], t, xst, d + 1, rank);
	return s;
}

void
kiln_resize_f32(float *y, const float *x, const struct kiln_resize *p)
{
	struct taps t[KILN_MAXRANK];
	int64_t idx[KILN_MAXRANK] = {0}, xst[KILN_MAXRANK], total = 1;
	int r = p->rank, d;

	for (d = r - 1; d >= 0; d--) {
		xst[d] = d == r - 1 ? 1 : xst[d + 1] * p->xdim[d + 1];
		total *= p->ydim[d];
		dim_taps(p, d, 0, &t[d]);
	}
	for (int64_t j = 0; j < total; j++) {
		bool outside = false;
		for (d = 0; d < r; d++)
			outside |= t[d].outside;
		y[j] = outside ? p->extrapolation : (float)gather(x, t, xst, 0, r);
		for (d = r - 1; d >= 0 && ++idx[d] == p->ydim[d]; d--) {
			idx[d] = 0;
			dim_taps(p, d, 0, &t[d]);
		}
		if (d >= 0)
			dim_taps(p, d, idx[d], &t[d]);
	}
}
