/* train.c: a model's train section, checked and recorded in its graph
 * (Graph.train, ir/cfg.c) for the training pipeline to give it meaning.
 *
 * The section is the model's last statement, so it sees the model's names
 * as they are at its end.  Every key, loss, optimizer, schedule and metric
 * is a row of the tables below, with the kinds and defaults of its
 * options.  The section is recorded with its names resolved (a name
 * becomes a reference to its value; a layer, block or model in freeze and
 * update becomes the list of its parameters), every option by keyword in
 * table order with the defaults filled in, and in the order written, so
 * that a reader of the IR needs neither .kiln nor these tables.  Entries
 * that other parts of the frontend put in the section (regularizers of
 * layers) stay where they are; the user's are added after them.  The
 * section is described in docs/language.md, "The train section".
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "kiln.h"

/* What a key or an option takes: a scalar (first) or a whole value. */
enum {
	K_BOOL, K_POS, K_NONNEG, K_FRAC, K_COUNT, K_UINT, K_MONITOR,
	K_LABEL, K_LOSS, K_OPTIMIZER, K_SCHEDULE, K_STOPPING, K_METRICS,
	K_WEIGHTS, K_PARAMS, K_STEP, NKIND
};

/* How messages say what a kind takes. */
static const char *const kind_text[NKIND] = {
	[K_BOOL] = "true or false",
	[K_POS] = "a positive number",
	[K_NONNEG] = "a non-negative number",
	[K_FRAC] = "a number in [0, 1)",
	[K_COUNT] = "a positive integer",
	[K_UINT] = "a non-negative integer",
	[K_MONITOR] = "a string",
	[K_LOSS] = "a loss such as mse(y, t), or a list of losses",
	[K_OPTIMIZER] = "an optimizer such as adam(lr=0.001)",
	[K_SCHEDULE] = "a schedule such as cosine()",
	[K_STOPPING] = "early_stopping(...)",
	[K_METRICS] = "a list of metrics such as [\"accuracy\"]",
	[K_WEIGHTS] = "a list of non-negative numbers",
	[K_PARAMS] = "a list of layer, model and parameter names",
};

/* A loss's operands: the prediction, then for all but OPD_ONE the
 * target.  OPD_CLASS: class indices, or one-hot rows (probabilities) of
 * the prediction's shape, with the classes on the last axis; OPD_INDEX:
 * class indices only; OPD_SAME: the prediction's type, or a number. */
enum { OPD_NONE, OPD_CLASS, OPD_INDEX, OPD_SAME, OPD_ONE };

typedef struct {
	const char *name;
	int kind;                   /* K_, a scalar one */
	const char *def;            /* default; NULL: required; "": none */
} Opt;

enum { MAXOPT = 6 };

/* A function a key takes (a loss, an optimizer, ...): its operands,
 * positional only, then its options. */
typedef struct {
	const char *name;
	int opd;                    /* OPD_ */
	Opt opt[MAXOPT];            /* up to the first without a name */
} Fn;

/* Defaults follow Keras, except early_stopping's restore_best.
 * name                    operands    options (kind, default) */
static const Fn losses[] = {
	{"cross_entropy",        OPD_CLASS, {{"from_logits", K_BOOL, "false"},
	                                     {"label_smoothing", K_FRAC, "0"},
	                                     {"weight", K_NONNEG, "1"}}},
	{"sparse_cross_entropy", OPD_INDEX, {{"from_logits", K_BOOL, "false"},
	                                     {"weight", K_NONNEG, "1"}}},
	{"binary_cross_entropy", OPD_SAME,  {{"from_logits", K_BOOL, "false"},
	                                     {"weight", K_NONNEG, "1"}}},
	{"mse",                  OPD_SAME,  {{"weight", K_NONNEG, "1"}}},
	{"mae",                  OPD_SAME,  {{"weight", K_NONNEG, "1"}}},
	{"huber",                OPD_SAME,  {{"delta", K_POS, "1"},
	                                     {"weight", K_NONNEG, "1"}}},
	{"kl",                   OPD_ONE,   {{"weight", K_NONNEG, "1"}}},
};

static const Fn optimizers[] = {
	{"sgd",     0, {{"lr", K_POS, "0.01"}, {"momentum", K_FRAC, "0"},
	                {"nesterov", K_BOOL, "false"},
	                {"weight_decay", K_NONNEG, "0"}}},
	{"adam",    0, {{"lr", K_POS, "0.001"}, {"beta1", K_FRAC, "0.9"},
	                {"beta2", K_FRAC, "0.999"}, {"eps", K_POS, "1e-7"}}},
	{"adamw",   0, {{"lr", K_POS, "0.001"}, {"beta1", K_FRAC, "0.9"},
	                {"beta2", K_FRAC, "0.999"}, {"eps", K_POS, "1e-7"},
	                {"weight_decay", K_NONNEG, "0.004"}}},
	{"rmsprop", 0, {{"lr", K_POS, "0.001"}, {"rho", K_FRAC, "0.9"},
	                {"momentum", K_FRAC, "0"}, {"eps", K_POS, "1e-7"}}},
	{"adagrad", 0, {{"lr", K_POS, "0.001"}, {"eps", K_POS, "1e-7"}}},
};

