/* simplify.c: algebraic simplification.
 *
 * Rewrites that make the graph smaller without changing a single bit of
 * any result:
 *   - identity ops go: reshape, flatten, expand and tile to the same type,
 *     cast to the same dtype, transpose by the identity perm, a slice that
 *     takes everything in order, pad by zeros, concat of one operand,
 *     clip to [-inf, inf], dropout (the identity at inference);
 *   - x*1, 1*x, x/1, x-(+0), x+(-0), (-0)+x, and for integers x+0, 0+x,
 *     x-0, when the constant does not broadcast x to a bigger type
 *     (x+(+0) on floats turns -0 into +0, so it stays);
 *   - transpose of transpose becomes one transpose (nothing when the
 *     perms cancel), reshape or flatten of reshape or flatten one reshape;
 *   - a transpose under a chain of elementwise ops (each used only by the
 *     next; a scalar second operand is fine) sinks to meet a transpose
 *     below the chain, and the two compose or cancel.
 * It repeats until nothing changes, then drops what became unused with
 * dce.  A replaced graph output keeps its name (see pass_replace).
 */
#include <math.h>
#include <string.h>
#include "passes.h"

static bool
can_replace(const Graph *g, int old, int rep)
{
	const Value *o = &g->val[old], *r = &g->val[rep];
	if (old == rep || (o->kind != VK_TEMP && o->kind != VK_CONST) ||
	    !type_eq(&o->type, &r->type))
		return false;
	for (int i = 0; i < g->noutput; i++)
		if (g->output[i] == old && r->kind != VK_TEMP)
			return false;
		else if (g->output[i] == rep)
			for (int k = 0; k < g->noutput; k++)
				if (g->output[k] == old)
					return false;
	for (int i = 0; i < g->nupdate; i++)
		if (g->update[i].src == old && r->kind != VK_TEMP)
			return false;
	return true;
}

bool
pass_replace(Graph *g, int old, int rep)
{
	if (!can_replace(g, old, rep))
		return false;
	for (int i = 0; i < g->nnode; i++) {
		Node *n = &g->node[i];
		for (int k = 0; k < n->nin && !n->dead; k++)
			if (n->in[k] == old)
				n->in[k] = rep;
	}
	for (int i = 0; i < g->nupdate; i++)
		if (g->update[i].src == old)
			g->update[i].src = rep;
	for (int i = 0; i < g->noutput; i++) {
		if (g->output[i] != old)
			continue;
		/* outputs are named after their values: rep takes the name */
		g->output[i] = rep;
		const char *name = g->val[old].name;
		g->val[old].name = ir_temp_name(g);
		g->val[rep].name = name;
	}
	if (g->val[old].kind == VK_TEMP)
		g->node[g->val[old].def].dead = true;   /* nothing reads it now */
	if (g->train) {
		int *vmap = arena_alloc(g->mod->arena, g->nval * sizeof *vmap);
		for (int i = 0; i < g->nval; i++)
			vmap[i] = i == old ? rep : i;
		cfg_remap(g->train, vmap);
	}
	return true;
}

/* The node making value v, or NULL for inputs, params and constants. */
static Node *
producer(Graph *g, int v)
{
	if (v < 0 || g->val[v].kind != VK_TEMP)
		return NULL;
	Node *n = &g->node[g->val[v].def];
	return n->dead ? NULL : n;
}

static const Type *
type_of(const Graph *g, int v)
{
	return &g->val[v].type;
}

static bool
identity_perm(const int64_t *p, int n)
{
	for (int i = 0; i < n; i++)
		if (p[i] != i)
			return false;
	return true;
}

static bool
all_zero(const int64_t *v, int n)
{
	for (int i = 0; i < n; i++)
		if (v[i])
			return false;
	return true;
}

static bool
slice_takes_all(Graph *g, const Node *n)
{
	int64_t start[IR_MAXRANK], step[IR_MAXRANK], count[IR_MAXRANK];
	const Type *x = type_of(g, n->in[0]);
	if (shape_slice_params(g, n, start, step, count))
		return false;
	for (int d = 0; d < x->rank; d++)
		if (start[d] != 0 || step[d] != 1 || count[d] != x->dim[d])
			return false;
	return true;
}

