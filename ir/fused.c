/* fused.c: the expression of a `fused` node (ir/ops.def), a tree of f32
 * elementwise ops over the node's operands that the backends generate as
 * one loop.  Here are its grammar, its parser (used by the shape rule, so
 * a malformed expression is a user error wherever the IR comes from), the
 * ops it may hold and, per op, the scalar formula in C that the runtime's
 * kernel computes (so a generated loop gives the same bits).
 *
 *   expr := '%' DIGITS                       operand k, from 0
 *         | NUMBER                           an f32 literal (nan, inf too)
 *         | OPNAME '(' expr {',' expr} {',' ATTRNAME '=' NUMBER} ')'
 *
 * Canonical spelling (what fuse_eltwise writes): ", " between arguments,
 * attributes after the operands in registry order and only when they
 * differ from their default, numbers in the .kir printer's shortest form.
 */
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "ir.h"

/* The ops a fused expression may hold, with the C the runtime kernel
 * computes per element: $k is operand k's value, @k attribute k in
 * registry order (a float, or for an INT attribute an integer).  Each
 * $k and @k is one C primary expression or is parenthesized here.
 * The LLVM backend computes add, sub, mul, div, neg, max, min,
 * reciprocal, relu, abs and sqrt itself, with these formulas' semantics;
 * every other formula is a single call NAME($.., @..) of a function the
 * runtime library or libm defines, which its loops call with f32
 * operands and int (INT) or f32 (FLOAT) attributes. */
static const struct {
	int op;
	const char *c;
} formula[] = {
	{OP_ADD, "$0 + $1"},            /* runtime/eltwise.c: row() */
	{OP_SUB, "$0 - $1"},
	{OP_MUL, "$0 * $1"},
	{OP_DIV, "$0 / $1"},
	{OP_POW, "powf($0, $1)"},       /* runtime/eltwise2.c */
	{OP_MAX, "$0 > $1 || $0 != $0 ? $0 : $1"},
	{OP_MIN, "$0 < $1 || $0 != $0 ? $0 : $1"},
	{OP_RELU, "kiln_s_relu($0)"},   /* runtime/kiln_scalar.h */
	{OP_SIGMOID, "kiln_s_sigmoid($0)"},
	{OP_TANH, "kiln_s_tanh($0)"},
	{OP_LEAKY_RELU, "kiln_s_leaky_relu($0, @0)"},
	{OP_ELU, "kiln_s_elu($0, @0)"},
	{OP_SELU, "kiln_s_selu($0, @0, @1)"},
	{OP_GELU, "kiln_s_gelu($0, @0)"},
	{OP_SILU, "kiln_s_silu($0)"},
	{OP_HARDSWISH, "kiln_s_hardswish($0)"},
	{OP_HARDSIGMOID, "kiln_s_hardsigmoid($0, @0, @1)"},
	{OP_CLIP, "kiln_s_clip($0, @0, @1)"},
	{OP_EXP, "expf($0)"},           /* runtime/act.c */
	{OP_LOG, "logf($0)"},
	{OP_SQRT, "sqrtf($0)"},
	{OP_NEG, "-$0"},
	{OP_ABS, "fabsf($0)"},
	{OP_SIN, "sinf($0)"},           /* runtime/eltwise2.c: UNARY */
	{OP_COS, "cosf($0)"},
	{OP_TAN, "tanf($0)"},
	{OP_ASIN, "asinf($0)"},
	{OP_ACOS, "acosf($0)"},
	{OP_ATAN, "atanf($0)"},
	{OP_SINH, "sinhf($0)"},
	{OP_COSH, "coshf($0)"},
	{OP_ASINH, "asinhf($0)"},
	{OP_ACOSH, "acoshf($0)"},
	{OP_ATANH, "atanhf($0)"},
	{OP_CEIL, "ceilf($0)"},
	{OP_FLOOR, "floorf($0)"},
	{OP_SIGN, "kiln_s_sign($0)"},
	{OP_ERF, "erff($0)"},
	{OP_RECIPROCAL, "1.0f / $0"},
	{OP_SOFTPLUS, "kiln_s_softplus($0)"},
	{OP_SOFTSIGN, "kiln_s_softsign($0)"},
	{OP_CELU, "kiln_s_celu($0, @0)"},
	{OP_THRESHOLDED_RELU, "kiln_s_thresholded_relu($0, @0)"},
	{OP_SHRINK, "kiln_s_shrink($0, @0, @1)"},
};

const char *
ir_fused_formula(int op)
{
	for (int i = 0; i < countof(formula); i++)
		if (formula[i].op == op)
			return formula[i].c;
	return NULL;
}

typedef struct {
	Arena *a;
	const char *s, *p;          /* the text, the next character */
	FusedExpr *e;
	int nin;                    /* operands of the node */
	const char *err;
} Parser;

static int
fail(Parser *P, const char *fmt, const char *what)
{
	if (!P->err)
		P->err = arena_printf(P->a, "fused: expression \"%s\", column %d: "
		                      "%s%s", P->s, (int)(P->p - P->s) + 1, fmt, what);
	return -1;
}

static void
blanks(Parser *P)
{
	while (*P->p == ' ')
		P->p++;
}

static int
add(Parser *P, FusedTerm t)
{
	FusedExpr *e = P->e;
	APUSH(P->a, e->t, e->n, e->cap, t);
	return e->n - 1;
}

/* A number at P->p, as strtod reads it (nan and inf included); f32 reads
 * it as strtof would, so a literal is an exact f32 value. */
