/* lower.c: lowers each model of a checked .kiln program to a Graph.
 *
 * Statements are lowered in order, each expression to a tensor (a value
 * of the graph) or a compile-time number, string, boolean or list.  A
 * block or model call is expanded inline under the instance's names, a
 * loop is unrolled, and a name assigned again gets a numbered graph name
 * (docs/language.md, "Names"); layers make parameters (layers.c), and
 * every other call is the registry op of that name.  Each node's shape is
 * inferred as soon as it is made, so shape errors point at the call, and
 * the notes after an error list the calls and loop iterations it is in.
 * check.c has already made sure that names, callees and arguments are
 * right, so only kinds, values and shapes can still be wrong here.
 */
#include <float.h>
#include <math.h>
#include <string.h>
#include "kiln.h"

/* The names visible where a model or block is being lowered; a loop body
 * adds its own on top and drops them after each iteration. */
typedef struct {
	const char *prefix;         /* instance path; NULL in a model */
	const Decl *decl;           /* the model or block being expanded */
	Binding *b;                 /* newest last */
	int n, cap;
	bool inlined;               /* a called model: outputs are results */
	Val result;                 /* its output */
} Env;

static Val eval(Lower *L, Env *env, const Expr *e, Name nm);
static void lower_stmts(Lower *L, Env *env, const Stmt *s, int n);

/* ---- names ---- */

static Binding *
env_find(Env *env, const char *name)
{
	for (int i = env->n - 1; i >= 0; i--)
		if (strcmp(env->b[i].name, name) == 0)
			return &env->b[i];
	return NULL;
}

/* A new name: a parameter, an input or a loop variable. */
static void
env_bind(Lower *L, Env *env, const char *name, Val val)
{
	APUSH(L->a, env->b, env->n, env->cap, ((Binding){name, val}));
}

