/* parse.c: the .kiln recursive-descent parser, and kl_parse(), the
 * frontend's entry point.
 *
 * Builds the AST of kiln.h from the tokens; the grammar rule of each
 * function is in the comment above it (the whole grammar is in
 * docs/language.md).  The parser checks only syntax and where statements
 * may appear; names, arguments and shapes are checked by check.c and
 * lower.c.  An include is parsed where it stands, by a parser for the
 * included file that adds its declarations to the same Program.  The
 * batch symbol N of input types is replaced by the batch size here.
 */
#define _XOPEN_SOURCE 700      /* realpath */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "frontend.h"
#include "kiln.h"

typedef struct Parser Parser;
struct Parser {
	Arena *a;
	const char *path;           /* relative to the first file's directory,
	                               normalized: one name per file */
	Token *tok;                 /* the current token */
	int64_t batch;              /* what N stands for */
	Program *prog;              /* the declarations of all files */
	const Parser *includer;     /* the parser of the including file */
	int nest;                   /* levels of nesting open (KL_MAXNEST) */
};

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
		    arena_printf(P->a, "%s %s", strchr("aeiou", tok_text[kind][0]) ?
		                 "an" : "a", tok_text[kind]) :
		    arena_printf(P->a, "'%s'", tok_text[kind]);
		error_expected(P, what);
	}
	return next(P);
}

/* Opens one more level of nesting at loc; the caller restores P->nest
 * when it is done.  The bound keeps this recursive parser, and the walks
 * over the tree it builds, within the stack. */
static void
nest(Parser *P, Loc loc)
{
	if (++P->nest > KL_MAXNEST)
		diag_error(loc, "nested more than %d levels deep (parentheses, "
		           "calls, lists, operators, loops and steps each count)",
		           KL_MAXNEST);
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
	} else if (t->kind == TK_IDENT && strcmp(t->s, "N") == 0) {
		e->kind = EX_INT;       /* the batch size, as in types */
		e->i = P->batch;
	}
	return e;
}

/* unary = "-" unary | primary */
static Expr *
unary(Parser *P)
{
	if (!at(P, TK_MINUS))
		return primary(P);
	int level = P->nest;
	nest(P, P->tok->loc);
	Expr *e = new_expr(P, EX_NEG, next(P)->loc);
	e->arg = arena_alloc(P->a, sizeof *e->arg);
	e->arg[0].loc = P->tok->loc;
	e->arg[0].e = unary(P);
	e->narg = 1;
	P->nest = level;
	return e;
}

/* An infix operator is a call of the registry op it names. */
static Expr *
infix(Parser *P, Token *op, Expr *lhs, Expr *rhs)
{
	static const char *const name[NTOK] = {
		[TK_PLUS] = "add", [TK_MINUS] = "sub", [TK_STAR] = "mul",
		[TK_SLASH] = "div", [TK_AT] = "matmul",
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

/* term = unary { ( "*" | "/" | "@" ) unary }
 * Each operator adds a level: the chain is a left-deep tree. */
static Expr *
term(Parser *P)
{
	int level = P->nest;
	Expr *e = unary(P);
	while (at(P, TK_STAR) || at(P, TK_SLASH) || at(P, TK_AT)) {
		Token *op = next(P);
		nest(P, op->loc);
		e = infix(P, op, e, unary(P));
	}
	P->nest = level;
	return e;
}

/* expr = term { ( "+" | "-" ) term } */
static Expr *
expr(Parser *P)
{
	int level = P->nest;
	nest(P, P->tok->loc);
	Expr *e = term(P);
	while (at(P, TK_PLUS) || at(P, TK_MINUS)) {
		Token *op = next(P);
		nest(P, op->loc);
		e = infix(P, op, e, term(P));
	}
	P->nest = level;
	return e;
}

/* dim = INT | "N"   (N: the batch size) */
static int64_t
dim(Parser *P)
{
	Token *d = P->tok;
	if (accept(P, TK_IDENT)) {
		if (strcmp(d->s, "N") != 0)
			diag_error(d->loc, "unknown dimension '%s'; the only named "
			           "dimension is N, the batch size", d->s);
		return P->batch;
	}
	if (!accept(P, TK_INT) || d->i < 1)
		diag_error(d->loc, "a dimension must be a positive integer or N");
	return d->i;
}

/* type = IDENT "[" [ dim { "," dim } [ "," ] ] "]" */
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
		if (t.rank == IR_MAXRANK)
			diag_error(P->tok->loc, "rank is above the maximum %d",
			           IR_MAXRANK);
		Token *d = P->tok;
		t.dim[t.rank++] = dim(P);
		if (!type_fits(&t))     /* refused here, before any arithmetic */
			diag_error(d->loc, "type has too many elements");
		if (!accept(P, TK_COMMA) && !at(P, TK_RBRACK))
			error_expected(P, "',' or ']'");
	}
	next(P);
	return t;
}

