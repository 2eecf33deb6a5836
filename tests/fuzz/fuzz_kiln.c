/* fuzz_kiln.c: the .kiln parser, checker and lowering, then the passes a
 * build runs (the train pass first when a graph has a train section).
 *
 * The model is read from the target's temporary directory, which also
 * holds lib.kiln, so includes are exercised: of lib.kiln, of the model
 * itself (a cycle) and of files that are not there.  Passes other than
 * the train pass report no user errors: one after the frontend and the
 * train pass took the model is a finding.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "frontend.h"
#include "fuzz.h"
#include "passes.h"
#include "util.h"

static const char lib[] =
	"block act(x) {\n    return relu(x)\n}\n"
	"model helper {\n    input x: f32[N, 3]\n    output y = act(x) * 2\n}\n";

static bool
has_train(const Module *m)
{
	for (int i = 0; i < m->ngraph; i++)
		if (m->graph[i]->train)
			return true;
	return false;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = fuzz_text(data, size);
	if (!text)
		return 0;
	fuzz_write("lib.kiln", (const uint8_t *)lib, strlen(lib));
	char *path = strdup(fuzz_path("model.kiln"));
	fuzz_write("model.kiln", data, size);
	Arena *a = arena_new();
	volatile int stage = 0;
	fuzz_compiler_begin();
	if (setjmp(fuzz_escape) == 0) {
		Module *m = kl_parse(a, path, text, &(FeOpts){.batch = 2});
		if (has_train(m))       /* it checks the losses' operands */
			pass_run(m, (int[]){PASS_train}, 1,
			         &(PassOpts){.verify_each = true});
		stage = 1;
		fuzz_optimize(m);
	} else if (stage) {
		fprintf(stderr, "fuzz_kiln: an error after the frontend took "
		        "the model\n");
		abort();
	}
	fuzz_compiler_end();
	arena_free(a);
	free(path);
	free(text);
	return 0;
}
