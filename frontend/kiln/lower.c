/* lower.c: lowers each model of a checked .kiln program to a Graph.
 *
 * Statements are lowered in order, each expression to a tensor (a value
 * of the graph) or a compile-time number, string, boolean or list.  A
 * block call is expanded inline under the instance's names (docs/
 * language.md, "Names"), layers make parameters (layers.c), and every
 * other call is the registry op of that name.  Each node's shape is
 * inferred as soon as it is made, so shape errors point at the call.
 * check.c has already made sure that names, callees and arguments are
 * right, so only kinds, values and shapes can still be wrong here.
 */
#include <float.h>
#include <math.h>
#include <string.h>
#include "kiln.h"

typedef struct {
	const char *name;           /* as written, without the prefix */
	Val val;
} Binding;

typedef struct {
	const char *prefix;         /* block instance path; NULL in a model */
	Binding *b;
	int n, cap;
} Env;

static Val eval(Lower *L, Env *env, const Expr *e, Name nm);

/* ---- names ---- */

static Binding *
env_find(Env *env, const char *name)
{
	for (int i = 0; i < env->n; i++)
		if (strcmp(env->b[i].name, name) == 0)
			return &env->b[i];
	return NULL;
}

static void
env_define(Lower *L, Env *env, const char *name, Val val)
{
	APUSH(L->a, env->b, env->n, env->cap, ((Binding){name, val}));
}

/* A linear search: a model has hundreds of names, not millions. */
static bool
is_taken(const Lower *L, const char *name)
{
	for (int i = 0; i < L->ntaken; i++)
		if (strcmp(L->taken[i], name) == 0)
			return true;
	return false;
}

/* Claims a name the source decides.  The naming scheme makes clashes
 * impossible short of a bug, but say so plainly if one happens. */
static void
take(Lower *L, const char *name, Loc loc)
{
	if (is_taken(L, name))
		diag_error(loc, "the name '%s' is used twice in model '%s'", name,
		           L->g->name);
	APUSH(L->a, L->taken, L->ntaken, L->captaken, name);
}

static const char *
qualify(Lower *L, const char *prefix, const char *name)
{
	return prefix ? arena_printf(L->a, "%s.%s", prefix, name) : name;
}

/* Claims the first free name of ns.base, ns.base_2, ns.base_3, ... */
const char *
kl_fresh(Lower *L, const char *ns, const char *base)
{
	const char *first = qualify(L, ns, base), *name = first;
	for (int k = 2; is_taken(L, name); k++)
		name = arena_printf(L->a, "%s_%d", first, k);
	APUSH(L->a, L->taken, L->ntaken, L->captaken, name);
	return name;
}

/* The name a sub-expression gets: its own, under its parent's ns. */
static Name
child(Name nm)
{
	return (Name){nm.ns, NULL, false};
}

/* Settles the names of a call.  A layer or block owns a namespace for
 * its parameters and inner values: an unnamed one gets ns.callee, and so
 * does one at the root of a block's return expression, whose namespace
 * (the instance's) already holds the block's own names.  An unnamed op is
 * ns.callee and leaves ns to its operands, so names stay short. */
static Name
settle(Lower *L, Name nm, const char *callee, bool owns)
{
	if (owns && (!nm.result || !nm.own)) {
		const char *n = kl_fresh(L, nm.ns, callee);
		return (Name){n, nm.result ? nm.result : n, true};
	}
	if (!nm.result)
		nm.result = kl_fresh(L, nm.ns, callee);
	return nm;
}

/* ---- values ---- */

const char *
kl_kind(const Val *v)
{
	static const char *const name[] = {
		[VAL_NONE] = "nothing", [VAL_TENSOR] = "a tensor",
		[VAL_INT] = "an integer", [VAL_FLOAT] = "a number",
		[VAL_STR] = "a string", [VAL_BOOL] = "a boolean",
		[VAL_LIST] = "a list",
	};
	return name[v->kind];
}

static bool
is_number(const Val *v)
{
	return v->kind == VAL_INT || v->kind == VAL_FLOAT;
}

static double
number(const Val *v)
{
	return v->kind == VAL_INT ? (double)v->i : v->f;
}

int
kl_tensor(const Val *v, const char *fn, const char *what)
{
	if (v->kind != VAL_TENSOR)
		diag_error(v->loc, "%s: '%s' must be a tensor, got %s", fn, what,
		           kl_kind(v));
	return v->v;
}

