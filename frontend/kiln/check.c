/* check.c: the checks of a parsed .kiln program that need no shapes.
 *
 * Runs over the whole AST in source order before anything is lowered, so
 * an error in a block is found even when no model calls it: each name is
 * defined once and before its use, each callee exists and its arguments
 * bind to its parameters, every model has an output, and no block calls
 * itself.  Callee lookup and argument binding are shared with lower.c.
 * Messages suggest the closest name when one is near enough to be a typo.
 */
#include <string.h>
#include "kiln.h"

/* The names defined so far in a model or block. */
typedef struct {
	const char *name;
	Loc loc;
} Def;

typedef struct {
	Def *d;
	int n, cap;
} Scope;

static const Def *
scope_find(const Scope *s, const char *name)
{
	for (int i = 0; i < s->n; i++)
		if (strcmp(s->d[i].name, name) == 0)
			return &s->d[i];
	return NULL;
}

static void
define(Lower *L, Scope *s, const char *name, Loc loc)
{
	const Def *d = scope_find(s, name);
	if (d)
		diag_error(loc, "'%s' is already defined (line %d); a name is "
		           "assigned only once", name, d->loc.line);
	APUSH(L->a, s->d, s->n, s->cap, ((Def){name, loc}));
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

/* Index of the candidate closest to s, if close enough to be a typo. */
static int
closest(const char *s, const char *const *cand, int n)
{
	int best = -1, bestd = ((int)strlen(s) + 1) / 3 + 1;
	for (int i = 0; i < n; i++) {
		int d = cand[i] ? distance(s, cand[i]) : 1000;
		if (d < bestd) {
			best = i;
			bestd = d;
		}
	}
	return best;
}

static const char *
did_you_mean(Lower *L, const char *s, const char *const *cand, int n)
{
	int k = closest(s, cand, n);
	return k < 0 ? "" : arena_printf(L->a, "; did you mean '%s'?", cand[k]);
}

/* ---- callees and argument binding ---- */

static const Decl *
find_block(const Lower *L, const char *name)
{
	for (int i = 0; i < L->prog->ndecl; i++) {
		const Decl *d = &L->prog->decl[i];
		if (d->kind == DECL_BLOCK && strcmp(d->name, name) == 0)
			return d;
	}
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

static void
block_slots(Lower *L, Callee *c)
{
	Slot *s = arena_alloc(L->a, (c->block->nparam + 1) * sizeof *s);
	for (int i = 0; i < c->block->nparam; i++)
		s[i] = (Slot){c->block->param[i].name, !c->block->param[i].def};
	c->slot = s;
	c->nslot = c->block->nparam;
}

/* Blocks first, then built-ins, then registry ops; a block may not take
 * the name of either of the others (check_decl). */
bool
kl_callee(Lower *L, const char *name, Callee *c)
{
	*c = (Callee){.name = name, .block = find_block(L, name),
	              .builtin = kl_builtin(name), .op = op_lookup(name)};
	if (c->block) {
		c->kind = CALL_BLOCK;
		block_slots(L, c);
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
	diag_error(a->loc, "%s: unknown argument '%s'%s", c->name, a->key,
	           did_you_mean(L, a->key, cand, c->nslot));
}

static int
slot_of(const Callee *c, const char *key)
{
	for (int i = 0; i < c->nslot; i++)
		if (c->slot[i].name && strcmp(c->slot[i].name, key) == 0)
			return i;
	return -1;
}

/* Matches a call's arguments to the callee's slots, Python-style: the
 * i-th positional argument fills slot i (the parser put positional ones
 * first), a keyword fills the slot of that name.  The result has one
 * entry per slot, NULL where the call gives nothing. */
const Arg **
kl_bind(Lower *L, const Callee *c, const Expr *call)
{
	const Arg **slot = arena_alloc(L->a, (c->nslot + 1) * sizeof *slot);
	for (int i = 0; i < call->narg; i++) {
		const Arg *a = &call->arg[i];
		int k = a->key ? slot_of(c, a->key) : i;
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

/* ---- the check ---- */

static const char **
scope_names(Lower *L, const Scope *sc)
{
	const char **s = arena_alloc(L->a, (sc->n + 1) * sizeof *s);
	for (int i = 0; i < sc->n; i++)
		s[i] = sc->d[i].name;
	return s;
}

/* The statement after the one being checked that defines name, if any. */
static const Stmt *
defined_later(const Lower *L, const char *name)
{
	const Decl *d = L->decl;
	for (int i = L->at + 1; d && i < d->nstmt; i++) {
		const Stmt *s = &d->stmt[i];
		bool defines = s->kind == ST_INPUT || s->kind == ST_ASSIGN ||
		               (s->kind == ST_OUTPUT && s->e);
		if (defines && strcmp(s->name, name) == 0)
			return s;
	}
	return NULL;
}

static _Noreturn void
undefined_name(Lower *L, const Scope *sc, const Expr *e, bool keyword_value)
{
	const Stmt *later = defined_later(L, e->s);
	if (later)
		diag_error(e->loc, "'%s' is used before its definition (line %d)",
		           e->s, later->loc.line);
	const char *hint = did_you_mean(L, e->s, scope_names(L, sc), sc->n);
	if (!*hint && keyword_value)
		hint = arena_printf(L->a, "; string values are quoted: \"%s\"", e->s);
	diag_error(e->loc, "undefined name '%s'%s", e->s, hint);
}

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
		if (L->prog->decl[i].kind == DECL_BLOCK)
			cand[n++] = L->prog->decl[i].name;
	for (int i = 0; i < nb; i++)
		cand[n++] = kl_builtin_at(i)->name;
	for (int i = 0; i < NOP; i++)
		cand[n++] = op_get(i)->name;
	diag_error(e->loc, "unknown function '%s'%s", e->s,
	           did_you_mean(L, e->s, cand, n));
}

/* keyword_value: e is the value of a keyword argument, where a bare word
 * is most likely a string that lacks its quotes. */
static void
check_expr(Lower *L, Scope *sc, const Expr *e, bool keyword_value)
{
	Callee c;
	switch (e->kind) {
	case EX_NAME:
		if (!scope_find(sc, e->s))
			undefined_name(L, sc, e, keyword_value);
		return;
	case EX_CALL:
		if (!kl_callee(L, e->s, &c))
			unknown_function(L, e);
		kl_bind(L, &c, e);
		break;
	default:
		break;
	}
	for (int i = 0; i < e->narg; i++)
		check_expr(L, sc, e->arg[i].e, e->arg[i].key != NULL);
}

static void
check_output(Lower *L, Scope *outs, const Stmt *s)
{
	if (scope_find(outs, s->name))
		diag_error(s->loc, "'%s' is already an output", s->name);
	define(L, outs, s->name, s->loc);
}

static void
check_stmt(Lower *L, Scope *sc, Scope *outs, const Stmt *s, const Stmt **seed)
{
	bool bare_output = s->kind == ST_OUTPUT && !s->e;
	if (s->kind == ST_SEED) {
		if (*seed)
			diag_error(s->loc, "the seed is already set (line %d)",
			           (*seed)->loc.line);
		*seed = s;
		return;
	}
	if (bare_output && !scope_find(sc, s->name))
		undefined_name(L, sc, &(Expr){.s = s->name, .loc = s->loc}, false);
	if (s->kind == ST_OUTPUT)
		check_output(L, outs, s);
	if (s->e)
		check_expr(L, sc, s->e, false);
	if (s->name && !bare_output)
		define(L, sc, s->name, s->loc);
}

static void
check_decl(Lower *L, const Decl *d)
{
	Scope sc = {0}, outs = {0};
	const Stmt *seed = NULL;
	for (const Decl *e = L->prog->decl; e < d; e++)
		if (e->kind == d->kind && strcmp(e->name, d->name) == 0)
			diag_error(d->loc, "%s '%s' is already defined (line %d)",
			           tok_text[d->kind == DECL_MODEL ? TK_MODEL : TK_BLOCK],
			           d->name, e->loc.line);
	bool builtin = kl_builtin(d->name) || op_lookup(d->name) >= 0;
	if (d->kind == DECL_BLOCK && builtin)
		diag_error(d->loc, "block '%s' has the name of a built-in function",
		           d->name);
	L->decl = d;
	L->at = -1;
	for (int i = 0; i < d->nparam; i++) {
		if (d->param[i].def)
			check_expr(L, &sc, d->param[i].def, false);
		define(L, &sc, d->param[i].name, d->param[i].loc);
	}
	for (L->at = 0; L->at < d->nstmt; L->at++)
		check_stmt(L, &sc, &outs, &d->stmt[L->at], &seed);
	if (d->kind == DECL_MODEL && outs.n == 0)
		diag_error(d->loc, "model '%s' has no output; mark its result with "
		           "'output NAME = ...'", d->name);
}

/* Depth-first over the block call graph: state 1 = on the path being
 * walked, 2 = done.  path[] holds the blocks on it, for the message. */
typedef struct {
	int *state;
	const char **path;
	int depth;
} Walk;

static void visit_block(Lower *L, Walk *w, const Decl *b);

static void
visit_expr(Lower *L, Walk *w, const Expr *e)
{
	const Decl *b = e->kind == EX_CALL ? find_block(L, e->s) : NULL;
	if (b && w->state[b - L->prog->decl] == 1) {
		const char *cycle = "";
		int i = w->depth - 1;
		while (strcmp(w->path[i], b->name) != 0)
			i--;
		for (; i < w->depth; i++)
			cycle = arena_printf(L->a, "%s%s -> ", cycle, w->path[i]);
		diag_error(e->loc, "block '%s' is recursive (%s%s)", b->name, cycle,
		           b->name);
	}
	if (b)
		visit_block(L, w, b);
	for (int i = 0; i < e->narg; i++)
		visit_expr(L, w, e->arg[i].e);
}

static void
visit_block(Lower *L, Walk *w, const Decl *b)
{
	int *st = &w->state[b - L->prog->decl];
	if (*st)
		return;
	*st = 1;
	w->path[w->depth++] = b->name;
	for (int i = 0; i < b->nparam; i++)
		if (b->param[i].def)
			visit_expr(L, w, b->param[i].def);
	for (int i = 0; i < b->nstmt; i++)
		if (b->stmt[i].e)
			visit_expr(L, w, b->stmt[i].e);
	w->depth--;
	*st = 2;
}

void
kl_check(Lower *L)
{
	for (int i = 0; i < L->prog->ndecl; i++)
		check_decl(L, &L->prog->decl[i]);
	Walk w = {
		.state = arena_alloc(L->a, (L->prog->ndecl + 1) * sizeof *w.state),
		.path = arena_alloc(L->a, (L->prog->ndecl + 1) * sizeof *w.path),
	};
	for (int i = 0; i < L->prog->ndecl; i++)
		if (L->prog->decl[i].kind == DECL_BLOCK)
			visit_block(L, &w, &L->prog->decl[i]);
}