/* The learning rate per epoch; cosine's epochs default to the run's. */
static const Fn schedules[] = {
	{"step",        0, {{"step_size", K_COUNT, NULL}, {"gamma", K_POS, "0.1"}}},
	{"exponential", 0, {{"gamma", K_POS, NULL}}},
	{"cosine",      0, {{"epochs", K_COUNT, ""}, {"min_lr", K_NONNEG, "0"}}},
	{"plateau",     0, {{"monitor", K_MONITOR, "val_loss"},
	                    {"factor", K_FRAC, "0.1"}, {"patience", K_UINT, "10"},
	                    {"min_lr", K_NONNEG, "0"}}},
};

static const Fn metrics[] = {
	{.name = "accuracy"}, {"top_k", 0, {{"k", K_COUNT, "5"}}},
	{.name = "precision"}, {.name = "recall"}, {.name = "f1"},
	{.name = "mse"}, {.name = "mae"},
};

static const Fn stoppers[] = {
	{"early_stopping", 0, {{"monitor", K_MONITOR, "val_loss"},
	                       {"patience", K_UINT, "0"},
	                       {"min_delta", K_NONNEG, "0"},
	                       {"restore_best", K_BOOL, "true"}}},
};

/* The functions each kind of value may call. */
static const struct {
	const char *noun;           /* "unknown loss 'x'" */
	const Fn *fn;
	int n;
} fn_table[NKIND] = {
	[K_LOSS] = {"loss", losses, countof(losses)},
	[K_OPTIMIZER] = {"optimizer", optimizers, countof(optimizers)},
	[K_SCHEDULE] = {"schedule", schedules, countof(schedules)},
	[K_STOPPING] = {"early stopping", stoppers, countof(stoppers)},
	[K_METRICS] = {"metric", metrics, countof(metrics)},
};

typedef struct {
	const char *name;
	int kind;                   /* K_ of its value */
	bool in_step;               /* may be set in a step */
} Key;

static const Key keys[] = {
	{"label", K_LABEL, true},           {"loss", K_LOSS, true},
	{"optimizer", K_OPTIMIZER, true},   {"batch", K_COUNT, false},
	{"epochs", K_COUNT, false},         {"metrics", K_METRICS, false},
	{"schedule", K_SCHEDULE, true},     {"clip_value", K_POS, true},
	{"clip_norm", K_POS, true},         {"early_stopping", K_STOPPING, false},
	{"class_weights", K_WEIGHTS, true}, {"freeze", K_PARAMS, true},
	{"update", K_PARAMS, true},         {"step", K_STEP, false},
	{"seed", K_UINT, false},            {"validation_split", K_FRAC, false},
};

/* The state of recording one section. */
typedef struct {
	Lower *L;
	Graph *g;
	const Decl *model;          /* the model the section is in */
	const Binding *b;           /* the model's names at the section */
	int nb;
	Binding *label;             /* labels in scope, newest last */
	int nlabel, caplabel;
} Train;

static Val eval(Train *T, const Expr *e);
static void block(Train *T, Cfg *out, const Entry *blk, bool in_step);

/* Ends an error begun with diag_error_begin, with the suggestion. */
static _Noreturn void
suggest(Loc loc, const char *cand)
{
	if (cand)
		diag_note(loc, "did you mean '%s'?", cand);
	diag_exit();
}

static Cfg *
new_cfg(Train *T, int kind, Loc loc)
{
	return cfg_new(T->L->a, kind, loc);
}

static Cfg *
value_ref(Train *T, int v, Loc loc)
{
	Cfg *c = new_cfg(T, CFG_VALUE, loc);
	c->v = v;
	return c;
}

/* ---- names and numbers ---- */

/* A label in scope or one of the model's names, or NULL. */
static const Binding *
find(const Train *T, const char *name)
{
	for (int i = T->nlabel - 1; i >= 0; i--)
		if (strcmp(T->label[i].name, name) == 0)
			return &T->label[i];
	for (int i = T->nb - 1; i >= 0; i--)
		if (strcmp(T->b[i].name, name) == 0)
			return &T->b[i];
	return NULL;
}

static const Decl *
find_model(const Train *T, const char *name)
{
	const Program *p = T->L->prog;
	for (int i = 0; i < p->ndecl; i++)
		if (p->decl[i].kind == DECL_MODEL && strcmp(p->decl[i].name, name) == 0)
			return &p->decl[i];
	return NULL;
}

/* Is name a function of one of the tables (a bare word that should have
 * been a string, as in metrics = [accuracy])? */
