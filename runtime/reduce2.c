/* reduce2.c: the ONNX ops that scan along one axis (argmax, argmin,
 * hardmax, cumsum) and the two channel normalizations (lrn,
 * instance_norm).
 *
 * The axis ops see x as [outer, len, inner] and walk each of the
 * outer*inner lines of len elements, stride inner.  argmax and cumsum take
 * any numeric dtype: they read each element through a switch on the dtype
 * into a double (floats) or an int64 (integers), so comparisons are exact
 * in every dtype and one loop serves them all.  Sums are taken in double
 * (floats) or in uint64 (integers, so they wrap around as two's
 * complement instead of overflowing).
 */
#include <math.h>
#include <stdbool.h>

#include "kiln.h"

static bool
is_float(kiln_dtype t)
{
	return t == KILN_F32 || t == KILN_F64;
}

static double
get_float(const void *x, kiln_dtype t, int64_t i)
{
	return t == KILN_F64 ? ((const double *)x)[i] : ((const float *)x)[i];
}

static int64_t
get_int(const void *x, kiln_dtype t, int64_t i)
{
	switch (t) {
	case KILN_I64: return ((const int64_t *)x)[i];
	case KILN_I32: return ((const int32_t *)x)[i];
	case KILN_I8: return ((const int8_t *)x)[i];
	default: return ((const uint8_t *)x)[i];    /* u8, bool */
	}
}

/* Position of the largest (sign 1) or smallest (sign -1) of the len
 * elements x[base + l*st]: the first, or the last when last.  NaN wins
 * over any number, as in NumPy's argmax and argmin. */
static int64_t
arg_float(const void *x, kiln_dtype t, int64_t base, int64_t len, int64_t st,
          int sign, int last)
{
	int64_t best = 0;
	double b = get_float(x, t, base);

	for (int64_t l = 1; l < len; l++) {
		double v = get_float(x, t, base + l * st);
		bool wins, tie;
		if (isnan(v)) {
			wins = !isnan(b);
			tie = isnan(b);
		} else {
			wins = !isnan(b) && (sign > 0 ? v > b : v < b);
			tie = v == b;
		}
		if (wins || (last && tie))
			best = l, b = v;
	}
	return best;
}

static int64_t
arg_int(const void *x, kiln_dtype t, int64_t base, int64_t len, int64_t st,
        int sign, int last)
{
	int64_t best = 0, b = get_int(x, t, base);

	for (int64_t l = 1; l < len; l++) {
		int64_t v = get_int(x, t, base + l * st);
		if ((sign > 0 ? v > b : v < b) || (last && v == b))
			best = l, b = v;
	}
	return best;
}

static void
arg(int64_t *y, const void *x, kiln_dtype t, int64_t outer, int64_t len,
    int64_t inner, int sign, int last)
{
	for (int64_t o = 0; o < outer; o++) {
		for (int64_t i = 0; i < inner; i++) {
			int64_t base = o * len * inner + i;
			*y++ = is_float(t) ? arg_float(x, t, base, len, inner, sign, last)
			                   : arg_int(x, t, base, len, inner, sign, last);
		}
	}
}

void
kiln_argmax(int64_t *y, const void *x, kiln_dtype dtype, int64_t outer,
            int64_t len, int64_t inner, int select_last)
{
	arg(y, x, dtype, outer, len, inner, 1, select_last);
}

void
kiln_argmin(int64_t *y, const void *x, kiln_dtype dtype, int64_t outer,
            int64_t len, int64_t inner, int select_last)
{
	arg(y, x, dtype, outer, len, inner, -1, select_last);
}

void
kiln_hardmax_f32(float *y, const float *x, int64_t outer, int64_t len,
                 int64_t inner)
{
	for (int64_t o = 0; o < outer; o++) {
		for (int64_t i = 0; i < inner; i++) {
			int64_t base = o * len * inner + i;
			int64_t best = arg_float(x, KILN_F32, base, len, inner, 1, 0);
			for (int64_t l = 0; l < len; l++)
				y[base + l * inner] = l == best ? 1.0f : 0.0f;
		}
	}
}

