/* test_memplan.c: checks the memory planner against its contract on
 * random chains and DAGs built with the ir.c API.
 *
 * Liveness is recomputed here from the final schedule, independently of
 * passes/memplan.c, and every plan must satisfy:
 *   - temporaries live at the same time never overlap in memory, except a
 *     result exactly over an operand of its op (in place), which needs an
 *     elementwise op or a byte copy, the operand dying there, equal sizes
 *     and no broadcast of that operand;
 *   - offsets are 64-aligned, everything fits in the workspace, outputs
 *     and non-temporaries are not planned, update sources outlive the run;
 *   - the workspace is at least the lower bound (buffers alive at one
 *     position, each rounded up to 64 bytes; equal to it on chains of
 *     equal sizes) and at most what greedy by size (written again here)
 *     makes of the original schedule without running in place;
 *   - a reordered schedule holds the same ops, and its peak is no higher
 *     than the original schedule's without running in place;
 *   - memplan_stats agrees, and planning twice gives the same plan.
 * Prints the first failures and exits 1 if any check fails.
 * Legend: values are f32[1,w]; w is the width.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "passes.h"

enum { ALIGN = 64, NGRAPH = 2000, MAXNODE = 48 };

static uint64_t seed = 1;
static int nfail;

static int
rnd(int n)
{
	seed = seed * 6364136223846793005ull + 1442695040888963407ull;
	return (int)((seed >> 33) % (uint64_t)n);
}

static void __attribute__((format(printf, 3, 4)))
check(bool ok, const Graph *g, const char *fmt, ...)
{
	if (ok || nfail++ >= 10)
		return;
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "FAIL @%s: ", g->name);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

static Type
vec(int64_t w)
{
	return (Type){.dtype = DT_F32, .rank = 2, .dim = {1, w}};
}

static int
add_op(Graph *g, int op, int a, int b)
{
	int in[2] = {a, b};
	int n = ir_add_node(g, op, (Loc){0}, in, b < 0 ? 1 : 2);
	int v = ir_add_result(g, n, NULL);
	const char *err = ir_infer(g, n);
	if (err)
		die("%s", err);
	return v;
}

/* x[1,k] @ $w[k,w] -> [1,w], with a fresh parameter. */
static int
add_matmul(Graph *g, int x, int64_t w)
{
	char name[32];
	snprintf(name, sizeof name, "w%d", g->nval);
	Type t = {.dtype = DT_F32, .rank = 2, .dim = {g->val[x].type.dim[1], w}};
	int p = ir_add_value(g, name, VK_PARAM, t, (Loc){0});
	g->val[p].init = INIT_ZEROS;
	return add_op(g, OP_MATMUL, x, p);
}

static int
width(const Graph *g, int v)
{
	return (int)g->val[v].type.dim[1];
}

/* x + y[1,1], broadcast: y must never be overwritten by the result. */
static int
add_bias(Graph *g, int x, const int *vals, int nv)
{
	for (int tries = 0; tries < 4; tries++) {
		int y = vals[rnd(nv)];
		if (width(g, y) == 1)
			return add_op(g, OP_ADD, x, y);
	}
	return add_op(g, OP_ADD, x, add_matmul(g, x, 1));
}

/* One random op over the values made so far. */
static int
random_node(Graph *g, const int *vals, int nv)
{
	static const int widths[] = {1, 3, 16, 17, 64, 100, 256, 1000};
	int x = vals[rnd(nv)];
	switch (rnd(6)) {
	case 0:
		return add_op(g, OP_RELU, x, -1);
	case 1:
	case 2:
		return add_matmul(g, x, widths[rnd(countof(widths))]);
	case 3:
		return add_bias(g, x, vals, nv);
	case 4:
		return add_op(g, OP_FLATTEN, x, -1);
	}
	for (int tries = 0; tries < 4; tries++) {
		int y = vals[rnd(nv)];
		if (width(g, y) == width(g, x))
			return add_op(g, OP_ADD, x, y);
	}
	return add_op(g, OP_SIGMOID, x, -1);
}

/* A random DAG; some temporaries become outputs, and with dce some
 * results nothing reads go.  Sometimes a param is updated from a
 * temporary, which must then survive the run. */