int64_t
kl_int(const Val *v, const char *fn, const char *what, int64_t def)
{
	if (v->kind == VAL_NONE)
		return def;
	if (v->kind != VAL_INT)
		diag_error(v->loc, "%s: '%s' must be an integer, got %s", fn, what,
		           kl_kind(v));
	return v->i;
}

bool
kl_bool(const Val *v, const char *fn, const char *what, bool def)
{
	if (v->kind == VAL_NONE)
		return def;
	if (v->kind != VAL_BOOL)
		diag_error(v->loc, "%s: '%s' must be true or false, got %s", fn, what,
		           kl_kind(v));
	return v->i;
}

/* An integer or a list of at most max integers; returns the count. */
int
kl_ints(const Val *v, const char *fn, const char *what, int64_t *out, int max)
{
	if (v->kind == VAL_INT) {
		out[0] = v->i;
		return 1;
	}
	if (v->kind != VAL_LIST)
		diag_error(v->loc, "%s: '%s' must be an integer or a list of "
		           "integers, got %s", fn, what, kl_kind(v));
	if (v->n > max)
		diag_error(v->loc, "%s: '%s' takes at most %d values, got %d", fn,
		           what, max, v->n);
	for (int i = 0; i < v->n; i++)
		out[i] = kl_int(&v->elem[i], fn, what, 0);
	return v->n;
}

/* A number used as an operand becomes a scalar f32 constant. */
static int
operand(Lower *L, const Val *v, const char *fn, int i, const char *ns)
{
	if (v->kind == VAL_TENSOR)
		return v->v;
	if (!is_number(v))
		diag_error(v->loc, "%s: operand %d must be a tensor or a number, got "
		           "%s", fn, i + 1, kl_kind(v));
	if (!(fabs(number(v)) <= FLT_MAX))
		diag_error(v->loc, "%s: %g is out of range for f32", fn, number(v));
	Graph *g = L->g;
	int c = ir_add_value(g, kl_fresh(L, ns, "const"), VK_CONST,
	                     (Type){.dtype = DT_F32}, v->loc);
	float *data = arena_alloc(L->a, sizeof *data);
	*data = (float)number(v);
	g->val[c].data = data;
	return c;
}

/* FNV-1a 64 over the model seed (8 bytes, little-endian), then the name. */
static uint64_t
param_seed(uint64_t seed, const char *name)
{
	uint64_t h = 0xcbf29ce484222325ull;
	for (int i = 0; i < 8; i++)
		h = (h ^ ((seed >> 8 * i) & 0xff)) * 0x100000001b3ull;
	for (const char *p = name; *p; p++)
		h = (h ^ (unsigned char)*p) * 0x100000001b3ull;
	return h;
}

int
kl_param(Lower *L, const char *ns, const char *suffix, Type t, Loc loc,
         int init, int64_t fan_in, int64_t fan_out)
{
	const char *name = qualify(L, ns, suffix);
	int p = ir_add_value(L->g, name, VK_PARAM, t, loc);
	Value *v = &L->g->val[p];
	v->init = init;
	v->fan_in = fan_in;
	v->fan_out = fan_out;
	v->seed = param_seed(L->seed, name);
	return p;
}

/* Names the node's result and infers its type; shape errors point at the
 * node's location, the call in the source. */
int
kl_result(Lower *L, int node, const char *name)
{
	int v = ir_add_result(L->g, node, name);
	const char *err = ir_infer(L->g, node);
	if (err)
		diag_error(L->g->node[node].loc, "%s", err);
	return v;
}

/* ---- expressions ---- */

static Val
tensor_val(int v, Loc loc)
{
	return (Val){.kind = VAL_TENSOR, .v = v, .loc = loc};
}

/* Is e an arithmetic expression of numbers only, folded at compile time? */
static bool
is_const(Env *env, const Expr *e)
{
	Binding *b;
	switch (e->kind) {
	case EX_INT:
	case EX_FLOAT: return true;
	case EX_NAME: return (b = env_find(env, e->s)) && is_number(&b->val);
	case EX_NEG: return is_const(env, e->arg[0].e);
	case EX_CALL:
		return e->op && is_const(env, e->arg[0].e) &&
		       is_const(env, e->arg[1].e);
	default:
		return false;
	}
}

