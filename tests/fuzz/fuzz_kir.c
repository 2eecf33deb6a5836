/* fuzz_kir.c: the .kir parser and verifier, then the round trip and the
 * optimizing pipeline.
 *
 * A file the parser takes must print as text that parses again and prints
 * the same (.kir round-trips byte for byte), and the -O2 passes, which
 * report no user errors, must take it without one (each verified after).
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "fuzz.h"
#include "ir.h"
#include "util.h"

/* m printed with all its data, as a malloc'd string. */
static char *
print(const Module *m)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	ir_print(f, m, &(PrintOpts){.constants = true});
	fclose(f);
	return buf;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = fuzz_text(data, size);
	if (!text)
		return 0;
	Arena *a = arena_new();
	char *volatile once = NULL, *volatile twice = NULL;
	volatile int stage = 0;
	fuzz_compiler_begin();
	if (setjmp(fuzz_escape) == 0) {
		Module *m = ir_parse(a, "fuzz.kir", text);
		stage = 1;
		once = print(m);
		m = ir_parse(a, "printed.kir", once);
		twice = print(m);
		if (strcmp(once, twice) != 0) {
			fprintf(stderr, "fuzz_kir: printed differently the second "
			        "time:\n%s\n----\n%s\n", once, twice);
			abort();
		}
		fuzz_optimize(m);
	} else if (stage) {
		fprintf(stderr, "fuzz_kir: an error after the parser took the "
		        "file\n");
		abort();
	}
	fuzz_compiler_end();
	free(once);
	free(twice);
	arena_free(a);
	free(text);
	return 0;
}