static void stmts(Parser *P, const Decl *d, Stmt **out, int *n, bool loop);
static void entries(Parser *P, Entry *e);

/* entry = "label" IDENT ":" type
 *       | "step" ( IDENT | STRING ) "{" { entry } "}"
 *       | KEY "=" expr
 * A key is an identifier or a keyword (seed); train.c checks it. */
static Entry
entry(Parser *P)
{
	Token *k = P->tok;
	if (!at(P, TK_IDENT) && k->kind < TK_KEYWORD0)
		error_expected(P, "a train entry (KEY = value)");
	next(P);
	Entry e = {.key = k->kind == TK_IDENT ? k->s : tok_text[k->kind],
	           .loc = k->loc, .nameloc = P->tok->loc};
	bool step = strcmp(e.key, "step") == 0;
	if (step && (at(P, TK_STR) || at(P, TK_IDENT))) {
		e.name = next(P)->s;
	} else if (step) {
		error_expected(P, "a step name (a word or a string)");
	} else if (strcmp(e.key, "label") == 0) {
		e.name = expect(P, TK_IDENT)->s;
	} else {
		expect(P, TK_EQ);
		e.e = expr(P);
		return e;
	}
	if (step) {
		entries(P, &e);
	} else {
		expect(P, TK_COLON);
		e.type = type(P);
	}
	return e;
}

/* entries = "{" { entry } "}" */
static void
entries(Parser *P, Entry *e)
{
	int cap = 0, level = P->nest;
	nest(P, P->tok->loc);
	expect(P, TK_LBRACE);
	while (!at(P, TK_RBRACE) && !at(P, TK_EOF))
		APUSH(P->a, e->body, e->nbody, cap, entry(P));
	expect(P, TK_RBRACE);
	P->nest = level;
}

/* loop = "repeat" expr "{" { stmt } "}"
 *      | "for" IDENT "in" expr "{" { stmt } "}"
 * (the keyword is already read) */
static void
loop(Parser *P, const Decl *d, Stmt *s)
{
	if (s->kind == ST_FOR) {
		s->name = expect(P, TK_IDENT)->s;
		expect(P, TK_IN);
	}
	s->e = expr(P);
	int level = P->nest;
	nest(P, P->tok->loc);
	expect(P, TK_LBRACE);
	stmts(P, d, &s->body, &s->nbody, true);
	expect(P, TK_RBRACE);
	P->nest = level;
}

/* stmt = "input" IDENT ":" type
 *      | "output" IDENT [ "=" expr ]
 *      | "seed" "=" INT
 *      | "return" expr
 *      | loop
 *      | "train" "{" { entry } "}"
 *      | IDENT "=" expr
 * train is a word like any other but before "{". */
static Stmt
stmt(Parser *P, const Decl *d)
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
	} else if (at(P, TK_REPEAT) || at(P, TK_FOR)) {
		s.kind = next(P)->kind == TK_FOR ? ST_FOR : ST_REPEAT;
		loop(P, d, &s);
	} else if (at(P, TK_IDENT) && strcmp(P->tok->s, "train") == 0 &&
	           peek(P) == TK_LBRACE) {
		s.kind = ST_TRAIN;
		s.train = arena_alloc(P->a, sizeof *s.train);
		*s.train = (Entry){.key = "train", .loc = next(P)->loc};
		entries(P, s.train);
	} else if (at(P, TK_IDENT)) {
		s.kind = ST_ASSIGN;
		s.name = next(P)->s;
		if (strcmp(s.name, "N") == 0)
			diag_error(s.loc, "N is the batch size; it cannot be "
			           "assigned");
		expect(P, TK_EQ);
		s.e = expr(P);
	} else if (at(P, TK_INCLUDE)) {
		diag_error(s.loc, "'include' is only allowed at the top level of a "
		           "file, outside models and blocks");
	} else {
		error_expected(P, "a statement");
	}
	return s;
}

