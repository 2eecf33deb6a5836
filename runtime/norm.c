/* norm.c: normalization kernels, inference form.
 *
 * Batch normalization folds scale and variance into one factor per
 * channel, then makes one pass.  Layer normalization makes
 * two passes over each row (mean, then variance about it), in double so
 * that long rows and rows far from zero lose nothing to cancellation.
 */
#include <math.h>

#include "kiln.h"

void
kiln_batchnorm_f32(float *y, const float *x, const float *scale,
                   const float *bias, const float *mean, const float *var,
                   int64_t n, int64_t c, int64_t inner, float eps)
{
	for (int64_t k = 0; k < c; k++) {
		float mul = scale[k] / sqrtf(var[k] + eps), m = mean[k];
		for (int64_t b = 0; b < n; b++) {
			const float *xp = x + (b * c + k) * inner;
			float *yp = y + (b * c + k) * inner;
			for (int64_t i = 0; i < inner; i++)
				yp[i] = (xp[i] - m) * mul + bias[k];
		}
	}
}

void
kiln_layernorm_f32(float *y, const float *x, const float *scale,
                   const float *bias, int64_t outer, int64_t len, float eps)
{
	for (int64_t o = 0; o < outer; o++) {
		const float *xr = x + o * len;
		float *yr = y + o * len;
		double sum = 0, sq = 0;
		for (int64_t i = 0; i < len; i++)
			sum += xr[i];
		double mean = sum / len;
		for (int64_t i = 0; i < len; i++)
			sq += (xr[i] - mean) * (xr[i] - mean);
		double r = 1 / sqrt(sq / len + eps);
		for (int64_t i = 0; i < len; i++)
			yr[i] = (float)((xr[i] - mean) * r) * scale[i] +
			        (bias ? bias[i] : 0.0f);
	}
}
