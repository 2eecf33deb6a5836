/* jit.c: a planned graph compiled into this process by ORC's LLJIT, for
 * `kiln run` without a C compiler or temporary files.
 *
 * llgen builds and optimizes the module (the same one `kiln build
 * --backend=llvm` writes as an object) in a thread-safe context; LLJIT
 * then compiles it to memory for the host, with the target machine that
 * optimized it, so the CPU, features and codegen level are one choice.
 * The module calls the runtime's kernels and libm, which it finds in the
 * kiln process itself: the kiln executable links the whole runtime and
 * exports its symbols (tools/meson.build).  Every LLVM error is a fatal
 * diagnostic carrying LLVM's message.
 */
#include <llvm-c/Error.h>
#include <llvm-c/LLJIT.h>
#include <llvm-c/Orc.h>
#include <stdlib.h>
#include "llgen.h"

struct LlvmJit {
	LLVMOrcLLJITRef jit;        /* owns the module and the compiled code */
	char why[1024];             /* the first error ORC reported on its own */
};

/* ORC reports what went wrong while linking (a symbol not found) to the
 * session and returns only "failed to materialize"; keep the cause. */
static void
report(void *ctx, LLVMErrorRef err)
{
	LlvmJit *j = ctx;
	char *msg = LLVMGetErrorMessage(err);
	if (!j->why[0])
		snprintf(j->why, sizeof j->why, "%s", msg);
	LLVMDisposeErrorMessage(msg);
}

/* Consumes err; fatal with LLVM's message when it is an error. */
static void
check(const LlvmJit *j, LLVMErrorRef err, const char *what)
{
	if (!err)
		return;
	char *msg = LLVMGetErrorMessage(err);
	char buf[1024];
	snprintf(buf, sizeof buf, "%s", j->why[0] ? j->why : msg);
	LLVMDisposeErrorMessage(msg);
	fatal("LLVM JIT: %s: %s", what, buf);
}

/* g's module in a new thread-safe context; the module holds the last
 * reference to the context, which dies with it. */
static LLVMOrcThreadSafeModuleRef
build_module(Graph *g, const CgenOpts *o, const LlvmOpts *lo,
             LLVMTargetMachineRef tm)
{
	LLVMOrcThreadSafeContextRef tsc = LLVMOrcCreateNewThreadSafeContext();
	LLVMContextRef ctx = LLVMOrcThreadSafeContextGetContext(tsc);
	LLVMModuleRef m = llgen_module(g, o, lo, ctx, tm);
	LLVMOrcThreadSafeModuleRef tsm = LLVMOrcCreateNewThreadSafeModule(m, tsc);
	LLVMOrcDisposeThreadSafeContext(tsc);
	return tsm;
}

/* j's LLJIT: for the host, its code generator configured as tm
 * (consumed), resolving what the module does not define in this
 * process. */
static void
make_jit(LlvmJit *j, LLVMTargetMachineRef tm)
{
	LLVMOrcLLJITBuilderRef b = LLVMOrcCreateLLJITBuilder();
	LLVMOrcLLJITBuilderSetJITTargetMachineBuilder(b,
		LLVMOrcJITTargetMachineBuilderCreateFromTargetMachine(tm));
	check(j, LLVMOrcCreateLLJIT(&j->jit, b), "cannot create the JIT");
	LLVMOrcExecutionSessionSetErrorReporter(
		LLVMOrcLLJITGetExecutionSession(j->jit), report, j);
	LLVMOrcDefinitionGeneratorRef gen;
	check(j, LLVMOrcCreateDynamicLibrarySearchGeneratorForProcess(&gen,
	      LLVMOrcLLJITGetGlobalPrefix(j->jit), NULL, NULL),
	      "cannot search this process's symbols");
	LLVMOrcJITDylibAddGenerator(LLVMOrcLLJITGetMainJITDylib(j->jit), gen);
}

LlvmJit *
llvm_jit(Graph *g, const CgenOpts *o, int opt, const void **model)
{
	LlvmOpts lo = {.opt = opt};
	LLVMTargetMachineRef tm = llgen_target(&lo);
	LLVMOrcThreadSafeModuleRef tsm = build_module(g, o, &lo, tm);
	LlvmJit *j = xmalloc(sizeof *j);
	j->why[0] = 0;
	make_jit(j, tm);
	check(j, LLVMOrcLLJITAddLLVMIRModule(j->jit,
	      LLVMOrcLLJITGetMainJITDylib(j->jit), tsm), "cannot add the module");
	/* The lookup compiles the module and links it against the process. */
	const char *sym = arena_printf(g->mod->arena, "%s_model", o->prefix);
	LLVMOrcExecutorAddress addr;
	check(j, LLVMOrcLLJITLookup(j->jit, &addr, sym),
	      "cannot compile the model");
	*model = (const void *)(uintptr_t)addr;
	return j;
}

void
llvm_jit_free(LlvmJit *j)
{
	if (!j)
		return;
	check(j, LLVMOrcDisposeLLJIT(j->jit), "cannot free the JIT");
	free(j);
}
