/* fuzz.h: what the libFuzzer targets of tests/fuzz/ share.
 *
 * Each target is one LLVMFuzzerTestOneInput() over one kind of input a
 * stranger may hand kiln.  The compiler reports a user error by printing
 * it and exiting; a target makes diag's cleanup a longjmp back to itself,
 * so it can free what the input took and go on.  Anything else (a crash,
 * a sanitizer report, an internal error's abort, an error out of a stage
 * that must not give one) is a finding.
 */
#ifndef KILN_FUZZ_H
#define KILN_FUZZ_H

#include <setjmp.h>
#include <stddef.h>
#include <stdint.h>

extern jmp_buf fuzz_escape;
/* Around a call into the compiler:
 *   fuzz_compiler_begin();
 *   if (setjmp(fuzz_escape) == 0) { ...the call... }
 *   fuzz_compiler_end();
 * begin makes diag's cleanup a longjmp to fuzz_escape and stops the leak
 * checker: an error exits, and the exit frees what the compiler holds
 * (arenas, open files), so what an escape leaves is not a leak.  end
 * forgets diag's state and checks leaks again.  The runtime's readers
 * return their errors, and the runtime lives in long-running programs:
 * they are fuzzed with leak checks on. */
void fuzz_compiler_begin(void);
void fuzz_compiler_end(void);
/* The -O2 passes over m, each verified after (fuzz_compiler.c). */
struct Module;
void fuzz_optimize(struct Module *m);

/* name in the target's own temporary directory, made on first use and
 * removed at exit. */
const char *fuzz_path(const char *name);
/* Writes d[0..n) to fuzz_path(name) and returns that path. */
const char *fuzz_write(const char *name, const uint8_t *d, size_t n);
/* Aborts when a runtime reader failed (s != 0) without saying why. */
void fuzz_said(int s, const char *msg);
/* d[0..n) as a NUL-terminated string (malloc'd), or NULL when it holds a
 * NUL byte (the loaders refuse those before parsing). */
char *fuzz_text(const uint8_t *d, size_t n);

#endif
