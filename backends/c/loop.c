/* loop.c: the C backend's generated loops.  A fused node (ir/ops.def,
 * made by passes/fuse_eltwise.c) becomes one loop nest over its result,
 * with no runtime call and no buffer per op: each operand is loaded once
 * per element through its broadcast strides, each op of the expression is
 * one `const float` statement with the formula of ir/fused.c (the one its
 * runtime kernel uses, rounding to f32 as the kernel does), and the root
 * is stored.  Dimensions are first coalesced by lower_loop_space (lower.h).
 */
#include <string.h>
#include "cgen.h"

/* The index of operand k at loop indices i0, i1, ...: "i0 * 8 + i1". */
static void
emit_index(FILE *f, const KSpace *sp, int k)
{
	bool any = false;
	for (int d = 0; d < sp->rank; d++) {
		int64_t st = sp->st[k][d];
		if (st == 0)
			continue;
		fprintf(f, "%si%d", any ? " + " : "", d);
		if (st != 1)
			fprintf(f, " * %lld", (long long)st);
		any = true;
	}
	if (!any)
		fputc('0', f);
}

/* Term i as a C operand: a variable, or a parenthesized literal. */
static void
emit_ref(FILE *f, const FusedExpr *e, int i)
{
	const FusedTerm *t = &e->t[i];
	if (t->op == FT_OPERAND) {
		fprintf(f, "a%d", t->operand);
	} else if (t->op == FT_LITERAL) {
		fputc('(', f);
		emit_float(f, t->a[0]);
		fputc(')', f);
	} else {
		fprintf(f, "t%d", i);
	}
}

/* Op term i: its formula with $k and @k replaced. */
static void
emit_formula(FILE *f, const FusedExpr *e, int i)
{
	const FusedTerm *t = &e->t[i];
	const OpInfo *o = op_get(t->op);
	const char *c = ir_fused_formula(t->op);
	if (!c)
		die("fused: no formula for %s", o->name);
	for (; *c; c++) {
		if ((*c != '$' && *c != '@') || c[1] < '0' || c[1] > '9') {
			fputc(*c, f);
			continue;
		}
		int k = c[1] - '0';
		if (*c == '$')
			emit_ref(f, e, t->in[k]);
		else if (attr_info[o->attr0 + k].kind == AK_INT)
			fprintf(f, "%lld", (long long)t->a[k]);
		else
			emit_float(f, t->a[k]);
		c++;
	}
}

/* The loop body at nesting depth: loads, one statement per op, store. */
static void
emit_body(Gen *s, const Node *n, const FusedExpr *e, const KSpace *sp,
          const char *tab)
{
	for (int k = 0; k < n->nin; k++) {
		fprintf(s->f, "%sconst float a%d = x%d[", tab, k, k);
		emit_index(s->f, sp, k);
		fputs("];\n", s->f);
	}
	for (int i = 0; i < e->n; i++) {
		if (e->t[i].op < 0)
			continue;
		fprintf(s->f, "%sconst float t%d = ", tab, i);
		emit_formula(s->f, e, i);
		fputs(";\n", s->f);
	}
	fprintf(s->f, "%sy[j++] = ", tab);
	emit_ref(s->f, e, e->n - 1);
	fputs(";\n", s->f);
}

void
emit_fused(Gen *s, const Node *n)
{
	Graph *g = s->g;
	FusedExpr e;
	const char *err = ir_fused_parse(g->mod->arena,
	                                 ir_attr(g, n, AT_FUSED_EXPR)->s, n->nin,
	                                 &e);
	if (err)
		die("%s", err);
	KSpace sp;
	lower_loop_space(s->g, n, &sp);
	fputs("\t{\n", s->f);
	for (int k = 0; k < n->nin; k++)
		fprintf(s->f, "\t\tconst float *x%d = %s;\n", k, ptr(s, n->in[k]));
	fprintf(s->f, "\t\tfloat *y = %s;\n\t\tint64_t j = 0;\n",
	        ptr(s, n->out));
	char tab[IR_MAXRANK + 3] = "\t\t";
	for (int d = 0; d < sp.rank; d++) {
		fprintf(s->f, "%sfor (int64_t i%d = 0; i%d < %lld; i%d++)%s\n", tab,
		        d, d, (long long)sp.dim[d], d, d == sp.rank - 1 ? " {" : "");
		strcat(tab, "\t");
	}
	emit_body(s, n, &e, &sp, tab);
	if (sp.rank > 0)
		fprintf(s->f, "%.*s}\n", sp.rank + 1, tab);
	fputs("\t}\n", s->f);
}
