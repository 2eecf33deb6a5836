/* fuse_eltwise.c: elementwise fusion.  Trees of f32 elementwise ops
 * become one `fused` node whose expression (ir/fused.c) the backend
 * generates as one loop: no kernel call and no buffer per op.
 *
 * First the decomposed softmax and layernorm that exporters write out op
 * by op are recognized and replaced by the softmax and layernorm ops.
 * Then, walking the schedule backwards, each fusible op not yet taken
 * roots a tree that grows through operands whose value has this one user
 * and no other (not a graph output, an update or the train section's),
 * and has as many elements as the root's result: interior values are then
 * computed once per element, and only the tree's leaves broadcast.  A tree
 * of two ops or more becomes one fused node in the root's place, named
 * after the root's result; f32 scalar constants become literals.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "passes.h"

enum { MAXMEMBER = 64 };        /* ops in one tree */

typedef struct {
	Graph *g;
	int *use;                   /* uses per value (ir_fill_uses) */
	int *taken;                 /* per node: the root of its tree, or -1 */
	int root;
	int member[MAXMEMBER], nmember;
	int leaf[IR_MAXIN], nleaf;  /* the fused node's operands, in order */
} Tree;

static bool
fusible(const Graph *g, const Node *n)
{
	return !n->dead && g->val[n->out].type.dtype == DT_F32 &&
	       (n->op == OP_FUSED || ir_fused_formula(n->op));
}

/* A scalar f32 constant that can be a literal without changing the
 * broadcast shape of a tree whose result has rank r. */
static bool
literal(const Graph *g, int v, int r)
{
	const Value *x = &g->val[v];
	return x->kind == VK_CONST && x->type.dtype == DT_F32 && x->data &&
	       type_numel(&x->type) == 1 && x->type.rank <= r;
}

static bool
member(const Tree *t, int node)
{
	return t->taken[node] == t->root;
}

/* The distinct operands of the tree's members that no member makes. */
static int
count_leaves(const Tree *t, int *leaf)
{
	const Graph *g = t->g;
	int n = 0, r = g->val[g->node[t->root].out].type.rank;
	for (int i = 0; i < t->nmember; i++) {
		const Node *m = &g->node[t->member[i]];
		for (int k = 0; k < m->nin; k++) {
			int v = m->in[k], d = g->val[v].def;
			if ((d >= 0 && member(t, d)) || literal(g, v, r))
				continue;
			int j = 0;
			while (j < n && leaf[j] != v)
				j++;
			if (j == n && n < IR_MAXIN + 1)
				leaf[n++] = v;
		}
	}
	return n;
}

/* How often node m reads its operand k per element: once for a plain
 * op, as often as its expression names %k for a fused node. */
static int
reads(Graph *g, const Node *m, int k)
{
	if (m->op != OP_FUSED)
		return 1;
	FusedExpr e;
	if (ir_fused_parse(g->mod->arena, ir_attr(g, m, AT_FUSED_EXPR)->s,
	                   m->nin, &e))
		die("fuse_eltwise: a fused node does not parse");
	int n = 0;
	for (int i = 0; i < e.n; i++)
		n += e.t[i].op == FT_OPERAND && e.t[i].operand == k;
	return n;
}

/* Whether the producer of operand k of member m can join the tree. */
static bool
can_absorb(Tree *t, const Node *m, int k)
{
	Graph *g = t->g;
	int v = m->in[k], p = g->val[v].def;
	if (g->val[v].kind != VK_TEMP || p < 0 || t->taken[p] >= 0 ||
	    !fusible(g, &g->node[p]) || t->nmember == MAXMEMBER)
		return false;
	/* one use: this operand (an expression is a tree, so a value read
	 * twice would be computed twice) */
	if (t->use[v] != 1 || reads(g, m, k) != 1 ||
	    type_numel(&g->val[v].type) !=
	    type_numel(&g->val[g->node[t->root].out].type))
		return false;
	int leaf[IR_MAXIN + 1];
	t->taken[p] = t->root;
	t->member[t->nmember++] = p;
	if (count_leaves(t, leaf) <= IR_MAXIN)
		return true;
	t->taken[p] = -1;
	t->nmember--;
	return false;
}