static int64_t
int_op(const Expr *e, int64_t a, int64_t b)
{
	int64_t r = 0;
	bool over = false;
	switch (e->op) {
	case TK_PLUS: over = __builtin_add_overflow(a, b, &r); break;
	case TK_MINUS: over = __builtin_sub_overflow(a, b, &r); break;
	case TK_STAR: over = __builtin_mul_overflow(a, b, &r); break;
	case TK_SLASH: r = a / b; break;
	}
	if (over)
		diag_error(e->loc, "integer overflow");
	return r;
}

/* Integers stay integers, except a division that is not exact. */
static Val
fold(Lower *L, Env *env, const Expr *e)
{
	Val a = eval(L, env, e->arg[0].e, (Name){0});
	Val b = eval(L, env, e->arg[1].e, (Name){0});
	bool exact = e->op != TK_SLASH || (b.i != 0 && !(b.i == -1 && a.i ==
	             INT64_MIN) && a.i % b.i == 0);
	if (a.kind == VAL_INT && b.kind == VAL_INT && exact)
		return (Val){.kind = VAL_INT, .loc = e->loc, .i = int_op(e, a.i, b.i)};
	double x = number(&a), y = number(&b), r = 0;
	switch (e->op) {
	case TK_PLUS: r = x + y; break;
	case TK_MINUS: r = x - y; break;
	case TK_STAR: r = x * y; break;
	case TK_SLASH:
		if (y == 0)
			diag_error(e->loc, "division by zero");
		r = x / y;
		break;
	}
	return (Val){.kind = VAL_FLOAT, .loc = e->loc, .f = r};
}

/* -x: numbers are negated, a tensor t becomes sub(0, t). */
static Val
negate(Lower *L, Env *env, const Expr *e, Name nm)
{
	if (is_const(env, e)) {
		Val v = eval(L, env, e->arg[0].e, (Name){0});
		if (v.kind == VAL_INT && v.i == INT64_MIN)
			diag_error(e->loc, "integer overflow");
		v.i = -v.i;
		v.f = -v.f;
		v.loc = e->loc;
		return v;
	}
	nm = settle(L, nm, "sub", false);
	Val x = eval(L, env, e->arg[0].e, child(nm));
	Val zero = {.kind = VAL_INT, .loc = e->loc};
	int in[2] = {operand(L, &zero, "unary -", 0, nm.ns),
	             operand(L, &x, "unary -", 0, nm.ns)};
	int n = ir_add_node(L->g, OP_SUB, e->loc, in, 2);
	return tensor_val(kl_result(L, n, nm.result), e->loc);
}

static void set_attr(Lower *L, int node, int id, const Val *v);

/* A number or a list of numbers, as an AK_FLOATS attribute. */
static void
set_floats(Lower *L, Attr *x, const Val *v, const char *fn, const char *what)
{
	int n = v->kind == VAL_LIST ? v->n : 1;
	const Val *el = v->kind == VAL_LIST ? v->elem : v;
	x->floats = arena_alloc(L->a, n * sizeof *x->floats);
	x->n = n;
	for (int i = 0; i < n; i++) {
		if (!is_number(&el[i]))
			diag_error(el[i].loc, "%s: '%s' must be a number or a list of "
			           "numbers, got %s", fn, what, kl_kind(&el[i]));
		x->floats[i] = number(&el[i]);
	}
}

/* A registry op: positional arguments fill its operands, then its
 * attributes in registry order; keywords name attributes. */
static Val
call_op(Lower *L, Env *env, const Callee *c, const Expr *e, const Arg **slot,
        Name nm)
{
	const OpInfo *o = op_get(c->op);
	nm = settle(L, nm, c->name, false);
	Val *arg = arena_alloc(L->a, c->nslot * sizeof *arg);
	for (int k = 0; k < c->nslot; k++)
		if (slot[k])
			arg[k] = eval(L, env, slot[k]->e, child(nm));
	int in[IR_MAXIN], nin = 0;
	for (int k = 0; k < o->maxin; k++) {
		in[k] = slot[k] ? operand(L, &arg[k], c->name, k, nm.ns) : -1;
		if (slot[k])
			nin = k + 1;
	}
	int n = ir_add_node(L->g, c->op, e->loc, in, nin);
	for (int k = o->maxin; k < c->nslot; k++)
		if (slot[k])
			set_attr(L, n, o->attr0 + k - o->maxin, &arg[k]);
	return tensor_val(kl_result(L, n, nm.result), e->loc);
}

