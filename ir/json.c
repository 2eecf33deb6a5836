/* json.c: a module as JSON, for `kiln ir --format=json`.
 *
 *   {"file": F, "graphs": [{"name", "inputs", "outputs", "workspace",
 *     "values": [{"name", "kind", "type", "dtype", "shape", "bytes",
 *                 "offset"?}],
 *     "nodes": [{"op", "operands", "attributes", "result", "flops"}],
 *     "updates": [{"param", "value"}]}]}
 *
 * Values are named without their .kir sigil (their kind says which);
 * an absent optional operand is null; attributes are all of the op's
 * that are set, defaults included, as JSON numbers, strings and arrays
 * (a non-finite float as the string "nan", "inf" or "-inf").  Dead ops
 * and the values only they made are left out.  docs/inspect.md.
 */
#include <math.h>
#include <string.h>
#include "ir.h"

static void
str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char c = *s;
		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20 || c == 0x7f)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

static void
num(FILE *f, double x)
{
	if (isfinite(x))
		ir_print_float(f, x, false);
	else
		str(f, isnan(x) ? "nan" : x > 0 ? "inf" : "-inf");
}

static void
attr(FILE *f, Arena *arena, const Attr *a)
{
	switch (a->kind) {
	case AK_INT: fprintf(f, "%lld", (long long)a->i); break;
	case AK_FLOAT: num(f, a->f); break;
	case AK_STRING: str(f, a->s); break;
	case AK_INTS:
	case AK_FLOATS:
		fputc('[', f);
		for (int i = 0; i < a->n; i++) {
			fputs(i ? ", " : "", f);
			if (a->kind == AK_INTS)
				fprintf(f, "%lld", (long long)a->ints[i]);
			else
				num(f, a->floats[i]);
		}
		fputc(']', f);
		break;
	case AK_TENSOR: {       /* the type only; kiln ir prints the data */
		fputs("{\"type\": ", f);
		str(f, type_str(arena, &a->type));
		fputc('}', f);
		break;
	}
	default: die("bad attribute kind %d", a->kind);
	}
}

static bool
live_value(const Graph *g, int v)
{
	int d = g->val[v].def;
	return d < 0 || !g->node[d].dead;
}

static void
value(FILE *f, const Graph *g, int v)
{
	static const char *const kind[] = {[VK_INPUT] = "input",
		[VK_PARAM] = "param", [VK_CONST] = "const", [VK_TEMP] = "temp",
		[VK_LABEL] = "label"};
	const Value *x = &g->val[v];
	fputs("{\"name\": ", f);
	str(f, x->name);
	fprintf(f, ", \"kind\": \"%s\", \"type\": ", kind[x->kind]);
	str(f, type_str(g->mod->arena, &x->type));
	fprintf(f, ", \"dtype\": \"%s\", \"shape\": [", dt_name[x->type.dtype]);
	for (int d = 0; d < x->type.rank; d++)
		fprintf(f, "%s%lld", d ? ", " : "", (long long)x->type.dim[d]);
	fprintf(f, "], \"bytes\": %lld", (long long)type_bytes(&x->type));
	if (x->kind == VK_TEMP && x->offset >= 0)
		fprintf(f, ", \"offset\": %lld", (long long)x->offset);
	fputc('}', f);
}

static void
node(FILE *f, Graph *g, const Node *n)
{
	const OpInfo *o = op_get(n->op);
	fprintf(f, "{\"op\": \"%s\", \"operands\": [", o->name);
	for (int k = 0; k < n->nin; k++) {
		fputs(k ? ", " : "", f);
		if (n->in[k] < 0)
			fputs("null", f);
		else
			str(f, g->val[n->in[k]].name);
	}
	fputs("], \"attributes\": {", f);
	int printed = 0;
	for (int i = 0; i < o->nattr; i++) {
		const Attr *a = &g->attr[n->attr + i];
		if (a->kind == AK_NONE)
			continue;
		fputs(printed++ ? ", " : "", f);
		str(f, attr_info[o->attr0 + i].name);
		fputs(": ", f);
		attr(f, g->mod->arena, a);
	}
	fputs("}, \"result\": ", f);
	str(f, g->val[n->out].name);
	fprintf(f, ", \"flops\": %lld}", (long long)ir_flops(g, n));
}

/* A list of names of values, for inputs and outputs. */
static void
names(FILE *f, const Graph *g, const int *v, int n)
{
	fputc('[', f);
	for (int i = 0; i < n; i++) {
		fputs(i ? ", " : "", f);
		str(f, g->val[v[i]].name);
	}
	fputc(']', f);
}

static void
graph(FILE *f, Graph *g)
{
	fputs("    {\"name\": ", f);
	str(f, g->name);
	fputs(",\n     \"inputs\": ", f);
	names(f, g, g->input, g->ninput);
	fputs(",\n     \"outputs\": ", f);
	names(f, g, g->output, g->noutput);
	if (g->workspace >= 0)
		fprintf(f, ",\n     \"workspace\": %lld", (long long)g->workspace);
	fputs(",\n     \"values\": [", f);
	int k = 0;
	for (int v = 0; v < g->nval; v++) {
		if (!live_value(g, v))
			continue;
		fputs(k++ ? ",\n       " : "\n       ", f);
		value(f, g, v);
	}
	fputs("],\n     \"nodes\": [", f);
	k = 0;
	for (int i = 0; i < g->nnode; i++) {
		if (g->node[i].dead)
			continue;
		fputs(k++ ? ",\n       " : "\n       ", f);
		node(f, g, &g->node[i]);
	}
	fputs("],\n     \"updates\": [", f);
	for (int i = 0; i < g->nupdate; i++) {
		fputs(i ? ", " : "", f);
		fputs("{\"param\": ", f);
		str(f, g->val[g->update[i].dst].name);
		fputs(", \"value\": ", f);
		str(f, g->val[g->update[i].src].name);
		fputc('}', f);
	}
	fputs("]}", f);
}

void
ir_print_json(FILE *f, const Module *m)
{
	fputs("{\"file\": ", f);
	str(f, m->file ? m->file : "");
	fputs(",\n  \"graphs\": [\n", f);
	for (int i = 0; i < m->ngraph; i++) {
		if (i)
			fputs(",\n", f);
		graph(f, m->graph[i]);
	}
	fputs("\n  ]\n}\n", f);
}
