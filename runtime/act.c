/* act.c: unary elementwise kernels beyond relu, sigmoid and tanh:
 * exp, log, sqrt, neg, abs and the parameterised activations (leaky_relu,
 * elu, selu, gelu, silu, hardswish, hardsigmoid, clip).
 *
 * Each is one flat loop over n elements; y may equal x.  The C backend
 * calls them as kiln_<op>_f32(y, x, n, <attributes in registry order>).
 * Where a textbook formula cancels (e^x - 1 near 0, 1 + erf(z) for z very
 * negative), an equivalent form without the cancellation is used.
 */
#include <math.h>

#include "kiln.h"

void
kiln_exp_f32(float *y, const float *x, int64_t n)
{
	for (int64_t i = 0; i < n; i++)
		y[i] = expf(x[i]);
}

void
kiln_log_f32(float *y, const float *x, int64_t n)
{
	for (int64_t i = 0; i < n; i++)
		y[i] = logf(x[i]);
}

void
kiln_sqrt_f32(float *y, const float *x, int64_t n)
{
	for (int64_t i = 0; i < n; i++)
		y[i] = sqrtf(x[i]);
}

void
kiln_neg_f32(float *y, const float *x, int64_t n)
{
	for (int64_t i = 0; i < n; i++)
		y[i] = -x[i];
}

void
kiln_abs_f32(float *y, const float *x, int64_t n)
{
	for (int64_t i = 0; i < n; i++)
		y[i] = fabsf(x[i]);
}

void
kiln_leaky_relu_f32(float *y, const float *x, int64_t n, float alpha)
{
	for (int64_t i = 0; i < n; i++)
		y[i] = x[i] >= 0.0f ? x[i] : alpha * x[i];
}

/* expm1f keeps alpha * (e^x - 1) accurate for x near 0. */
void
kiln_elu_f32(float *y, const float *x, int64_t n, float alpha)
{
	for (int64_t i = 0; i < n; i++)
		y[i] = x[i] >= 0.0f ? x[i] : alpha * expm1f(x[i]);
}

void
kiln_selu_f32(float *y, const float *x, int64_t n, float alpha, float gamma)
{
	for (int64_t i = 0; i < n; i++)
		y[i] = gamma * (x[i] > 0.0f ? x[i] : alpha * expm1f(x[i]));
}

/* 1/(1 + e^-x), with exp() of -|x| only, so it cannot overflow. */
static float
sigm(float x)
{
	float e = expf(-fabsf(x));

	return x >= 0.0f ? 1.0f / (1.0f + e) : e / (1.0f + e);
}

/* Exact form: 1 + erf(z) = erfc(-z), which keeps its relative accuracy
 * where erf(z) is close to -1.  Tanh form: 1 + tanh(u) = 2 sigmoid(2u). */
void
kiln_gelu_f32(float *y, const float *x, int64_t n, int approximate)
{
	const float rsqrt2 = 0.70710678118654752f, k = 0.79788456080286536f;

	if (approximate) {
		for (int64_t i = 0; i < n; i++) {
			float u = k * (x[i] + 0.044715f * x[i] * x[i] * x[i]);
			y[i] = x[i] * sigm(2.0f * u);
		}
		return;
	}
	for (int64_t i = 0; i < n; i++)
		y[i] = 0.5f * x[i] * erfcf(-x[i] * rsqrt2);
}

void
kiln_silu_f32(float *y, const float *x, int64_t n)
{
	for (int64_t i = 0; i < n; i++)
		y[i] = x[i] * sigm(x[i]);
}

/* Piecewise, so that x * (x + 3) / 6 has no rounding of x/6 + 1/2 in
 * it, and the saturated ends are exact (0 at -inf, not NaN). */
void
kiln_hardswish_f32(float *y, const float *x, int64_t n)
{
	for (int64_t i = 0; i < n; i++) {
		float v = x[i];
		if (v <= -3.0f)
			y[i] = 0.0f;
		else
			y[i] = v >= 3.0f ? v : v * (v + 3.0f) / 6.0f;
	}
}

void
kiln_hardsigmoid_f32(float *y, const float *x, int64_t n, float alpha,
                     float beta)
{
	for (int64_t i = 0; i < n; i++) {
		float v = alpha * x[i] + beta;
		y[i] = v < 0.0f ? 0.0f : v > 1.0f ? 1.0f : v;
	}
}

/* Comparisons are false for NaN, so NaN passes through; when lo > hi
 * every element becomes hi, as in ONNX and numpy.clip. */
void
kiln_clip_f32(float *y, const float *x, int64_t n, float lo, float hi)
{
	for (int64_t i = 0; i < n; i++) {
		float v = x[i] < lo ? lo : x[i];
		y[i] = v > hi ? hi : v;
	}
}
