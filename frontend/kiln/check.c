/* check.c: the checks of a parsed .kiln program that need no shapes.
 *
 * Runs over the whole AST in source order before anything is lowered, so
 * an error in a block is found even when no model calls it: models and
 * blocks are defined once, each name is defined before its use (a name
 * may be assigned again: later uses see the newest value), each callee
 * exists and its arguments bind to its parameters, every model has an
 * output and uses each input, and no block or model calls itself.
 * Callee lookup and argument binding are shared with lower.c.  Where a
 * name looks like a typo, a note after the error suggests the closest one.
 */
#include <string.h>
#include "kiln.h"

/* A name visible at some point of a model or block. */
typedef struct {
	const char *name;
	Loc loc;                    /* where its current value was assigned */
	int input;                  /* index in Check.in while it is still the
	                               model's input, else -1 */
} Def;

typedef struct {
	const Stmt *s;              /* the input statement */
	bool used;
} Input;

/* The state of checking one model or block. */
typedef struct {
	Lower *L;
	const Decl *decl;
	Def *d;                     /* visible names; loop bodies push and pop */
	int n, cap;
	Input *in;                  /* a model's inputs */
	int nin, capin;
	Def *out;                   /* outputs so far */
	int nout, capout;
	const Stmt *seed;
} Check;

static Def *
find(Def *d, int n, const char *name)
{
	for (int i = n - 1; i >= 0; i--)
		if (strcmp(d[i].name, name) == 0)
			return &d[i];
	return NULL;
}

static _Noreturn void
duplicate(Loc loc, const char *what, const char *name, Loc prev)
{
	diag_error_begin(loc, "duplicate definition of %s '%s'", what, name);
	diag_note(prev, "previous definition is here");
	diag_exit();
}

/* An input, parameter or loop variable: a new name.  The first two may
 * not repeat a visible one; a loop variable shadows it in the body. */
static void
define(Check *C, const char *name, Loc loc, const char *what, int input)
{
	const Def *d = find(C->d, C->n, name);
	if (d && what)
		duplicate(loc, what, name, d->loc);
	APUSH(C->L->a, C->d, C->n, C->cap, ((Def){name, loc, input}));
}

/* `name = ...`: a visible name takes the new value (in a loop body, also
 * after the loop); another is new, and local to the innermost loop. */
static void
assign(Check *C, const char *name, Loc loc)
{
	Def *d = find(C->d, C->n, name);
	if (d)
		*d = (Def){name, loc, -1};
	else
		APUSH(C->L->a, C->d, C->n, C->cap, ((Def){name, loc, -1}));
}

/* ---- suggestions ---- */

/* Optimal string alignment distance: edits, counting a swap as one. */
static int
distance(const char *a, const char *b)
{
	int n = (int)strlen(a), m = (int)strlen(b);
	if (n > 63 || m > 63)
		return 1000;
	int d[64][64];
	for (int i = 0; i <= n; i++)
		for (int j = 0; j <= m; j++) {
			if (!i || !j) {
				d[i][j] = i + j;
				continue;
			}
			int c = a[i - 1] != b[j - 1];
			d[i][j] = MIN(MIN(d[i - 1][j] + 1, d[i][j - 1] + 1),
			              d[i - 1][j - 1] + c);
			if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
				d[i][j] = MIN(d[i][j], d[i - 2][j - 2] + 1);
		}
	return d[n][m];
}

/* The candidate closest to s, if close enough to be a typo, or NULL. */
const char *
kl_closest(const char *s, const char *const *cand, int n)
{
	const char *best = NULL;
	int bestd = ((int)strlen(s) + 1) / 3 + 1;
	for (int i = 0; i < n; i++) {
		int d = cand[i] ? distance(s, cand[i]) : 1000;
		if (d < bestd) {
			best = cand[i];
			bestd = d;
		}
	}
	return best;
}

/* Ends an error begun with diag_error_begin: the suggestion, if any, as a
 * note at the same place. */
static _Noreturn void
suggest(Loc loc, const char *cand)
{
	if (cand)
		diag_note(loc, "did you mean '%s'?", cand);
	diag_exit();
}

/* ---- callees and argument binding ---- */

