/* import.c: an ONNX ModelProto into one kiln graph.
 *
 * Initializers become constants (float ones that nothing reads at build
 * time become parameters at the end), graph inputs become inputs with
 * every dimension bound (--shape, or 1 for an unknown leading dimension),
 * and nodes are translated in file order, which ONNX requires to be
 * topological.  A node whose operands are all known is evaluated here
 * when fold.c can (shape arithmetic); otherwise its translation in ops.c
 * adds IR nodes.  Each IR node keeps the ONNX node's name as its location.
 * Unsupported op types are collected first and reported together.
 */
#include <string.h>
#include "onnx.h"

/* ---- name -> value hash table (open addressing, FNV-1a) ---- */

static uint32_t
hash(const char *s)
{
	uint32_t h = 2166136261u;
	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 16777619u;
	return h;
}

static void
grow(Imp *m)
{
	int oldcap = m->cap;
	const char **oldkey = m->key;
	int *oldval = m->val;
	m->cap = oldcap ? oldcap * 2 : 256;
	m->key = arena_alloc(m->a, m->cap * sizeof *m->key);
	m->val = arena_alloc(m->a, m->cap * sizeof *m->val);
	m->n = 0;
	for (int i = 0; i < oldcap; i++)
		if (oldkey[i])
			onnx_bind(m, oldkey[i], oldval[i]);
}

int
onnx_lookup(Imp *m, const char *name)
{
	if (!m->cap)
		return -1;
	for (uint32_t i = hash(name) & (m->cap - 1); m->key[i];
	     i = (i + 1) & (m->cap - 1))
		if (strcmp(m->key[i], name) == 0)
			return m->val[i];
	return -1;
}

/* Binds an ONNX tensor name to value v (a later binding wins). */
void
onnx_bind(Imp *m, const char *name, int v)
{
	if (2 * (m->n + 1) > m->cap)
		grow(m);
	uint32_t i = hash(name) & (m->cap - 1);
	while (m->key[i] && strcmp(m->key[i], name) != 0)
		i = (i + 1) & (m->cap - 1);
	if (!m->key[i])
		m->n++;
	m->key[i] = name;
	m->val[i] = v;
}

/* A constant named name (made unique if taken) holding a copy of data. */
int
onnx_const(Imp *m, const char *name, Type t, const void *data, Loc loc)
{
	const char *uniq = name;
	for (int k = 1; ir_find_value(m->g, uniq) >= 0; k++)
		uniq = arena_printf(m->a, "%s.%d", name, k);
	int v = ir_add_value(m->g, uniq, VK_CONST, t, loc);
	size_t n = (size_t)type_bytes(&t);
	void *p = arena_alloc(m->a, n ? n : 1);
	if (n)
		memcpy(p, data, n);
	m->g->val[v].data = p;
	m->g->val[v].init = INIT_DATA;
	return v;
}

/* ---- inputs ---- */

/* Input v becomes a constant when its value was given before the build
 * (FeOpts.known) with the input's exact type; otherwise it stays. */
void
onnx_freeze(Imp *m, int v)
{
	Graph *g = m->g;
	Value *val = &g->val[v];
	for (int i = 0; i < m->fo->nknown; i++) {
		const FeValue *k = &m->fo->known[i];
		if (strcmp(k->name, val->name) != 0)
			continue;
		if (!type_eq(&k->type, &val->type))
			fatal("input '%s': the model needs %s, the value given is %s",
			      val->name, type_str(m->a, &val->type),
			      type_str(m->a, &k->type));
		val->kind = VK_CONST;
		val->data = k->data;
		val->init = INIT_DATA;
		int n = 0;
		for (int j = 0; j < g->ninput; j++)
			if (g->input[j] != v)
				g->input[n++] = g->input[j];
		g->ninput = n;
		return;
	}
}

