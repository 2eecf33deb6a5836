/* act.c: unary elementwise kernels beyond relu, sigmoid and tanh:
 * exp, log, sqrt, neg, abs and the parameterised activations (leaky_relu,
 * elu, selu, gelu, silu, hardswish, hardsigmoid, clip).
 *
 * Each is one flat loop over n elements; y may equal x.  The C backend
 * calls them as kiln_<op>_f32(y, x, n, <attributes in registry order>).
 * The formulas are kiln_scalar.h's, shared with fused epilogues and loops.
 */
#include <math.h>

#include "kiln.h"
#include "kiln_scalar.h"

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
		y[i] = kiln_s_leaky_relu(x[i], alpha);
}

void
kiln_elu_f32(float *y, const float *x, int64_t n, float alpha)
{
	for (int64_t i = 0; i < n; i++)
		y[i] = kiln_s_elu(x[i], alpha);
}

void
kiln_selu_f32(float *y, const float *x, int64_t n, float alpha, float gamma)
{
	for (int64_t i = 0; i < n; i++)
		y[i] = kiln_s_selu(x[i], alpha, gamma);
}

void
kiln_gelu_f32(float *y, const float *x, int64_t n, int approximate)
{
	for (int64_t i = 0; i < n; i++)
		y[i] = kiln_s_gelu(x[i], approximate);
}

void
kiln_silu_f32(float *y, const float *x, int64_t n)
{
	for (int64_t i = 0; i < n; i++)
		y[i] = kiln_s_silu(x[i]);
}

void
kiln_hardswish_f32(float *y, const float *x, int64_t n)
{
	for (int64_t i = 0; i < n; i++)
		y[i] = kiln_s_hardswish(x[i]);
}

void
kiln_hardsigmoid_f32(float *y, const float *x, int64_t n, float alpha,
                     float beta)
{
	for (int64_t i = 0; i < n; i++)
		y[i] = kiln_s_hardsigmoid(x[i], alpha, beta);
}

void
kiln_clip_f32(float *y, const float *x, int64_t n, float lo, float hi)
{
	for (int64_t i = 0; i < n; i++)
		y[i] = kiln_s_clip(x[i], lo, hi);
}