static Graph *
random_dag(Module *m, int id)
{
	char name[32];
	snprintf(name, sizeof name, "dag%d", id);
	Graph *g = ir_new_graph(m, name, (Loc){0});
	int nn = 1 + rnd(MAXNODE);
	int *vals = xmalloc((nn + 1) * sizeof *vals);
	vals[0] = ir_add_input(g, "x", vec(1 + rnd(300)), (Loc){0});
	for (int i = 0; i < nn; i++)
		vals[i + 1] = random_node(g, vals, i + 1);
	ir_add_output(g, vals[nn]);
	for (int i = 1; i < nn; i++)
		if (rnd(8) == 0)
			ir_add_output(g, vals[i]);
	if (nn > 1 && rnd(4) == 0) {
		int src = vals[1 + rnd(nn - 1)];
		int p = ir_add_value(g, "state", VK_PARAM, g->val[src].type,
		                     (Loc){0});
		g->val[p].init = INIT_ZEROS;
		ir_add_update(g, p, src);
	}
	free(vals);
	return g;
}

/* x -> op -> op ... with random widths (matmuls) or all of width w0. */
static Graph *
chain(Module *m, const char *name, int n, int w0, bool random_widths)
{
	Graph *g = ir_new_graph(m, name, (Loc){0});
	int v = ir_add_input(g, "x", vec(w0), (Loc){0});
	for (int i = 0; i < n; i++)
		v = random_widths ? add_matmul(g, v, 16 * (1 + rnd(64)))
		                  : add_op(g, OP_RELU, v, -1);
	ir_add_output(g, v);
	return g;
}

/* Two branches from x, joined: the given order computes both big
 * matmuls first; running each branch to its small end first needs less. */
static Graph *
branches(Module *m)
{
	Graph *g = ir_new_graph(m, "branches", (Loc){0});
	int x = ir_add_input(g, "x", vec(16), (Loc){0});
	int a = add_matmul(g, x, 1024), b = add_matmul(g, x, 1024);
	int a2 = add_matmul(g, a, 16), b2 = add_matmul(g, b, 16);
	ir_add_output(g, add_op(g, OP_ADD, a2, b2));
	return g;
}

/* ---- the reference: liveness, lower bound, greedy by size ------------- */

/* Live ranges from scratch: first[v]..last[v], or first[v] = -1 when v
 * needs no workspace.  Update sources stay live past the last node. */
static void
liveness(const Graph *g, const Node *node, int *first, int *last)
{
	for (int i = 0; i < g->nval; i++)
		first[i] = last[i] = -1;
	for (int i = 0; i < g->nnode; i++) {
		const Node *n = &node[i];
		if (n->dead)
			continue;
		for (int k = 0; k < n->nin; k++)
			last[n->in[k]] = i;
		first[n->out] = last[n->out] = i;
	}
	for (int i = 0; i < g->nupdate; i++)
		last[g->update[i].src] = g->nnode;
	for (int i = 0; i < g->noutput; i++)
		first[g->output[i]] = -1;
	for (int i = 0; i < g->nval; i++)
		if (g->val[i].kind != VK_TEMP)
			first[i] = -1;
}

static int64_t
bytes(const Graph *g, int v)
{
	return type_bytes(&g->val[v].type);
}

/* Whether a (the result of node p) may sit exactly over b: the op is
 * elementwise or a copy, b an operand of the same size and element count
 * that dies at p. */
static bool
inplace_ok(const Graph *g, const int *first, const int *last, int a, int b)
{
	int p = first[a];
	const Node *n = &g->node[p];
	const OpInfo *o = op_get(n->op);
	bool operand = false;
	for (int k = 0; k < n->nin; k++)
		operand |= n->in[k] == b;
	return n->out == a && operand && last[b] == p &&
	       (o->cls == ELTWISE || n->op == OP_FLATTEN) &&
	       bytes(g, a) == bytes(g, b) &&
	       type_numel(&g->val[a].type) == type_numel(&g->val[b].type) &&
	       g->val[a].offset == g->val[b].offset;
}

/* The value whose memory v took over in place, or -1. */
static int
overwrites(const Graph *g, const int *first, const int *last, int v)
{
	const Node *n = &g->node[first[v]];
	for (int k = 0; k < n->nin; k++) {
		int b = n->in[k];
		if (first[b] >= 0 && inplace_ok(g, first, last, v, b))
			return b;
	}
	return -1;
}

/* The most bytes alive at one position, each buffer rounded up to 64
 * bytes; a value that overwrote another in place (when into) counts
 * only from the position after its definition. */
static int64_t
lower_bound(const Graph *g, const int *first, const int *last,
            const int *into)
{
	int64_t lower = 0;
	for (int p = 0; p <= g->nnode; p++) {
		int64_t alive = 0;
		for (int i = 0; i < g->nval; i++) {
			int from = into && into[i] >= 0 ? first[i] + 1 : first[i];
			if (first[i] >= 0 && from <= p && p <= last[i])
				alive += ALIGNUP(bytes(g, i), ALIGN);
		}
		lower = MAX(lower, alive);
	}
	return lower;
}