static const Decl *
find_decl(const Lower *L, const char *name)
{
	for (int i = 0; i < L->prog->ndecl; i++)
		if (strcmp(L->prog->decl[i].name, name) == 0)
			return &L->prog->decl[i];
	return NULL;
}

/* A registry op's slots: its operands (positional only), then its
 * attributes in registry order. */
static void
op_slots(Lower *L, Callee *c)
{
	const OpInfo *o = op_get(c->op);
	Slot *s = arena_alloc(L->a, (o->maxin + o->nattr) * sizeof *s);
	for (int i = 0; i < o->maxin; i++)
		s[i] = (Slot){NULL, i < o->minin};
	for (int i = 0; i < o->nattr; i++) {
		const AttrInfo *ai = &attr_info[o->attr0 + i];
		s[o->maxin + i] = (Slot){ai->name, !ai->def};
	}
	c->slot = s;
	c->nslot = o->maxin + o->nattr;
}

/* The input statements of a model, in order. */
const Stmt **
kl_inputs(Lower *L, const Decl *model, int *n)
{
	const Stmt **in = arena_alloc(L->a, (model->nstmt + 1) * sizeof *in);
	*n = 0;
	for (int i = 0; i < model->nstmt; i++)
		if (model->stmt[i].kind == ST_INPUT)
			in[(*n)++] = &model->stmt[i];
	return in;
}

/* A block's slots are its parameters, a model's its inputs. */
static void
decl_slots(Lower *L, Callee *c)
{
	const Decl *d = c->decl;
	Slot *s = arena_alloc(L->a, (d->nparam + d->nstmt + 1) * sizeof *s);
	if (d->kind == DECL_BLOCK) {
		for (int i = 0; i < d->nparam; i++)
			s[i] = (Slot){d->param[i].name, !d->param[i].def};
		c->nslot = d->nparam;
	} else {
		const Stmt **in = kl_inputs(L, d, &c->nslot);
		for (int i = 0; i < c->nslot; i++)
			s[i] = (Slot){in[i]->name, true};
	}
	c->slot = s;
}

/* Blocks and models first, then built-ins, then registry ops; a block or
 * model may not take the name of either of the others (check_names). */
bool
kl_callee(Lower *L, const char *name, Callee *c)
{
	*c = (Callee){.name = name, .decl = find_decl(L, name),
	              .builtin = kl_builtin(name), .op = op_lookup(name)};
	if (c->decl) {
		c->kind = c->decl->kind == DECL_BLOCK ? CALL_BLOCK : CALL_MODEL;
		decl_slots(L, c);
	} else if (c->builtin) {
		c->kind = CALL_BUILTIN;
		c->slot = c->builtin->slot;
		while (c->nslot < KL_MAXSLOT && c->slot[c->nslot].name)
			c->nslot++;
	} else if (c->op >= 0) {
		c->kind = CALL_OP;
		op_slots(L, c);
	} else {
		return false;
	}
	return true;
}

static _Noreturn void
unknown_keyword(Lower *L, const Callee *c, const Arg *a)
{
	const char **cand = arena_alloc(L->a, c->nslot * sizeof *cand);
	for (int i = 0; i < c->nslot; i++)
		cand[i] = c->slot[i].name;
	diag_error_begin(a->loc, "%s: unknown argument '%s'", c->name, a->key);
	suggest(a->loc, kl_closest(a->key, cand, c->nslot));
}

static int
slot_of(const Callee *c, const char *key)
{
	for (int i = 0; i < c->nslot; i++)
		if (c->slot[i].name && strcmp(c->slot[i].name, key) == 0)
			return i;
	return -1;
}

/* An op's operands may be written as one list, Keras-style (concat([a,
 * b], axis=1), add([a, b])): a list literal as the first argument of an
 * op call fills its operands, and the positional arguments after it are
 * the attributes.  Returns the slot of the second argument, or 0 when
 * the call has no such list. */
static int
spread(const Callee *c, const Expr *call, const Arg **slot)
{
	if (c->kind != CALL_OP || call->op || call->narg == 0 ||
	    call->arg[0].key || call->arg[0].e->kind != EX_LIST)
		return 0;
	const Expr *list = call->arg[0].e;
	int max = op_get(c->op)->maxin;
	if (list->narg > max)
		diag_error(list->arg[max].loc, "%s: too many operands in the list "
		           "(it takes %d, got %d)", c->name, max, list->narg);
	for (int i = 0; i < list->narg; i++)
		slot[i] = &list->arg[i];
	return max;
}