static const FeShape *
given_shape(Imp *m, const char *name)
{
	for (int i = 0; i < m->fo->nshape; i++)
		if (strcmp(m->fo->shape[i].name, name) == 0)
			return &m->fo->shape[i];
	return NULL;
}

static Type
input_dims(Imp *m, const Onnx__ValueInfoProto *vi, Loc loc)
{
	const Onnx__TypeProto *tp = vi->type;
	if (!tp || tp->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE)
		diag_error(loc, "input '%s' is not a tensor (sequences, maps and "
		           "optionals are not supported)", vi->name);
	const Onnx__TypeProto__Tensor *tt = tp->tensor_type;
	int dt = onnx_dtype(tt->elem_type);
	if (dt < 0)
		diag_error(loc, "input '%s' has element type %s, which kiln does "
		           "not support", vi->name, onnx_dtype_name(tt->elem_type));
	Type t = {.dtype = dt};
	const FeShape *given = given_shape(m, vi->name);
	if (given) {
		t.rank = given->type.rank;
		memcpy(t.dim, given->type.dim, sizeof t.dim);
		if (tt->shape && (int)tt->shape->n_dim != t.rank)
			diag_error(loc, "--shape %s: the model's input has rank %zu, "
			           "not %d", vi->name, tt->shape->n_dim, t.rank);
		return t;
	}
	if (!tt->shape)
		diag_error(loc, "input '%s' has no shape; give one with --shape "
		           "%s=D0,D1,...", vi->name, vi->name);
	if (tt->shape->n_dim > IR_MAXRANK)
		diag_error(loc, "input '%s' has rank %zu, above kiln's maximum %d",
		           vi->name, tt->shape->n_dim, IR_MAXRANK);
	t.rank = (int)tt->shape->n_dim;
	for (int i = 0; i < t.rank; i++) {
		const Onnx__TensorShapeProto__Dimension *d = tt->shape->dim[i];
		if (d->value_case ==
		    ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE &&
		    d->dim_value >= 0) {
			t.dim[i] = d->dim_value;
			continue;
		}
		if (i == 0 && t.rank > 1) {     /* a batch-like leading dim */
			t.dim[i] = 1;
			continue;
		}
		const char *sym = d->value_case ==
		    ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM ?
		    arena_printf(m->a, " ('%s')", d->dim_param) : "";
		diag_error(loc, "input '%s': dimension %d%s is not known; give "
		           "the shape with --shape %s=D0,D1,...", vi->name, i, sym,
		           vi->name);
	}
	return t;
}

/* An input's type, refused before any node sees it when its size would
 * overflow (dims of 0 are refused later, after onnx_freeze). */
static Type
input_type(Imp *m, const Onnx__ValueInfoProto *vi, Loc loc)
{
	Type t = input_dims(m, vi, loc);
	if (!type_fits(&t))
		diag_error(loc, "input '%s': %s is too large", vi->name,
		           type_str(m->a, &t));
	return t;
}

/* ---- nodes ---- */

static Loc
node_loc(Imp *m, const Onnx__NodeProto *p, int index)
{
	const char *name = p->name && *p->name ? p->name :
	    arena_printf(m->a, "#%d", index);
	return (Loc){.file = m->file, .node = name, .op = p->op_type};
}

static bool
default_domain(const char *d)
{
	return !d || !*d || strcmp(d, "ai.onnx") == 0;
}

static const char *
op_label(Imp *m, const Onnx__NodeProto *p)
{
	return default_domain(p->domain) ? p->op_type :
	       arena_printf(m->a, "%s.%s", p->domain, p->op_type);
}

