/* gradcheck.c: `kiln gradcheck MODEL`, the finite-difference check of
 * kiln's gradient rules (runtime/gradcheck.c runs it).
 *
 * From the model's graph it makes two graphs: @NAME.loss, whose inputs
 * are the model's inputs and then its parameters, and which returns
 * L = sum_k sum(y_k * r_k) over the outputs y_k with fixed random r_k (so
 * every output element's gradient matters, each with its own weight); and
 * @NAME.grad, the same plus ad_grads() with respect to every input,
 * returning L and each gradient as "d.NAME".  Both are compiled by the C
 * backend into one program with the runtime's kiln_gradcheck_main().
 * Integer data (labels, indices) must be constants of the model.
 */
#include <stdlib.h>
#include <string.h>
#include "driver.h"
#include "backend.h"

/* A fixed pseudo-random f32 tensor of type t in [-1, 1). */
static int
random_const(Graph *g, Type t, uint64_t seed)
{
	int64_t n = type_numel(&t);
	float *p = arena_alloc(g->mod->arena, (size_t)n * sizeof *p);
	uint64_t s = seed * 0x9e3779b97f4a7c15u + 1;
	for (int64_t i = 0; i < n; i++) {
		s ^= s << 13, s ^= s >> 7, s ^= s << 17;    /* xorshift64 */
		p[i] = (float)((double)(s >> 11) * 0x1p-52 - 1.0);
	}
	t.dtype = DT_F32;
	int v = ir_add_value(g, ir_temp_name(g), VK_CONST, t, g->loc);
	g->val[v].data = p;
	g->val[v].init = INIT_DATA;
	return v;
}

/* @NAME.loss or, with grads, @NAME.grad. */
static Graph *
make(Graph *m, bool grads)
{
	Arena *a = m->mod->arena;
	Graph *g = ir_new_graph(m->mod, arena_printf(a, "%s.%s", m->name,
	                        grads ? "grad" : "loss"), m->loc);
	int *vmap = arena_alloc(a, (m->nval + 1) * sizeof *vmap);
	for (int i = 0; i < m->ninput; i++) {
		const Value *v = &m->val[m->input[i]];
		if (v->type.dtype != DT_F32)
			diag_error(v->loc, "gradcheck: input '%s' is %s; give integer "
			           "data as a const", v->name,
			           type_str(a, &v->type));
		vmap[m->input[i]] = ir_add_input(g, v->name, v->type, v->loc);
	}
	for (int i = 0; i < m->nval; i++) {
		const Value *v = &m->val[i];
		if (v->kind == VK_PARAM && v->type.dtype == DT_F32)
			vmap[i] = ir_add_input(g, v->name, v->type, v->loc);
		else if (v->kind == VK_PARAM || v->kind == VK_CONST)
			vmap[i] = pb_copy_global(g, v);
	}
	for (int i = 0; i < m->nnode; i++)
		if (!m->node[i].dead)
			vmap[m->node[i].out] = pb_copy_node(g, m, &m->node[i], vmap);
	int loss = -1;
	for (int k = 0; k < m->noutput; k++) {
		int y = vmap[m->output[k]];
		if (g->val[y].type.dtype != DT_F32)
			continue;
		int r = random_const(g, g->val[y].type, (uint64_t)k);
		int p = pb_binary(g, m->loc, OP_MUL, y, r);
		unsigned all = (1u << g->val[p].type.rank) - 1;
		int s = pb_sum(g, m->loc, p, all, false);
		loss = loss < 0 ? s : pb_binary(g, m->loc, OP_ADD, loss, s);
	}
	if (loss < 0)
		diag_error(m->loc, "gradcheck: the model has no f32 output");
	if (g->val[loss].kind != VK_TEMP)
		die("gradcheck: the loss is not computed");
	ir_add_output(g, loss);
	if (!grads)
		return g;
	int n = g->ninput;
	int *wrt = arena_alloc(a, (n + 1) * sizeof *wrt);
	int *d = arena_alloc(a, (n + 1) * sizeof *d);
	memcpy(wrt, g->input, n * sizeof *wrt);
	ad_grads(g, loss, wrt, n, d);
	for (int i = 0; i < n; i++) {
		if (d[i] < 0)
			continue;       /* the loss does not depend on it */
		Type t = g->val[wrt[i]].type;
		int c = pb_op(g, OP_RESHAPE, m->loc, &d[i], 1);
		ir_set_ints(g, c, AT_RESHAPE_SHAPE, t.dim, t.rank);
		int v = ir_add_result(g, c, arena_printf(a, "d.%s",
		                                         g->val[wrt[i]].name));
		if (ir_infer(g, c))
			die("gradcheck: gradient of '%s' has the wrong shape",
			    g->val[wrt[i]].name);
		ir_add_output(g, v);
	}
	return g;
}

Graph **
gradcheck_graphs(Graph *m)
{
	Graph **gs = arena_alloc(m->mod->arena, 2 * sizeof *gs);
	gs[0] = make(m, false);
	gs[1] = make(m, true);
	ir_verify(gs[0]);
	ir_verify(gs[1]);
	return gs;
}