/* Grows the tree from member node m, operands left to right. */
static void
grow(Tree *t, int m)
{
	for (int k = 0; k < t->g->node[m].nin; k++)
		if (can_absorb(t, &t->g->node[m], k))
			grow(t, t->g->val[t->g->node[m].in[k]].def);
}

static void write_node(Tree *t, FILE *f, int node);

/* Operand v of a member: a member's expression, a literal or %k. */
static void
write_value(Tree *t, FILE *f, int v)
{
	Graph *g = t->g;
	int d = g->val[v].def;
	if (d >= 0 && member(t, d)) {
		write_node(t, f, d);
		return;
	}
	if (literal(g, v, g->val[g->node[t->root].out].type.rank)) {
		ir_print_float(f, *(const float *)g->val[v].data, true);
		return;
	}
	int k = 0;
	while (k < t->nleaf && t->leaf[k] != v)
		k++;
	if (k == t->nleaf)
		t->leaf[t->nleaf++] = v;
	fprintf(f, "%%%d", k);
}

/* Term i of an existing fused node n's expression e. */
static void
write_term(Tree *t, FILE *f, const Node *n, const FusedExpr *e, int i)
{
	const FusedTerm *x = &e->t[i];
	if (x->op == FT_OPERAND) {
		write_value(t, f, n->in[x->operand]);
		return;
	}
	if (x->op == FT_LITERAL) {
		ir_print_float(f, x->a[0], true);
		return;
	}
	const OpInfo *o = op_get(x->op);
	fprintf(f, "%s(", o->name);
	for (int k = 0; k < x->nin; k++) {
		fputs(k ? ", " : "", f);
		write_term(t, f, n, e, x->in[k]);
	}
	for (int k = 0; k < o->nattr; k++) {
		const AttrInfo *ai = &attr_info[o->attr0 + k];
		Attr d;
		ir_parse_default(NULL, &d, ai);
		double def = ai->kind == AK_INT ? (double)d.i : d.f;
		if (x->a[k] == def)
			continue;
		fprintf(f, ", %s=", ai->name);
		if (ai->kind == AK_INT)
			fprintf(f, "%lld", (long long)x->a[k]);
		else
			ir_print_float(f, x->a[k], false);
	}
	fputc(')', f);
}

/* A member's expression.  A plain op is seen as the one-term expression
 * "op(%0, %1)" over its own operands, so both kinds print alike. */
static void
write_node(Tree *t, FILE *f, int node)
{
	Graph *g = t->g;
	const Node *n = &g->node[node];
	FusedExpr e;
	if (n->op == OP_FUSED) {
		const char *err = ir_fused_parse(g->mod->arena,
		                                 ir_attr(g, n, AT_FUSED_EXPR)->s,
		                                 n->nin, &e);
		if (err)
			die("%s", err);
		write_term(t, f, n, &e, e.n - 1);
		return;
	}
	const OpInfo *o = op_get(n->op);
	FusedTerm x[3] = {{0}};
	for (int k = 0; k < n->nin; k++)
		x[k] = (FusedTerm){.op = FT_OPERAND, .operand = k};
	x[n->nin] = (FusedTerm){.op = n->op, .nin = n->nin, .in = {0, 1}};
	for (int k = 0; k < o->nattr; k++) {
		const Attr *a = ir_attr(g, n, o->attr0 + k);
		x[n->nin].a[k] = a->kind == AK_INT ? (double)a->i : a->f;
	}
	e = (FusedExpr){.t = x, .n = n->nin + 1};
	write_term(t, f, n, &e, n->nin);
}

/* Turns the root into the fused node and kills the other members. */
static void
rewrite(Tree *t)
{
	Graph *g = t->g;
	char *text;
	size_t len;
	FILE *f = open_memstream(&text, &len);
	if (!f)
		die("open_memstream failed");
	t->nleaf = 0;
	write_node(t, f, t->root);
	fclose(f);
	Node *r = &g->node[t->root];
	Attr a = {.kind = AK_STRING, .s = arena_strdup(g->mod->arena, text)};
	free(text);
	r->op = OP_FUSED;
	r->nin = t->nleaf;
	memcpy(r->in, t->leaf, t->nleaf * sizeof *t->leaf);
	r->attr = g->nattr;
	APUSH(g->mod->arena, g->attr, g->nattr, g->capattr, a);
	for (int i = 1; i < t->nmember; i++)
		g->node[t->member[i]].dead = true;
}

