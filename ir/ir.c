/* ir.c: building graphs: types, values, nodes and attributes.
 *
 * The frontends and passes create IR only through these functions, so
 * every node starts with all its attributes set to the registry defaults
 * and every value has a unique name.  Arrays grow inside the module's
 * arena (old copies are simply abandoned; the arena is freed at exit).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "ir.h"

const char *const dt_name[NDTYPE] = {
	"f32", "f64", "i64", "i32", "i8", "u8", "bool",
	"f16", "bf16", "i16", "u16", "u32", "u64",
};
const int dt_size[NDTYPE] = {4, 8, 8, 4, 1, 1, 1, 2, 2, 2, 2, 4, 8};

int
dt_lookup(const char *name)
{
	for (int i = 0; i < NDTYPE; i++)
		if (strcmp(dt_name[i], name) == 0)
			return i;
	return -1;
}

int64_t
type_numel(const Type *t)
{
	int64_t n = 1;
	for (int i = 0; i < t->rank; i++)
		n *= t->dim[i];
	return n;
}

int64_t
type_bytes(const Type *t)
{
	return type_numel(t) * dt_size[t->dtype];
}

/* Whether t's element count times 8 (the widest dtype) fits an int64, the
 * bound type_numel and type_bytes rely on.  Dims below 1 are the callers'
 * to refuse; here they count as 1. */
bool
type_fits(const Type *t)
{
	int64_t n = 8;
	for (int i = 0; i < t->rank; i++)
		if (t->dim[i] > 1 && __builtin_mul_overflow(n, t->dim[i], &n))
			return false;
	return true;
}

void
type_strides(const Type *t, int64_t *st)
{
	int64_t step = 1;
	for (int i = t->rank - 1; i >= 0; i--) {
		st[i] = step;
		step *= t->dim[i];
	}
}

void
type_bcast_strides(const Type *t, const Type *y, int64_t *st)
{
	int64_t step = 1;
	for (int i = y->rank - 1; i >= 0; i--) {
		int k = i - (y->rank - t->rank);
		st[i] = k < 0 || t->dim[k] == 1 ? 0 : step;
		if (k >= 0)
			step *= t->dim[k];
	}
}

void
type_outer_inner(const Type *t, int axis, int64_t *outer, int64_t *inner)
{
	*outer = *inner = 1;
	for (int i = 0; i < t->rank; i++)
		if (i < axis)
			*outer *= t->dim[i];
		else if (i > axis)
			*inner *= t->dim[i];
}

bool
type_eq(const Type *a, const Type *b)
{
	if (a->dtype != b->dtype || a->rank != b->rank)
		return false;
	for (int i = 0; i < a->rank; i++)
		if (a->dim[i] != b->dim[i])
			return false;
	return true;
}

char *
type_str(Arena *a, const Type *t)
{
	char buf[32 + IR_MAXRANK * 24];
	int n = snprintf(buf, sizeof buf, "%s[", dt_name[t->dtype]);
	for (int i = 0; i < t->rank; i++)
		n += snprintf(buf + n, sizeof buf - n, "%s%lld", i ? "," : "",
		              (long long)t->dim[i]);
	snprintf(buf + n, sizeof buf - n, "]");
	return arena_strdup(a, buf);
}

Module *
ir_new_module(Arena *a, const char *file)
{
	Module *m = arena_alloc(a, sizeof *m);
	m->arena = a;
	m->file = file;
	return m;
}

Graph *
ir_new_graph(Module *m, const char *name, Loc loc)
{
	Graph *g = arena_alloc(m->arena, sizeof *g);
	g->name = arena_strdup(m->arena, name);
	g->mod = m;
	g->loc = loc;
	g->workspace = -1;
	APUSH(m->arena, m->graph, m->ngraph, m->capgraph, g);
	return g;
}