static int
size_order(const void *pa, const void *pb)
{
	const int64_t *a = pa, *b = pb;    /* {size, first, last} */
	if (a[0] != b[0])
		return a[0] < b[0] ? 1 : -1;
	return (int)(a[1] - b[1]);
}

/* TensorFlow Lite's greedy by size with best fit, over the given live
 * ranges; returns the workspace. */
static int64_t
greedy_by_size(const Graph *g, const int *first, const int *last)
{
	int64_t (*t)[4] = xmalloc((g->nval + 1) * sizeof *t);
	int nt = 0;
	for (int i = 0; i < g->nval; i++)
		if (first[i] >= 0) {
			t[nt][0] = bytes(g, i);
			t[nt][1] = first[i];
			t[nt][2] = last[i];
			nt++;
		}
	qsort(t, nt, sizeof *t, size_order);
	int64_t ws = 0;
	for (int i = 0; i < nt; i++) {
		int64_t best = -1, bestgap = INT64_MAX;
		/* candidate offsets: 0 and the aligned end of every overlapping
		 * placed buffer; take the one with the tightest fit */
		for (int c = -1; c < i; c++) {
			if (c >= 0 && (t[c][2] < t[i][1] || t[c][1] > t[i][2]))
				continue;
			int64_t at = c < 0 ? 0 : ALIGNUP(t[c][3] + t[c][0], ALIGN);
			int64_t gap = INT64_MAX;
			bool fits = true;
			for (int k = 0; k < i && fits; k++) {
				if (t[k][2] < t[i][1] || t[k][1] > t[i][2])
					continue;
				if (t[k][3] < at + t[i][0] && at < t[k][3] + t[k][0])
					fits = false;
				else if (t[k][3] >= at + t[i][0])
					gap = MIN(gap, t[k][3] - at);
			}
			if (fits && (best < 0 || gap < bestgap ||
			             (gap == bestgap && at < best))) {
				best = at;
				bestgap = gap;
			}
		}
		t[i][3] = best;
		ws = MAX(ws, ALIGNUP(best + t[i][0], ALIGN));
	}
	free(t);
	return ws;
}

/* ---- checks ------------------------------------------------------------- */

static void
check_pairs(const Graph *g, const int *first, const int *last)
{
	for (int i = 0; i < g->nval; i++) {
		for (int k = i + 1; k < g->nval; k++) {
			if (first[i] < 0 || first[k] < 0 || last[i] < first[k] ||
			    last[k] < first[i])
				continue;
			const Value *a = &g->val[i], *b = &g->val[k];
			bool apart = a->offset + bytes(g, i) <= b->offset ||
			             b->offset + bytes(g, k) <= a->offset;
			bool inplace = inplace_ok(g, first, last, i, k) ||
			               inplace_ok(g, first, last, k, i);
			check(apart || inplace, g,
			      "values %d and %d live together but overlap", i, k);
		}
	}
}

static void
check_values(const Graph *g, const int *first)
{
	for (int i = 0; i < g->nval; i++) {
		const Value *v = &g->val[i];
		if (first[i] < 0) {
			check(v->offset == -1, g, "value %d planned", i);
			continue;
		}
		check(v->offset >= 0 && v->offset % ALIGN == 0, g,
		      "value %d at offset %lld", i, (long long)v->offset);
		check(v->offset + bytes(g, i) <= g->workspace, g,
		      "value %d ends past the workspace", i);
	}
}

/* The schedule holds the ops it held before (each value made by the same
 * op from the same operands), in an order ir_verify accepts. */
static void
check_same_ops(Graph *g, const Node *before)
{
	ir_verify(g);
	for (int i = 0; i < g->nnode; i++) {
		const Node *n = &g->node[i], *o = &before[i];
		const Node *now = &g->node[g->val[o->out].def];
		check(now->op == o->op && now->nin == o->nin &&
		      memcmp(now->in, o->in, o->nin * sizeof *o->in) == 0, g,
		      "node %d changed", i);
		check(g->val[n->out].def == i, g, "value %d: def", n->out);
	}
}

