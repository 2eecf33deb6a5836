/* kiln_scalar.h: the f32 activations as inline functions of one element.
 *
 * The runtime's elementwise kernels, the fused epilogues of its conv and
 * GEMM kernels and the elementwise loops the backends generate all call
 * these, so a fused op computes bit for bit what the separate ops would.
 * Generated code includes this header; like kiln.h it includes nothing
 * from the compiler.
 */
#ifndef KILN_SCALAR_H
#define KILN_SCALAR_H

#include <math.h>

/* max(x, 0); NaN stays NaN. */
static inline float
kiln_s_relu(float x)
{
	return x < 0.0f ? 0.0f : x;
}

/* exp() only ever sees -|x|, so it cannot overflow: for x < 0 the
 * identity 1/(1+e^-x) = e^x/(1+e^x) is used. */
static inline float
kiln_s_sigmoid(float x)
{
	float e = expf(-fabsf(x));

	return x >= 0.0f ? 1.0f / (1.0f + e) : e / (1.0f + e);
}

static inline float
kiln_s_tanh(float x)
{
	return tanhf(x);
}

static inline float
kiln_s_leaky_relu(float x, float alpha)
{
	return x >= 0.0f ? x : alpha * x;
}

/* expm1f keeps alpha * (e^x - 1) accurate for x near 0. */
static inline float
kiln_s_elu(float x, float alpha)
{
	return x >= 0.0f ? x : alpha * expm1f(x);
}

static inline float
kiln_s_selu(float x, float alpha, float gamma)
{
	return gamma * (x > 0.0f ? x : alpha * expm1f(x));
}

/* Exact form: 1 + erf(z) = erfc(-z), which keeps its relative accuracy
 * where erf(z) is close to -1.  Tanh form: 1 + tanh(u) = 2 sigmoid(2u). */
static inline float
kiln_s_gelu(float x, int approximate)
{
	if (approximate) {
		float u = 0.79788456080286536f * (x + 0.044715f * x * x * x);
		return x * kiln_s_sigmoid(2.0f * u);
	}
	return 0.5f * x * erfcf(-x * 0.70710678118654752f);
}

static inline float
kiln_s_silu(float x)
{
	return x * kiln_s_sigmoid(x);
}

/* Piecewise, so that x * (x + 3) / 6 has no rounding of x/6 + 1/2 in
 * it, and the saturated ends are exact (0 at -inf, not NaN). */
static inline float
kiln_s_hardswish(float x)
{
	if (x <= -3.0f)
		return 0.0f;
	return x >= 3.0f ? x : x * (x + 3.0f) / 6.0f;
}

static inline float
kiln_s_hardsigmoid(float x, float alpha, float beta)
{
	float v = alpha * x + beta;

	return v < 0.0f ? 0.0f : v > 1.0f ? 1.0f : v;
}

/* Comparisons are false for NaN, so NaN passes through; when lo > hi
 * the result is hi, as in ONNX and numpy.clip. */
static inline float
kiln_s_clip(float x, float lo, float hi)
{
	float v = x < lo ? lo : x;

	return v > hi ? hi : v;
}

#endif