static bool
is_fn_name(const char *name)
{
	for (int k = 0; k < NKIND; k++)
		for (int i = 0; i < fn_table[k].n; i++)
			if (strcmp(fn_table[k].fn[i].name, name) == 0)
				return true;
	return false;
}

/* With models: in freeze and update, where a model's name may stand. */
static _Noreturn void
undefined(const Train *T, const Expr *e, bool models)
{
	const Program *p = T->L->prog;
	const char **cand = arena_alloc(T->L->a, (T->nb + T->nlabel +
	                                p->ndecl + 1) * sizeof *cand);
	int n = 0;
	for (int i = 0; i < T->nb; i++)
		cand[n++] = T->b[i].name;
	for (int i = 0; i < T->nlabel; i++)
		cand[n++] = T->label[i].name;
	for (int i = 0; models && i < p->ndecl; i++)
		if (p->decl[i].kind == DECL_MODEL)
			cand[n++] = p->decl[i].name;
	const char *near = kl_closest(e->s, cand, n);
	diag_error_begin(e->loc, "undefined name '%s'", e->s);
	if (!near && is_fn_name(e->s))
		diag_note(e->loc, "string values are quoted: \"%s\"", e->s);
	suggest(e->loc, near);
}

/* Where the model last assigns name (at any depth), for a note. */
static const Stmt *
last_def(const Stmt *s, int n, const char *name)
{
	const Stmt *last = NULL;
	for (int i = 0; i < n; i++) {
		bool def = s[i].kind == ST_INPUT || s[i].kind == ST_ASSIGN ||
		           (s[i].kind == ST_OUTPUT && s[i].e);
		if (def && strcmp(s[i].name, name) == 0)
			last = &s[i];
		const Stmt *in = last_def(s[i].body, s[i].nbody, name);
		last = in ? in : last;
	}
	return last;
}


static _Noreturn void
not_numbers(const Expr *e)
{
	diag_error(e->loc, "'%s' in a train section takes numbers; compute "
	           "tensors in the model, and give several losses as a list: "
	           "loss = [mse(y, t), kl(k, weight=0.1)]", tok_text[e->op]);
}

/* a + b, a - b, a * b, a / b of numbers; integers stay integers while
 * the result is one, as in the model. */
static Val
arith(Train *T, const Expr *e)
{
	Val a = eval(T, e->arg[0].e), b = eval(T, e->arg[1].e);
	if (!kl_is_number(&a) || !kl_is_number(&b) || e->op == TK_AT)
		not_numbers(e);
	Val r = {.kind = VAL_INT, .loc = e->loc};
	bool exact = a.kind == VAL_INT && b.kind == VAL_INT;
	switch (e->op) {
	case TK_PLUS: exact = exact && !__builtin_add_overflow(a.i, b.i, &r.i); break;
	case TK_MINUS: exact = exact && !__builtin_sub_overflow(a.i, b.i, &r.i); break;
	case TK_STAR: exact = exact && !__builtin_mul_overflow(a.i, b.i, &r.i); break;
	default:
		exact = exact && b.i != 0 && !(b.i == -1 && a.i == INT64_MIN) &&
		        a.i % b.i == 0;
		r.i = exact ? a.i / b.i : 0;
	}
	if (exact)
		return r;
	double x = kl_num_value(&a), y = kl_num_value(&b);
	if (e->op == TK_SLASH && y == 0)
		diag_error(e->loc, "division by zero");
	r.kind = VAL_FLOAT;
	r.f = e->op == TK_PLUS ? x + y : e->op == TK_MINUS ? x - y :
	      e->op == TK_STAR ? x * y : x / y;
	if (!isfinite(r.f))
		diag_error(e->loc, "'%s' gives a number out of range",
		           tok_text[e->op]);
	return r;
}

/* The value of an expression that is not a call: a literal, a name (a
 * value of the model or a label), a list, or arithmetic on numbers.  A
 * call gives VAL_NONE, for the caller to report. */
static Val
eval(Train *T, const Expr *e)
{
	Val v = {.loc = e->loc};
	const Binding *b;
	switch (e->kind) {
	case EX_INT: return (Val){.kind = VAL_INT, .loc = e->loc, .i = e->i};
	case EX_FLOAT: return (Val){.kind = VAL_FLOAT, .loc = e->loc, .f = e->f};
	case EX_STR: return (Val){.kind = VAL_STR, .loc = e->loc, .s = e->s};
	case EX_BOOL: return (Val){.kind = VAL_BOOL, .loc = e->loc, .i = e->i};
	case EX_NAME:
		if (!(b = find(T, e->s)))
			undefined(T, e, false);
		v = b->val;
		v.loc = e->loc;
		return v;
	case EX_LIST:
		v.kind = VAL_LIST;
		v.n = e->narg;
		v.elem = arena_alloc(T->L->a, (e->narg + 1) * sizeof *v.elem);
		for (int i = 0; i < e->narg; i++)
			v.elem[i] = eval(T, e->arg[i].e);
		return v;
	case EX_NEG:
		v = eval(T, e->arg[0].e);
		if (!kl_is_number(&v))
			not_numbers(&(Expr){.loc = e->loc, .op = TK_MINUS});
		if (v.kind == VAL_INT && v.i == INT64_MIN)
			v = (Val){.kind = VAL_FLOAT, .f = (double)v.i};
		v.i = -v.i;
		v.f = -v.f;
		v.loc = e->loc;
		return v;
	case EX_CALL:
		return e->op ? arith(T, e) : v;
	}
	die("bad expression kind %d", e->kind);
}

