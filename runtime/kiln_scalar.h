/* kiln_scalar.h: the f32 activations and other elementwise formulas as
 * inline functions of one element.
 *
 * The runtime's elementwise kernels, the fused epilogues of its conv and
 * GEMM kernels and the elementwise loops the backends generate all call
 * these, so a fused op computes bit for bit what the separate ops would.
 * Generated code includes this header; like kiln.h it includes nothing
 * from the compiler.
 *
 * They are C99 inline functions, not static ones: runtime/scalar.c gives
 * each its one external definition, so a kiln_s_ function is also a
 * symbol of the runtime library.  The LLVM backend's loops call those
 * symbols for the ops they do not compute natively (ir/fused.c), and a C
 * compiler that does not inline a call links the same code.
 */
#ifndef KILN_SCALAR_H
#define KILN_SCALAR_H

#include <math.h>

/* max(x, 0); NaN stays NaN. */
inline float
kiln_s_relu(float x)
{
	return x < 0.0f ? 0.0f : x;
}

/* exp() only ever sees -|x|, so it cannot overflow: for x < 0 the
 * identity 1/(1+e^-x) = e^x/(1+e^x) is used. */
inline float
kiln_s_sigmoid(float x)
{
	float e = expf(-fabsf(x));

	return x >= 0.0f ? 1.0f / (1.0f + e) : e / (1.0f + e);
}

inline float
kiln_s_tanh(float x)
{
	return tanhf(x);
}

inline float
kiln_s_leaky_relu(float x, float alpha)
{
	return x >= 0.0f ? x : alpha * x;
}

/* expm1f keeps alpha * (e^x - 1) accurate for x near 0. */
inline float
kiln_s_elu(float x, float alpha)
{
	return x >= 0.0f ? x : alpha * expm1f(x);
}

inline float
kiln_s_selu(float x, float alpha, float gamma)
{
	return gamma * (x > 0.0f ? x : alpha * expm1f(x));
}

/* Exact form: 1 + erf(z) = erfc(-z), which keeps its relative accuracy
 * where erf(z) is close to -1.  Tanh form: 1 + tanh(u) = 2 sigmoid(2u). */
inline float
kiln_s_gelu(float x, int approximate)
{
	if (approximate) {
		float u = 0.79788456080286536f * (x + 0.044715f * x * x * x);
		return x * kiln_s_sigmoid(2.0f * u);
	}
	return 0.5f * x * erfcf(-x * 0.70710678118654752f);
}

inline float
kiln_s_silu(float x)
{
	return x * kiln_s_sigmoid(x);
}

/* Piecewise, so that x * (x + 3) / 6 has no rounding of x/6 + 1/2 in
 * it, and the saturated ends are exact (0 at -inf, not NaN). */
inline float
kiln_s_hardswish(float x)
{
	if (x <= -3.0f)
		return 0.0f;
	return x >= 3.0f ? x : x * (x + 3.0f) / 6.0f;
}

inline float
kiln_s_hardsigmoid(float x, float alpha, float beta)
{
	float v = alpha * x + beta;

	return v < 0.0f ? 0.0f : v > 1.0f ? 1.0f : v;
}

/* Comparisons are false for NaN, so NaN passes through; when lo > hi
 * the result is hi, as in ONNX and numpy.clip. */
inline float
kiln_s_clip(float x, float lo, float hi)
{
	float v = x < lo ? lo : x;

	return v > hi ? hi : v;
}

/* numpy's sign: -0 gives +0 and NaN stays NaN. */
inline float
kiln_s_sign(float x)
{
	return x > 0 ? 1.0f : x < 0 ? -1.0f : x == 0 ? 0.0f : x;
}

/* ln(1 + e^x) = max(x, 0) + ln(1 + e^-|x|): e^ never overflows. */
inline float
kiln_s_softplus(float x)
{
	return fmaxf(x, 0.0f) + log1pf(expf(-fabsf(x)));
}

inline float
kiln_s_softsign(float x)
{
	return x / (1.0f + fabsf(x));
}

/* max(0, x) + min(0, alpha * (e^(x/alpha) - 1)) for alpha > 0, written
 * so that NaN stays NaN (fmaxf would drop it). */
inline float
kiln_s_celu(float x, float alpha)
{
	return x > 0.0f ? x : alpha * expm1f(x / alpha);
}

inline float
kiln_s_thresholded_relu(float x, float alpha)
{
	return x > alpha ? x : 0.0f;
}

inline float
kiln_s_shrink(float x, float bias, float lambd)
{
	return x < -lambd ? x + bias : x > lambd ? x - bias : 0.0f;
}

#endif
