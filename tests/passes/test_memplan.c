/* test_memplan.c: checks the memory planner against its contract on
 * random chains and DAGs built with the ir.c API.
 *
 * Liveness is recomputed here from the schedule, independently of
 * passes/memplan.c, and every plan must satisfy: temporaries live at the
 * same time never overlap in memory, offsets are 64-aligned, everything
 * fits in the workspace, the workspace is at least the lower bound (and
 * equals it on a chain of equal sizes), outputs and non-temporaries are
 * not planned, memplan_stats agrees, and planning twice gives the same
 * plan.  Prints the first failures and exits 1 if any check fails.
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

/* One random op over the values made so far. */
static int
random_node(Graph *g, const int *vals, int nv)
{
	static const int widths[] = {1, 3, 16, 17, 64, 100, 256, 1000};
	int x = vals[rnd(nv)];
	switch (rnd(3)) {
	case 0:
		return add_op(g, OP_RELU, x, -1);
	case 1:
		return add_matmul(g, x, widths[rnd(countof(widths))]);
	}
	for (int tries = 0; tries < 4; tries++) {
		int y = vals[rnd(nv)];
		if (width(g, y) == width(g, x))
			return add_op(g, OP_ADD, x, y);
	}
	return add_op(g, OP_SIGMOID, x, -1);
}

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
	free(vals);
	return g;
}

/* x -> op -> op ... with widths from w[], or all of width w0 if !w. */
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

/* Live ranges from scratch: first[v]..last[v], or first[v] = -1 when v
 * needs no workspace. */
static void
liveness(const Graph *g, int *first, int *last)
{
	for (int i = 0; i < g->nval; i++)
		first[i] = last[i] = -1;
	for (int i = 0; i < g->nnode; i++) {
		const Node *n = &g->node[i];
		for (int k = 0; k < n->nin; k++)
			last[n->in[k]] = i;
		first[n->out] = last[n->out] = i;
	}
	for (int i = 0; i < g->noutput; i++)
		first[g->output[i]] = -1;
	for (int i = 0; i < g->nval; i++)
		if (g->val[i].kind != VK_TEMP)
			first[i] = -1;
}

static int64_t
lower_bound(const Graph *g, const int *first, const int *last)
{
	int64_t lower = 0;
	for (int p = 0; p < g->nnode; p++) {
		int64_t alive = 0;
		for (int i = 0; i < g->nval; i++)
			if (first[i] >= 0 && first[i] <= p && p <= last[i])
				alive += type_bytes(&g->val[i].type);
		lower = MAX(lower, alive);
	}
	return lower;
}

static void
check_pairs(const Graph *g, const int *first, const int *last)
{
	for (int i = 0; i < g->nval; i++) {
		for (int k = i + 1; k < g->nval; k++) {
			if (first[i] < 0 || first[k] < 0 || last[i] < first[k] ||
			    last[k] < first[i])
				continue;
			const Value *a = &g->val[i], *b = &g->val[k];
			bool apart = a->offset + type_bytes(&a->type) <= b->offset ||
			             b->offset + type_bytes(&b->type) <= a->offset;
			check(apart, g, "values %d and %d live together but overlap",
			      i, k);
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
		check(v->offset + type_bytes(&v->type) <= g->workspace, g,
		      "value %d ends past the workspace", i);
	}
}

static void
check_stats(const Graph *g, const int *first, int64_t lower)
{
	int64_t naive = 0;
	for (int i = 0; i < g->nval; i++)
		if (first[i] >= 0)
			naive += type_bytes(&g->val[i].type);
	MemStats st = memplan_stats(g);
	check(g->workspace % ALIGN == 0, g, "workspace %lld is not aligned",
	      (long long)g->workspace);
	check(g->workspace >= lower, g, "workspace %lld below lower bound %lld",
	      (long long)g->workspace, (long long)lower);
	check(st.arena == g->workspace, g, "stats: arena %lld",
	      (long long)st.arena);
	check(st.naive == naive, g, "stats: naive %lld, want %lld",
	      (long long)st.naive, (long long)naive);
	check(st.lower == lower, g, "stats: lower %lld, want %lld",
	      (long long)st.lower, (long long)lower);
}

/* Plans g twice and checks the plan; returns workspace - lower bound. */
static int64_t
check_plan(Graph *g)
{
	int *first = xmalloc((g->nval + 1) * sizeof *first);
	int *last = xmalloc((g->nval + 1) * sizeof *last);
	int64_t *off = xmalloc((g->nval + 1) * sizeof *off);
	pass_memplan(g);
	for (int i = 0; i < g->nval; i++)
		off[i] = g->val[i].offset;
	int64_t ws = g->workspace;
	pass_memplan(g);
	check(ws == g->workspace, g, "second run: workspace %lld, then %lld",
	      (long long)ws, (long long)g->workspace);
	for (int i = 0; i < g->nval; i++)
		check(off[i] == g->val[i].offset, g,
		      "second run moved value %d", i);
	liveness(g, first, last);
	int64_t lower = lower_bound(g, first, last);
	check_values(g, first);
	check_pairs(g, first, last);
	check_stats(g, first, lower);
	free(first);
	free(last);
	free(off);
	return g->workspace - lower;
}

static void
test_chains(Module *m)
{
	Graph *g = chain(m, "chain", 10, 16 * 100, false);
	check_plan(g);
	check(g->workspace == 2 * 6400, g, "workspace %lld, want 12800",
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

int
main(void)
{
	Arena *a = arena_new();
	Module *m = ir_new_module(a, "test_memplan");
	test_small(m);
	test_chains(m);
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
