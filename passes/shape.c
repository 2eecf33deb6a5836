/* shape.c: the shape pass recomputes every result type from its operands.
 *
 * Requires: verified IR, so every node's operands are defined earlier in
 * the schedule and every shape rule succeeds.  Walking the schedule in
 * order means each rule sees operand types that are already final, so a
 * pass that changed an input or parameter type can rerun this one to
 * bring the whole graph up to date.  On verified IR it changes nothing;
 * it is idempotent.
 */
#include "passes.h"

void
pass_shape(Graph *g)
{
	for (int i = 0; i < g->nnode; i++) {
		if (g->node[i].dead)
			continue;
		const char *err = ir_infer(g, i);
		if (err)
			die("shape: graph '%s', node %d: %s", g->name, i, err);
	}
}