/* An assignment: a visible name takes the new value, as in check.c. */
static void
env_assign(Lower *L, Env *env, const char *name, Val val)
{
	Binding *b = env_find(env, name);
	if (b)
		b->val = val;
	else
		env_bind(L, env, name, val);
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
 * impossible but for one case: a value named like a model it also calls
 * (`generator = b(z)` and `generator(...)`) may make a parameter name
 * twice.  Say so plainly. */
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

/* Does the model or block assign name itself, or take it as an input or
 * a parameter?  Such a name is never handed out as another's version. */
static bool
writes(const Stmt *s, int n, const char *name)
{
	for (int i = 0; i < n; i++) {
		bool def = s[i].kind == ST_INPUT || s[i].kind == ST_ASSIGN ||
		           s[i].kind == ST_OUTPUT;
		if ((def && strcmp(s[i].name, name) == 0) ||
		    writes(s[i].body, s[i].nbody, name))
			return true;
	}
	return false;
}

static bool
is_param(const Decl *d, const char *name)
{
	for (int i = 0; i < d->nparam; i++)
		if (strcmp(d->param[i].name, name) == 0)
			return true;
	return false;
}

/* Where the numbering of an assigned name goes on (version). */
typedef struct Count {
	const char *name;           /* qualified, as the first assignment */
	int next;                   /* the k of the next NAME_k to try */
} Count;

/* Claims the graph name of an assignment to name: the first assignment
 * in a model or block instance is name, later ones (also those in later
 * loop iterations) are name_2, name_3, ..., skipping any that is taken
 * or that the source writes itself. */
static const char *
version(Lower *L, const Env *env, const char *name)
{
	const char *q = qualify(L, env->prefix, name);
	Count *c = NULL;
	for (int i = L->ncount - 1; i >= 0 && !c; i--)
		if (strcmp(L->count[i].name, q) == 0)
			c = &L->count[i];
	if (!c && !is_taken(L, q)) {
		APUSH(L->a, L->count, L->ncount, L->capcount, ((Count){q, 2}));
		APUSH(L->a, L->taken, L->ntaken, L->captaken, q);
		return q;
	}
	if (!c) {                   /* an input or parameter was the first */
		APUSH(L->a, L->count, L->ncount, L->capcount, ((Count){q, 2}));
		c = &L->count[L->ncount - 1];
	}
	const Decl *d = env->decl;
	for (;; c->next++) {
		const char *v = arena_printf(L->a, "%s_%d", name, c->next);
		const char *qv = qualify(L, env->prefix, v);
		if (!writes(d->stmt, d->nstmt, v) && !is_param(d, v) &&
		    !is_taken(L, qv)) {
			c->next++;
			APUSH(L->a, L->taken, L->ntaken, L->captaken, qv);
			return qv;
		}
	}
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

bool
kl_is_number(const Val *v)
{
	return v->kind == VAL_INT || v->kind == VAL_FLOAT;
}

double
kl_num_value(const Val *v)
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
	if (!kl_is_number(v))
		diag_error(v->loc, "%s: operand %d must be a tensor or a number, got "
		           "%s", fn, i + 1, kl_kind(v));
	if (!(fabs(kl_num_value(v)) <= FLT_MAX))
		diag_error(v->loc, "%s: %g is out of range for f32", fn,
		           kl_num_value(v));
	Graph *g = L->g;
	int c = ir_add_value(g, kl_fresh(L, ns, "const"), VK_CONST,
	                     (Type){.dtype = DT_F32}, v->loc);
	float *data = arena_alloc(L->a, sizeof *data);
	*data = (float)kl_num_value(v);
	g->val[c].data = data;
	return c;
}

/* FNV-1a 64 over the model seed (8 bytes, little-endian), then the name:
 * the seed of a parameter, or of a random op when none is given. */
uint64_t
kl_seed(uint64_t seed, const char *name)
{
	uint64_t h = 0xcbf29ce484222325ull;
	for (int i = 0; i < 8; i++)
		h = (h ^ ((seed >> 8 * i) & 0xff)) * 0x100000001b3ull;
	for (const char *p = name; *p; p++)
		h = (h ^ (unsigned char)*p) * 0x100000001b3ull;
	return h;
}

/* A parameter made by a model call, if one of that name exists. */
static int
shared_param(const Lower *L, const char *name)
{
	for (int i = 0; i < L->nshared; i++)
		if (strcmp(L->g->val[L->shared[i]].name, name) == 0)
			return L->shared[i];
	return -1;
}

/* Makes the parameter ns.suffix.  Inside a model call it is named as in
 * the called model's own graph, with the model's name in front, and made
 * once per graph: every call of the model shares it. */
int
kl_param(Lower *L, const char *ns, const char *suffix, Type t, Loc loc,
         int init, int64_t fan_in, int64_t fan_out)
{
	const char *name = qualify(L, ns, suffix), *local = name;
	int arg = L->inst ? -1 : ir_find_value(L->g, name);
	if (arg >= 0) {             /* batchnorm(mean(x)): ns.mean is taken */
		if (L->g->val[arg].kind != VK_TEMP)
			die("parameter '%s' meets a %d", name, L->g->val[arg].kind);
		L->g->val[arg].name = kl_fresh(L, ns, suffix);
	}
	if (L->inst) {
		size_t k = strlen(L->inst);
		if (strncmp(name, L->inst, k) != 0 || name[k] != '.')
			die("parameter '%s' outside its model call '%s'", name, L->inst);
		local = name + k + 1;
		name = arena_printf(L->a, "%s.%s", L->callee, local);
		int p = shared_param(L, name);
		if (p >= 0) {
			if (!type_eq(&L->g->val[p].type, &t))
				die("shared parameter '%s' changes its type", name);
			return p;
		}
		take(L, name, loc);
	}
	int p = ir_add_value(L->g, name, VK_PARAM, t, loc);
	Value *v = &L->g->val[p];
	v->init = init;
	v->fan_in = fan_in;
	v->fan_out = fan_out;
	v->seed = kl_seed(L->seed, local);
	if (L->inst)
		APUSH(L->a, L->shared, L->nshared, L->capshared, p);
	return p;
}

/* "; the operands are f32[2,3] and f32[4,3]", unless msg shows any of
 * them (then the shape rule chose what to show). */
static const char *
operand_types(Lower *L, const Node *n, const char *msg)
{
	const char *t[IR_MAXIN];
	bool shown = false;
	int k = 0;
	for (int i = 0; i < n->nin; i++) {
		if (n->in[i] < 0)
			continue;
		t[k] = type_str(L->a, &L->g->val[n->in[i]].type);
		shown = shown || strstr(msg, t[k]);
		k++;
	}
	if (shown || k == 0)
		return "";
	const char *list = t[0];
	for (int i = 1; i < k; i++)
		list = arena_printf(L->a, "%s%s%s", list, i < k - 1 ? ", " : " and ",
		                    t[i]);
	return arena_printf(L->a, "; the operand%s %s", k > 1 ? "s are" : " is",
	                    list);
}

/* Names the node's result and infers its type; shape errors point at the
 * node's location, the call in the source, and show the operands. */
int
kl_result(Lower *L, int node, const char *name)
{
	int v = ir_add_result(L->g, node, name);
	const char *err = ir_infer(L->g, node);
	const Node *n = &L->g->node[node];
	if (err)
		diag_error(n->loc, "%s%s", err, operand_types(L, n, err));
	return v;
}

/* ---- where lowering is ---- */

static Lower *context;          /* for show_frames */

/* The notes after an error: the calls and iterations it is in, the
 * innermost first. */
static void
show_frames(void)
{
	for (int i = context->nframe - 1; i >= 0; i--)
		diag_note(context->frame[i].loc, "%s", context->frame[i].what);
}

static void
push_frame(Lower *L, Loc loc, const char *what)
{
	APUSH(L->a, L->frame, L->nframe, L->capframe, ((Frame){loc, what}));
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
	case EX_NAME: return (b = env_find(env, e->s)) && kl_is_number(&b->val);
	case EX_NEG: return is_const(env, e->arg[0].e);
	case EX_CALL:
		return e->op && e->op != TK_AT && is_const(env, e->arg[0].e) &&
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
	double x = kl_num_value(&a), y = kl_num_value(&b), r = 0;
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
		if (!kl_is_number(&el[i]))
			diag_error(el[i].loc, "%s: '%s' must be a number or a list of "
			           "numbers, got %s", fn, what, kl_kind(&el[i]));
		x->floats[i] = kl_num_value(&el[i]);
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
		if (!kl_is_number(v))
			diag_error(v->loc, "%s: '%s' must be a number, got %s", fn,
			           ai->name, kl_kind(v));
		x.f = kl_num_value(v);
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
	Val arg[KL_MAXSLOT] = {0};
	if (b->value) {
		for (int k = 0; k < c->nslot; k++)
			if (slot[k])
				arg[k] = eval(L, env, slot[k]->e, child(nm));
		return b->value(L, e, arg);
	}
	nm = settle(L, nm, c->name, b->layer);
	/* Claimed before the arguments are lowered, so that a call among them
	 * that would be named w or b (a block called w) takes w_2 instead;
	 * kl_param moves other names out of a parameter's way. */
	if (b->layer) {
		take(L, qualify(L, nm.ns, "w"), e->loc);
		take(L, qualify(L, nm.ns, "b"), e->loc);
	}
	for (int k = 0; k < c->nslot; k++)
		if (slot[k])
			arg[k] = eval(L, env, slot[k]->e, child(nm));
	return tensor_val(b->lower(L, e, arg, nm), e->loc);
}

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

/* A block's arguments are evaluated in the caller's scope and named after
 * the parameter they bind; defaults in the block's.  A parameter's name
 * is claimed even when its argument is only a name or a number: the
 * block's own names can then never meet it. */
static void
bind_params(Lower *L, Env *env, Env *inner, const Arg **slot)
{
	const Decl *b = inner->decl;
	for (int k = 0; k < b->nparam; k++) {
		const Param *p = &b->param[k];
		const char *name = qualify(L, inner->prefix, p->name);
		take(L, name, slot[k] ? slot[k]->loc : p->loc);
		Name pn = {name, name, true};
		Val v = slot[k] ? eval(L, env, slot[k]->e, pn) :
		                  eval(L, inner, p->def, pn);
		env_bind(L, inner, p->name, v);
	}
}

/* A model's inputs take the arguments, which must have the inputs' types. */
static void
bind_inputs(Lower *L, Env *env, Env *inner, const Arg **slot)
{
	int nin;
	const Stmt **in = kl_inputs(L, inner->decl, &nin);
	const char *fn = inner->decl->name;
	for (int k = 0; k < nin; k++) {
		const char *name = qualify(L, inner->prefix, in[k]->name);
		take(L, name, slot[k]->loc);
		Val v = eval(L, env, slot[k]->e, (Name){name, name, true});
		const Type *want = &in[k]->type;
		if (v.kind != VAL_TENSOR)
			diag_error(v.loc, "%s: input '%s' must be a tensor %s, got %s",
			           fn, in[k]->name, type_str(L->a, want), kl_kind(&v));
		const Type *got = &L->g->val[v.v].type;
		if (!type_eq(got, want))
			diag_error(v.loc, "%s: input '%s' must be %s, got %s", fn,
			           in[k]->name, type_str(L->a, want),
			           type_str(L->a, got));
		env_bind(L, inner, in[k]->name, v);
	}
}

static uint64_t
model_seed(const Decl *d)
{
	for (int i = 0; i < d->nstmt; i++)
		if (d->stmt[i].kind == ST_SEED)
			return (uint64_t)d->stmt[i].seed;
	return 0;
}

/* Expands a block or a model inline, under the instance's namespace.  In
 * a model the parameters are the model's own (kl_param), made with its
 * seed. */
static Val
call_decl(Lower *L, Env *env, const Callee *c, const Expr *e,
          const Arg **slot, Name nm)
{
	const Decl *d = c->decl;
	bool model = d->kind == DECL_MODEL;
	nm = settle(L, nm, c->name, true);
	Env inner = {.prefix = nm.ns, .decl = d, .inlined = model};
	if (model)
		bind_inputs(L, env, &inner, slot);
	else
		bind_params(L, env, &inner, slot);
	push_frame(L, e->loc, arena_printf(L->a, "in %s '%s' called here",
	                                   tok_text[model ? TK_MODEL : TK_BLOCK],
	                                   d->name));
	const char *inst = L->inst, *callee = L->callee;
	uint64_t seed = L->seed;
	if (model) {
		L->inst = nm.ns;
		L->callee = d->name;
		L->seed = model_seed(d);
	}
	Val v;
	if (model) {
		lower_stmts(L, &inner, d->stmt, d->nstmt);
		v = inner.result;
	} else {
		lower_stmts(L, &inner, d->stmt, d->nstmt - 1);
		const Stmt *ret = &d->stmt[d->nstmt - 1];
		v = eval(L, &inner, ret->e, (Name){nm.ns, nm.result, false});
	}
	adopt(L, &v, nm);
	L->inst = inst;
	L->callee = callee;
	L->seed = seed;
	L->nframe--;
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
	case CALL_BLOCK:
	case CALL_MODEL: return call_decl(L, env, &c, e, slot, nm);
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

/* An output is called by its value's graph name, so the value is renamed
 * to the output's name: `output y = h` makes h's tensor y.  That name must
 * be free, and inputs and parameters keep theirs. */
static void
lower_output(Lower *L, Env *env, const Stmt *s)
{
	Graph *g = L->g;
	Val v = env_find(env, s->name)->val;
	if (v.kind != VAL_TENSOR)
		diag_error(s->loc, "output '%s' is %s, not a tensor", s->name,
		           kl_kind(&v));
	if (env->inlined) {
		env->result = v;
		return;
	}
	Value *t = &g->val[v.v];
	for (int i = 0; i < g->noutput; i++)
		if (g->output[i] == v.v)
			diag_error(s->loc, "output '%s' is the same tensor as output "
			           "'%s'", s->name, t->name);
	if (strcmp(t->name, s->name) != 0 && t->kind != VK_TEMP)
		diag_error(s->loc, "output '%s' is another name for '%s'; write "
		           "'output %s'", s->name, t->name, t->name);
	if (strcmp(t->name, s->name) != 0 && ir_find_value(g, s->name) >= 0)
		diag_error(s->loc, "output '%s' needs the graph name '%s', but an "
		           "earlier '%s' has it; give the output a name of its own "
		           "(output NAME = ...)", s->name, s->name, s->name);
	t->name = s->name;
	ir_add_output(g, v.v);
}

/* How a frame shows a loop variable's value. */
static const char *
show(Lower *L, const Val *v)
{
	switch (v->kind) {
	case VAL_INT: return arena_printf(L->a, "%lld", (long long)v->i);
	case VAL_FLOAT: return arena_printf(L->a, "%g", v->f);
	case VAL_STR: return arena_printf(L->a, "\"%s\"", v->s);
	case VAL_BOOL: return v->i ? "true" : "false";
	case VAL_TENSOR: return L->g->val[v->v].name;
	default: return "a list";
	}
}

/* repeat COUNT { ... } and for NAME in LIST { ... }, unrolled.  What a
 * call in COUNT or LIST makes is named for.callee ("for" is a keyword,
 * so no other name can meet it). */
static void
lower_loop(Lower *L, Env *env, const Stmt *s)
{
	bool rep = s->kind == ST_REPEAT;
	const char *ns = qualify(L, env->prefix, rep ? "repeat" : "for");
	Val it = eval(L, env, s->e, (Name){ns, NULL, false});
	if (rep && it.kind != VAL_INT)
		diag_error(it.loc, "repeat: the count must be an integer, got %s",
		           kl_kind(&it));
	if (rep && (it.i < 1 || it.i > KL_MAXLOOP))
		diag_error(it.loc, "repeat: the count must be from 1 to %d, got "
		           "%lld", KL_MAXLOOP, (long long)it.i);
	if (!rep && it.kind != VAL_LIST)
		diag_error(it.loc, "for: expected a list to iterate over, got %s%s",
		           kl_kind(&it), it.kind == VAL_INT ?
		           arena_printf(L->a, "; write range(%lld) for 0, 1, ...",
		                        (long long)it.i) : "");
	int n = rep ? (int)it.i : it.n;
	for (int i = 0; i < n; i++) {
		int mark = env->n;
		const char *what = rep ?
		    arena_printf(L->a, "in repetition %d of %d", i + 1, n) :
		    arena_printf(L->a, "in iteration %d of %d, where %s = %s",
		                 i + 1, n, s->name, show(L, &it.elem[i]));
		push_frame(L, s->loc, what);
		if (!rep)
			env_bind(L, env, s->name, it.elem[i]);
		lower_stmts(L, env, s->body, s->nbody);
		env->n = mark;
		L->nframe--;
	}
}

static void
lower_stmt(Lower *L, Env *env, const Stmt *s)
{
	switch (s->kind) {
	case ST_INPUT:
		if (env->inlined)
			return;             /* bound to the call's argument */
		take(L, s->name, s->loc);
		env_bind(L, env, s->name, tensor_val(ir_add_input(L->g, s->name,
		         s->type, s->loc), s->loc));
		return;
	case ST_REPEAT:
	case ST_FOR:
		lower_loop(L, env, s);
		return;
	case ST_TRAIN:
		if (!env->inlined)      /* a called model's section is its own */
			kl_train(L, s, env->b, env->n);
		return;
	case ST_ASSIGN:
	case ST_OUTPUT:
		break;
	default:
		return;
	}
	if (s->e) {
		const char *name = version(L, env, s->name);
		Val v = eval(L, env, s->e, (Name){name, name, true});
		env_assign(L, env, s->name, v);
	}
	if (s->kind == ST_OUTPUT)
		lower_output(L, env, s);
}

static void
lower_stmts(Lower *L, Env *env, const Stmt *s, int n)
{
	for (int i = 0; i < n; i++)
		lower_stmt(L, env, &s[i]);
}

static void
lower_model(Lower *L, const Decl *d)
{
	L->g = ir_new_graph(L->m, d->name, d->loc);
	L->seed = model_seed(d);    /* wherever the seed is written */
	L->ntaken = 0;
	L->ncount = 0;
	L->nshared = 0;
	Env env = {.decl = d};
	lower_stmts(L, &env, d->stmt, d->nstmt);
	ir_verify(L->g);
}

Module *
kl_lower(Arena *a, Program *p)
{
	Lower L = {.a = a, .prog = p, .m = ir_new_module(a, p->file)};
	kl_check(&L);
	context = &L;
	diag_set_context(show_frames);
	for (int i = 0; i < p->ndecl; i++)
		if (p->decl[i].kind == DECL_MODEL)
			lower_model(&L, &p->decl[i]);
	diag_set_context(NULL);
	context = NULL;
	if (L.m->ngraph == 0)
		diag_error((Loc){.file = p->file}, "no model in this file; "
		           "write one as 'model NAME { ... }'");
	return L.m;
}
