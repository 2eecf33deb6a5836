/* parse.c: the .kiln recursive-descent parser, and kl_parse(), the
 * frontend's entry point.
 *
 * Builds the AST of kiln.h from the tokens; the grammar rule of each
 * function is in the comment above it (the whole grammar is in
 * docs/language.md).  The parser checks only syntax and where statements
 * may appear; names, arguments and shapes are checked by lower.c.
 */
#include <string.h>
#include "frontend.h"
#include "kiln.h"

typedef struct {
	Arena *a;
	const char *file;
	Token *tok;                 /* the current token */
} Parser;

static Expr *expr(Parser *P);

static bool
at(const Parser *P, int kind)
{
	return P->tok->kind == kind;
}

/* The kind of the token after the current one. */
static int
peek(const Parser *P)
{
	return P->tok->kind == TK_EOF ? TK_EOF : P->tok[1].kind;
}

static Token *
next(Parser *P)
{
	Token *t = P->tok;
	if (t->kind != TK_EOF)
		P->tok++;
	return t;
}

static bool
accept(Parser *P, int kind)
{
	if (!at(P, kind))
		return false;
	next(P);
	return true;
}

/* How a message shows the current token: 'spelling' or end of file. */
static const char *
found(const Parser *P)
{
	const Token *t = P->tok;
	if (t->kind == TK_EOF)
		return "end of file";
	return arena_printf(P->a, "'%.*s'", t->len, t->p);
}

static _Noreturn void
error_expected(const Parser *P, const char *what)
{
	diag_error(P->tok->loc, "expected %s, found %s", what, found(P));
}

static Token *
expect(Parser *P, int kind)
{
	if (!at(P, kind)) {
		const char *what = kind < TK_PUNCT0 ?
		    arena_printf(P->a, "%s %s", kind == TK_INT ? "an" : "a",
		                 tok_text[kind]) :
		    arena_printf(P->a, "'%s'", tok_text[kind]);
		error_expected(P, what);
	}
	return next(P);
}

static Expr *
new_expr(Parser *P, int kind, Loc loc)
{
	Expr *e = arena_alloc(P->a, sizeof *e);
	e->kind = kind;
	e->loc = loc;
	return e;
}

/* arg = [ IDENT "=" ] expr
 * A keyword such as seed may name an argument too. */
static Arg
arg(Parser *P)
{
	Arg a = {.loc = P->tok->loc};
	bool word = at(P, TK_IDENT) || P->tok->kind >= TK_KEYWORD0;
	if (word && peek(P) == TK_EQ) {
		a.key = next(P)->s;
		next(P);
	}
	a.e = expr(P);
	return a;
}

/* args = [ arg { "," arg } [ "," ] ] close   (lists: expr instead of arg)
 * Keyword arguments may only follow positional ones. */
static void
args(Parser *P, Expr *e, int close, bool keywords)
{
	int cap = 0;
	while (!at(P, close)) {
		Arg a = {.loc = P->tok->loc};
		if (keywords)
			a = arg(P);
		else
			a.e = expr(P);
		if (!a.key && e->narg > 0 && e->arg[e->narg - 1].key)
			diag_error(a.loc, "positional argument after keyword argument");
		APUSH(P->a, e->arg, e->narg, cap, a);
		if (!accept(P, TK_COMMA) && !at(P, close))
			error_expected(P, arena_printf(P->a, "',' or '%s'",
			                               tok_text[close]));
	}
	next(P);
}

/* primary = INT | FLOAT | STRING | "true" | "false"
 *         | IDENT [ "(" args ")" ] | "[" args "]" | "(" expr ")" */
static Expr *
primary(Parser *P)
{
	static const int kind[NTOK] = {
		[TK_INT] = EX_INT, [TK_FLOAT] = EX_FLOAT, [TK_STR] = EX_STR,
		[TK_TRUE] = EX_BOOL, [TK_FALSE] = EX_BOOL, [TK_IDENT] = EX_NAME,
		[TK_LBRACK] = EX_LIST,
	};
	Token *t = P->tok;
	if (accept(P, TK_LPAREN)) {
		Expr *e = expr(P);
		expect(P, TK_RPAREN);
		return e;
	}
	if (!kind[t->kind])
		error_expected(P, "an expression");
	next(P);
	Expr *e = new_expr(P, kind[t->kind], t->loc);
	e->i = t->kind == TK_TRUE ? 1 : t->i;
	e->f = t->f;
	e->s = t->s;
	if (t->kind == TK_LBRACK)
		args(P, e, TK_RBRACK, false);
	if (t->kind == TK_IDENT && accept(P, TK_LPAREN)) {
		e->kind = EX_CALL;
		args(P, e, TK_RPAREN, true);
	}
	return e;
}