/* ---- scalars ---- */

/* How a message shows what was given instead. */
static const char *
got(Train *T, const Expr *e, const Val *v)
{
	Arena *a = T->L->a;
	if (e->kind == EX_CALL && !e->op)
		return arena_printf(a, "a call of '%s'", e->s);
	switch (v->kind) {
	case VAL_INT: return arena_printf(a, "%lld", (long long)v->i);
	case VAL_FLOAT: return arena_printf(a, "%g", v->f);
	case VAL_STR: return arena_printf(a, "\"%s\"", v->s);
	case VAL_BOOL: return v->i ? "true" : "false";
	case VAL_LIST: return v->n ? "a list" : "an empty list";
	default: return kl_kind(v);
	}
}

/* "fn: 'what' must be ..., got ..." at e (fn NULL for a key's value). */
static _Noreturn void
bad(Train *T, const Expr *e, const Val *v, int kind, const char *fn,
    const char *what)
{
	diag_error(e->loc, "%s%s'%s' must be %s, got %s", fn ? fn : "",
	           fn ? ": " : "", what, kind_text[kind], got(T, e, v));
}

/* What early_stopping and plateau may watch: the loss or a metric, on
 * the training data or (val_) the validation data. */
static void
check_monitor(Train *T, const Expr *e, const char *s, const char *fn)
{
	int n = 0;
	const char **cand = arena_alloc(T->L->a, 2 * (countof(metrics) + 1) *
	                                sizeof *cand);
	cand[n++] = "loss";
	for (int i = 0; i < countof(metrics); i++)
		cand[n++] = metrics[i].name;
	for (int i = 0, k = n; i < k; i++)
		cand[n++] = arena_printf(T->L->a, "val_%s", cand[i]);
	for (int i = 0; i < n; i++)
		if (strcmp(cand[i], s) == 0)
			return;
	diag_error_begin(e->loc, "%s: cannot monitor \"%s\" (expected \"loss\", "
	                 "a metric, or either with \"val_\" in front)", fn, s);
	suggest(e->loc, kl_closest(s, cand, n));
}

/* A scalar of a kind, as the section records it: numbers of the number
 * kinds are floats, whether written with a point or not. */
static Cfg *
scalar_cfg(Train *T, int kind, const Val *v, Loc loc)
{
	static const int cfg_kind[] = {
		[K_BOOL] = CFG_BOOL, [K_POS] = CFG_FLOAT, [K_NONNEG] = CFG_FLOAT,
		[K_FRAC] = CFG_FLOAT, [K_COUNT] = CFG_INT, [K_UINT] = CFG_INT,
		[K_MONITOR] = CFG_STR,
	};
	Cfg *c = new_cfg(T, cfg_kind[kind], loc);
	c->i = v->i;
	c->f = kl_is_number(v) ? kl_num_value(v) : 0;
	c->s = v->s;
	return c;
}

static Cfg *
scalar(Train *T, const Expr *e, int kind, const char *fn, const char *what)
{
	Val v = eval(T, e);
	bool num = kl_is_number(&v);
	double x = num ? kl_num_value(&v) : 0;
	bool ok = false;
	switch (kind) {
	case K_BOOL: ok = v.kind == VAL_BOOL; break;
	case K_POS: ok = num && x > 0; break;
	case K_NONNEG: ok = num && x >= 0; break;
	case K_FRAC: ok = num && x >= 0 && x < 1; break;
	case K_COUNT: ok = v.kind == VAL_INT && v.i > 0; break;
	case K_UINT: ok = v.kind == VAL_INT && v.i >= 0; break;
	case K_MONITOR: ok = v.kind == VAL_STR; break;
	}
	if (!ok)
		bad(T, e, &v, kind, fn, what);
	if (kind == K_MONITOR)
		check_monitor(T, e, v.s, fn);
	return scalar_cfg(T, kind, &v, e->loc);
}

static Cfg *
default_cfg(Train *T, const Opt *o, Loc loc)
{
	Val v = {.kind = VAL_FLOAT, .f = strtod(o->def, NULL)};
	if (o->kind == K_BOOL)
		v = (Val){.kind = VAL_BOOL, .i = strcmp(o->def, "true") == 0};
	if (o->kind == K_COUNT || o->kind == K_UINT)
		v = (Val){.kind = VAL_INT, .i = strtoll(o->def, NULL, 10)};
	if (o->kind == K_MONITOR)
		v = (Val){.kind = VAL_STR, .s = o->def};
	return scalar_cfg(T, o->kind, &v, loc);
}