/* Matches a call's arguments to the callee's slots, Python-style: the
 * i-th positional argument fills slot i (the parser put positional ones
 * first), a keyword fills the slot of that name.  The result has one
 * entry per slot, NULL where the call gives nothing. */
const Arg **
kl_bind(Lower *L, const Callee *c, const Expr *call)
{
	const Arg **slot = arena_alloc(L->a, (c->nslot + 1) * sizeof *slot);
	int first = spread(c, call, slot);
	for (int i = first ? 1 : 0; i < call->narg; i++) {
		const Arg *a = &call->arg[i];
		int k = a->key ? slot_of(c, a->key) : first ? first + i - 1 : i;
		if (a->key && k < 0)
			unknown_keyword(L, c, a);
		if (k >= c->nslot)
			diag_error(a->loc, "%s: too many arguments (it takes %d, got "
			           "%d)", c->name, c->nslot, call->narg);
		if (slot[k])
			diag_error(a->loc, "%s: argument '%s' is given twice", c->name,
			           c->slot[k].name);
		slot[k] = a;
	}
	for (int k = 0; k < c->nslot; k++) {
		if (slot[k] || !c->slot[k].req)
			continue;
		if (!c->slot[k].name)
			diag_error(call->loc, "%s: missing operand %d", c->name, k + 1);
		diag_error(call->loc, "%s: missing argument '%s'", c->name,
		           c->slot[k].name);
	}
	return slot;
}

/* ---- names in a model or block ---- */

static bool
after(Loc a, Loc b)
{
	return a.line > b.line || (a.line == b.line && a.col > b.col);
}

static bool
defines(const Stmt *s, const char *name)
{
	bool def = s->kind == ST_INPUT || s->kind == ST_ASSIGN ||
	           (s->kind == ST_OUTPUT && s->e);
	return def && strcmp(s->name, name) == 0;
}

/* The first statement after loc that defines name, at any depth. */
static const Stmt *
defined_after(const Stmt *s, int n, const char *name, Loc loc)
{
	for (int i = 0; i < n; i++) {
		const Stmt *t = &s[i];
		if (defines(t, name) && after(t->loc, loc))
			return t;
		t = defined_after(t->body, t->nbody, name, loc);
		if (t)
			return t;
	}
	return NULL;
}

/* The outermost loop whose body defines name. */
static const Stmt *
loop_defining(const Stmt *s, int n, const char *name)
{
	for (int i = 0; i < n; i++) {
		const Stmt *t = &s[i];
		if (t->nbody && (defined_after(t->body, t->nbody, name,
		                               (Loc){0}) ||
		                 loop_defining(t->body, t->nbody, name)))
			return t;
	}
	return NULL;
}

static _Noreturn void
undefined_name(Check *C, const char *name, Loc loc, bool keyword_value)
{
	const Decl *d = C->decl;
	const Stmt *later = defined_after(d->stmt, d->nstmt, name, loc);
	if (later)
		diag_error(loc, "'%s' is used before its definition (line %d)",
		           name, later->loc.line);
	const Stmt *loop = loop_defining(d->stmt, d->nstmt, name);
	if (loop)
		diag_error(loc, "'%s' is defined only inside the loop at line %d; "
		           "assign it before the loop to use it after", name,
		           loop->loc.line);
	const char **cand = arena_alloc(C->L->a, (C->n + 1) * sizeof *cand);
	for (int i = 0; i < C->n; i++)
		cand[i] = C->d[i].name;
	const char *near = kl_closest(name, cand, C->n);
	diag_error_begin(loc, "undefined name '%s'", name);
	if (!near && keyword_value)
		diag_note(loc, "string values are quoted: \"%s\"", name);
	suggest(loc, near);
}

static void
use(Check *C, const char *name, Loc loc, bool keyword_value)
{
	Def *d = find(C->d, C->n, name);
	if (!d)
		undefined_name(C, name, loc, keyword_value);
	if (d->input >= 0)
		C->in[d->input].used = true;
}

