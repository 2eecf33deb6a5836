/* test_main.c: a hand-written model for testing kiln_main().
 *
 * "addone" computes y = x + k and total = sum(y) for x: f32[2,3] and a
 * scalar k: i32[], the way a generated executable would (a description plus
 * a run function that calls runtime kernels).  Setting KILN_TEST_MODEL
 * selects a variant instead: "weird" has names that JSON must escape or
 * that hold '=', and
 * "fail" is addone with a run function that fails.  main.test drives it.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kiln.h"

#define WORKSPACE 100  /* deliberately not a multiple of KILN_ALIGN */

static const struct kiln_tensor_desc addone_in[] = {
	{.name = "x", .dtype = KILN_F32, .rank = 2, .dim = {2, 3}},
	{.name = "k", .dtype = KILN_I32, .rank = 0},
};
static const struct kiln_tensor_desc addone_out[] = {
	{.name = "y", .dtype = KILN_F32, .rank = 2, .dim = {2, 3}},
	{.name = "total", .dtype = KILN_F64, .rank = 0},
};

static const struct kiln_tensor_desc weird_in[] = {
	{.name = "a\"b\\c\nd\te\x01", .dtype = KILN_U8, .rank = 1, .dim = {1}},
};
static const struct kiln_tensor_desc weird_out[] = {
	{.name = "\xc3\xbcn\xc3\xaf=" "code", .dtype = KILN_BOOL, .rank = 0},
};

static int
aligned(const void *p)
{
	return p && (uintptr_t)p % KILN_ALIGN == 0;
}

static kiln_status
addone_run(const void *const *in, void *const *out, void *ws)
{
	static const int64_t dim[2] = {2, 3}, xs[2] = {3, 1}, ks[2] = {0, 0};
	const float *x = in[0];
	float *y = out[0], k = (float)*(const int32_t *)in[1];
	double s = 0;

	if (!aligned(ws) || !aligned(in[0]) || !aligned(in[1]) ||
	    !aligned(out[0]) || !aligned(out[1]))
		return KILN_ERR_ARG;
	memset(ws, 0xab, WORKSPACE);  /* ASan checks the size */
	kiln_add_f32(y, x, &k, 2, dim, xs, ks);
	for (int i = 0; i < 6; i++)
		s += y[i];
	*(double *)out[1] = s;
	return KILN_OK;
}

static kiln_status
weird_run(const void *const *in, void *const *out, void *ws)
{
	(void)ws;
	*(uint8_t *)out[0] = *(const uint8_t *)in[0] != 0;
	return KILN_OK;
}

static kiln_status
fail_run(const void *const *in, void *const *out, void *ws)
{
	(void)in, (void)out, (void)ws;
	return KILN_ERR_UNSUPPORTED;
}

static const struct kiln_model_desc addone = {
	.name = "addone", .ninputs = 2, .noutputs = 2, .inputs = addone_in,
	.outputs = addone_out, .workspace_bytes = WORKSPACE, .run = addone_run,
};
static const struct kiln_model_desc weird = {
	.name = "w\xc3\xa9\"ird", .ninputs = 1, .noutputs = 1, .inputs = weird_in,
	.outputs = weird_out, .workspace_bytes = 0, .run = weird_run,
};
static const struct kiln_model_desc fail = {
	.name = "fail", .ninputs = 2, .noutputs = 2, .inputs = addone_in,
	.outputs = addone_out, .workspace_bytes = WORKSPACE, .run = fail_run,
};

int
main(int argc, char **argv)
{
	const char *v = getenv("KILN_TEST_MODEL");

	if (v && !strcmp(v, "weird"))
		return kiln_main(argc, argv, &weird);
	if (v && !strcmp(v, "fail"))
		return kiln_main(argc, argv, &fail);
	return kiln_main(argc, argv, &addone);
}
