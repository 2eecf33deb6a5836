/* fold_pad.c: folds a pad of the height and width into the conv2d or pool
 * that reads it, as that op's own padding.
 *
 * A pad node (mode constant, no negative pads, none on the batch and
 * channel axes) whose result only a conv2d (as its input x), an
 * avgpool2d or a maxpool2d reads is dropped, and its pads are added to
 * the reader's [top, left, bottom, right].  The value must be what the
 * reader's padding reads: 0 for conv2d and for avgpool2d with
 * count_include_pad (without it, padded taps would stop counting), -inf
 * for maxpool2d (whose padding never wins).  Pools with ceil_mode keep
 * their pad: their last window may run past the padding.
 */
#include <math.h>
#include <string.h>
#include "passes.h"

/* Whether reader node r can take pad node p's pads as its own. */
static bool
foldable(Graph *g, const Node *p, const Node *r)
{
	const Attr *pads = ir_attr(g, p, AT_PAD_PADS);
	double value = ir_attr(g, p, AT_PAD_VALUE)->f;
	if (strcmp(ir_attr(g, p, AT_PAD_MODE)->s, "constant") != 0 ||
	    pads->n != 8 || g->val[p->out].type.dtype != DT_F32)
		return false;
	for (int i = 0; i < 8; i++)
		if (pads->ints[i] < 0 || ((i & 3) < 2 && pads->ints[i] != 0))
			return false;
	switch (r->op) {
	case OP_CONV2D:
		return r->in[0] == p->out && value == 0.0;
	case OP_AVGPOOL2D:
		return value == 0.0 &&
		       ir_attr(g, r, AT_AVGPOOL2D_COUNT_INCLUDE_PAD)->i &&
		       !ir_attr(g, r, AT_AVGPOOL2D_CEIL_MODE)->i;
	case OP_MAXPOOL2D:
		return isinf(value) && value < 0 &&
		       !ir_attr(g, r, AT_MAXPOOL2D_CEIL_MODE)->i;
	default:
		return false;
	}
}

void
pass_fold_pad(Graph *g)
{
	int *use = ir_fill_uses(g, g->mod->arena);
	bool changed = false;
	for (int k = 0; k < g->nnode; k++) {
		Node *r = &g->node[k];
		int v = r->nin > 0 ? r->in[0] : -1;
		int p = v >= 0 ? g->val[v].def : -1;
		if (r->dead || p < 0 || use[v] != 1 || g->node[p].op != OP_PAD ||
		    !foldable(g, &g->node[p], r))
			continue;
		const int64_t *add = ir_attr(g, &g->node[p], AT_PAD_PADS)->ints;
		int id = op_attr_lookup(r->op, "pads");
		const int64_t *old = ir_attr(g, r, id)->ints;
		int64_t pads[4] = {old[0] + add[2], old[1] + add[3],
		                   old[2] + add[6], old[3] + add[7]};
		ir_set_ints(g, k, id, pads, 4);
		r = &g->node[k];
		r->in[0] = g->node[p].in[0];
		g->node[p].dead = true;
		changed = true;
	}
	if (changed)
		ir_compact(g);
}
