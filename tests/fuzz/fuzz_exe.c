/* fuzz_exe.c: a model executable's command line as it reads its inputs
 * (runtime/main.c): kiln_main() of a small model, twice, with the fuzzed
 * file as each of its two inputs in turn and a valid file as the other.
 * The model gathers x at the indices n, so indices out of range reach the
 * run too.  kiln_main() must return 0, 1 or 2.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "fuzz.h"
#include "kiln.h"

static const struct kiln_tensor_desc inputs[] = {
	{"x", KILN_F32, 2, {2, 3}},
	{"n", KILN_I64, 1, {4}},
};
static const struct kiln_tensor_desc outputs[] = {
	{"y", KILN_F32, 1, {4}},
};

static kiln_status
run(const void *const *in, void *const *out, void *workspace)
{
	const float *x = in[0];
	const int64_t *n = in[1];
	float *y = out[0];
	(void)workspace;
	for (int i = 0; i < 4; i++) {
		if (n[i] < -6 || n[i] >= 6)
			return KILN_ERR_RANGE;
		y[i] = x[n[i] < 0 ? n[i] + 6 : n[i]];
	}
	return KILN_OK;
}

static const struct kiln_model_desc model = {
	"fuzz", 2, 1, inputs, outputs, 64, run,
};

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char paths[3][256];
	if (!paths[0][0]) {
		float x[6] = {1, 2, 3, 4, 5, 6};
		int64_t n[4] = {0, 5, -1, 2};
		char msg[256];
		snprintf(paths[0], sizeof paths[0], "x=%s", fuzz_path("x.npy"));
		snprintf(paths[1], sizeof paths[1], "n=%s", fuzz_path("n.npy"));
		snprintf(paths[2], sizeof paths[2], "y=%s", fuzz_path("y.npy"));
		if (kiln_npy_save(paths[0] + 2, KILN_F32, 2, (int64_t[]){2, 3}, x,
		                  msg, sizeof msg) ||
		    kiln_npy_save(paths[1] + 2, KILN_I64, 1, (int64_t[]){4}, n,
		                  msg, sizeof msg)) {
			fprintf(stderr, "fuzz_exe: %s\n", msg);
			abort();
		}
	}
	const char *path = fuzz_write("fuzzed.npy", data, size);
	for (int which = 0; which < 2; which++) {
		char fuzzed[256];
		snprintf(fuzzed, sizeof fuzzed, "%c=%s", which ? 'n' : 'x', path);
		char *argv[] = {
			"fuzz", "--input", which ? paths[0] : fuzzed, "--input",
			which ? fuzzed : paths[1], "--output", paths[2], NULL,
		};
		int rc = kiln_main((int)(sizeof argv / sizeof *argv) - 1, argv,
		                   &model);
		if (rc < 0 || rc > 2) {
			fprintf(stderr, "fuzz_exe: kiln_main returned %d\n", rc);
			abort();
		}
	}
	return 0;
}
