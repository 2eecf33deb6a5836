/* llgen.h: what the LLVM backend's files share (backends/llvm/ only).
 *
 * llgen.c builds a planned graph's module with the LLVM C API and
 * writes it as an object, assembly or .ll text; jit.c compiles the same
 * module into the running kiln with ORC's LLJIT.
 */
#ifndef KILN_LLGEN_H
#define KILN_LLGEN_H

#include <llvm-c/Core.h>
#include <llvm-c/TargetMachine.h>
#include "lower.h"

/* The target machine for lo: the host's triple, CPU and features by
 * default; a fatal error for a triple, CPU or feature LLVM does not know
 * and for a target whose pointers are not 64 bits wide. */
LLVMTargetMachineRef llgen_target(const LlvmOpts *lo);
/* g's module in ctx, with tm's triple and data layout, optimized at
 * lo->opt with the new pass manager (default<O2> etc.). */
LLVMModuleRef llgen_module(Graph *g, const CgenOpts *o, const LlvmOpts *lo,
                           LLVMContextRef ctx, LLVMTargetMachineRef tm);

#endif