/* Where each statement kind may appear, and why not elsewhere; loc is
 * the statement's first token. */
static void
check_place(const Decl *d, const Stmt *s, Loc loc, bool last, bool in_loop)
{
	static const char *const word[] = {
		[ST_INPUT] = "input", [ST_OUTPUT] = "output", [ST_SEED] = "seed",
		[ST_RETURN] = "return",
	};
	bool block = d->kind == DECL_BLOCK;
	bool model_only = s->kind == ST_INPUT || s->kind == ST_OUTPUT ||
	                  s->kind == ST_SEED;
	if (block && model_only)
		diag_error(loc, "'%s' is only allowed in a model; a block takes "
		           "its inputs as parameters and returns its result",
		           word[s->kind]);
	if (!block && s->kind == ST_RETURN)
		diag_error(loc, "'return' is only allowed in a block; a model "
		           "marks its results with 'output'");
	if (in_loop && (model_only || s->kind == ST_RETURN))
		diag_error(loc, "'%s' is not allowed inside a loop", word[s->kind]);
	if (block && s->kind == ST_RETURN && !last)
		diag_error(loc, "'return' must be the last statement of a block");
	if (s->kind == ST_TRAIN && (block || in_loop))
		diag_error(loc, "a train section is only allowed in a model, "
		           "outside loops");
	if (s->kind == ST_TRAIN && !last)
		diag_error(loc, "the train section must be the last statement of "
		           "a model");
}

/* stmts = { stmt }, up to the closing "}" */
static void
stmts(Parser *P, const Decl *d, Stmt **out, int *n, bool in_loop)
{
	int cap = 0;
	while (!at(P, TK_RBRACE) && !at(P, TK_EOF)) {
		Loc loc = P->tok->loc;
		Stmt s = stmt(P, d);
		check_place(d, &s, loc, at(P, TK_RBRACE), in_loop);
		APUSH(P->a, *out, *n, cap, s);
	}
}

/* body = "{" stmts "}" */
static void
body(Parser *P, Decl *d)
{
	expect(P, TK_LBRACE);
	stmts(P, d, &d->stmt, &d->nstmt, false);
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
		error_expected(P, "'model', 'block' or 'include'");
	Token *name = expect(P, TK_IDENT);
	d.name = name->s;
	d.loc = name->loc;
	if (d.kind == DECL_BLOCK)
		params(P, &d);
	body(P, &d);
	return d;
}

/* ---- include ---- */

/* path without "." parts and with "dir/.." dropped; ".." parts that
 * climb above the start are kept ("../a"), except at the root. */
char *
kl_normalize(Arena *a, const char *path)
{
	size_t len = strlen(path);
	bool abs = path[0] == '/';
	char *out = arena_alloc(a, len + 2), *o = out;
	int *mark = arena_alloc(a, (len + 1) * sizeof *mark);
	int n = 0, ndots = 0;       /* parts kept, of which leading ".." */
	for (const char *p = path; *p; p += *p == '/') {
		size_t k = strcspn(p, "/");
		bool dot = k == 1 && p[0] == '.';
		bool dots = k == 2 && p[0] == '.' && p[1] == '.';
		if (dots && n > ndots) {
			o = out + mark[--n];
		} else if (k && !dot && !(dots && abs)) {
			ndots += dots;
			mark[n++] = (int)(o - out);
			if (o > out || abs)
				*o++ = '/';
			memcpy(o, p, k);
			o += k;
		}
		p += k;
	}
	if (o == out)
		*o++ = abs ? '/' : '.';
	*o = '\0';
	return out;
}

static bool
ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), k = strlen(suffix);
	return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* The directory part of path with its '/', or "" when it has none. */
static const char *
dir_of(Arena *a, const char *path)
{
	const char *slash = strrchr(path, '/');
	return slash ? arena_strndup(a, path, slash - path + 1) : "";
}

/* Whether path, inside dir ("" for the current directory) by its name,
 * is outside it once symbolic links are followed.  A path that does not
 * resolve is left to the read to report.  (onnx() checks its path so
 * too.) */
