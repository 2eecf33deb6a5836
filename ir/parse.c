/* parse.c: the .kir reader (grammar in docs/ir.md).
 *
 * It reads everything ir_print() writes, with any spacing, so print,
 * parse, print gives the same bytes.  The lexer makes one token at a
 * time; a newline ends a statement except inside (), [] and an op's {}.
 * The graph is built with the ir.c functions, and each node goes through
 * its shape rule as soon as it is read, so a bad operand or a wrong result
 * type is reported at the op that has it.  The first error ends the run.
 * A node or declaration without a written loc(...) gets no location, so
 * printing it adds none.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "ir.h"

enum {
	TK_EOF,
	TK_NL,          /* end of a statement */
	TK_PUNCT,       /* one of ( ) [ ] { } , : = */
	TK_IDENT,       /* keyword, op, dtype or attribute name; also _ */
	TK_NUM,         /* integer or float, nan and inf included */
	TK_STR,         /* "quoted string" */
	TK_LOCAL,       /* %name */
	TK_GLOBAL,      /* $name */
	TK_GRAPH,       /* @name */
};

typedef struct {
	int kind;                   /* TK_ */
	const char *p;              /* its text in the source */
	int len;
	int line, col;
	char *s;                    /* decoded string or name after a sigil */
} Token;

static Arena *arena;
static const char *file;        /* source name, for locations */
static const char *text;        /* the whole source */
static const char *src;         /* lexer position */
static const char *srcend;      /* end of the source */
static const char *bol;         /* start of the current line */
static int line;
static int depth;               /* open (, [ and attribute { */
static Token tok;               /* current token */
static Module *mod;
static Graph *g;                /* graph being read */
static int *defline;            /* source line defining each value of g */
static int ndefline, capdefline;

static Loc
at(const Token *t)
{
	return (Loc){.file = file, .line = t->line, .col = t->col};
}

static Loc
here(const char *p)
{
	return (Loc){.file = file, .line = line, .col = (int)(p - bol) + 1};
}

static bool
is_digit(int c)
{
	return '0' <= c && c <= '9';
}

static bool
is_alpha(int c)
{
	return ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z');
}

static bool
is_bare(int c)
{
	return is_alpha(c) || is_digit(c) || c == '_' || c == '.';
}