int
ir_add_value(Graph *g, const char *name, int kind, Type t, Loc loc)
{
	Value v = {
		.name = arena_strdup(g->mod->arena, name),
		.type = t, .kind = kind, .def = -1, .loc = loc, .offset = -1,
	};
	APUSH(g->mod->arena, g->val, g->nval, g->capval, v);
	return g->nval - 1;
}

int
ir_add_input(Graph *g, const char *name, Type t, Loc loc)
{
	int v = ir_add_value(g, name, VK_INPUT, t, loc);
	APUSH(g->mod->arena, g->input, g->ninput, g->capinput, v);
	return v;
}

void
ir_add_output(Graph *g, int v)
{
	APUSH(g->mod->arena, g->output, g->noutput, g->capoutput, v);
}

void
ir_add_update(Graph *g, int dst, int src)
{
	arena_grow(g->mod->arena, (void **)&g->update, &g->capupdate,
	           g->nupdate + 1, sizeof *g->update);
	g->update[g->nupdate].dst = dst;
	g->update[g->nupdate++].src = src;
}

/* Parses a registry default ("1", "0.5", "1,1", "x") into a. */
const char *
ir_parse_default(Graph *g, Attr *a, const AttrInfo *ai)
{
	const char *s = ai->def;
	memset(a, 0, sizeof *a);
	if (!s)
		return NULL;
	a->kind = ai->kind;
	switch (ai->kind) {
	case AK_INT: a->i = strtoll(s, NULL, 10); break;
	case AK_FLOAT: a->f = strtod(s, NULL); break;
	case AK_STRING: a->s = s; break;
	case AK_INTS:
	case AK_FLOATS: {
		int n = *s ? 1 : 0;
		for (const char *p = s; *p; p++)
			n += *p == ',';
		a->n = n;
		if (ai->kind == AK_INTS)
			a->ints = arena_alloc(g->mod->arena, n * sizeof *a->ints);
		else
			a->floats = arena_alloc(g->mod->arena, n * sizeof *a->floats);
		char *end;
		for (int i = 0; i < n; i++, s = end + (*end == ',')) {
			if (ai->kind == AK_INTS)
				a->ints[i] = strtoll(s, &end, 10);
			else
				a->floats[i] = strtod(s, &end);
		}
		break;
	}
	default:
		die("attribute %s: no default of this kind", ai->name);
	}
	return NULL;
}

int
ir_add_node(Graph *g, int op, Loc loc, const int *in, int nin)
{
	const OpInfo *o = op_get(op);
	if (nin > IR_MAXIN)
		die("too many operands");
	Node n = {.op = op, .loc = loc, .nin = nin, .out = -1, .attr = g->nattr};
	memcpy(n.in, in, nin * sizeof *in);
	for (int i = 0; i < o->nattr; i++) {
		Attr a;
		ir_parse_default(g, &a, &attr_info[o->attr0 + i]);
		APUSH(g->mod->arena, g->attr, g->nattr, g->capattr, a);
	}
	APUSH(g->mod->arena, g->node, g->nnode, g->capnode, n);
	return g->nnode - 1;
}

const char *
ir_temp_name(Graph *g)
{
	for (;;) {
		char buf[32];
		snprintf(buf, sizeof buf, "t%d", ++g->tempname);
		if (ir_find_value(g, buf) < 0)
			return arena_strdup(g->mod->arena, buf);
	}
}

int
ir_add_result(Graph *g, int node, const char *name)
{
	if (!name)
		name = ir_temp_name(g);
	int v = ir_add_value(g, name, VK_TEMP, (Type){0}, g->node[node].loc);
	g->val[v].def = node;
	g->node[node].out = v;
	return v;
}

Attr *
ir_attr(Graph *g, const Node *n, int id)
{
	const OpInfo *o = op_get(n->op);
	if (id < o->attr0 || id >= o->attr0 + o->nattr)
		die("op %s has no attribute %s", o->name, attr_info[id].name);
	return &g->attr[n->attr + id - o->attr0];
}