/* Stores the running sum into element i of y: fa for floats, ia for
 * integers (truncated to the dtype's width, which wraps it). */
static void
put_sum(void *y, kiln_dtype t, int64_t i, double fa, uint64_t ia)
{
	switch (t) {
	case KILN_F32: ((float *)y)[i] = (float)fa; break;
	case KILN_F64: ((double *)y)[i] = fa; break;
	case KILN_I64: ((int64_t *)y)[i] = (int64_t)ia; break;
	case KILN_I32: ((int32_t *)y)[i] = (int32_t)(uint32_t)ia; break;
	case KILN_I8: ((int8_t *)y)[i] = (int8_t)(uint8_t)ia; break;
	default: ((uint8_t *)y)[i] = (uint8_t)ia; break;
	}
}

/* The running sums of the len elements from x[start], stride st. */
static void
cumsum_line(void *y, const void *x, kiln_dtype t, int64_t start, int64_t len,
            int64_t st, int exclusive)
{
	double fa = 0;
	uint64_t ia = 0;

	for (int64_t l = 0; l < len; l++) {
		int64_t e = start + l * st;
		if (exclusive)
			put_sum(y, t, e, fa, ia);
		if (is_float(t))
			fa += get_float(x, t, e);
		else
			ia += (uint64_t)get_int(x, t, e);
		if (!exclusive)
			put_sum(y, t, e, fa, ia);
	}
}

void
kiln_cumsum(void *y, const void *x, kiln_dtype dtype, int64_t outer,
            int64_t len, int64_t inner, int exclusive, int reverse)
{
	for (int64_t o = 0; o < outer; o++) {
		for (int64_t i = 0; i < inner; i++) {
			int64_t base = o * len * inner + i;
			if (reverse)
				cumsum_line(y, x, dtype, base + (len - 1) * inner, len,
				            -inner, exclusive);
			else
				cumsum_line(y, x, dtype, base, len, inner, exclusive);
		}
	}
}

void
kiln_lrn_f32(float *y, const float *x, int64_t n, int64_t c, int64_t inner,
             int64_t size, float alpha, float beta, float bias)
{
	for (int64_t b = 0; b < n; b++) {
		const float *xb = x + b * c * inner;
		for (int64_t ch = 0; ch < c; ch++) {
			/* the window is [ch - floor((size-1)/2), ch + ceil((size-1)/2)] */
			int64_t lo = ch - (size - 1) / 2, hi = ch + size / 2;
			lo = lo < 0 ? 0 : lo;
			hi = hi > c - 1 ? c - 1 : hi;
			for (int64_t i = 0; i < inner; i++) {
				double s = 0;
				for (int64_t q = lo; q <= hi; q++)
					s += (double)xb[q * inner + i] * xb[q * inner + i];
				double d = pow(bias + (double)alpha / (double)size * s, beta);
				y[(b * c + ch) * inner + i] = (float)(xb[ch * inner + i] / d);
			}
		}
	}
}

void
kiln_instance_norm_f32(float *y, const float *x, const float *scale,
                       const float *bias, int64_t n, int64_t c, int64_t inner,
                       float eps)
{
	for (int64_t p = 0; p < n * c; p++) {
		const float *xp = x + p * inner;
		double mean = 0, var = 0;
		for (int64_t i = 0; i < inner; i++)
			mean += xp[i];
		mean /= (double)inner;
		for (int64_t i = 0; i < inner; i++)
			var += (xp[i] - mean) * (xp[i] - mean);
		var /= (double)inner;
		double k = scale[p % c] / sqrt(var + eps);
		for (int64_t i = 0; i < inner; i++)
			y[p * inner + i] = (float)((xp[i] - mean) * k + bias[p % c]);
	}
}