/* One error listing every op type kiln cannot import, with node names. */
static void
check_supported(Imp *m, const Onnx__GraphProto *gp)
{
	const char *seen[256];
	int nseen = 0;
	for (size_t i = 0; i < gp->n_node; i++) {
		const Onnx__NodeProto *p = gp->node[i];
		if (default_domain(p->domain) && onnx_op_lookup(p->op_type))
			continue;
		const char *label = op_label(m, p);
		bool dup = false;
		for (int k = 0; k < nseen; k++)
			dup |= strcmp(seen[k], label) == 0;
		if (!dup && nseen < countof(seen))
			seen[nseen++] = label;
	}
	if (!nseen)
		return;
	diag_error_begin((Loc){.file = m->file}, "%d unsupported op type%s: "
	                 "the model cannot be imported", nseen,
	                 nseen > 1 ? "s" : "");
	for (int k = 0; k < nseen; k++) {
		char *names = "";
		int count = 0;
		for (size_t i = 0; i < gp->n_node; i++) {
			const Onnx__NodeProto *p = gp->node[i];
			if (strcmp(op_label(m, p), seen[k]) != 0)
				continue;
			if (count++ < 8)
				names = arena_printf(m->a, "%s%s'%s'", names,
				                     count > 1 ? ", " : "",
				                     p->name && *p->name ? p->name :
				                     arena_printf(m->a, "#%zu", i));
		}
		if (count > 8)
			names = arena_printf(m->a, "%s and %d more", names, count - 8);
		diag_note((Loc){0}, "%s: %d node%s: %s", seen[k], count,
		          count > 1 ? "s" : "", names);
	}
	diag_exit();
}

/* Input name of node index names nothing bound yet: a later node's
 * output (a cycle, or nodes out of order) or nothing at all. */
static _Noreturn void
unbound_input(Imp *m, const Onnx__GraphProto *gp, size_t index, Loc loc,
              const char *name)
{
	for (size_t j = index; j < gp->n_node; j++)
		for (size_t k = 0; k < gp->node[j]->n_output; k++) {
			if (strcmp(gp->node[j]->output[k], name) != 0)
				continue;
			if (j == index)
				diag_error(loc, "input '%s' is the node's own output: "
				           "the graph has a cycle", name);
			diag_error(loc, "input '%s' is the output of a later node, "
			           "'%s'; the graph has a cycle or its nodes are not "
			           "in topological order", name,
			           node_loc(m, gp->node[j], (int)j).node);
		}
	diag_error(loc, "input '%s' is not a graph input, an initializer or an "
	           "earlier node's output", name);
}

/* ONNX names each value once (SSA): output k of node p may name neither
 * a value bound before it nor another of p's outputs. */
static void
check_output_name(Imp *m, const Onnx__GraphProto *gp,
                  const Onnx__NodeProto *p, size_t k, Loc loc)
{
	const char *name = p->output[k], *what = NULL;
	int v = onnx_lookup(m, name);
	for (size_t i = 0; i < k; i++)
		if (strcmp(p->output[i], name) == 0)
			what = "another output of this node";
	if (!what && v < 0)
		return;
	if (!what && v < m->nbaked)
		what = "an initializer";
	for (size_t i = 0; i < gp->n_input && !what; i++)
		if (strcmp(gp->input[i]->name, name) == 0)
			what = "a graph input";
	diag_error(loc, "output '%s' is already %s; ONNX names each value "
	           "once", name, what ? what : "an earlier node's output");
}

