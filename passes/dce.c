/* dce.c: dead code elimination.  Deletes every op whose result no graph
 * output needs, then drops parameters and constants nothing uses.
 *
 * Requires: the node array is a schedule (operands defined earlier), and
 * all ops are pure (true of every op in ir/ops.def).  Walking it
 * backwards, every user of a value has been decided before the value's own
 * producer is reached, so one pass with use counts finds transitively dead
 * chains: a dying node gives back the uses it held on its operands.
 * Graph outputs count as uses; graph inputs are kept even when unused (they
 * are the graph's signature).  Idempotent: a second run finds nothing.
 */
#include "passes.h"

void
pass_dce(Graph *g)
{
	Arena *scratch = arena_new();
	int *use = ir_fill_uses(g, scratch);
	for (int i = g->nnode - 1; i >= 0; i--) {
		Node *n = &g->node[i];
		if (n->dead || use[n->out] > 0)
			continue;
		n->dead = true;
		for (int k = 0; k < n->nin; k++)
			if (n->in[k] >= 0)
				use[n->in[k]]--;
	}
	arena_free(scratch);
	ir_compact(g);
}