/* Element i of constant v as a double, and its sign bit. */
static double
element(const Value *v, int64_t i, bool *neg)
{
	double x;
	switch (v->type.dtype) {
	case DT_F32: x = ((const float *)v->data)[i]; break;
	case DT_F64: x = ((const double *)v->data)[i]; break;
	case DT_I64: x = (double)((const int64_t *)v->data)[i]; break;
	case DT_I32: x = ((const int32_t *)v->data)[i]; break;
	case DT_I16: x = ((const int16_t *)v->data)[i]; break;
	case DT_I8: x = ((const int8_t *)v->data)[i]; break;
	case DT_U8: x = ((const uint8_t *)v->data)[i]; break;
	case DT_U16: x = ((const uint16_t *)v->data)[i]; break;
	case DT_U32: x = ((const uint32_t *)v->data)[i]; break;
	case DT_U64: x = (double)((const uint64_t *)v->data)[i]; break;
	default: x = NAN; break;        /* bool, f16, bf16: never neutral */
	}
	*neg = signbit(x);
	return x;
}

/* Whether v is a constant whose every element is want; for a zero,
 * sign is +1 (+0 only), -1 (-0 only) or 0 (either).  Integers have
 * only one zero, so sign is ignored for them. */
static bool
const_all(Graph *g, int v, double want, int sign)
{
	Value *c = &g->val[v];
	if (c->kind != VK_CONST || c->elided)
		return false;
	if (!c->data && c->init != INIT_DATA && c->type.dtype == DT_F32)
		ir_materialize(g, v);
	if (!c->data)
		return false;
	bool fl = c->type.dtype == DT_F32 || c->type.dtype == DT_F64;
	for (int64_t i = 0; i < type_numel(&c->type); i++) {
		bool neg;
		if (element(c, i, &neg) != want)
			return false;
		if (fl && want == 0 && sign && neg != (sign < 0))
			return false;
	}
	return true;
}

/* x op c or c op x with c neutral: the value n's result equals, or -1. */
static int
neutral_operand(Graph *g, const Node *n)
{
	const Type *y = type_of(g, n->out);
	for (int k = 0; k < 2; k++) {
		int x = n->in[1 - k], c = n->in[k];
		if (!type_eq(type_of(g, x), y))
			continue;
		bool hit = false;
		switch (n->op) {
		case OP_ADD: hit = const_all(g, c, 0, -1); break;
		case OP_SUB: hit = k == 1 && const_all(g, c, 0, 1); break;
		case OP_MUL: hit = const_all(g, c, 1, 0); break;
		case OP_DIV: hit = k == 1 && const_all(g, c, 1, 0); break;
		}
		if (hit)
			return x;
	}
	return -1;
}

/* The value node n's result always equals, or -1. */
static int
identity_of(Graph *g, const Node *n)
{
	int x = n->in[0];
	const Type *y = type_of(g, n->out);
	bool same = n->nin > 0 && x >= 0 && type_eq(type_of(g, x), y);
	switch (n->op) {
	case OP_RESHAPE:
	case OP_FLATTEN:
	case OP_EXPAND:
	case OP_TILE:
	case OP_CAST:
	case OP_DROPOUT:
		return same ? x : -1;
	case OP_CONCAT:
		return n->nin == 1 ? x : -1;
	case OP_TRANSPOSE: {
		const Attr *p = ir_attr(g, n, AT_TRANSPOSE_PERM);
		return identity_perm(p->ints, p->n) ? x : -1;
	}
	case OP_SLICE:
		return slice_takes_all(g, n) ? x : -1;
	case OP_PAD: {
		const Attr *p = ir_attr(g, n, AT_PAD_PADS);
		return all_zero(p->ints, p->n) ? x : -1;
	}
	case OP_CLIP:
		return ir_attr(g, n, AT_CLIP_MIN)->f == -INFINITY &&
		       ir_attr(g, n, AT_CLIP_MAX)->f == INFINITY ? x : -1;
	case OP_ADD:
	case OP_SUB:
	case OP_MUL:
	case OP_DIV:
		return neutral_operand(g, n);
	default:
		return -1;
	}
}

/* transpose(transpose(x, p), q) = transpose(x, p[q[.]]). */
static bool
compose_transposes(Graph *g, Node *n)
{
	Node *t = producer(g, n->in[0]);
	if (!t || t->op != OP_TRANSPOSE)
		return false;
	const Attr *p = ir_attr(g, t, AT_TRANSPOSE_PERM);
	const Attr *q = ir_attr(g, n, AT_TRANSPOSE_PERM);
	int64_t c[IR_MAXRANK];
	for (int d = 0; d < q->n; d++)
		c[d] = p->ints[q->ints[d]];
	if (identity_perm(c, q->n))
		return pass_replace(g, n->out, t->in[0]);
	n->in[0] = t->in[0];
	ir_set_ints(g, (int)(n - g->node), AT_TRANSPOSE_PERM, c, q->n);
	return true;
}