/* ---- calls: losses, optimizers, schedules, metrics ---- */

static int
count_opds(const Fn *f)
{
	return f->opd == OPD_NONE ? 0 : f->opd == OPD_ONE ? 1 : 2;
}

static int
count_opts(const Fn *f)
{
	int n = 0;
	while (n < MAXOPT && f->opt[n].name)
		n++;
	return n;
}

static const char *
opd_name(const Fn *f, int k)
{
	return f->opd == OPD_ONE ? "tensor" : k ? "target" : "prediction";
}

static const Fn *
find_fn(int kind, const Expr *e)
{
	const char *cand[16];
	int n = fn_table[kind].n;
	for (int i = 0; i < n; i++) {
		if (strcmp(fn_table[kind].fn[i].name, e->s) == 0)
			return &fn_table[kind].fn[i];
		cand[i] = fn_table[kind].fn[i].name;
	}
	diag_error_begin(e->loc, "unknown %s '%s'", fn_table[kind].noun, e->s);
	suggest(e->loc, kl_closest(e->s, cand, n));
}

/* Operand k of a loss: a tensor of the model or a label, or a number
 * for a target compared element by element (a constant target). */
static Cfg *
operand(Train *T, const Fn *f, const Expr *e, int k, int *v)
{
	Val x = eval(T, e);
	bool number_ok = k == 1 && f->opd == OPD_SAME;
	*v = -1;
	if (number_ok && kl_is_number(&x)) {
		Cfg *c = new_cfg(T, CFG_FLOAT, e->loc);
		c->f = kl_num_value(&x);
		return c;
	}
	if (x.kind != VAL_TENSOR)
		diag_error(e->loc, "%s: the %s must be a tensor%s, got %s", f->name,
		           opd_name(f, k), number_ok ? " or a number" : "",
		           got(T, e, &x));
	*v = x.v;
	return value_ref(T, x.v, e->loc);
}

static bool
is_float(int dtype)
{
	return dtype == DT_F32 || dtype == DT_F64;
}

static bool
is_index(int dtype)
{
	return dtype == DT_I64 || dtype == DT_I32 || dtype == DT_I8 ||
	       dtype == DT_U8;
}

/* The target fits the prediction (OPD_ in the loss table); errors are at
 * the operand at fault. */
static void
check_operands(Train *T, const Fn *f, const Expr *const *opd, const int *v)
{
	Arena *a = T->L->a;
	const Type *p = &T->g->val[v[0]].type;
	bool classes = f->opd == OPD_CLASS || f->opd == OPD_INDEX;
	if (!is_float(p->dtype))
		diag_error(opd[0]->loc, "%s: the prediction must be a floating-point "
		           "tensor, got %s", f->name, type_str(a, p));
	if (classes && p->rank < 2)
		diag_error(opd[0]->loc, "%s: the prediction must be [batch, ..., "
		           "classes], got %s", f->name, type_str(a, p));
	if (f->opd == OPD_ONE || v[1] < 0)
		return;
	const Type *t = &T->g->val[v[1]].type;
	Type idx = *p;
	idx.dtype = DT_I64;
	idx.rank--;
	bool index = is_index(t->dtype) && t->rank == idx.rank &&
	             memcmp(t->dim, idx.dim, idx.rank * sizeof *t->dim) == 0;
	const char *want = type_str(a, p), *tp = type_str(a, t);
	if (f->opd == OPD_SAME && !type_eq(t, p))
		diag_error(opd[1]->loc, "%s: the target must be %s like the "
		           "prediction, got %s", f->name, want, tp);
	if (f->opd == OPD_INDEX && !index)
		diag_error(opd[1]->loc, "%s: the target must be class indices (%s) "
		           "for the prediction %s, got %s", f->name,
		           type_str(a, &idx), want, tp);
	if (f->opd == OPD_CLASS && !index && !type_eq(t, p))
		diag_error(opd[1]->loc, "%s: the target must be class indices (%s) "
		           "or one-hot (%s) for the prediction %s, got %s", f->name,
		           type_str(a, &idx), want, want, tp);
}

/* Matches the arguments to the operands, then the options, the way
 * kl_bind() does for calls in a model. */