static void
set_attr(Lower *L, int node, int id, const Val *v)
{
	const AttrInfo *ai = &attr_info[id];
	const char *fn = op_get(ai->op)->name;
	Attr *a = ir_attr(L->g, &L->g->node[node], id);
	Attr x = {.kind = ai->kind};
	switch (ai->kind) {
	case AK_INT:
		x.i = v->kind == VAL_BOOL ? v->i : kl_int(v, fn, ai->name, 0);
		break;
	case AK_FLOAT:
		if (!is_number(v))
			diag_error(v->loc, "%s: '%s' must be a number, got %s", fn,
			           ai->name, kl_kind(v));
		x.f = number(v);
		break;
	case AK_STRING:
		if (v->kind != VAL_STR)
			diag_error(v->loc, "%s: '%s' must be a string, got %s", fn,
			           ai->name, kl_kind(v));
		x.s = v->s;
		break;
	case AK_INTS: {
		int max = v->kind == VAL_LIST ? v->n : 1;
		x.ints = arena_alloc(L->a, max * sizeof *x.ints);
		x.n = kl_ints(v, fn, ai->name, x.ints, max);
		break;
	}
	case AK_FLOATS:
		set_floats(L, &x, v, fn, ai->name);
		break;
	default:
		diag_error(v->loc, "%s: attribute '%s' cannot be written in .kiln",
		           fn, ai->name);
	}
	*a = x;
}

static Val
call_builtin(Lower *L, Env *env, const Callee *c, const Expr *e,
             const Arg **slot, Name nm)
{
	const Builtin *b = c->builtin;
	nm = settle(L, nm, c->name, b->layer);
	/* Claimed before the arguments are lowered, so that a call among them
	 * that would be named w or b (a block called w) takes w_2 instead. */
	if (b->layer) {
		take(L, qualify(L, nm.ns, "w"), e->loc);
		take(L, qualify(L, nm.ns, "b"), e->loc);
	}
	Val arg[KL_MAXSLOT] = {0};
	for (int k = 0; k < c->nslot; k++)
		if (slot[k])
			arg[k] = eval(L, env, slot[k]->e, child(nm));
	return tensor_val(b->lower(L, e, arg, nm), e->loc);
}

static void lower_stmt(Lower *L, Env *env, const Stmt *s);

/* `return c` of a tensor made in the instance: the tensor takes the
 * instance's name, as it would for `return conv2d(...)`. */
static void
adopt(Lower *L, const Val *v, Name nm)
{
	if (v->kind != VAL_TENSOR)
		return;
	Value *t = &L->g->val[v->v];
	size_t n = strlen(nm.ns);
	if (t->kind == VK_TEMP && strncmp(t->name, nm.ns, n) == 0 &&
	    t->name[n] == '.' && ir_find_value(L->g, nm.result) < 0)
		t->name = nm.result;
}

/* Expands a block inline.  Arguments are evaluated in the caller's scope
 * and named after the parameter they bind; defaults in the block's. */
static Val
call_block(Lower *L, Env *env, const Callee *c, const Arg **slot, Name nm)
{
	const Decl *b = c->block;
	nm = settle(L, nm, c->name, true);
	/* A parameter's name is claimed even when its argument is only a
	 * name or a number: the block's own names can then never meet it. */
	Env inner = {.prefix = nm.ns};
	for (int k = 0; k < b->nparam; k++) {
		const Param *p = &b->param[k];
		const char *name = qualify(L, nm.ns, p->name);
		take(L, name, slot[k] ? slot[k]->loc : p->loc);
		Name pn = {name, name, true};
		Val v = slot[k] ? eval(L, env, slot[k]->e, pn) :
		                  eval(L, &inner, p->def, pn);
		env_define(L, &inner, p->name, v);
	}
	for (int i = 0; i < b->nstmt - 1; i++)
		lower_stmt(L, &inner, &b->stmt[i]);
	const Stmt *ret = &b->stmt[b->nstmt - 1];
	Val v = eval(L, &inner, ret->e, (Name){nm.ns, nm.result, false});
	adopt(L, &v, nm);
	return v;
}

