/* fuse_epilogue.c: folds a residual add and an activation into the
 * conv2d, gemm or matmul that produces their input, as the op's epilogue
 * y = act(v + r) (ir/ops.def), which the runtime's kernels apply while
 * the result is in cache.
 *
 * An add fuses when one operand is the product's result, used by the add
 * alone, and the other (the residual r) has the result's type (no
 * broadcast) and the product has no epilogue yet.  An activation (relu,
 * clip, leaky_relu, sigmoid, tanh, hardswish, hardsigmoid, gelu, silu)
 * fuses when its operand is the product's result used by it alone and the
 * product has no activation yet; act(v) + r never fuses, since the
 * epilogue adds first.  The fused op takes the place in the schedule and
 * the result of the add or activation, so names and graph outputs stay,
 * and r is computed before it whatever the order was.
 */
#include <string.h>
#include "passes.h"

void
fuse_move(Graph *g, int p, int k)
{
	Node moved = g->node[p];
	moved.out = g->node[k].out;
	moved.loc = g->node[p].loc;
	g->node[k] = moved;
	g->node[p].dead = true;
	g->val[moved.out].def = k;
}

/* The epilogue activation that node n computes, with its parameters, or
 * NULL when n is no such activation. */
static const char *
act_of(Graph *g, const Node *n, double *alpha, double *beta)
{
	*alpha = *beta = 0.0;
	if (g->val[n->out].type.dtype != DT_F32)
		return NULL;
	switch (n->op) {
	case OP_RELU: return "relu";
	case OP_SIGMOID: return "sigmoid";
	case OP_TANH: return "tanh";
	case OP_HARDSWISH: return "hardswish";
	case OP_SILU: return "silu";
	case OP_CLIP:
		*alpha = ir_attr(g, n, AT_CLIP_MIN)->f;
		*beta = ir_attr(g, n, AT_CLIP_MAX)->f;
		return "clip";
	case OP_LEAKY_RELU:
		*alpha = ir_attr(g, n, AT_LEAKY_RELU_ALPHA)->f;
		return "leaky_relu";
	case OP_HARDSIGMOID:
		*alpha = ir_attr(g, n, AT_HARDSIGMOID_ALPHA)->f;
		*beta = ir_attr(g, n, AT_HARDSIGMOID_BETA)->f;
		return "hardsigmoid";
	case OP_GELU:
		return ir_attr(g, n, AT_GELU_APPROXIMATE)->i ? "gelu_tanh" : "gelu";
	default:
		return NULL;
	}
}

/* The node producing v if it is a conv2d, gemm or matmul whose result
 * only the fusing op uses and whose activation is still none; -1 else.
 * *res: whether it has a residual already. */
static int
product(Graph *g, const int *use, int v, bool *res)
{
	int p = v >= 0 ? g->val[v].def : -1;
	if (p < 0 || use[v] != 1)
		return -1;
	const Node *n = &g->node[p];
	int act, r;
	if (!ir_epilogue(g, n, &act, &r) || act != 0)
		return -1;
	*res = r >= 0;
	return p;
}

/* Add node k: the product among its operands that can take the other
 * as its residual (the later one when both can), or -1. */
static int
add_host(Graph *g, const int *use, const Node *k, int *r)
{
	int best = -1;
	for (int i = 0; i < 2; i++) {
		bool res;
		int p = product(g, use, k->in[i], &res);
		int other = k->in[1 - i];
		if (p < 0 || res || !type_eq(&g->val[other].type,
		                             &g->val[k->out].type) ||
		    !type_eq(&g->val[k->in[i]].type, &g->val[k->out].type))
			continue;
		if (p > best) {
			best = p;
			*r = other;
		}
	}
	return best;
}

void
pass_fuse_epilogue(Graph *g)
{
	int *use = ir_fill_uses(g, g->mod->arena);
	bool changed = false;
	for (int k = 0; k < g->nnode; k++) {
		Node *n = &g->node[k];
		double alpha, beta;
		const char *act = n->dead ? NULL : act_of(g, n, &alpha, &beta);
		bool res;
		int p = -1, r = -1;
		if (act)
			p = product(g, use, n->in[0], &res);
		else if (!n->dead && n->op == OP_ADD)
			p = add_host(g, use, n, &r);
		if (p < 0)
			continue;
		fuse_move(g, p, k);
		n = &g->node[k];
		int id = op_attr_lookup(n->op, "act");
		if (act) {
			ir_attr(g, n, id)->s = act;
			ir_attr(g, n, id + 1)->f = alpha;
			ir_attr(g, n, id + 2)->f = beta;
		} else {
			int last = op_get(n->op)->maxin - 1;
			while (n->nin <= last)
				n->in[n->nin++] = -1;
			n->in[last] = r;
		}
		changed = true;
	}
	if (changed)
		ir_compact(g);
}
