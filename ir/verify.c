/* verify.c: checks that a graph is well formed, after every frontend and,
 * in tests and with --verify-each, after every pass.
 *
 * Checked: unique names, valid types, operands defined before use (the
 * node array is the schedule), arity and required attributes from the
 * registry, attribute kinds, and that each result has the type its shape
 * rule gives.  Errors name the op and carry the node's source location.
 */
#include <string.h>
#include "ir.h"

static void
verify_type(const Graph *g, const Value *v)
{
	const Type *t = &v->type;
	if (t->dtype < 0 || t->dtype >= NDTYPE || t->rank < 0 ||
	    t->rank > IR_MAXRANK)
		diag_error(v->loc, "value '%s': bad type", v->name);
	for (int i = 0; i < t->rank; i++)
		if (t->dim[i] < 1)
			diag_error(v->loc, "value '%s': dimension %d is %lld; "
			           "dimensions must be positive", v->name, i,
			           (long long)t->dim[i]);
	if (!type_fits(t))
		diag_error(v->loc, "value '%s': %s is too large", v->name,
		           type_str(g->mod->arena, t));
}

static void
verify_values(const Graph *g)
{
	for (int i = 0; i < g->nval; i++) {
		const Value *v = &g->val[i];
		verify_type(g, v);
		for (int k = 0; k < i; k++)
			if (strcmp(g->val[k].name, v->name) == 0)
				diag_error(v->loc, "value '%s' is defined twice", v->name);
		if (v->kind == VK_TEMP && (v->def < 0 || v->def >= g->nnode ||
		                           g->node[v->def].out != i))
			diag_error(v->loc, "value '%s' has no producing op", v->name);
	}
	for (int i = 0; i < g->ninput; i++)
		if (g->val[g->input[i]].kind != VK_INPUT)
			die("graph input %d is not an input value", i);
}

static void
verify_attrs(Graph *g, const Node *n)
{
	const OpInfo *o = op_get(n->op);
	for (int i = 0; i < o->nattr; i++) {
		const AttrInfo *ai = &attr_info[o->attr0 + i];
		const Attr *a = &g->attr[n->attr + i];
		if (a->kind == AK_NONE && !ai->def)
			diag_error(n->loc, "%s: missing required attribute '%s'",
			           o->name, ai->name);
		if (a->kind != AK_NONE && a->kind != ai->kind)
			diag_error(n->loc, "%s: attribute '%s' has the wrong kind",
			           o->name, ai->name);
	}
}

static void
verify_node(Graph *g, int idx)
{
	const Node *n = &g->node[idx];
	const OpInfo *o = op_get(n->op);
	if (n->nin < o->minin || n->nin > o->maxin)
		diag_error(n->loc, "%s: takes %d to %d operands, got %d", o->name,
		           o->minin, o->maxin, n->nin);
	for (int i = 0; i < n->nin; i++) {
		int v = n->in[i];
		if (v < 0 && i < o->minin)
			diag_error(n->loc, "%s: operand %d is required", o->name, i + 1);
		if (v >= g->nval)
			die("operand out of range");
		if (v >= 0 && g->val[v].kind == VK_TEMP && g->val[v].def >= idx)
			diag_error(n->loc, "%s: operand '%s' is used before it is "
			           "defined", o->name, g->val[v].name);
	}
	if (n->out < 0 || n->out >= g->nval || g->val[n->out].def != idx)
		die("node %d: bad result", idx);
	verify_attrs(g, n);
	Value *r = &g->val[n->out];
	Type have = r->type;
	const char *err = ir_infer(g, idx);
	Type want = r->type;
	r->type = have;
	if (err)
		diag_error(n->loc, "%s", err);
	if (!type_eq(&have, &want))
		diag_error(n->loc, "%s: result '%s' has type %s, but its operands "
		           "give %s", o->name, r->name, type_str(g->mod->arena, &have),
		           type_str(g->mod->arena, &want));
}

void
ir_verify(Graph *g)
{
	verify_values(g);
	for (int i = 0; i < g->nnode; i++)
		if (!g->node[i].dead)
			verify_node(g, i);
	cfg_verify(g, g->train);
	if (g->noutput == 0)
		diag_error(g->loc, "graph '%s' returns nothing", g->name);
	for (int i = 0; i < g->noutput; i++) {
		if (g->output[i] < 0 || g->output[i] >= g->nval)
			die("graph output %d out of range", i);
		for (int k = 0; k < i; k++)
			if (g->output[k] == g->output[i])
				diag_error(g->loc, "graph '%s' returns '%s' twice; outputs "
				           "are named after their values", g->name,
				           g->val[g->output[i]].name);
	}
	for (int i = 0; i < g->nupdate; i++) {
		int d = g->update[i].dst, s = g->update[i].src;
		if (d < 0 || d >= g->nval || s < 0 || s >= g->nval)
			die("graph update %d out of range", i);
		if (g->val[d].kind != VK_PARAM)
			diag_error(g->loc, "update of '%s', which is not a param",
			           g->val[d].name);
		if (!type_eq(&g->val[d].type, &g->val[s].type))
			diag_error(g->loc, "update of '%s' (%s) from '%s' (%s)",
			           g->val[d].name, type_str(g->mod->arena,
			           &g->val[d].type), g->val[s].name,
			           type_str(g->mod->arena, &g->val[s].type));
		for (int k = 0; k < i; k++)
			if (g->update[k].dst == d)
				diag_error(g->loc, "'%s' is updated twice", g->val[d].name);
	}
}