/* Equal values (NaN equals NaN); tensor attributes never compare equal. */
bool
ir_attr_eq(const Attr *a, const Attr *b)
{
	if (a->kind != b->kind || a->n != b->n)
		return false;
	switch (a->kind) {
	case AK_NONE: return true;
	case AK_INT: return a->i == b->i;
	case AK_FLOAT: return a->f == b->f || (isnan(a->f) && isnan(b->f));
	case AK_STRING: return strcmp(a->s, b->s) == 0;
	case AK_INTS: return memcmp(a->ints, b->ints, a->n * sizeof *a->ints) == 0;
	case AK_FLOATS:
		return memcmp(a->floats, b->floats, a->n * sizeof *a->floats) == 0;
	default: return false;   /* tensors always print */
	}
}

void
ir_set_int(Graph *g, int node, int id, int64_t v)
{
	Attr *a = ir_attr(g, &g->node[node], id);
	*a = (Attr){.kind = AK_INT, .i = v};
}

void
ir_set_float(Graph *g, int node, int id, double v)
{
	Attr *a = ir_attr(g, &g->node[node], id);
	*a = (Attr){.kind = AK_FLOAT, .f = v};
}

void
ir_set_ints(Graph *g, int node, int id, const int64_t *v, int n)
{
	Attr *a = ir_attr(g, &g->node[node], id);
	*a = (Attr){.kind = AK_INTS, .n = n};
	a->ints = arena_alloc(g->mod->arena, n * sizeof *v);
	memcpy(a->ints, v, n * sizeof *v);
}

void
ir_set_floats(Graph *g, int node, int id, const double *v, int n)
{
	Attr *a = ir_attr(g, &g->node[node], id);
	*a = (Attr){.kind = AK_FLOATS, .n = n};
	a->floats = arena_alloc(g->mod->arena, n * sizeof *v);
	memcpy(a->floats, v, n * sizeof *v);
}

/* Operand i's role bits in the registry's idx column. */
static int
role(const OpInfo *o, int i)
{
	return i < 15 ? (o->idx >> i & 1) | (o->idx >> (i + 16) & 1) << 1 : 0;
}

/* The operand whose dtype is the op's dtype: the first present one that is
 * neither an index nor a condition.  The C backend names per-dtype
 * kernels after it. */
int
ir_data_operand(const Node *n)
{
	const OpInfo *o = op_get(n->op);
	for (int i = 0; i < n->nin; i++)
		if (n->in[i] >= 0 && !role(o, i))
			return i;
	return -1;
}

bool
ir_epilogue(Graph *g, const Node *n, int *act, int *res)
{
	int id = op_attr_lookup(n->op, "act"), last = op_get(n->op)->maxin - 1;
	if (id < 0)
		return false;
	*act = shape_choice(ir_attr(g, n, id)->s, shape_act);
	*res = last < n->nin ? n->in[last] : -1;
	return true;
}

/* The dtypes an operand of each role (role()) may have, and what the
 * message calls it: index operands (IN_INDEX in the registry's idx
 * column), condition operands (IN_BOOL), label operands (IN_LABEL).  Data
 * operands (role 0) have a dtype the op takes, all the same one. */
static const int role_types[4] = {0, 1 << DT_I64 | 1 << DT_I32, TY_BOOL,
	TY_INT};
static const char *const role_what[4] = {"", "an index and must be i64 or "
	"i32", "a condition and must be bool", "a label and must be i64, i32, "
	"i8 or u8"};