static void
bind(const Fn *f, const Expr *e, const Arg **slot)
{
	int nopd = count_opds(f), nslot = nopd + count_opts(f);
	for (int i = 0; e->kind == EX_CALL && i < e->narg; i++) {
		const Arg *a = &e->arg[i];
		int k = i;
		if (a->key) {
			const char *cand[MAXOPT];
			for (k = 0; k < nslot - nopd; k++)
				cand[k] = f->opt[k].name;
			for (k = 0; k < nslot - nopd; k++)
				if (strcmp(cand[k], a->key) == 0)
					break;
			if (k == nslot - nopd) {
				diag_error_begin(a->loc, "%s: unknown argument '%s'",
				                 f->name, a->key);
				suggest(a->loc, kl_closest(a->key, cand, nslot - nopd));
			}
			k += nopd;
		}
		if (k >= nslot)
			diag_error(a->loc, "%s: too many arguments (it takes %d, got "
			           "%d)", f->name, nslot, e->narg);
		if (slot[k])
			diag_error(a->loc, "%s: argument '%s' is given twice", f->name,
			           f->opt[k - nopd].name);
		slot[k] = a;
	}
	for (int k = 0; k < nslot; k++) {
		if (k < nopd && !slot[k])
			diag_error(e->loc, "%s: missing the %s (operand %d)", f->name,
			           opd_name(f, k), k + 1);
		if (k >= nopd && !slot[k] && !f->opt[k - nopd].def)
			diag_error(e->loc, "%s: missing argument '%s'", f->name,
			           f->opt[k - nopd].name);
	}
}

/* f(args), or "f" for f(): a function of the kind's table, recorded as
 * f(operands, option=value, ...) with every option that has a value, in
 * table order; one with neither operands nor options as the string "f". */
static Cfg *
call(Train *T, const Expr *e, int kind, const char *what)
{
	if (e->kind != EX_STR && (e->kind != EX_CALL || e->op)) {
		Val v = eval(T, e);
		bad(T, e, &v, kind, NULL, what);
	}
	const Fn *f = find_fn(kind, e);
	const Arg *slot[2 + MAXOPT] = {0};
	bind(f, e, slot);
	Cfg *c = new_cfg(T, CFG_CALL, e->loc);
	c->s = f->name;
	int nopd = count_opds(f), v[2];
	const Expr *opd[2];
	for (int k = 0; k < nopd; k++) {
		opd[k] = slot[k]->e;
		cfg_add(T->L->a, c, NULL, operand(T, f, opd[k], k, &v[k]));
	}
	if (nopd)
		check_operands(T, f, opd, v);
	for (int k = 0; k < count_opts(f); k++) {
		const Opt *o = &f->opt[k];
		const Arg *a = slot[nopd + k];
		if (a)
			cfg_add(T->L->a, c, o->name, scalar(T, a->e, o->kind, f->name,
			                                    o->name));
		else if (*o->def)
			cfg_add(T->L->a, c, o->name, default_cfg(T, o, e->loc));
	}
	if (c->n == 0)
		c->kind = CFG_STR;
	return c;
}

/* loss and metrics: one function, or a list of them; one loss stays
 * one, metrics are always a list. */
static Cfg *
calls(Train *T, const Expr *e, int kind, const char *what)
{
	if (e->kind != EX_LIST && kind == K_LOSS)
		return call(T, e, kind, what);
	if (e->kind != EX_LIST) {
		Cfg *c = new_cfg(T, CFG_LIST, e->loc);
		cfg_add(T->L->a, c, NULL, call(T, e, kind, what));
		return c;
	}
	if (e->narg == 0 && kind == K_LOSS) {
		Val v = eval(T, e);
		bad(T, e, &v, kind, NULL, what);
	}
	Cfg *c = new_cfg(T, CFG_LIST, e->loc);
	for (int i = 0; i < e->narg; i++)
		cfg_add(T->L->a, c, NULL, call(T, e->arg[i].e, kind, what));
	return c;
}

/* class_weights = [w0, w1, ...]: one weight per class. */
static Cfg *
weights(Train *T, const Expr *e)
{
	if (e->kind != EX_LIST || e->narg == 0) {
		Val v = eval(T, e);
		bad(T, e, &v, K_WEIGHTS, NULL, "class_weights");
	}
	Cfg *c = new_cfg(T, CFG_LIST, e->loc);
	for (int i = 0; i < e->narg; i++) {
		const Expr *x = e->arg[i].e;
		Val v = eval(T, x);
		if (!kl_is_number(&v) || kl_num_value(&v) < 0)
			bad(T, x, &v, K_WEIGHTS, NULL, "class_weights");
		cfg_add(T->L->a, c, NULL, scalar_cfg(T, K_NONNEG, &v, x->loc));
	}
	return c;
}

/* Each cross-entropy loss of the block has as many classes as there are
 * class weights. */
static void
check_weights(Train *T, const Cfg *loss, const Entry *w, const Cfg *wc)
{
	int n = loss->kind == CFG_LIST ? loss->n : 1;
	for (int i = 0; i < n; i++) {
		const Cfg *l = loss->kind == CFG_LIST ? loss->item[i] : loss;
		if (strcmp(l->s, "cross_entropy") != 0 &&
		    strcmp(l->s, "sparse_cross_entropy") != 0)
			continue;
		const Type *t = &T->g->val[l->item[0]->v].type;
		if (t->dim[t->rank - 1] != wc->n)
			diag_error(w->e->loc, "'class_weights' has %d values, but the "
			           "loss %s has %lld classes", wc->n, l->s,
			           (long long)t->dim[t->rank - 1]);
	}
}

