/* fuzz_onnx.c: the ONNX reader (protobuf-c) and importer, then the -O2
 * passes.
 *
 * The model is read from the target's temporary directory, which also
 * holds weights.bin (4 KiB), so external data is exercised within the
 * directory as well as paths that leave it.  Passes report no user
 * errors: one after the importer took the model is a finding.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "frontend.h"
#include "fuzz.h"
#include "util.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t weights[4096];
	for (int i = 0; i < (int)sizeof weights; i++)
		weights[i] = (uint8_t)(i * 7);
	fuzz_write("weights.bin", weights, sizeof weights);
	char *path = strdup(fuzz_write("model.onnx", data, size));
	Arena *a = arena_new();
	volatile int stage = 0;
	fuzz_compiler_begin();
	if (setjmp(fuzz_escape) == 0) {
		Module *m = onnx_load(a, path, &(FeOpts){.batch = 1});
		stage = 1;
		fuzz_optimize(m);
	} else if (stage) {
		fprintf(stderr, "fuzz_onnx: an error after the importer took "
		        "the model\n");
		abort();
	}
	fuzz_compiler_end();
	arena_free(a);
	free(path);
	return 0;
}
