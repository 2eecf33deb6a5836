/* lex.c: the .kiln lexer.
 *
 * Turns the whole source into an array of tokens ending in TK_EOF, each
 * with its location (1-based line and byte column) and spelling.  Newlines
 * are plain whitespace: statements need no separator because every one
 * starts with a keyword or a name (docs/language.md, "Lexical rules").
 * `//` starts a comment to the end of the line.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "kiln.h"

const char *const tok_text[NTOK] = {
#define T(id, s) s,
	TOKENS
#undef T
};

typedef struct {
	Arena *a;
	const char *file;
	const char *p;              /* next character */
	int line;
	const char *bol;            /* start of the current line */
	Token *tok;
	int ntok, captok;
} Lexer;

static Loc
here(const Lexer *lx, const char *p)
{
	return (Loc){.file = lx->file, .line = lx->line, .col = (int)(p - lx->bol) + 1};
}

static bool
is_alpha(int c)
{
	return ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') || c == '_';
}

static bool
is_digit(int c)
{
	return '0' <= c && c <= '9';
}

/* Skips blanks, newlines and comments. */
static void
skip_space(Lexer *lx)
{
	for (;;) {
		const char *p = lx->p;
		if (*p == '\n') {
			lx->line++;
			lx->bol = lx->p = p + 1;
		} else if (*p == ' ' || *p == '\t' || *p == '\r') {
			lx->p++;
		} else if (p[0] == '/' && p[1] == '/') {
			while (*lx->p && *lx->p != '\n')
				lx->p++;
		} else {
			return;
		}
	}
}

/* TK_ of a keyword, or TK_IDENT; tok_text[] holds the spellings. */
static int
keyword(const char *p, int len)
{
	for (int k = TK_KEYWORD0; k < NTOK; k++)
		if ((int)strlen(tok_text[k]) == len && memcmp(tok_text[k], p, len) == 0)
			return k;
	return TK_IDENT;
}

/* ident = letter { letter | digit }, where letter includes '_' */
static void
lex_ident(Lexer *lx, Token *t)
{
	const char *p = lx->p;
	while (is_alpha(*p) || is_digit(*p))
		p++;
	t->len = (int)(p - lx->p);
	t->kind = keyword(lx->p, t->len);
	t->s = arena_strndup(lx->a, lx->p, t->len);
	lx->p = p;
}

/* number = digit { digit } [ "." digit { digit } ]
 *          [ ("e" | "E") [ "+" | "-" ] digit { digit } ] */
static void
lex_number(Lexer *lx, Token *t)
{
	const char *p = lx->p;
	bool is_float = false;
	while (is_digit(*p))
		p++;
	if (p[0] == '.' && is_digit(p[1])) {
		for (p++; is_digit(*p); p++)
			;
		is_float = true;
	}
	bool exp = *p == 'e' || *p == 'E';
	int sign = exp && (p[1] == '+' || p[1] == '-');
	if (exp && is_digit(p[1 + sign])) {
		for (p += 1 + sign; is_digit(*p); p++)
			;
		is_float = true;
	}
	if (is_alpha(*p) || *p == '.')
		diag_error(t->loc, "malformed number '%.*s'", (int)(p - lx->p) + 1,
		           lx->p);
	t->len = (int)(p - lx->p);
	errno = 0;
	if (is_float) {
		t->kind = TK_FLOAT;
		t->f = strtod(lx->p, NULL);
	} else {
		t->kind = TK_INT;
		t->i = strtoll(lx->p, NULL, 10);
	}
	if (errno == ERANGE)
		diag_error(t->loc, "number '%.*s' is out of range", t->len, lx->p);
	lx->p = p;
}

/* string = '"' { char | "\" ( '"' | "\" | "n" | "t" ) } '"', on one line */
static void
lex_string(Lexer *lx, Token *t)
{
	const char *p = lx->p + 1;
	char *buf = arena_alloc(lx->a, strcspn(p, "\n") + 1);
	int n = 0;
	for (; *p != '"'; p++) {
		if (*p == '\n' || !*p)
			diag_error(t->loc, "unterminated string");
		if (*p != '\\') {
			buf[n++] = *p;
			continue;
		}
		static const char from[] = "\"\\nt", to[] = "\"\\\n\t";
		if (p[1] == '\n' || !p[1])
			diag_error(t->loc, "unterminated string");
		const char *e = strchr(from, p[1]);
		if (!e)
			diag_error(here(lx, p), "unknown escape sequence '\\%c' in "
			           "string", p[1]);
		buf[n++] = to[e - from];
		p++;
	}
	t->kind = TK_STR;
	t->s = buf;
	t->len = (int)(p + 1 - lx->p);
	lx->p = p + 1;
}

/* Every punctuation token is one character, spelled in tok_text[]. */
static void
lex_punct(Lexer *lx, Token *t)
{
	for (int k = TK_PUNCT0; k < TK_KEYWORD0; k++) {
		if (*lx->p == tok_text[k][0]) {
			t->kind = k;
			t->len = 1;
			lx->p++;
			return;
		}
	}
	unsigned char c = *lx->p;
	if (c < 0x20 || c >= 0x7f)
		diag_error(t->loc, "unexpected byte 0x%02x", c);
	diag_error(t->loc, "unexpected character '%c'", c);
}

Token *
kl_lex(Arena *a, const char *file, const char *text)
{
	Lexer lx = {.a = a, .file = file, .p = text, .line = 1, .bol = text};
	for (;;) {
		skip_space(&lx);
		Token t = {.loc = here(&lx, lx.p), .p = lx.p};
		if (!*lx.p)
			t.kind = TK_EOF;
		else if (is_alpha(*lx.p))
			lex_ident(&lx, &t);
		else if (is_digit(*lx.p))
			lex_number(&lx, &t);
		else if (*lx.p == '"')
			lex_string(&lx, &t);
		else
			lex_punct(&lx, &t);
		APUSH(a, lx.tok, lx.ntok, lx.captok, t);
		if (t.kind == TK_EOF)
			return lx.tok;
	}
}