static const char *
check_dtypes(Graph *g, const Node *n)
{
	const OpInfo *o = op_get(n->op);
	int d = ir_data_operand(n);
	for (int i = 0; i < n->nin; i++) {
		if (n->in[i] < 0)
			continue;
		int dt = g->val[n->in[i]].type.dtype, r = role(o, i);
		if (r) {
			if (!(role_types[r] & 1 << dt))
				return arena_printf(g->mod->arena, "%s: operand %d is "
				    "%s, got %s", o->name, i + 1, role_what[r],
				    dt_name[dt]);
			continue;
		}
		if (!(o->types & (1 << dt)))
			return arena_printf(g->mod->arena,
			    "%s: operand %d has dtype %s, which this op does not take",
			    o->name, i + 1, dt_name[dt]);
		int dt0 = g->val[n->in[d]].type.dtype;
		if (dt != dt0)
			return arena_printf(g->mod->arena,
			    "%s: operand %d has dtype %s but operand %d has %s",
			    o->name, i + 1, dt_name[dt], d + 1, dt_name[dt0]);
	}
	return NULL;
}

const char *
ir_infer(Graph *g, int node)
{
	Node *n = &g->node[node];
	const OpInfo *o = op_get(n->op);
	const char *err = check_dtypes(g, n);
	if (err)
		return err;
	Type t = {0};
	err = o->shape(g, n, &t);
	/* every rule's result, checked once here, before a later rule's
	 * arithmetic on its dims could overflow */
	if (!err && !type_fits(&t))
		return arena_printf(g->mod->arena, "%s: the result %s is too large",
		                    o->name, type_str(g->mod->arena, &t));
	if (!err && n->out >= 0)
		g->val[n->out].type = t;
	return err;
}

int
ir_find_value(const Graph *g, const char *name)
{
	for (int i = 0; i < g->nval; i++)
		if (strcmp(g->val[i].name, name) == 0)
			return i;
	return -1;
}

int *
ir_fill_uses(Graph *g, Arena *a)
{
	int *use = arena_alloc(a, (g->nval + 1) * sizeof *use);
	for (int i = 0; i < g->nnode; i++) {
		Node *n = &g->node[i];
		if (n->dead)
			continue;
		for (int k = 0; k < n->nin; k++)
			if (n->in[k] >= 0)
				use[n->in[k]]++;
	}
	for (int i = 0; i < g->noutput; i++)
		use[g->output[i]]++;
	for (int i = 0; i < g->nupdate; i++) {
		use[g->update[i].dst]++;
		use[g->update[i].src]++;
	}
	cfg_fill_uses(g->train, use);
	return use;
}

/* Drops dead nodes, then values that are neither inputs nor used nor
 * produced by a live node, renumbering everything that refers to them.
 * Keeps the relative order of what survives. */
void
ir_compact(Graph *g)
{
	Arena *a = g->mod->arena;
	int *use = ir_fill_uses(g, a);
	int *vmap = arena_alloc(a, g->nval * sizeof *vmap);
	int nv = 0;
	for (int i = 0; i < g->nval; i++) {
		Value *v = &g->val[i];
		bool keep = v->kind == VK_INPUT || v->kind == VK_LABEL ||
		            use[i] > 0 || (v->def >= 0 && !g->node[v->def].dead);
		vmap[i] = keep ? nv : -1;
		if (keep)
			g->val[nv++] = *v;
	}
	g->nval = nv;
	int nn = 0;
	for (int i = 0; i < g->nnode; i++) {
		Node n = g->node[i];
		if (n.dead)
			continue;
		for (int k = 0; k < n.nin; k++)
			if (n.in[k] >= 0)
				n.in[k] = vmap[n.in[k]];
		n.out = vmap[n.out];
		g->val[n.out].def = nn;
		g->node[nn++] = n;
	}
	g->nnode = nn;
	for (int i = 0; i < g->ninput; i++)
		g->input[i] = vmap[g->input[i]];
	for (int i = 0; i < g->noutput; i++)
		g->output[i] = vmap[g->output[i]];
	for (int i = 0; i < g->nupdate; i++) {
		g->update[i].dst = vmap[g->update[i].dst];
		g->update[i].src = vmap[g->update[i].src];
	}
	cfg_remap(g->train, vmap);
}
