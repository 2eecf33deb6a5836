/* passes.h: the pass registry and pipeline, the map of the passes/ layer.
 *
 * A pass takes verified IR and leaves verified IR.  The pipeline runs a
 * list of passes over every graph of a module, printing the IR before or
 * after any of them (as valid .kir, to stderr) and verifying after each
 * when asked.  Passes report no user errors: the frontends and ir_verify
 * catch those first.
 */
#ifndef KILN_PASSES_H
#define KILN_PASSES_H

#include "ir.h"

enum PassId {
#define PASS(id, name, desc) PASS_##id,
#include "passes.def"
#undef PASS
	NPASS
};

typedef struct {
	const char *name, *desc;
	void (*fn)(Graph *g);
} PassInfo;

typedef struct {
	bool print_before[NPASS], print_after[NPASS];
	bool print_after_all, verify_each;
	PrintOpts print;
} PassOpts;

/* passes/pipeline.c */
extern const PassInfo pass_info[NPASS];
/* The passes of optimization level 0 to PASS_MAXLEVEL (-O0, -O1, -O2), in
 * order; *n gets their count.  PASS_DEFAULT_LEVEL is what kiln build runs
 * when given no -O. */
enum { PASS_MAXLEVEL = 2, PASS_DEFAULT_LEVEL = 2 };
const int *pass_pipeline(int level, int *n);
int pass_lookup(const char *name);          /* PASS_, or -1 */
void pass_run(Module *m, const int *ids, int n, const PassOpts *o);

/* passes/train.c: a train section has at most this many steps */
enum { TRAIN_MAXSTEPS = 8 };

/* passes/fuse_epilogue.c: node p moves to schedule position k, replacing
 * node k and taking its result (p's operands are all defined before k and
 * k's result is no operand of p); node p is left dead. */
void fuse_move(Graph *g, int p, int k);

/* passes/simplify.c: makes every reader of temporary or constant old
 * (ops, graph outputs, updates, the train section) read rep instead, a
 * value of the same type; old's node (if any) is marked dead.  A graph
 * output keeps its name: rep takes it, so rep must be a temporary that
 * is not an output itself; an update needs rep to be a temporary.
 * Returns false, changing nothing, when that does not hold. */
bool pass_replace(Graph *g, int old, int rep);

/* one file per pass */
#define PASS(id, name, desc) void pass_##id(Graph *g);
#include "passes.def"
#undef PASS

/* passes/autodiff.c: reverse-mode differentiation, and building ops.
 * ad_grads() appends to g the ops computing d loss / d wrt[i] into
 * out[i] (-1 where wrt[i] does not reach the loss); loss is an f32[]. */
void ad_grads(Graph *g, int loss, const int *wrt, int nwrt, int *out);
bool ad_has_rule(int op);
int pb_op(Graph *g, int op, Loc loc, const int *in, int nin); /* a node */
int pb_result(Graph *g, int node);  /* its typed result, a temporary */
int pb_unary(Graph *g, Loc loc, int op, int a);
int pb_binary(Graph *g, Loc loc, int op, int a, int b);
int pb_scalar(Graph *g, double x);  /* an f32[] constant */
int pb_const(Graph *g, int dtype, double x);    /* f32[] or f64[] */
int pb_reshape(Graph *g, Loc loc, int x, const Type *to);
int pb_sum(Graph *g, Loc loc, int x, unsigned dims, bool keepdims);
/* Copies into g node n of graph src (operands mapped by vmap), or a
 * param or const; each returns the new value. */
int pb_copy_node(Graph *g, const Graph *src, const Node *n, const int *vmap);
int pb_copy_global(Graph *g, const Value *v);

/* passes/memplan.c: what the planner found, for `kiln build --stats` */
typedef struct {
	int64_t arena;       /* workspace bytes the plan uses */
	int64_t naive;       /* sum of all temporaries' sizes */
	int64_t lower;       /* most bytes alive at one time */
} MemStats;
MemStats memplan_stats(const Graph *g);
/* The plan as `//` comment lines (valid .kir to append to a dump). */
void memplan_print(FILE *f, const Graph *g);

#endif
