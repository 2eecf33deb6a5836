/* init.c: deterministic parameter initialization.
 *
 * A parameter without data carries its initializer (zeros, ones, He or
 * Glorot uniform with a seed) in the IR, so a .kir file rebuilds the same
 * weights as the .kiln it came from.  The generator is splitmix64, chosen
 * because it is tiny, fast and gives the same stream on every platform.
 * Also the constants the passes make (ir_fixed_f32, ir_new_global).
 */
#include <math.h>
#include <string.h>
#include "ir.h"

static uint64_t
splitmix64(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* Uniform in [-1, 1) with 24 bits, exact in f32. */
static double
uniform(uint64_t *s)
{
	return (double)(splitmix64(s) >> 40) / (double)(1 << 23) - 1.0;
}

void
ir_materialize(Graph *g, int idx)
{
	Value *v = &g->val[idx];
	if (v->data || v->init == INIT_DATA)
		return;
	if (v->type.dtype != DT_F32)
		diag_error(v->loc, "'%s': only f32 parameters can be initialized",
		           v->name);
	int64_t n = type_numel(&v->type);
	float *p = arena_alloc(g->mod->arena, n * sizeof *p);
	double lim = 0;
	if (v->init == INIT_HE_UNIFORM)
		lim = sqrt(6.0 / (double)MAX(v->fan_in, 1));
	else if (v->init == INIT_GLOROT_UNIFORM)
		lim = sqrt(6.0 / (double)MAX(v->fan_in + v->fan_out, 1));
	uint64_t s = v->seed;
	for (int64_t i = 0; i < n; i++) {
		switch (v->init) {
		case INIT_ZEROS: p[i] = 0; break;
		case INIT_ONES: p[i] = 1; break;
		default: p[i] = (float)(lim * uniform(&s)); break;
		}
	}
	v->data = p;
}

const float *
ir_fixed_f32(Graph *g, int v)
{
	if (v < 0)
		return NULL;
	Value *val = &g->val[v];
	if ((val->kind != VK_PARAM && val->kind != VK_CONST) ||
	    val->type.dtype != DT_F32)
		return NULL;
	ir_materialize(g, v);
	return val->data;
}

int
ir_new_global(Graph *g, int like, const char *suffix, const Type *t,
              const void *x)
{
	Arena *a = g->mod->arena;
	const char *name = arena_printf(a, "%s%s", g->val[like].name, suffix);
	while (ir_find_value(g, name) >= 0)
		name = arena_printf(a, "%s_", name);
	Loc loc = g->val[like].loc;
	int kind = g->val[like].kind;
	int v = ir_add_value(g, name, kind, *t, loc);
	size_t n = (size_t)type_bytes(t);
	g->val[v].init = INIT_DATA;
	g->val[v].data = arena_alloc(a, n ? n : 1);
	memcpy(g->val[v].data, x, n);
	return v;
}
