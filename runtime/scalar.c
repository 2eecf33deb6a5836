/* scalar.c: the external definitions of kiln_scalar.h's inline functions.
 *
 * An `extern inline` declaration in one translation unit makes C99 emit
 * the function there, so each kiln_s_ function is a symbol of the
 * runtime library: what the LLVM backend's generated loops call (and what
 * a C compiler links when it does not inline a call).  The list follows
 * kiln_scalar.h.
 */
#include "kiln_scalar.h"

extern inline float kiln_s_relu(float x);
extern inline float kiln_s_sigmoid(float x);
extern inline float kiln_s_tanh(float x);
extern inline float kiln_s_leaky_relu(float x, float alpha);
extern inline float kiln_s_elu(float x, float alpha);
extern inline float kiln_s_selu(float x, float alpha, float gamma);
extern inline float kiln_s_gelu(float x, int approximate);
extern inline float kiln_s_silu(float x);
extern inline float kiln_s_hardswish(float x);
extern inline float kiln_s_hardsigmoid(float x, float alpha, float beta);
extern inline float kiln_s_clip(float x, float lo, float hi);
extern inline float kiln_s_sign(float x);
extern inline float kiln_s_softplus(float x);
extern inline float kiln_s_softsign(float x);
extern inline float kiln_s_celu(float x, float alpha);
extern inline float kiln_s_thresholded_relu(float x, float alpha);
extern inline float kiln_s_shrink(float x, float bias, float lambd);