/* Candidates for an unknown function: blocks, models, built-ins, ops. */
static _Noreturn void
unknown_function(Lower *L, const Expr *e)
{
	int nb = 0;
	while (kl_builtin_at(nb))
		nb++;
	const char **cand = arena_alloc(L->a, (L->prog->ndecl + NOP + nb) *
	                                sizeof *cand);
	int n = 0;
	for (int i = 0; i < L->prog->ndecl; i++)
		cand[n++] = L->prog->decl[i].name;
	for (int i = 0; i < nb; i++)
		cand[n++] = kl_builtin_at(i)->name;
	for (int i = 0; i < NOP; i++)
		cand[n++] = op_get(i)->name;
	diag_error_begin(e->loc, "unknown function '%s'", e->s);
	suggest(e->loc, kl_closest(e->s, cand, n));
}

static int
count_outputs(const Decl *model)
{
	int n = 0;
	for (int i = 0; i < model->nstmt; i++)
		n += model->stmt[i].kind == ST_OUTPUT;
	return n;
}

/* keyword_value: e is the value of a keyword argument, where a bare word
 * is most likely a string that lacks its quotes. */
static void
check_expr(Check *C, const Expr *e, bool keyword_value)
{
	Callee c;
	switch (e->kind) {
	case EX_NAME:
		use(C, e->s, e->loc, keyword_value);
		return;
	case EX_CALL:
		if (!kl_callee(C->L, e->s, &c))
			unknown_function(C->L, e);
		kl_bind(C->L, &c, e);
		if (c.kind == CALL_MODEL && count_outputs(c.decl) != 1)
			diag_error(e->loc, "model '%s' has %d outputs; only a model "
			           "with one output can be called", e->s,
			           count_outputs(c.decl));
		break;
	default:
		break;
	}
	for (int i = 0; i < e->narg; i++)
		check_expr(C, e->arg[i].e, e->arg[i].key != NULL);
}

static void check_stmts(Check *C, const Stmt *s, int n);

static void
check_output(Check *C, const Stmt *s)
{
	if (find(C->out, C->nout, s->name))
		diag_error(s->loc, "'%s' is already an output", s->name);
	APUSH(C->L->a, C->out, C->nout, C->capout, ((Def){s->name, s->loc, -1}));
}

/* A loop body's new names are gone after each pass through it. */
static void
check_loop(Check *C, const Stmt *s)
{
	check_expr(C, s->e, false);
	int mark = C->n;
	if (s->kind == ST_FOR)
		define(C, s->name, s->loc, NULL, -1);
	check_stmts(C, s->body, s->nbody);
	C->n = mark;
}

static void
check_stmt(Check *C, const Stmt *s)
{
	switch (s->kind) {
	case ST_SEED:
		if (C->seed)
			diag_error(s->loc, "the seed is already set (line %d)",
			           C->seed->loc.line);
		C->seed = s;
		return;
	case ST_INPUT:
		define(C, s->name, s->loc, "input", C->nin);
		APUSH(C->L->a, C->in, C->nin, C->capin, ((Input){s, false}));
		return;
	case ST_REPEAT:
	case ST_FOR:
		check_loop(C, s);
		return;
	case ST_OUTPUT:
		if (!s->e)
			use(C, s->name, s->loc, false);
		check_output(C, s);
		break;
	default:
		break;
	}
	if (s->e)
		check_expr(C, s->e, false);
	if (s->e && s->name)
		assign(C, s->name, s->loc);
}

static void
check_stmts(Check *C, const Stmt *s, int n)
{
	for (int i = 0; i < n; i++)
		check_stmt(C, &s[i]);
}

static void
check_decl(Lower *L, const Decl *d)
{
	Check C = {.L = L, .decl = d};
	for (int i = 0; i < d->nparam; i++) {
		if (d->param[i].def)
			check_expr(&C, d->param[i].def, false);
		define(&C, d->param[i].name, d->param[i].loc, "parameter", -1);
	}
	check_stmts(&C, d->stmt, d->nstmt);
	if (d->kind == DECL_MODEL && C.nout == 0)
		diag_error(d->loc, "model '%s' has no output; mark its result with "
		           "'output NAME = ...'", d->name);
	for (int i = 0; i < C.nin; i++)
		if (!C.in[i].used)
			diag_error(C.in[i].s->loc, "input '%s' is never used",
			           C.in[i].s->name);
}

