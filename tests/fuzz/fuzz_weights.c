/* fuzz_weights.c: the safetensors readers, both of them: the compiler's
 * (frontend/weights.c, kiln build --weights) into a small model's params
 * and consts, and the runtime's (runtime/safetensors.c) as a trainer's
 * --weights file and as its --resume checkpoint.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "frontend.h"
#include "fuzz.h"
#include "kiln.h"
#include "util.h"

static const char model[] =
	"graph @m(%x: f32[2,3]) {\n"
	"  param $w: f32[2,3] = zeros\n"
	"  param $b: f64[3] = zeros\n"
	"  const $i: i64[2] = [0, 1]\n"
	"  const $u: u8[1] = [7]\n"
	"  %y = add %x, $w : f32[2,3]\n"
	"  return %y, $b, $i, $u\n"
	"}\n";

/* The trainer's state: two params, a running statistic and an optimizer
 * slot, at their offsets. */
static const struct kiln_state_desc state[] = {
	{"w", KILN_STATE_PARAM, KILN_F32, 2, {2, 3}, 0},
	{"b", KILN_STATE_PARAM, KILN_I64, 1, {3}, 64},
	{"bn.mean", KILN_STATE_BUFFER, KILN_F32, 1, {4}, 128},
	{"w.m", KILN_STATE_SLOT, KILN_F32, 2, {2, 3}, 192},
};

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *path = strdup(fuzz_write("w.safetensors", data, size));
	static _Alignas(64) unsigned char base[256];
	char msg[512] = "";
	fuzz_said(kiln_weights_load(path, state, countof(state), base, msg,
	                        sizeof msg), msg);
	msg[0] = 0;
	fuzz_said(kiln_checkpoint_load(path, state, countof(state), base, "m",
	                           msg, sizeof msg), msg);

	Arena *a = arena_new();
	fuzz_compiler_begin();
	if (setjmp(fuzz_escape) == 0) {
		Module *m = ir_parse(a, "m.kir", model);
		weights_load(m, path);
	}
	fuzz_compiler_end();
	arena_free(a);
	free(path);
	return 0;
}