/* Plans g twice and checks the plan; returns workspace - lower bound. */
static int64_t
check_plan(Graph *g)
{
	int nv = g->nval, nn = g->nnode;
	int *first = xmalloc((nv + 1) * sizeof *first);
	int *last = xmalloc((nv + 1) * sizeof *last);
	int *into = xmalloc((nv + 1) * sizeof *into);
	int64_t *off = xmalloc((nv + 1) * sizeof *off);
	Node *before = xmalloc((nn + 1) * sizeof *before);
	if (nn)
		memcpy(before, g->node, nn * sizeof *before);
	liveness(g, before, first, last);
	int64_t greedy = greedy_by_size(g, first, last);
	int64_t peak0 = lower_bound(g, first, last, NULL);

	pass_memplan(g);
	for (int i = 0; i < nv; i++)
		off[i] = g->val[i].offset;
	int64_t ws = g->workspace;
	Node *once = xmalloc((nn + 1) * sizeof *once);
	if (nn)
		memcpy(once, g->node, nn * sizeof *once);
	pass_memplan(g);
	check(ws == g->workspace, g, "second run: workspace %lld, then %lld",
	      (long long)ws, (long long)g->workspace);
	check(!nn || memcmp(once, g->node, nn * sizeof *once) == 0, g,
	      "second run reordered");
	for (int i = 0; i < nv; i++)
		check(off[i] == g->val[i].offset, g,
		      "second run moved value %d", i);
	check_same_ops(g, before);

	liveness(g, g->node, first, last);
	for (int i = 0; i < nv; i++)
		into[i] = first[i] >= 0 ? overwrites(g, first, last, i) : -1;
	int64_t lower = lower_bound(g, first, last, into), naive = 0;
	for (int i = 0; i < nv; i++)
		naive += first[i] >= 0 ? bytes(g, i) : 0;
	check_values(g, first);
	check_pairs(g, first, last);
	MemStats st = memplan_stats(g);
	check(g->workspace % ALIGN == 0, g, "workspace %lld is not aligned",
	      (long long)g->workspace);
	check(g->workspace >= lower, g, "workspace %lld below lower bound %lld",
	      (long long)g->workspace, (long long)lower);
	check(g->workspace <= greedy, g, "workspace %lld above greedy's %lld",
	      (long long)g->workspace, (long long)greedy);
	check(lower <= peak0, g, "peak %lld above the original %lld",
	      (long long)lower, (long long)peak0);
	check(st.arena == g->workspace, g, "stats: arena %lld",
	      (long long)st.arena);
	check(st.naive == naive, g, "stats: naive %lld, want %lld",
	      (long long)st.naive, (long long)naive);
	check(st.lower == lower, g, "stats: lower %lld, want %lld",
	      (long long)st.lower, (long long)lower);
	free(first);
	free(last);
	free(into);
	free(off);
	free(before);
	free(once);
	return g->workspace - lower;
}

static void
test_chains(Module *m)
{
	/* every relu runs in place: one buffer for the whole chain */
	Graph *g = chain(m, "chain", 10, 16 * 100, false);
	check_plan(g);
	check(g->workspace == 6400, g, "workspace %lld, want 6400",
	      (long long)g->workspace);
	for (int i = 0; i < NGRAPH / 10; i++) {
		g = chain(m, "chain_equal", 1 + rnd(20), 16 * (1 + rnd(64)), false);
		check(check_plan(g) == 0, g, "equal chain above lower bound");
		g = chain(m, "chain_widths", 1 + rnd(20), 16, true);
		check_plan(g);
	}
}

static void
test_small(Module *m)
{
	Graph *g = ir_new_graph(m, "identity", (Loc){0});
	ir_add_output(g, ir_add_input(g, "x", vec(4), (Loc){0}));
	check_plan(g);
	check(g->workspace == 0, g, "workspace %lld", (long long)g->workspace);
	g = chain(m, "one", 1, 4, false);
	check_plan(g);
	check(g->workspace == 0, g, "workspace %lld", (long long)g->workspace);
}

/* The planner finishes one branch before starting the other: the peak is
 * one big value and two small ones, not two big ones. */
static void
test_branches(Module *m)
{
	Graph *g = branches(m);
	check_plan(g);
	MemStats st = memplan_stats(g);
	check(st.lower == 4096 + 64 + 64, g, "branches: lower %lld, want 4224",
	      (long long)st.lower);
	check(g->workspace == st.lower, g, "branches: workspace %lld",
	      (long long)g->workspace);
}

int
main(void)
{
	Arena *a = arena_new();
	Module *m = ir_new_module(a, "test_memplan");
	test_small(m);
	test_chains(m);
	test_branches(m);
	for (int i = 0; i < NGRAPH; i++) {
		Graph *g = random_dag(m, i);
		if (i % 2)
			pass_dce(g);
		ir_verify(g);
		check_plan(g);
	}
	arena_free(a);
	if (nfail) {
		fprintf(stderr, "test_memplan: %d checks failed\n", nfail);
		return 1;
	}
	printf("test_memplan: OK\n");
	return 0;
}