/* ---- freeze and update ---- */

/* Is name ns itself or inside the namespace ns (ns.*)? */
static bool
in_ns(const char *name, const char *ns)
{
	size_t n = strlen(ns);
	return strncmp(name, ns, n) == 0 && (name[n] == '\0' || name[n] == '.');
}

/* Marks the parameters named ns or ns.*, and with nodes, those that
 * nodes with such results use (in a model call, the called model's own,
 * named MODEL.*); returns how many it marks. */
static int
mark_ns(const Graph *g, const char *ns, bool nodes, bool *mark)
{
	int n = 0;
	for (int i = 0; i < g->nval; i++)
		if (g->val[i].kind == VK_PARAM && in_ns(g->val[i].name, ns)) {
			mark[i] = true;
			n++;
		}
	for (int i = 0; nodes && i < g->nnode; i++) {
		const Node *nd = &g->node[i];
		if (nd->dead || !in_ns(g->val[nd->out].name, ns))
			continue;
		for (int k = 0; k < nd->nin; k++)
			if (nd->in[k] >= 0 && g->val[nd->in[k]].kind == VK_PARAM) {
				mark[nd->in[k]] = true;
				n++;
			}
	}
	return n;
}

static _Noreturn void
no_params(Train *T, const Expr *e, const char *key)
{
	const Graph *g = T->g;
	if (e->kind != EX_STR)
		diag_error(e->loc, "%s: '%s' has no parameters in model '%s'", key,
		           e->s, g->name);
	const char **cand = arena_alloc(T->L->a, (g->nval + 1) * sizeof *cand);
	int n = 0;
	for (int i = 0; i < g->nval; i++)
		if (g->val[i].kind == VK_PARAM)
			cand[n++] = g->val[i].name;
	diag_error_begin(e->loc, "%s: no parameter of model '%s' is named "
	                 "\"%s\"", key, g->name, e->s);
	suggest(e->loc, kl_closest(e->s, cand, n));
}

/* One element of freeze or update: the name of a tensor stands for the
 * parameters of the layer, block or model call that made it (those in
 * its namespace, section 9 of the language), a model's name for the
 * parameters of its calls (MODEL.*), and a string for the parameter of
 * that name, or those inside it ("b1.c"). */
static void
mark_params(Train *T, const Expr *e, const char *key, bool *mark)
{
	const Graph *g = T->g;
	const Binding *b = e->kind == EX_NAME ? find(T, e->s) : NULL;
	bool tensor = b && b->val.kind == VAL_TENSOR &&
	              g->val[b->val.v].kind != VK_LABEL;
	int n;
	if (e->kind == EX_STR) {
		n = mark_ns(g, e->s, false, mark);
	} else if (tensor) {
		n = mark_ns(g, g->val[b->val.v].name, true, mark);
	} else if (e->kind == EX_NAME && !b && find_model(T, e->s)) {
		n = mark_ns(g, e->s, false, mark);
	} else if (e->kind == EX_NAME && !b) {
		undefined(T, e, true);
	} else {
		Val v = eval(T, e);
		bad(T, e, &v, K_PARAMS, NULL, key);
	}
	if (n == 0)
		no_params(T, e, key);
}

/* freeze = [...] or update = [...] (or one name): recorded as the list
 * of the parameters named, in graph order. */
static Cfg *
params(Train *T, const Entry *x)
{
	const Expr *e = x->e;
	bool *mark = arena_alloc(T->L->a, T->g->nval + 1);
	if (e->kind == EX_LIST)
		for (int i = 0; i < e->narg; i++)
			mark_params(T, e->arg[i].e, x->key, mark);
	else
		mark_params(T, e, x->key, mark);
	Cfg *c = new_cfg(T, CFG_LIST, e->loc);
	for (int v = 0; v < T->g->nval; v++)
		if (mark[v])
			cfg_add(T->L->a, c, NULL, value_ref(T, v, e->loc));
	return c;
}

/* ---- entries ---- */

static _Noreturn void
redefined(Loc loc, const char *what, const char *name, Loc prev)
{
	diag_error_begin(loc, "duplicate definition of %s '%s'", what, name);
	diag_note(prev, "previous definition is here");
	diag_exit();
}

/* label NAME: TYPE, a new value in the graph's name space, visible in
 * the rest of its block. */