bool
kl_linked_out(const char *dir, const char *path)
{
	char rdir[PATH_MAX], rpath[PATH_MAX];
	if (!realpath(*dir ? dir : ".", rdir) || !realpath(path, rpath))
		return false;
	size_t n = strlen(rdir);
	if (n == 1)
		return false;           /* the model is in "/" */
	return strncmp(rpath, rdir, n) != 0 || rpath[n] != '/';
}

static _Noreturn void
include_cycle(Parser *P, const Token *t, const char *rel)
{
	const char *chain = rel;
	for (const Parser *q = P; q; q = q->includer) {
		chain = arena_printf(P->a, "%s -> %s", q->path, chain);
		if (strcmp(q->path, rel) == 0)
			break;
	}
	diag_error(t->loc, "include cycle: %s", chain);
}

static void decls(Parser *P);

/* include = "include" STRING
 * The path is relative to the including file's directory and may not
 * leave it, nor the first file's directory through a link.  P->path
 * is relative to the directory of the file given to kiln, so it names
 * every file the same way, whoever includes it. */
static void
include(Parser *P)
{
	next(P);
	Token *t = expect(P, TK_STR);
	const char *norm = kl_normalize(P->a, t->s);
	if (!t->s[0] || t->s[0] == '/')
		diag_error(t->loc, "include path \"%s\" must be relative to the "
		           "directory of this file", t->s);
	if (strcmp(norm, "..") == 0 || strncmp(norm, "../", 3) == 0)
		diag_error(t->loc, "include path \"%s\" leaves the directory of "
		           "this file", t->s);
	if (!ends_with(norm, ".kiln"))
		diag_error(t->loc, "include path \"%s\" is not a .kiln file", t->s);
	const char *rel = arena_printf(P->a, "%s%s", dir_of(P->a, P->path), norm);
	for (const Parser *q = P; q; q = q->includer)
		if (strcmp(q->path, rel) == 0)
			include_cycle(P, t, rel);
	for (int i = 0; i < P->prog->nfiles; i++)
		if (strcmp(P->prog->files[i], rel) == 0)
			return;             /* read once: its declarations are in */
	Program *prog = P->prog;
	APUSH(P->a, prog->files, prog->nfiles, prog->capfiles, rel);
	const char *dir = dir_of(P->a, prog->file);
	const char *file = arena_printf(P->a, "%s%s", dir, rel);
	if (kl_linked_out(dir, file))
		diag_error(t->loc, "include path \"%s\" leaves the model's "
		           "directory (through a link)", t->s);
	struct stat st;             /* a FIFO would block, a device not end */
	if (stat(file, &st) == 0 && !S_ISREG(st.st_mode))
		diag_error(t->loc, "include path \"%s\" is not a regular file",
		           t->s);
	size_t len;
	char *text = read_file(P->a, file, &len);
	if (!text)
		diag_error(t->loc, "cannot read '%s': %s", file, strerror(errno));
	if (strlen(text) != len)
		diag_error(t->loc, "%s: file contains a NUL byte", file);
	diag_source(file, text);
	Parser sub = {.a = P->a, .path = rel, .batch = P->batch,
	              .tok = kl_lex(P->a, file, text), .prog = prog,
	              .includer = P};
	decls(&sub);
}

/* file = { decl | include } EOF */
static void
decls(Parser *P)
{
	Program *prog = P->prog;
	while (!at(P, TK_EOF)) {
		if (at(P, TK_INCLUDE))
			include(P);
		else
			APUSH(P->a, prog->decl, prog->ndecl, prog->capdecl, decl(P));
	}
}

Module *
kl_parse(Arena *a, const char *file, const char *text, const FeOpts *o)
{
	diag_source(file, text);
	Program *prog = arena_alloc(a, sizeof *prog);
	prog->file = file;
	const char *base = strrchr(file, '/') ? strrchr(file, '/') + 1 : file;
	APUSH(a, prog->files, prog->nfiles, prog->capfiles, base);
	Parser P = {.a = a, .path = base, .batch = o->batch,
	            .tok = kl_lex(a, file, text), .prog = prog};
	decls(&P);
	return kl_lower(a, prog);
}