static int
hexval(int c)
{
	if (is_digit(c))
		return c - '0';
	if ('a' <= c && c <= 'f')
		return c - 'a' + 10;
	if ('A' <= c && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Skips blanks and comments; a newline is a blank only inside (), [] or
 * an op's {}. */
static void
skip_space(void)
{
	for (;;) {
		if (*src == ' ' || *src == '\t' || *src == '\r') {
			src++;
		} else if (*src == '\n' && depth > 0) {
			bol = ++src;
			line++;
		} else if (src[0] == '/' && src[1] == '/') {
			while (*src && *src != '\n')
				src++;
		} else {
			return;
		}
	}
}

/* string := '"' {char | '\"' | '\\' | '\' hex hex} '"', on one line */
static char *
lex_string(void)
{
	const char *start = src++;
	char *s = arena_alloc(arena, strcspn(src, "\n") + 1), *d = s;
	while (*src != '"') {
		const char *c = src;
		if (*c == '\n' || !*c)
			diag_error(here(start), "unterminated string");
		if (*c != '\\') {
			*d++ = *src++;
			continue;
		}
		if (c[1] == '"' || c[1] == '\\') {
			*d++ = c[1];
			src += 2;
			continue;
		}
		int hi = hexval(c[1]), lo = hi < 0 ? -1 : hexval(c[2]);
		if (lo < 0)
			diag_error(here(c), "bad escape in string (use \\\", \\\\ or "
			           "\\ and two hex digits)");
		if (hi == 0 && lo == 0)
			diag_error(here(c), "strings cannot contain a NUL byte");
		*d++ = (char)(hi * 16 + lo);
		src += 3;
	}
	src++;
	return s;
}

/* name := bare | string;  bare := [A-Za-z0-9_.]+ */
static char *
lex_name(void)
{
	if (*src == '"')
		return lex_string();
	const char *start = src;
	while (is_bare(*src))
		src++;
	if (src == start)
		diag_error(here(src), "expected a name after '%c'", src[-1]);
	return arena_strndup(arena, start, src - start);
}

/* number := [+-] (digits [. digits] [e [+-] digits] | nan | inf);
 * only the extent is found here, the value is checked where it is used. */
static void
lex_number(void)
{
	if (*src == '+' || *src == '-')
		src++;
	if (is_alpha(*src)) {
		while (is_alpha(*src))
			src++;
		return;
	}
	while (is_digit(*src) || *src == '.')
		src++;
	if ((*src == 'e' || *src == 'E') && (is_digit(src[1]) ||
	    ((src[1] == '+' || src[1] == '-') && is_digit(src[2])))) {
		src += 2;
		while (is_digit(*src))
			src++;
	}
}

static bool
starts_number(const char *p)
{
	if (*p == '+' || *p == '-')
		return is_digit(p[1]) || p[1] == '.' || is_alpha(p[1]);
	return is_digit(*p) || (*p == '.' && is_digit(p[1]));
}

/* End of file is shown at the end of the last line, not on the empty
 * line after its newline. */
static void
lex_eof(void)
{
	tok.kind = TK_EOF;
	if (src == text || src[-1] != '\n')
		return;
	const char *p = src - 1;
	while (p > text && p[-1] != '\n')
		p--;
	tok.line = line - 1;
	tok.col = (int)(src - 1 - p) + 1;
}

static void
lex_punct(void)
{
	int c = *src;
	if (!c || !strchr("()[]{},:=", c)) {
		if (c > ' ' && c < 0x7f)
			diag_error(here(src), "unexpected character '%c'", c);
		diag_error(here(src), "unexpected byte 0x%02x", (unsigned char)c);
	}
	if (c == '(' || c == '[')
		depth++;
	else if ((c == ')' || c == ']') && depth > 0)
		depth--;
	tok.kind = TK_PUNCT;
	src++;
}

static void
next(void)
{
	skip_space();
	tok = (Token){.p = src, .line = line, .col = (int)(src - bol) + 1};
	int c = *src;
	if (!c) {
		lex_eof();
	} else if (c == '\n') {
		tok.kind = TK_NL;
		bol = ++src;
		line++;
	} else if (c == '"') {
		tok.kind = TK_STR;
		tok.s = lex_string();
	} else if (c == '%' || c == '$' || c == '@') {
		tok.kind = c == '%' ? TK_LOCAL : c == '$' ? TK_GLOBAL : TK_GRAPH;
		src++;
		tok.s = lex_name();
	} else if (starts_number(src)) {
		tok.kind = TK_NUM;
		lex_number();
	} else if (is_alpha(c) || c == '_') {
		while (is_alpha(*src) || is_digit(*src) || *src == '_')
			src++;
		bool num = (src - tok.p == 3) && (!strncmp(tok.p, "nan", 3) ||
		                                 !strncmp(tok.p, "inf", 3));
		tok.kind = num ? TK_NUM : TK_IDENT;
	} else {
		lex_punct();
	}
	tok.len = (int)(src - tok.p);
}

/* The token as written, quoted, for messages. */
static const char *
desc(const Token *t)
{
	if (t->kind == TK_EOF)
		return "end of file";
	if (t->kind == TK_NL)
		return "end of line";
	if (t->len > 40)
		return arena_printf(arena, "'%.37s...'", t->p);
	return arena_printf(arena, "'%.*s'", t->len, t->p);
}

static char *
word(void)
{
	return arena_strndup(arena, tok.p, tok.len);
}

static bool
is(int c)
{
	return tok.kind == TK_PUNCT && *tok.p == c;
}

static bool
is_word(const char *w)
{
	return tok.kind == TK_IDENT && (int)strlen(w) == tok.len &&
	       memcmp(tok.p, w, tok.len) == 0;
}

static void
expect(int c)
{
	if (!is(c))
		diag_error(at(&tok), "expected '%c', found %s", c, desc(&tok));
	next();
}

static void
expect_word(const char *w)
{
	if (!is_word(w))
		diag_error(at(&tok), "expected '%s', found %s", w, desc(&tok));
	next();
}

static void
expect_eol(void)
{
	if (tok.kind != TK_NL && tok.kind != TK_EOF)
		diag_error(at(&tok), "expected end of line, found %s", desc(&tok));
	next();
}

/* Whether the current token is an integer: [+-] digits. */
static bool
is_int(void)
{
	if (tok.kind != TK_NUM)
		return false;
	int i = tok.p[0] == '-' || tok.p[0] == '+';
	for (; i < tok.len; i++)
		if (!is_digit(tok.p[i]))
			return false;
	return true;
}

/* The current number token as a C string (numbers are short). */
static char *
numtext(char *buf, size_t n)
{
	if (tok.len >= (int)n)
		diag_error(at(&tok), "number %s is too long", desc(&tok));
	memcpy(buf, tok.p, tok.len);
	buf[tok.len] = 0;
	return buf;
}

/* int := [+-] digits, within int64 */
static int64_t
parse_int(const char *what)
{
	char buf[64];
	if (!is_int())
		diag_error(at(&tok), "expected %s, found %s", what, desc(&tok));
	errno = 0;
	long long v = strtoll(numtext(buf, sizeof buf), NULL, 10);
	if (errno == ERANGE)
		diag_error(at(&tok), "integer %s is out of range", buf);
	next();
	return v;
}

/* An integer in [0, max]. */
static int64_t
parse_count(const char *what, int64_t max)
{
	Token t = tok;
	int64_t v = parse_int(what);
	if (v < 0 || v > max)
		diag_error(at(&t), "expected %s, found %s", what, desc(&t));
	return v;
}

static uint64_t
parse_u64(const char *what)
{
	char buf[64];
	if (!is_int() || tok.p[0] == '-')
		diag_error(at(&tok), "expected %s, found %s", what, desc(&tok));
	errno = 0;
	unsigned long long v = strtoull(numtext(buf, sizeof buf), NULL, 10);
	if (errno == ERANGE)
		diag_error(at(&tok), "integer %s is out of range", buf);
	next();
	return v;
}

/* A number read as f32 (strtof, correctly rounded) or as f64. */
static double
parse_float(bool f32)
{
	char buf[512], *end;
	if (tok.kind != TK_NUM)
		diag_error(at(&tok), "expected a number, found %s", desc(&tok));
	numtext(buf, sizeof buf);
	double x = f32 ? strtof(buf, &end) : strtod(buf, &end);
	if (end == buf || *end)
		diag_error(at(&tok), "bad number %s", desc(&tok));
	if (isinf(x) && !strstr(buf, "inf"))
		diag_error(at(&tok), "%s is out of range for %s", buf,
		           f32 ? "f32" : "f64");
	next();
	return x;
}

/* One element of a tensor of dtype dt, stored in data[i]. */
static void
parse_elem(int dt, void *data, int64_t i)
{
	static const int64_t lo[NDTYPE] = {
		[DT_I64] = INT64_MIN, [DT_I32] = INT32_MIN, [DT_I8] = INT8_MIN,
		[DT_I16] = INT16_MIN,
	};
	/* u64 text stops at INT64_MAX (the integer lexer's range); f16 and
	 * bf16 elements are their bit patterns */
	static const int64_t hi[NDTYPE] = {
		[DT_I64] = INT64_MAX, [DT_I32] = INT32_MAX, [DT_I8] = INT8_MAX,
		[DT_U8] = UINT8_MAX, [DT_BOOL] = 1, [DT_F16] = UINT16_MAX,
		[DT_BF16] = UINT16_MAX, [DT_I16] = INT16_MAX, [DT_U16] = UINT16_MAX,
		[DT_U32] = UINT32_MAX, [DT_U64] = INT64_MAX,
	};
	if (dt == DT_F32 || dt == DT_F64) {
		double x = parse_float(dt == DT_F32);
		if (dt == DT_F32)
			((float *)data)[i] = (float)x;
		else
			((double *)data)[i] = x;
		return;
	}
	Token t = tok;
	int64_t v = parse_int("an integer");
	if (v < lo[dt] || v > hi[dt])
		diag_error(at(&t), "%lld is out of range for %s", (long long)v,
		           dt_name[dt]);
	switch (dt) {
	case DT_I64: ((int64_t *)data)[i] = v; break;
	case DT_I32: ((int32_t *)data)[i] = (int32_t)v; break;
	case DT_I8: ((int8_t *)data)[i] = (int8_t)v; break;
	case DT_I16: ((int16_t *)data)[i] = (int16_t)v; break;
	case DT_F16: case DT_BF16: case DT_U16:
		((uint16_t *)data)[i] = (uint16_t)v;
		break;
	case DT_U32: ((uint32_t *)data)[i] = (uint32_t)v; break;
	case DT_U64: ((uint64_t *)data)[i] = (uint64_t)v; break;
	default: ((uint8_t *)data)[i] = (uint8_t)v; break;
	}
}

/* data := '[' elem {',' elem} ']', exactly numel(t) elements.  Space for
 * them is only taken when the rest of the text could hold them. */
static void *
parse_data(const Type *t)
{
	int64_t n = type_numel(t), k = 0;
	bool fits = n <= srcend - src;
	void *data = arena_alloc(arena, (fits ? n : 1) * dt_size[t->dtype]);
	expect('[');
	while (!is(']')) {
		if (k > 0)
			expect(',');
		if (k == n)
			diag_error(at(&tok), "too many elements: %s has %lld",
			           type_str(arena, t), (long long)n);
		parse_elem(t->dtype, data, fits ? k : 0);
		k++;
	}
	if (k < n)
		diag_error(at(&tok), "too few elements: %s has %lld, found %lld",
		           type_str(arena, t), (long long)n, (long long)k);
	next();
	return data;
}

/* type := dtype '[' [dim {',' dim}] ']';  dtype := f32 | f64 | i64 | i32
 *       | i8 | u8 | bool */
static Type
parse_type(void)
{
	Type t = {0};
	if (tok.kind != TK_IDENT)
		diag_error(at(&tok), "expected a type, found %s", desc(&tok));
	if ((t.dtype = dt_lookup(word())) < 0)
		diag_error(at(&tok), "unknown dtype %s", desc(&tok));
	next();
	expect('[');
	int64_t n = 1;
	while (!is(']')) {
		if (t.rank > 0)
			expect(',');
		Token d = tok;
		int64_t v = parse_int("a dimension");
		if (v < 1)
			diag_error(at(&d), "dimension %lld is not positive",
			           (long long)v);
		if (t.rank == IR_MAXRANK)
			diag_error(at(&d), "rank is above the maximum of %d", IR_MAXRANK);
		if (n > INT64_MAX / 8 / v)
			diag_error(at(&d), "type has too many elements");
		n *= v;
		t.dim[t.rank++] = v;
	}
	next();
	return t;
}

/* loc := 'loc' '(' string ':' (line ':' col | string [':' string]) ')' */
static Loc
parse_loc(void)
{
	Loc l = {0};
	if (!is_word("loc"))
		return l;
	next();
	expect('(');
	if (tok.kind != TK_STR)
		diag_error(at(&tok), "expected a file name string, found %s",
		           desc(&tok));
	l.file = tok.s;
	next();
	expect(':');
	if (tok.kind == TK_STR) {
		l.node = tok.s;
		next();
		if (is(':')) {
			next();
			if (tok.kind != TK_STR)
				diag_error(at(&tok), "expected an op type string, found "
				           "%s", desc(&tok));
			l.op = tok.s;
			next();
		}
	} else {
		l.line = (int)parse_count("a line number", INT32_MAX);
		expect(':');
		l.col = (int)parse_count("a column number", INT32_MAX);
	}
	expect(')');
	return l;
}

/* Errors if the name t defines is taken in g. */
static void
check_new(const Token *t)
{
	int v = ir_find_value(g, t->s);
	if (v >= 0)
		diag_error(at(t), "value %s is defined twice (first on line %d)",
		           desc(t), defline[v]);
}

/* Records where value v was defined, and keeps g->tempname above any
 * %tN name so that passes make fresh names without searching far. */
static void
defined(int v, const Token *t)
{
	if (v != ndefline)
		die("values out of step");
	VEC_PUSH(defline, ndefline, capdefline, t->line);
	const char *s = t->s;
	size_t n = strlen(s + 1);
	if (s[0] == 't' && n > 0 && n < 9 && strspn(s + 1, "0123456789") == n)
		g->tempname = MAX(g->tempname, atoi(s + 1));
}

/* Resolves a %name or $name token; the sigil must match the value's kind. */
static int
lookup(const Token *t)
{
	int v = ir_find_value(g, t->s);
	if (v < 0)
		diag_error(at(t), "undefined value %s", desc(t));
	bool global = g->val[v].kind == VK_PARAM || g->val[v].kind == VK_CONST;
	if (t->kind == TK_GLOBAL && !global)
		diag_error(at(t), "%s is not a param or const (write it with '%%')",
		           desc(t));
	if (t->kind == TK_LOCAL && global)
		diag_error(at(t), "%s is a param or const (write it with '$')",
		           desc(t));
	return v;
}

/* init := 'zeros' | 'ones' | 'elided' | data
 *       | 'he_uniform' '(' 'fan_in' '=' int ',' 'seed' '=' int ')'
 *       | 'glorot_uniform' '(' 'fan_in' '=' int ',' 'fan_out' '=' int ','
 *                              'seed' '=' int ')' */
static void
parse_init(Value *v)
{
	if (is('[')) {
		v->data = parse_data(&v->type);
		return;
	}
	bool he = is_word("he_uniform"), glorot = is_word("glorot_uniform");
	if (!he && !glorot) {
		if (is_word("zeros"))
			v->init = INIT_ZEROS;
		else if (is_word("ones"))
			v->init = INIT_ONES;
		else if (is_word("elided"))
			v->elided = true;
		else
			diag_error(at(&tok), "expected an initializer (zeros, ones, "
			           "he_uniform, glorot_uniform, elided or [data]), "
			           "found %s", desc(&tok));
		next();
		return;
	}
	v->init = he ? INIT_HE_UNIFORM : INIT_GLOROT_UNIFORM;
	next();
	expect('(');
	expect_word("fan_in");
	expect('=');
	v->fan_in = parse_count("a fan-in", INT64_MAX);
	if (glorot) {
		expect(',');
		expect_word("fan_out");
		expect('=');
		v->fan_out = parse_count("a fan-out", INT64_MAX);
	}
	expect(',');
	expect_word("seed");
	expect('=');
	v->seed = parse_u64("a seed");
	expect(')');
}

/* decl := ('param' | 'const') $name ':' type '=' init [loc] NL */
static void
parse_decl(void)
{
	int kind = is_word("param") ? VK_PARAM : VK_CONST;
	next();
	if (tok.kind != TK_GLOBAL)
		diag_error(at(&tok), "expected a $name, found %s", desc(&tok));
	Token name = tok;
	check_new(&name);
	next();
	expect(':');
	Type t = parse_type();
	expect('=');
	int v = ir_add_value(g, name.s, kind, t, (Loc){0});
	defined(v, &name);
	parse_init(&g->val[v]);
	g->val[v].loc = parse_loc();
	expect_eol();
}

/* operand := %name | $name | '_' (absent; only for optional operands) */
static int
parse_operand(const OpInfo *o, int i)
{
	if (is_word("_")) {
		if (i < o->minin)
			diag_error(at(&tok), "%s: operand %d is required", o->name, i + 1);
		next();
		return -1;
	}
	if (tok.kind != TK_LOCAL && tok.kind != TK_GLOBAL)
		diag_error(at(&tok), "expected an operand (%%name, $name or _), "
		           "found %s", desc(&tok));
	int v = lookup(&tok);
	next();
	return v;
}

/* operands := [operand {',' operand}], as many as the registry allows */
static int
parse_operands(const OpInfo *o, const Token *optok, int *in)
{
	int nin = 0;
	while (nin == 0 ? tok.kind == TK_LOCAL || tok.kind == TK_GLOBAL ||
	                  is_word("_") : is(',')) {
		if (nin > 0)
			next();
		int v = parse_operand(o, nin);
		if (nin < IR_MAXIN)
			in[nin] = v;
		nin++;
	}
	if (nin < o->minin || nin > o->maxin) {
		if (o->minin == o->maxin)
			diag_error(at(optok), "%s takes %d operand%s, found %d", o->name,
			           o->minin, o->minin == 1 ? "" : "s", nin);
		diag_error(at(optok), "%s takes %d to %d operands, found %d",
		           o->name, o->minin, o->maxin, nin);
	}
	return nin;
}

/* list := '[' [elem {',' elem}] ']' of integers or of numbers (f64);
 * an empty list still gets an array, never NULL */
static void
parse_list(Attr *a)
{
	int cap = 0;
	if (a->kind == AK_INTS)
		arena_grow(arena, (void **)&a->ints, &cap, 1, sizeof *a->ints);
	else
		arena_grow(arena, (void **)&a->floats, &cap, 1, sizeof *a->floats);
	expect('[');
	while (!is(']')) {
		if (a->n > 0)
			expect(',');
		if (a->kind == AK_INTS) {
			arena_grow(arena, (void **)&a->ints, &cap, a->n + 1,
			           sizeof *a->ints);
			a->ints[a->n++] = parse_int("an integer");
		} else {
			arena_grow(arena, (void **)&a->floats, &cap, a->n + 1,
			           sizeof *a->floats);
			a->floats[a->n++] = parse_float(false);
		}
	}
	next();
}

/* Errors unless the current token can start a value of ai's kind. */
static void
check_kind(const OpInfo *o, const AttrInfo *ai)
{
	static const char *const want[] = {
		[AK_INT] = "an integer", [AK_FLOAT] = "a number",
		[AK_STRING] = "a string", [AK_INTS] = "a list of integers",
		[AK_FLOATS] = "a list of numbers", [AK_TENSOR] = "a tensor(...)",
	};
	bool ok = false;
	switch (ai->kind) {
	case AK_INT: ok = is_int(); break;
	case AK_FLOAT: ok = tok.kind == TK_NUM; break;
	case AK_STRING: ok = tok.kind == TK_STR; break;
	case AK_INTS:
	case AK_FLOATS: ok = is('['); break;
	case AK_TENSOR: ok = is_word("tensor"); break;
	}
	if (!ok)
		diag_error(at(&tok), "%s: attribute '%s' takes %s, found %s",
		           o->name, ai->name, want[ai->kind], desc(&tok));
}

/* value := int | number | string | list
 *        | 'tensor' '(' type ',' data ')' */
static Attr
parse_attr_value(const OpInfo *o, const AttrInfo *ai)
{
	Attr a = {.kind = ai->kind};
	check_kind(o, ai);
	switch (ai->kind) {
	case AK_INT: a.i = parse_int("an integer"); break;
	case AK_FLOAT: a.f = parse_float(false); break;
	case AK_STRING: a.s = tok.s; next(); break;
	case AK_INTS:
	case AK_FLOATS: parse_list(&a); break;
	case AK_TENSOR:
		next();
		expect('(');
		a.type = parse_type();
		expect(',');
		a.data = parse_data(&a.type);
		expect(')');
		break;
	}
	return a;
}

/* attrs := '{' attr {',' attr} '}';  attr := name '=' value */
static void
parse_attrs(int node)
{
	const OpInfo *o = op_get(g->node[node].op);
	bool seen[NATTRID + 1] = {0};
	depth++;        /* tokens are lexed lazily: this covers what follows '{' */
	expect('{');
	for (;;) {
		if (tok.kind != TK_IDENT)
			diag_error(at(&tok), "expected an attribute name, found %s",
			           desc(&tok));
		int id = op_attr_lookup(g->node[node].op, word());
		if (id < 0)
			diag_error(at(&tok), "%s has no attribute %s", o->name, desc(&tok));
		if (seen[id])
			diag_error(at(&tok), "%s: attribute %s is given twice", o->name,
			           desc(&tok));
		seen[id] = true;
		next();
		expect('=');
		*ir_attr(g, &g->node[node], id) = parse_attr_value(o, &attr_info[id]);
		if (!is(','))
			break;
		next();
	}
	depth--;
	expect('}');
}

/* Runs the node's shape rule: operand errors are reported at the op name,
 * a written result type that differs from the inferred one at the type. */
static void
infer(int node, const Token *optok, const Token *ttok, const Type *written)
{
	const OpInfo *o = op_get(g->node[node].op);
	for (int i = 0; i < o->nattr; i++)
		if (g->attr[g->node[node].attr + i].kind == AK_NONE &&
		    !attr_info[o->attr0 + i].def)
			diag_error(at(optok), "%s: missing required attribute '%s'",
			           o->name, attr_info[o->attr0 + i].name);
	const char *err = ir_infer(g, node);
	if (err)
		diag_error(at(optok), "%s", err);
	const Type *t = &g->val[g->node[node].out].type;
	if (!type_eq(t, written))
		diag_error(at(ttok), "%s: result type %s does not match the "
		           "inferred %s", o->name, type_str(arena, written),
		           type_str(arena, t));
}

/* node := %name '=' op operands [attrs] ':' type [loc] NL */
static void
parse_node(void)
{
	Token name = tok;
	check_new(&name);
	next();
	expect('=');
	if (tok.kind != TK_IDENT)
		diag_error(at(&tok), "expected an op name, found %s", desc(&tok));
	Token optok = tok;
	int op = op_lookup(word());
	if (op < 0)
		diag_error(at(&tok), "unknown op %s", desc(&tok));
	next();
	int in[IR_MAXIN];
	int nin = parse_operands(op_get(op), &optok, in);
	int n = ir_add_node(g, op, (Loc){0}, in, nin);
	if (is('{'))
		parse_attrs(n);
	expect(':');
	Token ttok = tok;
	Type t = parse_type();
	Loc loc = parse_loc();
	expect_eol();
	int v = ir_add_result(g, n, name.s);
	g->node[n].loc = g->val[v].loc = loc;
	defined(v, &name);
	infer(n, &optok, &ttok, &t);
}

/* return := 'return' operand {',' operand} NL */
static void
parse_return(void)
{
	Token ret = tok;
	next();
	if (tok.kind == TK_NL || tok.kind == TK_EOF)
		diag_error(at(&ret), "graph '@%s' returns nothing", g->name);
	for (;;) {
		if (tok.kind != TK_LOCAL && tok.kind != TK_GLOBAL)
			diag_error(at(&tok), "expected a value to return, found %s",
			           desc(&tok));
		ir_add_output(g, lookup(&tok));
		next();
		if (!is(','))
			break;
		next();
	}
	expect_eol();
}

/* update := 'update' $param '=' operand NL */
static void
parse_update(void)
{
	Token ut = tok;
	next();
	if (tok.kind != TK_GLOBAL)
		diag_error(at(&tok), "expected the parameter to update ($name), "
		           "found %s", desc(&tok));
	Token dtok = tok;
	int dst = lookup(&tok);
	if (g->val[dst].kind != VK_PARAM)
		diag_error(at(&dtok), "%s is a const; only params are updated",
		           desc(&dtok));
	for (int i = 0; i < g->nupdate; i++)
		if (g->update[i].dst == dst)
			diag_error(at(&dtok), "%s is updated twice", desc(&dtok));
	next();
	expect('=');
	if (tok.kind != TK_LOCAL && tok.kind != TK_GLOBAL)
		diag_error(at(&tok), "expected the new value, found %s", desc(&tok));
	Token stok = tok;
	int src = lookup(&tok);
	if (!type_eq(&g->val[src].type, &g->val[dst].type))
		diag_error(at(&stok), "%s is %s, but %s is %s", desc(&stok),
		           type_str(arena, &g->val[src].type), desc(&dtok),
		           type_str(arena, &g->val[dst].type));
	(void)ut;
	next();
	ir_add_update(g, dst, src);
	expect_eol();
}

static void
skip_newlines(void)
{
	while (tok.kind == TK_NL)
		next();
}

/* body := {decl} {node} {update} return '}' NL */
static void
parse_body(void)
{
	bool nodes = false;
	for (;;) {
		skip_newlines();
		if (tok.kind == TK_EOF || is_word("graph"))
			diag_error(at(&tok), "expected '}' to close graph '@%s', found %s",
			           g->name, desc(&tok));
		if (is('}'))
			diag_error(at(&tok), "graph '@%s' has no 'return'", g->name);
		if (is_word("return"))
			break;
		if (is_word("param") || is_word("const")) {
			if (nodes)
				diag_error(at(&tok), "'%.*s' must come before the first op",
				           tok.len, tok.p);
			parse_decl();
		} else if (tok.kind == TK_LOCAL) {
			if (g->nupdate > 0)
				diag_error(at(&tok), "ops must come before the first "
				           "'update'");
			nodes = true;
			parse_node();
		} else if (is_word("update")) {
			nodes = true;
			parse_update();
		} else {
			diag_error(at(&tok), "expected 'param', 'const', '%%name = op', "
			           "'update' or 'return', found %s", desc(&tok));
		}
	}
	parse_return();
	skip_newlines();
	if (!is('}'))
		diag_error(at(&tok), "expected '}' to close graph '@%s', found %s",
		           g->name, desc(&tok));
	next();
	expect_eol();
}

/* input := %name ':' type */
static void
parse_input(void)
{
	if (tok.kind != TK_LOCAL)
		diag_error(at(&tok), "expected an input (%%name: type), found %s",
		           desc(&tok));
	Token name = tok;
	check_new(&name);
	next();
	expect(':');
	defined(ir_add_input(g, name.s, parse_type(), at(&name)), &name);
}

/* graph := 'graph' @name '(' [input {',' input}] ')' '{' NL body */
static void
parse_graph(void)
{
	Token gt = tok;
	next();
	if (tok.kind != TK_GRAPH)
		diag_error(at(&tok), "expected a graph name (@name), found %s",
		           desc(&tok));
	for (int i = 0; i < mod->ngraph; i++)
		if (strcmp(mod->graph[i]->name, tok.s) == 0)
			diag_error(at(&tok), "graph %s is defined twice", desc(&tok));
	g = ir_new_graph(mod, tok.s, at(&gt));
	ndefline = 0;
	next();
	expect('(');
	while (!is(')')) {
		if (g->ninput > 0)
			expect(',');
		parse_input();
	}
	next();
	expect('{');
	expect_eol();
	parse_body();
	ir_verify(g);
}

/* ---- train sections ---- */

static Cfg *parse_cfg(void);

/* Whether the next non-blank character after the current token is c. */
static bool
followed_by(int c)
{
	const char *p = src;
	while (*p == ' ' || *p == '\t')
		p++;
	return *p == c;
}

/* items := [item {',' item}] close;  item := [key '='] value in a call */
static Cfg *
parse_cfg_items(Cfg *c, int close)
{
	next();
	while (!is(close)) {
		if (c->n > 0)
			expect(',');
		const char *key = NULL;
		if (close == ')' && tok.kind == TK_IDENT && followed_by('=')) {
			key = word();
			next();
			expect('=');
		}
		cfg_add(arena, c, key, parse_cfg());
	}
	next();
	return c;
}

/* value := int | float | string | 'true' | 'false' | ident | %v | $v
 *        | ident '(' items ')' | '[' items ']' */
static Cfg *
parse_cfg(void)
{
	Loc loc = at(&tok);
	Cfg *c;
	if (tok.kind == TK_NUM && is_int()) {
		c = cfg_new(arena, CFG_INT, loc);
		c->i = parse_int("an integer");
		return c;
	}
	if (tok.kind == TK_NUM) {
		c = cfg_new(arena, CFG_FLOAT, loc);
		c->f = parse_float(false);
		return c;
	}
	if (is('['))
		return parse_cfg_items(cfg_new(arena, CFG_LIST, loc), ']');
	if (tok.kind == TK_STR || tok.kind == TK_LOCAL || tok.kind == TK_GLOBAL) {
		c = cfg_new(arena, tok.kind == TK_STR ? CFG_STR : CFG_VALUE, loc);
		if (tok.kind == TK_STR)
			c->s = tok.s;
		else
			c->v = lookup(&tok);
		next();
		return c;
	}
	if (tok.kind != TK_IDENT)
		diag_error(loc, "expected a value, found %s", desc(&tok));
	bool boolean = is_word("true") || is_word("false");
	c = cfg_new(arena, boolean ? CFG_BOOL : CFG_IDENT, loc);
	c->i = is_word("true");
	c->s = word();
	next();
	if (!boolean && is('(')) {
		c->kind = CFG_CALL;
		parse_cfg_items(c, ')');
	}
	return c;
}

/* label := 'label' %name ':' type */
static void
parse_label(Cfg *b, Loc loc)
{
	Token name = tok;
	check_new(&name);
	next();
	expect(':');
	int v = ir_add_value(g, name.s, VK_LABEL, parse_type(), at(&name));
	defined(v, &name);
	Cfg *c = cfg_new(arena, CFG_VALUE, loc);
	c->v = v;
	cfg_add(arena, b, "label", c);
	expect_eol();
}

/* block := '{' NL {entry} '}' NL
 * entry := label | key '=' value NL | key [string] block */
static Cfg *
parse_cfg_block(Loc loc, const char *name)
{
	Cfg *b = cfg_new(arena, CFG_BLOCK, loc);
	b->s = name;
	expect('{');
	expect_eol();
	for (skip_newlines(); !is('}'); skip_newlines()) {
		if (tok.kind != TK_IDENT)
			diag_error(at(&tok), "expected a train entry (key = value), "
			           "found %s", desc(&tok));
		Token key = tok;
		const char *k = word();
		next();
		if (strcmp(k, "label") == 0 && tok.kind == TK_LOCAL) {
			parse_label(b, at(&key));
		} else if (is('=')) {
			next();
			cfg_add(arena, b, k, parse_cfg());
			expect_eol();
		} else if (tok.kind == TK_STR || is('{')) {
			const char *sub = tok.kind == TK_STR ? tok.s : NULL;
			if (sub)
				next();
			cfg_add(arena, b, k, parse_cfg_block(at(&key), sub));
		} else {
			diag_error(at(&tok), "expected '=' or '{' after '%s', found %s",
			           k, desc(&tok));
		}
	}
	next();
	expect_eol();
	return b;
}

/* train := 'train' @name block, right after the graph it belongs to */
static void
parse_train(void)
{
	Token t = tok;
	next();
	if (tok.kind != TK_GRAPH)
		diag_error(at(&tok), "expected a graph name (@name), found %s",
		           desc(&tok));
	if (!g || strcmp(g->name, tok.s) != 0)
		diag_error(at(&tok), "a train section must follow its graph; the "
		           "graph before it is %s", g ? g->name : "none");
	if (g->train)
		diag_error(at(&tok), "graph @%s has two train sections", g->name);
	next();
	g->train = parse_cfg_block(at(&t), NULL);
	ir_verify(g);
}

/* module := {graph [train]}, at least one graph */
Module *
ir_parse(Arena *a, const char *name, const char *source)
{
	arena = a;
	file = arena_strdup(a, name);
	diag_source(file, source);
	text = src = bol = source;
	srcend = source + strlen(source);
	line = 1;
	depth = 0;
	mod = ir_new_module(a, file);
	g = NULL;
	next();
	for (skip_newlines(); tok.kind != TK_EOF; skip_newlines()) {
		if (is_word("train")) {
			parse_train();
			continue;
		}
		if (!is_word("graph"))
			diag_error(at(&tok), "expected 'graph' or 'train', found %s",
			           desc(&tok));
		parse_graph();
	}
	if (mod->ngraph == 0)
		diag_error((Loc){.file = file}, "no graph in the file");
	free(defline);
	defline = NULL;
	ndefline = capdefline = 0;
	return mod;
}
