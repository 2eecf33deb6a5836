/* cse.c: common-subexpression elimination.
 *
 * Equal constants (same type and bytes, or the same initializer) become
 * one constant.  Then, walking the schedule, an op with the same kind,
 * the same operands (in either order for add, mul, equal, and, or, xor)
 * and equal attributes (ir_attr_eq) as an earlier op computes the same
 * value: its readers read the earlier result (pass_replace) and it dies.
 * Because operands are merged before their readers are looked at, whole
 * repeated subgraphs merge in one walk.  Ops with a seed attribute
 * (random_normal, dropout, dropout_train) are never merged: each draw is
 * meant to be its own.  Parameters are never merged: each is a weight of
 * its own.  Requires pure ops, as dce does.
 */
#include <string.h>
#include "passes.h"

static bool
same_const(const Value *a, const Value *b)
{
	if (a->elided || b->elided || !type_eq(&a->type, &b->type) ||
	    a->init != b->init)
		return false;
	if (a->init != INIT_DATA)
		return a->fan_in == b->fan_in && a->fan_out == b->fan_out &&
		       a->seed == b->seed;
	return a->data && b->data &&
	       memcmp(a->data, b->data, (size_t)type_bytes(&a->type)) == 0;
}

static bool
merge_consts(Graph *g)
{
	bool changed = false;
	for (int i = 0; i < g->nval; i++) {
		if (g->val[i].kind != VK_CONST)
			continue;
		for (int j = 0; j < i; j++)
			if (g->val[j].kind == VK_CONST &&
			    same_const(&g->val[j], &g->val[i]) &&
			    pass_replace(g, i, j)) {
				changed = true;
				break;
			}
	}
	return changed;
}

static bool
commutative(int op)
{
	switch (op) {
	case OP_ADD: case OP_MUL: case OP_EQUAL: case OP_AND: case OP_OR:
	case OP_XOR:
		return true;
	default:
		return false;       /* max(-0, +0) depends on the order */
	}
}

static bool
random_op(int op)
{
	return op_attr_lookup(op, "seed") >= 0;
}

static uint64_t
hash_node(const Node *n)
{
	uint64_t h = (uint64_t)n->op * 0x9e3779b97f4a7c15ull ^ (uint64_t)n->nin;
	uint64_t sum = 0;
	for (int k = 0; k < n->nin; k++) {
		uint64_t v = (uint64_t)(n->in[k] + 2) * 0xbf58476d1ce4e5b9ull;
		if (commutative(n->op))
			sum += v;           /* order-free */
		else
			h = (h ^ v) * 0x94d049bb133111ebull;
	}
	h ^= sum;
	return h ^ h >> 31;
}

static bool
same_node(Graph *g, const Node *a, const Node *b)
{
	if (a->op != b->op || a->nin != b->nin)
		return false;
	bool straight = memcmp(a->in, b->in, a->nin * sizeof *a->in) == 0;
	bool swapped = commutative(a->op) && a->nin == 2 &&
	               a->in[0] == b->in[1] && a->in[1] == b->in[0];
	if (!straight && !swapped)
		return false;
	const OpInfo *o = op_get(a->op);
	for (int i = 0; i < o->nattr; i++)
		if (!ir_attr_eq(&g->attr[a->attr + i], &g->attr[b->attr + i]))
			return false;
	return type_eq(&g->val[a->out].type, &g->val[b->out].type);
}

/* An open-addressing table of node indices by hash_node; -1 is empty. */
static bool
merge_nodes(Graph *g, Arena *scratch)
{
	int cap = 16;
	while (cap < 2 * g->nnode)
		cap *= 2;
	int *tab = arena_alloc(scratch, cap * sizeof *tab);
	memset(tab, -1, cap * sizeof *tab);
	bool changed = false;
	for (int i = 0; i < g->nnode; i++) {
		Node *n = &g->node[i];
		if (n->dead || random_op(n->op))
			continue;
		int h = (int)(hash_node(n) & (uint64_t)(cap - 1));
		for (;; h = (h + 1) & (cap - 1)) {
			if (tab[h] < 0) {
				tab[h] = i;
				break;
			}
			const Node *m = &g->node[tab[h]];
			if (same_node(g, m, n) && pass_replace(g, n->out, m->out)) {
				changed = true;
				break;
			}
		}
	}
	return changed;
}

void
pass_cse(Graph *g)
{
	Arena *scratch = arena_new();
	bool changed = merge_consts(g);
	changed |= merge_nodes(g, scratch);
	arena_free(scratch);
	if (changed)
		ir_compact(g);
}