static Val
eval_call(Lower *L, Env *env, const Expr *e, Name nm)
{
	if (e->op && is_const(env, e))
		return fold(L, env, e);
	Callee c;
	if (!kl_callee(L, e->s, &c))
		die("callee '%s' passed the check", e->s);
	const Arg **slot = kl_bind(L, &c, e);
	switch (c.kind) {
	case CALL_BLOCK: return call_block(L, env, &c, slot, nm);
	case CALL_BUILTIN: return call_builtin(L, env, &c, e, slot, nm);
	default: return call_op(L, env, &c, e, slot, nm);
	}
}

static Val
eval_list(Lower *L, Env *env, const Expr *e, Name nm)
{
	Val v = {.kind = VAL_LIST, .loc = e->loc, .n = e->narg};
	v.elem = arena_alloc(L->a, (e->narg + 1) * sizeof *v.elem);
	for (int i = 0; i < e->narg; i++)
		v.elem[i] = eval(L, env, e->arg[i].e, child(nm));
	return v;
}

static Val
eval(Lower *L, Env *env, const Expr *e, Name nm)
{
	Binding *b;
	switch (e->kind) {
	case EX_INT: return (Val){.kind = VAL_INT, .loc = e->loc, .i = e->i};
	case EX_FLOAT: return (Val){.kind = VAL_FLOAT, .loc = e->loc, .f = e->f};
	case EX_STR: return (Val){.kind = VAL_STR, .loc = e->loc, .s = e->s};
	case EX_BOOL: return (Val){.kind = VAL_BOOL, .loc = e->loc, .i = e->i};
	case EX_NAME: {
		if (!(b = env_find(env, e->s)))
			die("name '%s' passed the check", e->s);
		Val v = b->val;
		v.loc = e->loc;             /* messages point at the use */
		return v;
	}
	case EX_LIST: return eval_list(L, env, e, nm);
	case EX_NEG: return negate(L, env, e, nm);
	case EX_CALL: return eval_call(L, env, e, nm);
	}
	die("bad expression kind %d", e->kind);
}

/* ---- statements and models ---- */

static void
lower_output(Lower *L, Env *env, const Stmt *s, const char *name)
{
	Graph *g = L->g;
	Val v = env_find(env, s->name)->val;
	if (v.kind != VAL_TENSOR)
		diag_error(s->loc, "output '%s' is %s, not a tensor", s->name,
		           kl_kind(&v));
	if (strcmp(g->val[v.v].name, name) != 0)
		diag_error(s->loc, "output '%s' is another name for '%s'; write "
		           "'output %s'", s->name, g->val[v.v].name,
		           g->val[v.v].name);
	ir_add_output(g, v.v);
}

static void
lower_stmt(Lower *L, Env *env, const Stmt *s)
{
	const char *name = s->name ? qualify(L, env->prefix, s->name) : NULL;
	if (s->kind == ST_INPUT) {
		take(L, name, s->loc);
		int v = ir_add_input(L->g, name, s->type, s->loc);
		env_define(L, env, s->name, tensor_val(v, s->loc));
	} else if (s->kind == ST_ASSIGN || (s->kind == ST_OUTPUT && s->e)) {
		take(L, name, s->loc);
		Val v = eval(L, env, s->e, (Name){name, name, true});
		env_define(L, env, s->name, v);
	}
	if (s->kind == ST_OUTPUT)
		lower_output(L, env, s, name);
}

static void
lower_model(Lower *L, const Decl *d)
{
	L->g = ir_new_graph(L->m, d->name, d->loc);
	L->seed = 0;
	L->ntaken = 0;
	/* The seed holds for the whole model, wherever it is written. */
	for (int i = 0; i < d->nstmt; i++)
		if (d->stmt[i].kind == ST_SEED)
			L->seed = (uint64_t)d->stmt[i].seed;
	Env env = {0};
	for (int i = 0; i < d->nstmt; i++)
		lower_stmt(L, &env, &d->stmt[i]);
	ir_verify(L->g);
}

Module *
kl_lower(Arena *a, Program *p)
{
	Lower L = {.a = a, .prog = p, .m = ir_new_module(a, p->file)};
	kl_check(&L);
	for (int i = 0; i < p->ndecl; i++)
		if (p->decl[i].kind == DECL_MODEL)
			lower_model(&L, &p->decl[i]);
	if (L.m->ngraph == 0)
		diag_error((Loc){.file = p->file}, "no model in this file; "
		           "write one as 'model NAME { ... }'");
	return L.m;
}