static bool
number(Parser *P, bool f32, double *x)
{
	char *end;
	const char *q = P->p + (*P->p == '-' || *P->p == '+');
	if (!isdigit((unsigned char)*q) && *q != '.' && strncmp(q, "nan", 3) &&
	    strncmp(q, "inf", 3))
		return false;
	*x = f32 ? strtof(P->p, &end) : strtod(P->p, &end);
	if (end == P->p)
		return false;
	P->p = end;
	return true;
}

/* The attributes of term t (op o), `name=value` from the ',' on. */
static void
attrs(Parser *P, FusedTerm *t, const OpInfo *o)
{
	bool seen[FUSED_MAXATTR] = {0};
	while (!P->err && *P->p == ',') {
		P->p++;
		blanks(P);
		const char *q = P->p;
		while (isalnum((unsigned char)*P->p) || *P->p == '_')
			P->p++;
		char *name = arena_alloc(P->a, P->p - q + 1);
		memcpy(name, q, P->p - q);
		int id = op_attr_lookup(t->op, name);
		P->p = q;
		if (id < 0) {
			fail(P, o->nattr ? "expected an attribute of " :
			     "expected ')' to close ", o->name);
			return;
		}
		int k = id - o->attr0;
		if (seen[k]) {
			fail(P, "attribute given twice: ", name);
			return;
		}
		P->p += strlen(name);
		seen[k] = true;
		blanks(P);
		if (*P->p != '=') {
			fail(P, "expected '='", "");
			return;
		}
		P->p++;
		blanks(P);
		double x;
		if (!number(P, false, &x)) {
			fail(P, "expected a number", "");
			return;
		}
		if (attr_info[id].kind == AK_INT && x != trunc(x)) {
			fail(P, "expected an integer for ", name);
			return;
		}
		t->a[k] = x;
		blanks(P);
	}
}

static int expr(Parser *P);

/* OPNAME '(' expr {',' expr} {',' attr} ')', P->p at the name. */
static int
call(Parser *P)
{
	const char *q = P->p;
	while (isalnum((unsigned char)*P->p) || *P->p == '_')
		P->p++;
	char *name = arena_alloc(P->a, P->p - q + 1);
	memcpy(name, q, P->p - q);
	int op = op_lookup(name);
	if (op < 0 || !ir_fused_formula(op)) {
		P->p = q;
		return fail(P, op < 0 ? "unknown op " : "op cannot be fused: ", name);
	}
	const OpInfo *o = op_get(op);
	FusedTerm t = {.op = op, .pos = (int)(q - P->s)};
	for (int i = 0; i < o->nattr; i++) {
		Attr d;
		ir_parse_default(NULL, &d, &attr_info[o->attr0 + i]);
		t.a[i] = d.kind == AK_INT ? (double)d.i : d.f;
	}
	blanks(P);
	if (*P->p != '(')
		return fail(P, "expected '(' after ", name);
	P->p++;
	for (int i = 0; i < o->maxin; i++) {
		if (i > 0) {
			blanks(P);
			if (*P->p != ',')
				return fail(P, "expected ',': too few operands for ", name);
			P->p++;
		}
		t.in[t.nin++] = expr(P);
		if (P->err)
			return -1;
	}
	blanks(P);
	attrs(P, &t, o);
	if (P->err)
		return -1;
	if (*P->p != ')')
		return fail(P, "expected ')' to close ", name);
	P->p++;
	if (op == OP_GELU && t.a[0] != 0 && t.a[0] != 1)
		return fail(P, "gelu: 'approximate' must be 0 or 1", "");
	return add(P, t);
}

/* expr: an operand, a literal or a call. */
static int
expr(Parser *P)
{
	blanks(P);
	FusedTerm t = {.op = FT_OPERAND, .pos = (int)(P->p - P->s)};
	if (*P->p == '%') {
		P->p++;
		if (!isdigit((unsigned char)*P->p))
			return fail(P, "expected an operand number after '%'", "");
		char *end;
		long k = strtol(P->p, &end, 10);
		P->p = end;
		if (k >= P->nin)
			return fail(P, "no such operand: the node has ",
			            arena_printf(P->a, "%d", P->nin));
		t.operand = (int)k;
		return add(P, t);
	}
	if (isalpha((unsigned char)*P->p) && strncmp(P->p, "nan", 3) &&
	    strncmp(P->p, "inf", 3))
		return call(P);
	t.op = FT_LITERAL;
	if (!number(P, true, &t.a[0]))
		return fail(P, "expected an operand, a number or an op", "");
	return add(P, t);
}

/* Parses s, the expression of a fused node with nin operands, into e
 * (terms in postorder, the root last).  Returns NULL, or a message
 * saying what is wrong and where (from a). */
const char *
ir_fused_parse(Arena *a, const char *s, int nin, FusedExpr *e)
{
	Parser P = {.a = a, .s = s, .p = s, .e = e, .nin = nin};
	*e = (FusedExpr){0};
	expr(&P);
	blanks(&P);
	if (!P.err && *P.p)
		fail(&P, "unexpected text after the expression", "");
	if (!P.err && e->t[e->n - 1].op == FT_OPERAND)
		fail(&P, "the expression is a lone operand; it needs an op", "");
	for (int k = 0; k < nin && !P.err; k++) {
		bool used = false;
		for (int i = 0; i < e->n; i++)
			used |= e->t[i].op == FT_OPERAND && e->t[i].operand == k;
		if (!used) {
			P.p = s + strlen(s);
			fail(&P, "operand not used: %", arena_printf(a, "%d", k));
		}
	}
	return P.err;
}