static Cfg *
label(Train *T, const Entry *x)
{
	Lower *L = T->L;
	const Binding *b = find(T, x->name);
	const Stmt *def = last_def(T->model->stmt, T->model->nstmt, x->name);
	bool is_label = b && b->val.kind == VAL_TENSOR &&
	                T->g->val[b->val.v].kind == VK_LABEL;
	if (b)
		redefined(x->nameloc, "label", x->name,
		          is_label || !def ? b->val.loc : def->loc);
	int v = ir_find_value(T->g, x->name);
	if (v >= 0 && T->g->val[v].kind == VK_LABEL)
		redefined(x->nameloc, "label", x->name, T->g->val[v].loc);
	if (v >= 0)
		diag_error(x->nameloc, "label '%s' has the name of a value of "
		           "model '%s'", x->name, T->g->name);
	APUSH(L->a, L->taken, L->ntaken, L->captaken, x->name);
	v = ir_add_value(T->g, x->name, VK_LABEL, x->type, x->nameloc);
	Val val = {.kind = VAL_TENSOR, .loc = x->nameloc, .v = v};
	APUSH(L->a, T->label, T->nlabel, T->caplabel, ((Binding){x->name, val}));
	return value_ref(T, v, x->loc);
}

static const Key *
find_key(const Entry *x)
{
	const char *cand[countof(keys)];
	for (int i = 0; i < countof(keys); i++) {
		if (strcmp(keys[i].name, x->key) == 0)
			return &keys[i];
		cand[i] = keys[i].name;
	}
	diag_error_begin(x->loc, "unknown train key '%s'", x->key);
	suggest(x->loc, kl_closest(x->key, cand, countof(keys)));
}

/* A key is set once per block; labels repeat, and steps by name. */
static void
check_repeat(const Entry *blk, const Entry *x)
{
	bool step = strcmp(x->key, "step") == 0;
	for (const Entry *y = blk->body; y < x; y++) {
		if (strcmp(y->key, x->key) != 0 || strcmp(x->key, "label") == 0 ||
		    (step && strcmp(x->name, y->name) != 0))
			continue;
		if (step)
			redefined(x->nameloc, "step", x->name, y->nameloc);
		diag_error_begin(x->loc, "'%s' is already set", x->key);
		diag_note(y->loc, "first set here");
		diag_exit();
	}
}

static Cfg *
entry_value(Train *T, const Entry *x, const Key *k)
{
	switch (k->kind) {
	case K_LABEL: return label(T, x);
	case K_STEP: {
		Cfg *c = new_cfg(T, CFG_BLOCK, x->loc);
		c->s = x->name;
		block(T, c, x, true);
		return c;
	}
	case K_LOSS:
	case K_METRICS: return calls(T, x->e, k->kind, x->key);
	case K_OPTIMIZER:
	case K_SCHEDULE:
	case K_STOPPING: return call(T, x->e, k->kind, x->key);
	case K_WEIGHTS: return weights(T, x->e);
	case K_PARAMS: return params(T, x);
	default: return scalar(T, x->e, k->kind, NULL, x->key);
	}
}

/* The section or a step: its entries in order, appended to out.  With
 * steps, each step has the loss; without, the section has it. */
static void
block(Train *T, Cfg *out, const Entry *blk, bool in_step)
{
	int mark = T->nlabel;
	const Entry *loss = NULL, *step = NULL, *w = NULL;
	const Cfg *lossc = NULL, *wc = NULL;
	for (int i = 0; i < blk->nbody; i++) {
		const Entry *x = &blk->body[i];
		const Key *k = find_key(x);
		if (in_step && !k->in_step)
			diag_error(x->loc, "'%s' is not allowed in a step; set it for "
			           "the whole train section", x->key);
		check_repeat(blk, x);
		Cfg *c = entry_value(T, x, k);
		cfg_add(T->L->a, out, k->name, c);
		if (k->kind == K_LOSS)
			loss = x, lossc = c;
		if (k->kind == K_WEIGHTS)
			w = x, wc = c;
		if (k->kind == K_STEP && !step)
			step = x;
	}
	if (loss && step)
		diag_error(loss->loc, "with steps, each step has its own loss; "
		           "move this one into the steps");
	if (!loss && !step && in_step)
		diag_error(blk->nameloc, "step '%s' has no loss", blk->name);
	if (!loss && !step)
		diag_error(blk->loc, "the train section has no loss; add one such "
		           "as loss = cross_entropy(logits, y)");
	if (loss && w)
		check_weights(T, lossc, w, wc);
	T->nlabel = mark;
}

void
kl_train(Lower *L, const Stmt *s, const Binding *b, int n)
{
	Train T = {.L = L, .g = L->g, .b = b, .nb = n};
	for (int i = 0; i < L->prog->ndecl && !T.model; i++) {
		const Decl *d = &L->prog->decl[i];
		if (d->nstmt > 0 && &d->stmt[d->nstmt - 1] == s)
			T.model = d;        /* the section is its last statement */
	}
	if (!T.model)
		die("train section outside a model");
	if (!L->g->train)
		L->g->train = cfg_new(L->a, CFG_BLOCK, s->loc);
	block(&T, L->g->train, s->train, false);
}