/* ---- softmax and layernorm written out op by op -------------------- */

/* The node making v, if it is op op, else NULL. */
static Node *
made_by(Graph *g, int v, int op)
{
	int d = v >= 0 ? g->val[v].def : -1;
	return d >= 0 && !g->node[d].dead && g->node[d].op == op ?
	       &g->node[d] : NULL;
}

/* A reduce_* node over one axis with keepdims=1: the axis, else -1. */
static int
one_axis(Graph *g, const Node *n)
{
	unsigned mask;
	const Type *x = &g->val[n->in[0]].type;
	const Attr *keep = &g->attr[n->attr + 1];   /* axes, keepdims */
	if (shape_reduce_mask(g, n, &mask) || keep->i != 1 || mask == 0 ||
	    (mask & (mask - 1)))
		return -1;
	for (int d = 0; d < x->rank; d++)
		if (mask >> d & 1)
			return d;
	return -1;
}

/* y = div(e, reduce_sum(e)), e = exp(x) or exp(sub(x, reduce_max(x)))
 * over one axis, every value but e used once and e twice: softmax(x). */
static bool
match_softmax(Graph *g, const int *use, Node *y)
{
	Node *e = made_by(g, y->in[0], OP_EXP);
	Node *s = made_by(g, y->in[1], OP_REDUCE_SUM);
	if (!e || !s || s->in[0] != y->in[0] || use[e->out] != 2 ||
	    use[s->out] != 1)
		return false;
	int x = e->in[0], axis = one_axis(g, s);
	Node *d = made_by(g, x, OP_SUB), *m = d ? made_by(g, d->in[1],
	                                                  OP_REDUCE_MAX) : NULL;
	bool shifted = m && m->in[0] == d->in[0] && use[d->out] == 1 &&
	               use[m->out] == 1 && one_axis(g, m) == axis;
	if (shifted)
		x = d->in[0];
	if (axis < 0 || !type_eq(&g->val[x].type, &g->val[y->out].type))
		return false;
	if (shifted)
		d->dead = m->dead = true;
	e->dead = s->dead = true;
	y->op = OP_SOFTMAX;
	y->nin = 1;
	y->in[0] = x;
	y->attr = g->nattr;
	Attr a = {.kind = AK_INT, .i = axis == g->val[x].type.rank - 1 ? -1 : axis};
	APUSH(g->mod->arena, g->attr, g->nattr, g->capattr, a);
	return true;
}

/* An f32 scalar constant's value, or NAN. */
static double
scalar(const Graph *g, int v)
{
	const Value *x = &g->val[v];
	if (v < 0 || x->kind != VK_CONST || x->type.dtype != DT_F32 || !x->data ||
	    type_numel(&x->type) != 1)
		return NAN;
	return *(const float *)x->data;
}

/* The shortest decimal that reads back as the f32 v, read as a double:
 * an f32 constant as the attribute a user would write (1e-05). */
static double
f32_double(float v)
{
	char buf[40];
	for (int p = 1; p < 17; p++) {
		snprintf(buf, sizeof buf, "%.*g", p, v);
		if (strtof(buf, NULL) == v)
			break;
	}
	return strtod(buf, NULL);
}

/* The operand of binary node n that is not v, if the other one is v. */
static int
other(const Node *n, int v)
{
	return n->in[0] == v ? n->in[1] : n->in[1] == v ? n->in[0] : -1;
}

/* d = x - reduce_mean(x); y = d / sqrt(reduce_mean(d^2) + eps) * scale
 * [+ bias], means over the last dims, d used twice and every other value
 * once, scale and bias of those dims: layernorm(x, scale, bias). */