/* unary = "-" unary | primary */
static Expr *
unary(Parser *P)
{
	if (!at(P, TK_MINUS))
		return primary(P);
	Expr *e = new_expr(P, EX_NEG, next(P)->loc);
	e->arg = arena_alloc(P->a, sizeof *e->arg);
	e->arg[0].loc = P->tok->loc;
	e->arg[0].e = unary(P);
	e->narg = 1;
	return e;
}

/* An infix operator is a call of the registry op it names. */
static Expr *
infix(Parser *P, Token *op, Expr *lhs, Expr *rhs)
{
	static const char *const name[NTOK] = {
		[TK_PLUS] = "add", [TK_MINUS] = "sub", [TK_STAR] = "mul",
		[TK_SLASH] = "div",
	};
	Expr *e = new_expr(P, EX_CALL, op->loc);
	e->s = name[op->kind];
	e->op = op->kind;
	e->arg = arena_alloc(P->a, 2 * sizeof *e->arg);
	e->arg[0] = (Arg){.loc = lhs->loc, .e = lhs};
	e->arg[1] = (Arg){.loc = rhs->loc, .e = rhs};
	e->narg = 2;
	return e;
}

/* term = unary { ( "*" | "/" ) unary } */
static Expr *
term(Parser *P)
{
	Expr *e = unary(P);
	while (at(P, TK_STAR) || at(P, TK_SLASH)) {
		Token *op = next(P);
		e = infix(P, op, e, unary(P));
	}
	return e;
}

/* expr = term { ( "+" | "-" ) term } */
static Expr *
expr(Parser *P)
{
	Expr *e = term(P);
	while (at(P, TK_PLUS) || at(P, TK_MINUS)) {
		Token *op = next(P);
		e = infix(P, op, e, term(P));
	}
	return e;
}

/* type = IDENT "[" [ INT { "," INT } ] "]" */
static Type
type(Parser *P)
{
	Token *dt = expect(P, TK_IDENT);
	Type t = {.dtype = dt_lookup(dt->s)};
	if (t.dtype < 0)
		diag_error(dt->loc, "unknown element type '%s' (expected f32, f64, "
		           "i64, i32, i8, u8 or bool)", dt->s);
	expect(P, TK_LBRACK);
	while (!at(P, TK_RBRACK)) {
		Token *d = P->tok;
		if (!accept(P, TK_INT) || d->i < 1)
			diag_error(d->loc, "a dimension must be a positive integer");
		if (t.rank == IR_MAXRANK)
			diag_error(d->loc, "rank is above the maximum %d", IR_MAXRANK);
		t.dim[t.rank++] = d->i;
		if (!accept(P, TK_COMMA) && !at(P, TK_RBRACK))
			error_expected(P, "',' or ']'");
	}
	next(P);
	return t;
}

/* stmt = "input" IDENT ":" type
 *      | "output" IDENT [ "=" expr ]
 *      | "seed" "=" INT
 *      | "return" expr
 *      | IDENT "=" expr */
static Stmt
stmt(Parser *P)
{
	Stmt s = {.loc = P->tok->loc};
	if (accept(P, TK_INPUT)) {
		s.kind = ST_INPUT;
		s.loc = P->tok->loc;
		s.name = expect(P, TK_IDENT)->s;
		expect(P, TK_COLON);
		s.type = type(P);
	} else if (accept(P, TK_OUTPUT)) {
		s.kind = ST_OUTPUT;
		s.loc = P->tok->loc;
		s.name = expect(P, TK_IDENT)->s;
		if (accept(P, TK_EQ))
			s.e = expr(P);
	} else if (accept(P, TK_SEED)) {
		s.kind = ST_SEED;
		expect(P, TK_EQ);
		s.seed = expect(P, TK_INT)->i;
	} else if (accept(P, TK_RETURN)) {
		s.kind = ST_RETURN;
		s.e = expr(P);
	} else if (at(P, TK_IDENT)) {
		s.kind = ST_ASSIGN;
		s.name = next(P)->s;
		expect(P, TK_EQ);
		s.e = expr(P);
	} else {
		error_expected(P, "a statement");
	}
	return s;
}

