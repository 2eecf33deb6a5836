/* fuzz_compiler.c: the escape from the compiler's errors (fuzz.h). */
#include <sanitizer/lsan_interface.h>
#include "fuzz.h"
#include "ir.h"
#include "passes.h"
#include "util.h"

jmp_buf fuzz_escape;

static void
leave(void)
{
	longjmp(fuzz_escape, 1);
}

void
fuzz_compiler_begin(void)
{
	__lsan_disable();
	diag_atexit(leave);
}

void
fuzz_compiler_end(void)
{
	diag_reset();
	__lsan_enable();
}

void
fuzz_optimize(Module *m)
{
	int n;
	const int *ids = pass_pipeline(PASS_MAXLEVEL, &n);
	pass_run(m, ids, n, &(PassOpts){.verify_each = true});
}
