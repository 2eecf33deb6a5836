/* backend.h: code generation, the map of the backends/ layer.
 *
 * Backends take one fully planned graph (after the memplan pass: every
 * temporary has a workspace offset).  The one big switch over op kinds is
 * lower.c, which the code generators share through lower.h; the ONNX
 * exporter instead takes the graph as the frontend made it.  Parameters
 * and constants travel as one weights blob, each tensor at a 64-byte
 * aligned offset given by blob_layout().
 */
#ifndef KILN_BACKEND_H
#define KILN_BACKEND_H

#include <stdio.h>
#include "ir.h"

/* backends/blob.c */
/* Offset of each param/const in the blob (-1 for other values); returns
 * the blob size.  Materializes initializers; elided data is an error. */
int64_t blob_layout(Graph *g, int64_t *off);
/* The blob itself, from the graph's arena. */
unsigned char *blob_build(Graph *g, const int64_t *off, int64_t size);

/* backends/c/cgen.c */
typedef struct {
	const char *prefix;         /* C identifier prefix, e.g. "cnn" */
	const char *header;         /* name the .c includes, e.g. "cnn.h" */
	const char *weights;        /* blob file the .c links, e.g. "cnn.weights" */
	const char *source;         /* model file, for comments */
} CgenOpts;
void cgen_emit(Graph *g, const CgenOpts *o, FILE *c, FILE *h);
/* Only NAME.h, the API; what the LLVM backend's objects come with. */
void cgen_emit_header(Graph *g, const CgenOpts *o, FILE *h);
char *cgen_ident(Arena *a, const char *name); /* a C identifier for name */

/* backends/c/trainer.c: a trainer (`kiln build --train`) from the train
 * pass's planned graphs of model m: its nsteps step graphs (@m.step, or
 * @m.step.NAME for each step; at most 8), @m.eval and @m.attack (or
 * NULL): writes NAME.c to c (main() under -DKILN_MAIN) and returns the
 * blob it links (o->weights), *size bytes: the initial state, then the
 * constants. */
unsigned char *cgen_emit_trainer(Graph *const *steps, int nsteps, Graph *eval,
                                 Graph *attack, Graph *model,
                                 const CgenOpts *o, FILE *c, int64_t *size);

/* backends/llvm/ (only when kiln is built with LLVM: KILN_HAVE_LLVM) */
typedef enum { LLVM_EMIT_OBJ, LLVM_EMIT_ASM, LLVM_EMIT_IR } LlvmEmit;
typedef struct {
	const char *triple;     /* NULL: the host's */
	const char *cpu;        /* NULL: the host's CPU (another triple: its
	                         * generic CPU) */
	const char *features;   /* NULL: the host's (another triple: its
	                         * defaults, e.g. +m,+a,+f,+d,+c for riscv64) */
	int opt;                /* LLVM's level: 0 to 3 */
	bool main;              /* also define main() over kiln_main() */
} LlvmOpts;
/* Compiles planned graph g, with the weights as a constant in the
 * module, into an object, assembly or .ll text (malloc'd, *n bytes):
 * the same API as cgen_emit's NAME.c, declared by cgen_emit_header's
 * NAME.h.  The same graph and options give the same bytes.  A triple,
 * CPU or feature LLVM does not know is a fatal error. */
/* Whether triple names this machine (its architecture and operating
 * system; the vendor may differ), whose cc and runtime can link code for
 * it. */
bool llgen_is_host(const char *triple);
unsigned char *llgen_emit(Graph *g, const CgenOpts *o, const LlvmOpts *lo,
                            LlvmEmit kind, size_t *n);
/* Compiles g into this process with ORC's LLJIT at level opt; *model is
 * its `struct kiln_model_desc` (o->prefix + "_model"), valid until
 * llvm_jit_free.  The runtime's functions are found in the process: the
 * kiln executable exports them. */
typedef struct LlvmJit LlvmJit;
LlvmJit *llvm_jit(Graph *g, const CgenOpts *o, int opt, const void **model);
void llvm_jit_free(LlvmJit *j);

/* backends/onnx/export.c */
/* Writes g as an ONNX model (opset 17) to path, atomically, weights
 * inline; diag_error names an op or attribute ONNX cannot express. */
void onnx_export(Graph *g, const char *path);

#endif
