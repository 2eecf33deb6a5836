/* pack_weights.c: lays the constant weights of each conv2d out in the
 * panels the runtime's matrix product reads (kiln_conv2d_pack_weights,
 * runtime/kiln.h), once at compile time, and marks the conv with the
 * panels' width: wpanel=12, or 32 for the convs whose product the
 * runtime runs along the output channels (few positions, many channels;
 * kiln_conv2d_wpanel() decides from the shapes).
 *
 * The product y[og, positions] = w[og, K] @ im2col[K, positions] reads
 * w in panels of rows; with plain weights the runtime repacks them on
 * every call, which for the late layers of a CNN (few positions, many
 * channels) costs as much as the product itself.  The packed weights
 * hold the same elements in another order, so the conv's types do not
 * change, and a .kir dump shows the attribute and the reordered data.
 *
 * Fires on a conv2d with plain weights that are an f32 param or const
 * with data, at least MINROWS output channels per group (fewer rows
 * than that make no tile worth a panel; the runtime reads those in
 * place) and more than one input channel per group (with one, the
 * runtime computes the conv directly, no product, from plain weights),
 * and not in a training build (Module.training), whose weights change
 * while it runs.  The packed weights are a new param or const
 * named <weights>_panels; dce drops the old ones once unused.  Runs
 * after fold_bn, which scales plain weights.
 *
 * A gemm with trans_b whose b is such a constant gets b transposed
 * once here and trans_b=0: the product then reads b's rows in place
 * (for one row of a, the few-row kernels read nothing else), where a
 * transposed b is repacked on every call, a full pass over what is
 * often the model's largest matrix (a classifier's [classes, features]
 * weights, as ONNX exports them).  The sums run in the same order, so
 * the results keep their bits.
 */
#include "kiln.h"
#include "passes.h"

enum { MINROWS = 8 };

/* Node k, a gemm with trans_b: b transposed into a new constant. */
static void
untranspose_b(Graph *g, int k)
{
	int bv = g->node[k].in[1];
	const float *b = ir_fixed_f32(g, bv);
	Type t = g->val[bv].type;

	if (!b || t.rank != 2)
		return;
	int64_t r = t.dim[0], c = t.dim[1];
	float *bt = arena_alloc(g->mod->arena, type_bytes(&t) + 1);
	for (int64_t i = 0; i < r; i++)
		for (int64_t j = 0; j < c; j++)
			bt[j * r + i] = b[i * c + j];
	t.dim[0] = c;
	t.dim[1] = r;
	int v = ir_new_global(g, bv, "_t", &t, bt);
	g->node[k].in[1] = v;
	ir_set_int(g, k, AT_GEMM_TRANS_B, 0);
}

void
pass_pack_weights(Graph *g)
{
	if (g->mod->training)
		return;
	for (int k = 0; k < g->nnode; k++) {
		Node *n = &g->node[k];
		if (!n->dead && n->op == OP_GEMM &&
		    ir_attr(g, n, AT_GEMM_TRANS_B)->i) {
			untranspose_b(g, k);
			continue;
		}
		if (n->dead || n->op != OP_CONV2D ||
		    ir_attr(g, n, AT_CONV2D_WPANEL)->i != 0)
			continue;
		int wv = n->in[1];
		const Type wt = g->val[wv].type;
		int64_t group = ir_attr(g, n, AT_CONV2D_GROUP)->i;
		const float *w = ir_fixed_f32(g, wv);
		if (!w || wt.rank != 4 || wt.dim[0] / group < MINROWS ||
		    wt.dim[1] == 1)
			continue;
		struct kiln_conv2d p;
		shape_conv2d_params(g, n, &p);
		float *wp = arena_alloc(g->mod->arena, type_bytes(&wt) + 1);
		kiln_conv2d_pack_weights(wp, w, &p);
		int v = ir_new_global(g, wv, "_panels", &wt, wp);
		n = &g->node[k];
		n->in[1] = v;
		ir_set_int(g, k, AT_CONV2D_WPANEL, kiln_conv2d_wpanel(&p));
	}
}