static void
import_node(Imp *m, const Onnx__GraphProto *gp, int index)
{
	const Onnx__NodeProto *p = gp->node[index];
	ONode o = {.m = m, .p = p, .loc = node_loc(m, p, index)};
	if (p->n_input > ONNX_MAXIO || p->n_output > ONNX_MAXIO)
		diag_error(o.loc, "more than %d inputs or outputs", ONNX_MAXIO);
	if (p->n_output == 0)       /* the translators bind output 0 */
		diag_error(o.loc, "the node has no outputs; every ONNX op gives "
		           "at least one");
	o.nin = (int)p->n_input;
	for (int i = 0; i < o.nin; i++) {
		o.in[i] = -1;
		if (!*p->input[i])
			continue;       /* an absent optional input */
		o.in[i] = onnx_lookup(m, p->input[i]);
		if (o.in[i] < 0)
			unbound_input(m, gp, index, o.loc, p->input[i]);
	}
	for (size_t k = 0; k < p->n_output; k++)
		if (*p->output[k])      /* "": an optional output not wanted */
			check_output_name(m, gp, p, k, o.loc);
	while (o.nin > 0 && o.in[o.nin - 1] < 0)
		o.nin--;
	if (onnx_fold(&o))
		return;
	onnx_op_lookup(p->op_type)->fn(&o);
	for (size_t i = 0; i < p->n_output; i++)
		if (*p->output[i] && onnx_lookup(m, p->output[i]) < 0)
			diag_error(o.loc, "output %zu ('%s') is not supported", i,
			           p->output[i]);
}

/* ---- outputs ---- */

static void
add_output(Imp *m, const Onnx__ValueInfoProto *vi)
{
	Graph *g = m->g;
	Loc loc = {.file = m->file};
	int v = onnx_lookup(m, vi->name);
	if (v < 0)
		diag_error(loc, "graph output '%s' is not produced by any node",
		           vi->name);
	bool taken = false;
	for (int i = 0; i < g->noutput; i++)
		taken |= g->output[i] == v;
	if (g->val[v].kind != VK_TEMP || taken ||
	    strcmp(g->val[v].name, vi->name) != 0) {
		/* an input, a constant or an alias: the output gets a copy */
		Type t = g->val[v].type;
		int node = ir_add_node(g, OP_RESHAPE, loc, &v, 1);
		ir_set_ints(g, node, AT_RESHAPE_SHAPE, t.dim, t.rank);
		const char *name = vi->name;
		int old = ir_find_value(g, name);
		if (old >= 0 && g->val[old].kind == VK_CONST) {
			/* a folded constant took the output's name: rename it */
			const char *s = arena_printf(m->a, "%s.const", name);
			for (int k = 1; ir_find_value(g, s) >= 0; k++)
				s = arena_printf(m->a, "%s.const%d", name, k);
			g->val[old].name = s;
		} else if (old >= 0)
			name = arena_printf(m->a, "%s.out", vi->name);
		v = ir_add_result(g, node, name);
		const char *err = ir_infer(g, node);
		if (err)                /* e.g. a constant with a 0 dimension */
			diag_error(loc, "graph output '%s': %s", vi->name, err);
	}
	const Onnx__TypeProto *tp = vi->type;
	if (tp && tp->value_case == ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE) {
		int dt = onnx_dtype(tp->tensor_type->elem_type);
		if (tp->tensor_type->elem_type && dt != g->val[v].type.dtype)
			diag_error(loc, "graph output '%s' is declared %s, but kiln "
			           "computes %s", vi->name,
			           onnx_dtype_name(tp->tensor_type->elem_type),
			           dt_name[g->val[v].type.dtype]);
	}
	ir_add_output(g, v);
}

/* Float initializers the import did not read as build-time data are the
 * model's weights: parameters, replaceable with --weights. */
static void
mark_params(Imp *m, int first, int last)
{
	for (int v = first; v < last; v++) {
		Value *val = &m->g->val[v];
		if (val->kind == VK_CONST && val->type.dtype == DT_F32 &&
		    !m->baked[v] && type_numel(&val->type) > 1)
			val->kind = VK_PARAM;
	}
}

static int64_t
default_opset(const Onnx__ModelProto *mp)
{
	int64_t v = 0;
	for (size_t i = 0; i < mp->n_opset_import; i++)
		if (default_domain(mp->opset_import[i]->domain))
			v = mp->opset_import[i]->version;
	return v ? v : 1;
}

static const char *
dir_of(Arena *a, const char *path)
{
	const char *slash = strrchr(path, '/');
	return slash ? arena_strndup(a, path, slash - path + (slash == path)) :
	               ".";
}

