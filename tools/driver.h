/* driver.h: what the kiln command's two files share.
 *
 * tools/kiln.c parses the command line into Opts and runs build, ir and
 * opt; tools/run.c is `kiln run`, which builds through the same functions
 * as `kiln build --emit=exe` and then runs and checks the executable.
 */
#ifndef KILN_DRIVER_H
#define KILN_DRIVER_H

#include "frontend.h"
#include "passes.h"

enum { BACKEND_C, BACKEND_LLVM };

/* kiln run's own flags, each kept as written: a NAME= prefix can only be
 * told from a file name once the model's tensor names are known. */
typedef struct {
	const char **input;         /* --input [NAME=]FILE */
	int ninput, capinput;
	const char **expect;        /* --expect [NAME=]FILE */
	int nexpect, capexpect;
	double rtol, atol;          /* allclose tolerances */
	const char *save;           /* --save DIR: outputs to DIR/output_K.npy */
	bool verbose;               /* -v: say whether the cache was used */
} RunOpts;

typedef struct {
	const char *cmd;            /* build, ir, opt or run */
	const char *model;
	const char *out;            /* -o */
	const char *weights;        /* --weights */
	const char *graph;          /* --model */
	const char *after;          /* --after (ir) */
	const char *passes;         /* --passes (opt) */
	int emit;
	int backend;                /* --backend: BACKEND_C or BACKEND_LLVM */
	const char *triple;         /* --target (LLVM): NULL = the host */
	const char *cpu, *features; /* --cpu, --features (LLVM) */
	int olevel;                 /* -O0, -O1, -O2: pass_pipeline's level */
	bool olevel_set;            /* -O given (kiln ir runs the pipeline
	                             * only then) */
	const char *format;         /* --format (ir): kir, dot or json */
	bool stats, print_memplan;
	bool train;                 /* --train */
	bool batch_set;             /* --batch given */
	const char *check[8];       /* gradcheck's flags and values */
	int ncheck;
	PassOpts po;
	FeOpts fo;                  /* --batch, --shape */
	RunOpts run;
} Opts;

/* tools/kiln.c */
Graph *drv_load(const Opts *o);   /* the model (and --weights), --model's graph */
/* The rest of `kiln build --emit=exe` for g (from drv_load): the
 * pipeline of o->olevel and the C compiler; writes the executable out
 * atomically. */
void drv_build_exe(Graph *g, const Opts *o, const char *out);

/* tools/gradcheck.c: @NAME.loss and @NAME.grad of model g (added to its
 * module), for `kiln gradcheck` */
Graph **gradcheck_graphs(Graph *g);

/* tools/run.c */
bool run_flag(Opts *o, Arena *a, char **argv, int *i); /* false: not one */
int run_cmd(const Opts *o, Arena *a);

#endif
