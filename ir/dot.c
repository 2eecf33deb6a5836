/* dot.c: a module as a Graphviz graph, for `kiln ir --format=dot`.
 *
 * Each graph of the module is a cluster.  Ops are boxes labelled with the
 * op, its attributes that differ from their defaults, and the result's
 * name and type; inputs and outputs are ellipses; parameters and
 * constants are dimmed (gray, dashed).  An op that holds several (a
 * `fused` elementwise loop, a conv2d, gemm or matmul with a fused
 * activation or residual) sits in a cluster of its own whose label says
 * what was fused: the fused expression, or the epilogue.  Edges run from
 * where an operand is made to the op that reads it.
 */
#include <stdlib.h>
#include <string.h>
#include "ir.h"

/* Writes s between double quotes for dot: quotes and backslashes are
 * escaped, a newline becomes dot's centred line break. */
static void
quoted(FILE *f, const char *s, size_t n)
{
	fputc('"', f);
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '\n')
			fputs("\\n", f);
		else if (s[i] == '"' || s[i] == '\\')
			fprintf(f, "\\%c", s[i]);
		else
			fputc(s[i], f);
	}
	fputc('"', f);
}

/* A label is built as text in a memory stream, then quoted. */
typedef struct {
	FILE *f;
	char *buf;
	size_t len;
} Label;

static FILE *
label_open(Label *l)
{
	*l = (Label){0};
	l->f = open_memstream(&l->buf, &l->len);
	if (!l->f)
		die("out of memory");
	return l->f;
}

static void
label_put(FILE *out, Label *l)
{
	fclose(l->f);
	quoted(out, l->buf, l->len);
	free(l->buf);
}

static void
value_line(FILE *f, const Value *v)
{
	static const char sigil[] = {[VK_INPUT] = '%', [VK_PARAM] = '$',
		[VK_CONST] = '$', [VK_TEMP] = '%', [VK_LABEL] = '%'};
	ir_print_name(f, sigil[v->kind], v->name);
	fputs(": ", f);
	ir_print_type(f, &v->type);
}

/* What an op fused into it, as one line, or NULL when it fused nothing. */
static const char *
fused_what(Arena *a, Graph *g, const Node *n)
{
	if (n->op == OP_FUSED)
		return arena_printf(a, "fused: %s", ir_attr(g, n, AT_FUSED_EXPR)->s);
	int act = op_attr_lookup(n->op, "act");
	if (act < 0)
		return NULL;
	const char *s = ir_attr(g, n, act)->s;
	bool has_act = s && strcmp(s, "none") != 0;
	int plain = n->op == OP_MATMUL ? 2 : 3;   /* operands before the residual */
	bool residual = n->nin > plain && n->in[plain] >= 0;
	if (!has_act && !residual)
		return NULL;
	return arena_printf(a, "%s%s%s%s", op_get(n->op)->name,
	                    residual ? " + residual add" : "",
	                    has_act ? " + " : "", has_act ? s : "");
}

static void
print_op(FILE *f, Graph *g, int gi, int i)
{
	const Node *n = &g->node[i];
	const char *what = fused_what(g->mod->arena, g, n);
	if (what) {
		fprintf(f, "    subgraph cluster_g%d_n%d {\n      label=", gi, i);
		quoted(f, what, strlen(what));
		fputs("; style=\"rounded,filled\"; fillcolor=\"#e8f0fe\"; "
		      "color=\"#4a6fa5\";\n  ", f);
	}
	fprintf(f, "    g%d_n%d [label=", gi, i);
	Label l;
	FILE *t = label_open(&l);
	fputs(op_get(n->op)->name, t);
	if (n->op != OP_FUSED)          /* the cluster shows the expression */
		ir_print_attrs(t, g, n);
	fputc('\n', t);
	value_line(t, &g->val[n->out]);
	label_put(f, &l);
	fputs("];\n", f);
	if (what)
		fputs("    }\n", f);
}

/* The dot node an operand comes from: its producer, or the value's own. */
static void
source(FILE *f, const Graph *g, int gi, int v)
{
	if (g->val[v].def >= 0)
		fprintf(f, "g%d_n%d", gi, g->val[v].def);
	else
		fprintf(f, "g%d_v%d", gi, v);
}

static void
print_value(FILE *f, const Graph *g, int gi, int v)
{
	const Value *val = &g->val[v];
	bool global = val->kind == VK_PARAM || val->kind == VK_CONST;
	fprintf(f, "    g%d_v%d [label=", gi, v);
	Label l;
	value_line(label_open(&l), val);
	label_put(f, &l);
	if (global)
		fputs(", shape=box, style=dashed, color=gray60, fontcolor=gray50",
		      f);
	else
		fputs(", shape=ellipse", f);
	fputs("];\n", f);
}

static void
print_graph(FILE *f, Graph *g, int gi)
{
	fprintf(f, "  subgraph cluster_g%d {\n    label=", gi);
	const char *name = arena_printf(g->mod->arena, "@%s", g->name);
	quoted(f, name, strlen(name));
	fputs(";\n", f);
	int *use = ir_fill_uses(g, g->mod->arena);
	for (int v = 0; v < g->nval; v++)
		if (g->val[v].def < 0 && g->val[v].kind != VK_LABEL &&
		    (use[v] || g->val[v].kind == VK_INPUT))
			print_value(f, g, gi, v);
	for (int i = 0; i < g->nnode; i++)
		if (!g->node[i].dead)
			print_op(f, g, gi, i);
	for (int i = 0; i < g->nnode; i++) {
		const Node *n = &g->node[i];
		for (int k = 0; !n->dead && k < n->nin; k++) {
			if (n->in[k] < 0)
				continue;
			fputs("    ", f);
			source(f, g, gi, n->in[k]);
			fprintf(f, " -> g%d_n%d", gi, i);
			if (n->op == OP_FUSED)  /* as the expression names it */
				fprintf(f, " [label=\"%%%d\"]", k);
			fputs(";\n", f);
		}
	}
	for (int k = 0; k < g->noutput; k++) {
		fprintf(f, "    g%d_out%d [label=", gi, k);
		Label l;
		FILE *t = label_open(&l);
		fputs("return ", t);
		value_line(t, &g->val[g->output[k]]);
		label_put(f, &l);
		fputs(", shape=ellipse, style=bold];\n    ", f);
		source(f, g, gi, g->output[k]);
		fprintf(f, " -> g%d_out%d;\n", gi, k);
	}
	fputs("  }\n", f);
}

void
ir_print_dot(FILE *f, const Module *m)
{
	fputs("digraph kiln {\n  node [shape=box, fontname=\"Helvetica\", "
	      "fontsize=10];\n  edge [color=gray30];\n", f);
	for (int i = 0; i < m->ngraph; i++)
		print_graph(f, m->graph[i], i);
	fputs("}\n", f);
}