const char **
onnx_input_names(Arena *a, const char *path, int *n, bool **tensor)
{
	Onnx__GraphProto *gp = onnx_read_model(a, path)->graph;
	const char **names = arena_alloc(a, (gp->n_input + 1) * sizeof *names);
	*tensor = arena_alloc(a, gp->n_input + 1);
	*n = 0;
	for (size_t i = 0; i < gp->n_input; i++) {
		const Onnx__ValueInfoProto *vi = gp->input[i];
		bool init = false;
		for (size_t k = 0; k < gp->n_initializer && !init; k++)
			init = strcmp(gp->initializer[k]->name, vi->name) == 0;
		if (init)
			continue;
		(*tensor)[*n] = vi->type && vi->type->value_case ==
		                ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
		names[(*n)++] = vi->name;
	}
	return names;
}

Module *
onnx_load(Arena *a, const char *path, const FeOpts *fo)
{
	Onnx__ModelProto *mp = onnx_read_model(a, path);
	Onnx__GraphProto *gp = mp->graph;
	Imp *m = arena_alloc(a, sizeof *m);
	*m = (Imp){.a = a, .file = arena_strdup(a, path), .dir = dir_of(a, path),
	           .opset = default_opset(mp), .fo = fo};
	Module *mod = ir_new_module(a, m->file);
	Loc loc = {.file = m->file};
	m->g = ir_new_graph(mod, gp->name && *gp->name ? gp->name : "main", loc);
	check_supported(m, gp);
	if (gp->n_sparse_initializer)
		diag_error(loc, "sparse initializers are not supported");
	for (size_t i = 0; i < gp->n_initializer; i++) {
		const Onnx__TensorProto *t = gp->initializer[i];
		Type ty;
		void *data;
		const char *err = onnx_tensor(a, t, m->dir, &ty, &data);
		if (err)
			diag_error(loc, "initializer '%s': %s", t->name, err);
		if (onnx_lookup(m, t->name) >= 0)
			diag_error(loc, "initializer '%s' appears twice; ONNX names "
			           "each value once", t->name);
		onnx_bind(m, t->name, onnx_const(m, t->name, ty, data, (Loc){0}));
	}
	int ninit = m->g->nval;
	m->baked = arena_alloc(a, ninit + 1);
	m->nbaked = ninit;
	for (size_t i = 0; i < gp->n_input; i++) {
		const Onnx__ValueInfoProto *vi = gp->input[i];
		int v = onnx_lookup(m, vi->name);
		if (v >= 0 && m->g->val[v].kind == VK_INPUT)
			diag_error(loc, "graph input '%s' appears twice; ONNX names "
			           "each value once", vi->name);
		if (v >= 0)
			continue;       /* an initializer with a default (IR < 4) */
		onnx_bind(m, vi->name,
		          ir_add_input(m->g, vi->name, input_type(m, vi, loc), loc));
	}
	for (int i = 0; i < fo->nshape; i++)
		if (onnx_lookup(m, fo->shape[i].name) < 0 ||
		    m->g->val[onnx_lookup(m, fo->shape[i].name)].kind != VK_INPUT)
			fatal("--shape %s: the model has no input of that name",
			      fo->shape[i].name);
	for (size_t i = 0; i < gp->n_node; i++)
		import_node(m, gp, (int)i);
	for (int i = 0; i < m->g->ninput; i++) {
		Value *v = &m->g->val[m->g->input[i]];
		if (type_numel(&v->type) == 0)
			diag_error(loc, "input '%s' has no elements (%s); kiln's "
			           "tensors have at least one", v->name,
			           type_str(a, &v->type));
	}
	for (size_t i = 0; i < gp->n_output; i++)
		add_output(m, gp->output[i]);
	mark_params(m, 0, ninit);
	ir_compact(m->g);           /* drops folded nodes and unused values */
	ir_verify(m->g);
	return mod;
}