static bool
match_layernorm(Graph *g, const int *use, Node *y)
{
	Node *add = y->op == OP_ADD ? y : NULL;
	Node *mul = made_by(g, add ? add->in[0] : y->out, OP_MUL);
	if (add && !mul)
		mul = made_by(g, add->in[1], OP_MUL);
	if (!mul || (add && use[mul->out] != 1))
		return false;
	Node *div = made_by(g, mul->in[0], OP_DIV);
	div = div ? div : made_by(g, mul->in[1], OP_DIV);
	Node *sq = div ? made_by(g, div->in[1], OP_SQRT) : NULL;
	Node *eps = sq ? made_by(g, sq->in[0], OP_ADD) : NULL;
	Node *var = eps ? made_by(g, eps->in[0], OP_REDUCE_MEAN) : NULL;
	Node *pw = var ? made_by(g, var->in[0], OP_POW) : NULL;
	Node *sub = made_by(g, div ? div->in[0] : -1, OP_SUB);
	Node *mean = sub ? made_by(g, sub->in[1], OP_REDUCE_MEAN) : NULL;
	if (!pw || !mean || pw->in[0] != sub->out || scalar(g, pw->in[1]) != 2 ||
	    mean->in[0] != sub->in[0] || use[div->out] != 1 ||
	    use[sq->out] != 1 || use[eps->out] != 1 || use[var->out] != 1 ||
	    use[pw->out] != 1 || use[sub->out] != 2 || use[mean->out] != 1)
		return false;
	int x = sub->in[0], scale = other(mul, div->out);
	int bias = add ? other(add, mul->out) : -1;
	double e = scalar(g, eps->in[1]);
	const Type *xt = &g->val[x].type;
	int axis;
	unsigned mm, mv;
	/* the means reduce the dims from axis on; scale and bias have them */
	if (shape_reduce_mask(g, mean, &mm) || shape_reduce_mask(g, var, &mv) ||
	    mm != mv || g->attr[mean->attr + 1].i != 1 ||
	    g->attr[var->attr + 1].i != 1 || !(e >= 0) ||
	    !type_eq(xt, &g->val[y->out].type))
		return false;
	for (axis = xt->rank; axis > 0 && (mm >> (axis - 1) & 1); axis--)
		;
	if (mm != ((1u << xt->rank) - 1) - ((1u << axis) - 1) || axis == xt->rank)
		return false;
	Type want = {.dtype = DT_F32, .rank = xt->rank - axis};
	memcpy(want.dim, xt->dim + axis, want.rank * sizeof *want.dim);
	if (!type_eq(&g->val[scale].type, &want) ||
	    (bias >= 0 && !type_eq(&g->val[bias].type, &want)))
		return false;
	Node *k[] = {mul, div, sq, eps, var, pw, sub, mean};
	for (int i = 0; i < countof(k); i++)
		if (k[i] != y)
			k[i]->dead = true;
	y->op = OP_LAYERNORM;
	y->nin = bias >= 0 ? 3 : 2;
	y->in[0] = x;
	y->in[1] = scale;
	y->in[2] = bias;
	y->attr = g->nattr;
	Attr a[2] = {{.kind = AK_INT, .i = axis == xt->rank - 1 ? -1 : axis},
	             {.kind = AK_FLOAT, .f = f32_double((float)e)}};
	for (int i = 0; i < 2; i++)
		APUSH(g->mod->arena, g->attr, g->nattr, g->capattr, a[i]);
	return true;
}

static void
recognize(Graph *g)
{
	bool changed = false;
	int *use = ir_fill_uses(g, g->mod->arena);
	for (int i = g->nnode - 1; i >= 0; i--) {
		Node *n = &g->node[i];
		if (n->dead || g->val[n->out].type.dtype != DT_F32)
			continue;
		if (n->op == OP_DIV)
			changed |= match_softmax(g, use, n);
		else if (n->op == OP_ADD || n->op == OP_MUL)
			changed |= match_layernorm(g, use, n);
	}
	if (changed)
		ir_compact(g);
}

void
pass_fuse_eltwise(Graph *g)
{
	recognize(g);
	Tree t = {.g = g, .use = ir_fill_uses(g, g->mod->arena)};
	t.taken = arena_alloc(g->mod->arena, g->nnode * sizeof *t.taken);
	for (int i = 0; i < g->nnode; i++)
		t.taken[i] = -1;
	bool changed = false;
	for (int i = g->nnode - 1; i >= 0; i--) {
		if (t.taken[i] >= 0 || !fusible(g, &g->node[i]))
			continue;
		t.root = i;
		t.taken[i] = i;
		t.member[0] = i;
		t.nmember = 1;
		grow(&t, i);
		if (t.nmember > 1) {
			rewrite(&t);
			changed = true;
		}
	}
	if (changed)
		ir_compact(g);
}