/* Gives node i a fresh attribute slice for op, all defaults. */
static void
set_op(Graph *g, int i, int op)
{
	const OpInfo *o = op_get(op);
	g->node[i].op = op;
	g->node[i].attr = g->nattr;
	for (int k = 0; k < o->nattr; k++) {
		Attr a;
		ir_parse_default(g, &a, &attr_info[o->attr0 + k]);
		APUSH(g->mod->arena, g->attr, g->nattr, g->capattr, a);
	}
}

/* reshape or flatten of reshape or flatten: one reshape of the first
 * operand, its shape written out (0 and -1 in it meant the old operand). */
static bool
compose_reshapes(Graph *g, int i)
{
	Node *n = &g->node[i];
	Node *t = producer(g, n->in[0]);
	if (!t || (t->op != OP_RESHAPE && t->op != OP_FLATTEN))
		return false;
	const Type *y = type_of(g, n->out);
	if (n->op == OP_FLATTEN)
		set_op(g, i, OP_RESHAPE);
	n->in[0] = t->in[0];
	ir_set_ints(g, i, AT_RESHAPE_SHAPE, y->dim, y->rank);
	return true;
}

/* The operand of elementwise node n that carries the tensor, when every
 * other operand is a single element that broadcasts to no more dims (so
 * the op commutes with a transpose of that operand); else -1. */
static int
layout_free_operand(Graph *g, const Node *n)
{
	const OpInfo *o = op_get(n->op);
	if (o->cls != ELTWISE || o->maxin > 2 || n->op == OP_FUSED)
		return -1;
	if (n->nin == 1)
		return 0;
	for (int k = 0; k < 2; k++) {
		const Type *c = type_of(g, n->in[1 - k]);
		if (type_numel(c) == 1 && c->rank <= type_of(g, n->in[k])->rank &&
		    type_numel(type_of(g, n->in[k])) > 1)
			return k;
	}
	return -1;
}

/* u = transpose(e, q) where e comes from transpose(x, p) through a chain
 * of elementwise ops, each result used only by the next: the chain reads
 * x instead, and u becomes transpose(e, p[q[.]]), or e itself when that
 * is the identity. */
static bool
sink_transpose(Graph *g, int u, const int *use)
{
	Node *n = &g->node[u];
	int chain[64], slot[64], nchain = 0;
	int v = n->in[0];
	Node *t = NULL;
	for (;;) {
		Node *e = producer(g, v);
		if (!e)
			return false;
		if (e->op == OP_TRANSPOSE) {
			t = e;          /* it may have other users: they keep it */
			break;
		}
		int k = layout_free_operand(g, e);
		if (k < 0 || use[v] != 1 || nchain == countof(chain))
			return false;
		chain[nchain] = (int)(e - g->node);
		slot[nchain++] = k;
		v = e->in[k];
	}
	if (nchain == 0)
		return false;       /* transpose of transpose: composed above */
	const Attr *p = ir_attr(g, t, AT_TRANSPOSE_PERM);
	const Attr *q = ir_attr(g, n, AT_TRANSPOSE_PERM);
	int64_t c[IR_MAXRANK];
	for (int d = 0; d < q->n; d++)
		c[d] = p->ints[q->ints[d]];
	Node *first = &g->node[chain[nchain - 1]];
	first->in[slot[nchain - 1]] = t->in[0];
	for (int k = nchain - 1; k >= 0; k--)
		if (ir_infer(g, chain[k]))
			die("simplify: an elementwise op rejects its transposed operand");
	if (identity_perm(c, q->n) && pass_replace(g, n->out, n->in[0]))
		return true;
	ir_set_ints(g, u, AT_TRANSPOSE_PERM, c, q->n);
	return true;
}

static bool
simplify_node(Graph *g, int i, const int *use)
{
	Node *n = &g->node[i];
	if (n->dead)
		return false;
	int x = identity_of(g, n);
	if (x >= 0 && pass_replace(g, n->out, x))
		return true;
	switch (n->op) {
	case OP_TRANSPOSE:
		return compose_transposes(g, n) || sink_transpose(g, i, use);
	case OP_RESHAPE:
	case OP_FLATTEN:
		return compose_reshapes(g, i);
	default:
		return false;
	}
}

void
pass_simplify(Graph *g)
{
	Arena *scratch = arena_new();
	bool any = false;
	for (bool changed = true; changed;) {
		changed = false;
		int *use = ir_fill_uses(g, scratch);
		for (int i = 0; i < g->nnode; i++)
			if (simplify_node(g, i, use)) {
				changed = any = true;
				use = ir_fill_uses(g, scratch);
			}
	}
	arena_free(scratch);
	if (any)
		pass_dce(g);
}
