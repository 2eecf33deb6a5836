/* epilogue.c: the fused epilogue of the conv and GEMM kernels (kiln.h):
 * y = act(y + r), one switch per call and a plain loop per activation. */
#include "kiln.h"
#include "kiln_scalar.h"

/* The loop over y, with or without the residual, for one activation. */
#define LOOP(expr)                                                       \
	do {                                                             \
		if (r)                                                   \
			for (int64_t i = 0; i < n; i++) {                \
				float v = y[i] + r[i];                   \
				y[i] = expr;                             \
			}                                                \
		else                                                     \
			for (int64_t i = 0; i < n; i++) {                \
				float v = y[i];                          \
				y[i] = expr;                             \
			}                                                \
	} while (0)

void
kiln_epilogue_f32(float *y, int64_t n, int64_t off,
                  const struct kiln_epilogue *e)
{
	const float *r = e->res ? e->res + off : NULL;
	float a = e->alpha, b = e->beta;

	switch (e->act) {
	case KILN_ACT_NONE: LOOP(v); break;
	case KILN_ACT_RELU: LOOP(kiln_s_relu(v)); break;
	case KILN_ACT_CLIP: LOOP(kiln_s_clip(v, a, b)); break;
	case KILN_ACT_LEAKY_RELU: LOOP(kiln_s_leaky_relu(v, a)); break;
	case KILN_ACT_SIGMOID: LOOP(kiln_s_sigmoid(v)); break;
	case KILN_ACT_TANH: LOOP(kiln_s_tanh(v)); break;
	case KILN_ACT_HARDSWISH: LOOP(kiln_s_hardswish(v)); break;
	case KILN_ACT_HARDSIGMOID: LOOP(kiln_s_hardsigmoid(v, a, b)); break;
	case KILN_ACT_GELU: LOOP(kiln_s_gelu(v, 0)); break;
	case KILN_ACT_GELU_TANH: LOOP(kiln_s_gelu(v, 1)); break;
	case KILN_ACT_SILU: LOOP(kiln_s_silu(v)); break;
	}
}
