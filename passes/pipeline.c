/* pipeline.c: the pass registry, the pipelines of -O0 to -O2, the runner.
 *
 * pass_info[] is expanded from passes.def, so a pass is declared in one
 * row.  pass_run() applies a list of passes in order, each to every graph
 * of the module before the next pass starts.  Around a pass it can dump
 * the whole module to stderr as valid .kir under a `// ----- IR after
 * NAME -----` header (a dump can be cut out and fed back to `kiln opt`),
 * and it can verify every graph after each pass to catch a broken pass at
 * the pass that broke the IR.
 */
#include <string.h>
#include "passes.h"

const PassInfo pass_info[NPASS] = {
#define PASS(id, name, desc) [PASS_##id] = {name, desc, pass_##id},
#include "passes.def"
#undef PASS
};

/* What `kiln build -ON` runs, in order, one list per level.  Every level
 * starts with shape (result types from operands) and ends with memplan,
 * which code generation needs and which plans the final set of
 * temporaries in the final schedule.  -O0 is exactly that: the IR the
 * frontend made.  -O1 adds the cleanups, -O2 (the default) the
 * rewrites of parameters and the fusions as well. */
static const int pipeline_o0[] = {
	PASS_shape,
	PASS_memplan,
};
static const int pipeline_o1[] = {
	PASS_shape,
	PASS_fold,      /* ops on constants computed now */
	PASS_simplify,  /* identity ops, x*1, transpose and reshape chains */
	PASS_cse,       /* one op per distinct computation */
	PASS_dce,       /* drop what no output needs */
	PASS_memplan,
};
static const int pipeline_o2[] = {
	PASS_shape,
	PASS_fold,
	PASS_simplify,
	PASS_cse,
	PASS_dce,
	PASS_fold_pad,          /* pads into the conv or pool reading them */
	PASS_fold_bn,           /* batchnorm into the weights before it */
	PASS_fuse_epilogue,     /* residual add, activation into conv/gemm */
	PASS_pack_weights,      /* conv weights in the runtime's panels */
	PASS_fuse_eltwise,      /* trees of elementwise ops into one loop */
	PASS_dce,               /* the weights fold_bn, pack_weights replaced */
	PASS_memplan,
};

static const struct {
	const int *ids;
	int n;
} pipelines[] = {
	{pipeline_o0, countof(pipeline_o0)},
	{pipeline_o1, countof(pipeline_o1)},
	{pipeline_o2, countof(pipeline_o2)},
};

const int *
pass_pipeline(int level, int *n)
{
	if (level < 0 || level >= countof(pipelines))
		die("bad optimization level %d", level);
	*n = pipelines[level].n;
	return pipelines[level].ids;
}

int
pass_lookup(const char *name)
{
	for (int i = 0; i < NPASS; i++)
		if (strcmp(pass_info[i].name, name) == 0)
			return i;
	return -1;
}

static void
dump(const Module *m, const char *when, int id, const PassOpts *o)
{
	fprintf(stderr, "// ----- IR %s %s -----\n", when, pass_info[id].name);
	ir_print(stderr, m, &o->print);
}

void
pass_run(Module *m, const int *ids, int n, const PassOpts *o)
{
	static const PassOpts none;
	if (!o)
		o = &none;
	for (int i = 0; i < n; i++) {
		int id = ids[i];
		if (id < 0 || id >= NPASS)
			die("bad pass id %d", id);
		if (o->print_before[id])
			dump(m, "before", id, o);
		for (int k = 0; k < m->ngraph; k++) {
			pass_info[id].fn(m->graph[k]);
			if (o->verify_each)
				ir_verify(m->graph[k]);
		}
		if (o->print_after_all || o->print_after[id])
			dump(m, "after", id, o);
	}
}