/* Where each statement kind may appear, and why not elsewhere; loc is
 * the statement's first token. */
static void
check_place(const Decl *d, const Stmt *s, Loc loc, bool last)
{
	static const char *const model_only[] = {
		[ST_INPUT] = "input", [ST_OUTPUT] = "output", [ST_SEED] = "seed",
	};
	bool block = d->kind == DECL_BLOCK;
	if (block && s->kind < countof(model_only) && model_only[s->kind])
		diag_error(loc, "'%s' is only allowed in a model; a block takes "
		           "its inputs as parameters and returns its result",
		           model_only[s->kind]);
	if (!block && s->kind == ST_RETURN)
		diag_error(loc, "'return' is only allowed in a block; a model "
		           "marks its results with 'output'");
	if (block && s->kind == ST_RETURN && !last)
		diag_error(loc, "'return' must be the last statement of a block");
}

/* body = "{" { stmt } "}" */
static void
body(Parser *P, Decl *d)
{
	int cap = 0;
	expect(P, TK_LBRACE);
	while (!at(P, TK_RBRACE) && !at(P, TK_EOF)) {
		Loc loc = P->tok->loc;
		Stmt s = stmt(P);
		check_place(d, &s, loc, at(P, TK_RBRACE));
		APUSH(P->a, d->stmt, d->nstmt, cap, s);
	}
	Token *close = expect(P, TK_RBRACE);
	bool ret = d->nstmt > 0 && d->stmt[d->nstmt - 1].kind == ST_RETURN;
	if (d->kind == DECL_BLOCK && !ret)
		diag_error(close->loc, "block '%s' must end with a return statement",
		           d->name);
}

/* param = IDENT [ "=" expr ] */
static Param
param(Parser *P)
{
	Param p = {.loc = P->tok->loc};
	p.name = expect(P, TK_IDENT)->s;
	if (accept(P, TK_EQ))
		p.def = expr(P);
	return p;
}

/* params = "(" [ param { "," param } [ "," ] ] ")" */
static void
params(Parser *P, Decl *d)
{
	int cap = 0;
	expect(P, TK_LPAREN);
	while (!at(P, TK_RPAREN)) {
		Param p = param(P);
		if (!p.def && d->nparam > 0 && d->param[d->nparam - 1].def)
			diag_error(p.loc, "parameter '%s' without a default follows "
			           "one with a default", p.name);
		APUSH(P->a, d->param, d->nparam, cap, p);
		if (!accept(P, TK_COMMA) && !at(P, TK_RPAREN))
			error_expected(P, "',' or ')'");
	}
	next(P);
}

/* decl = "model" IDENT body | "block" IDENT params body */
static Decl
decl(Parser *P)
{
	Decl d = {0};
	if (accept(P, TK_MODEL))
		d.kind = DECL_MODEL;
	else if (accept(P, TK_BLOCK))
		d.kind = DECL_BLOCK;
	else
		error_expected(P, "'model' or 'block'");
	Token *name = expect(P, TK_IDENT);
	d.name = name->s;
	d.loc = name->loc;
	if (d.kind == DECL_BLOCK)
		params(P, &d);
	body(P, &d);
	return d;
}

/* program = { decl } EOF */
static Program *
program(Parser *P)
{
	Program *prog = arena_alloc(P->a, sizeof *prog);
	int cap = 0;
	prog->file = P->file;
	while (!at(P, TK_EOF))
		APUSH(P->a, prog->decl, prog->ndecl, cap, decl(P));
	return prog;
}

Module *
kl_parse(Arena *a, const char *file, const char *text)
{
	diag_source(file, text);
	Parser P = {.a = a, .file = file, .tok = kl_lex(a, file, text)};
	return kl_lower(a, program(&P));
}
