/* pipeline.c: the pass registry, the default pipeline and the pass runner.
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

/* What `kiln build` runs, in order. */
const int default_pipeline[] = {
	PASS_shape,     /* every result type from its operands */
	PASS_dce,       /* drop what no output needs */
	PASS_memplan,   /* last: it plans the final set of temporaries */
};
const int ndefault_pipeline = countof(default_pipeline);

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