/* Models and blocks share one namespace with the built-in functions. */
static void
check_names(Lower *L, const Decl *d)
{
	const char *kind = tok_text[d->kind == DECL_MODEL ? TK_MODEL : TK_BLOCK];
	for (const Decl *e = L->prog->decl; e < d; e++)
		if (strcmp(e->name, d->name) == 0)
			duplicate(d->loc, kind, d->name, e->loc);
	if (kl_builtin(d->name) || op_lookup(d->name) >= 0)
		diag_error(d->loc, "%s '%s' has the name of a built-in function",
		           kind, d->name);
}

/* ---- cycles ---- */

/* Depth-first over the call graph of blocks and models: state 1 = on the
 * path being walked, 2 = done.  path[] holds the names on it.  Lowering
 * inlines each call, recursing through the expressions and loops of the
 * callee, so the levels on the way down (level) plus the height of what
 * is below (height[], kept per declaration once done) are bounded. */
typedef struct {
	int *state;
	int *height;                /* per declaration, once done */
	const char **path;
	int depth;
	int level;                  /* expressions and loops being walked */
} Walk;

static int visit_decl(Lower *L, Walk *w, const Decl *d);

static void
too_deep(Loc loc)
{
	diag_error(loc, "nested more than %d levels deep, counting the "
	           "expressions and loops of the blocks and models called",
	           KL_MAXDEPTH);
}

/* Returns the height of e: its levels and those of what it calls. */
static int
visit_expr(Lower *L, Walk *w, const Expr *e)
{
	if (++w->level > KL_MAXDEPTH)
		too_deep(e->loc);
	const Decl *d = e->kind == EX_CALL ? find_decl(L, e->s) : NULL;
	if (d && w->state[d - L->prog->decl] == 1) {
		const char *cycle = "";
		int i = w->depth - 1;
		while (strcmp(w->path[i], d->name) != 0)
			i--;
		for (; i < w->depth; i++)
			cycle = arena_printf(L->a, "%s%s -> ", cycle, w->path[i]);
		diag_error(e->loc, "cycle of calls: %s%s; a block or model cannot "
		           "call itself", cycle, d->name);
	}
	int h = d ? visit_decl(L, w, d) : 0;
	if (w->level + h > KL_MAXDEPTH)
		too_deep(e->loc);
	for (int i = 0; i < e->narg; i++) {
		int a = visit_expr(L, w, e->arg[i].e);
		h = MAX(h, a);
	}
	w->level--;
	return h + 1;
}

static int
visit_stmts(Lower *L, Walk *w, const Stmt *s, int n)
{
	int h = 0;
	for (int i = 0; i < n; i++) {
		int k = s[i].e ? visit_expr(L, w, s[i].e) : 0;
		if (s[i].nbody) {
			w->level++;         /* a loop's body */
			int b = 1 + visit_stmts(L, w, s[i].body, s[i].nbody);
			k = MAX(k, b);
			w->level--;
		}
		h = MAX(h, k);
	}
	return h;
}

static int
visit_decl(Lower *L, Walk *w, const Decl *d)
{
	int at = (int)(d - L->prog->decl);
	if (w->state[at])
		return w->height[at];
	w->state[at] = 1;
	w->path[w->depth++] = d->name;
	int h = 0;
	for (int i = 0; i < d->nparam; i++) {
		int k = d->param[i].def ? visit_expr(L, w, d->param[i].def) : 0;
		h = MAX(h, k);
	}
	int k = visit_stmts(L, w, d->stmt, d->nstmt);
	h = MAX(h, k);
	w->depth--;
	w->state[at] = 2;
	return w->height[at] = h;
}

void
kl_check(Lower *L)
{
	for (int i = 0; i < L->prog->ndecl; i++)
		check_names(L, &L->prog->decl[i]);
	for (int i = 0; i < L->prog->ndecl; i++)
		check_decl(L, &L->prog->decl[i]);
	Walk w = {
		.state = arena_alloc(L->a, (L->prog->ndecl + 1) * sizeof *w.state),
		.height = arena_alloc(L->a, (L->prog->ndecl + 1) * sizeof *w.height),
		.path = arena_alloc(L->a, (L->prog->ndecl + 1) * sizeof *w.path),
	};
	for (int i = 0; i < L->prog->ndecl; i++)
		visit_decl(L, &w, &L->prog->decl[i]);
}
