/* print.c: the canonical .kir printer (grammar in docs/ir.md).
 *
 * Printing is deterministic and canonical so that print, parse, print
 * gives the same bytes: fixed indentation and spacing, attributes in
 * registry order and only when they differ from their default, floats in
 * the shortest form that reads back exactly, names kept from the source
 * and quoted only when they must be.  Parameter and constant data of more
 * than IR_ELIDE elements is printed as `elided` unless asked for.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "ir.h"

bool
ir_bare_name(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (!(('a' <= *s && *s <= 'z') || ('A' <= *s && *s <= 'Z') ||
		      ('0' <= *s && *s <= '9') || *s == '_' || *s == '.'))
			return false;
	return true;
}

void
ir_print_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char c = *s;
		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20 || c == 0x7f)
			fprintf(f, "\\%02x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

void
ir_print_name(FILE *f, char sigil, const char *s)
{
	fputc(sigil, f);
	if (ir_bare_name(s))
		fputs(s, f);
	else
		ir_print_string(f, s);
}

/* Shortest %g form that reads back as the same float or double.  f32 is
 * checked with strtof, as the parser reads it: (float)strtod can round
 * twice and differ from it. */
void
ir_print_float(FILE *f, double x, bool f32)
{
	if (isnan(x)) {
		fputs("nan", f);
		return;
	}
	if (isinf(x)) {
		fputs(x < 0 ? "-inf" : "inf", f);
		return;
	}
	char buf[40], plain[40];
	for (int p = 1; p <= 17; p++) {
		snprintf(buf, sizeof buf, "%.*g", p, x);
		if (f32 ? strtof(buf, NULL) == (float)x : strtod(buf, NULL) == x)
			break;
	}
	/* An integer prints as plain digits when that is no longer: 250,
	 * not 2.5e+02, but 1.5e+10, not 15000000512. */
	if (x == trunc(x) && fabs(x) < 1e17) {
		snprintf(plain, sizeof plain, "%.0f", x);
		if (strlen(plain) <= strlen(buf))
			memcpy(buf, plain, sizeof buf);
	}
	fputs(buf, f);
}

void
ir_print_type(FILE *f, const Type *t)
{
	fprintf(f, "%s[", dt_name[t->dtype]);
	for (int i = 0; i < t->rank; i++)
		fprintf(f, "%s%lld", i ? "," : "", (long long)t->dim[i]);
	fputc(']', f);
}

static void
print_elem(FILE *f, int dtype, const void *data, int64_t i)
{
	switch (dtype) {
	case DT_F32: ir_print_float(f, ((const float *)data)[i], true); break;
	case DT_F64: ir_print_float(f, ((const double *)data)[i], false); break;
	case DT_I64: fprintf(f, "%lld", (long long)((const int64_t *)data)[i]); break;
	case DT_I32: fprintf(f, "%d", ((const int32_t *)data)[i]); break;
	case DT_I8: fprintf(f, "%d", ((const int8_t *)data)[i]); break;
	case DT_U8:
	case DT_BOOL: fprintf(f, "%u", ((const uint8_t *)data)[i]); break;
	case DT_I16: fprintf(f, "%d", ((const int16_t *)data)[i]); break;
	case DT_F16:    /* the 16-bit floats as their bit patterns (ir.md) */
	case DT_BF16:
	case DT_U16: fprintf(f, "%u", ((const uint16_t *)data)[i]); break;
	case DT_U32:
		fprintf(f, "%lu", (unsigned long)((const uint32_t *)data)[i]);
		break;
	case DT_U64:
		fprintf(f, "%llu", (unsigned long long)((const uint64_t *)data)[i]);
		break;
	default: die("bad dtype %d", dtype);
	}
}

static void
print_data(FILE *f, const Type *t, const void *data)
{
	fputc('[', f);
	for (int64_t i = 0, n = type_numel(t); i < n; i++) {
		if (i)
			fputs(", ", f);
		print_elem(f, t->dtype, data, i);
	}
	fputc(']', f);
}

static void
print_loc(FILE *f, Loc loc)
{
	if (!loc.file)
		return;
	fputs(" loc(", f);
	ir_print_string(f, loc.file);
	if (loc.node) {
		fputc(':', f);
		ir_print_string(f, loc.node);
		if (loc.op) {
			fputc(':', f);
			ir_print_string(f, loc.op);
		}
	} else {
		fprintf(f, ":%d:%d", loc.line, loc.col);
	}
	fputc(')', f);
}

static void
print_attr(FILE *f, const Attr *a)
{
	switch (a->kind) {
	case AK_INT: fprintf(f, "%lld", (long long)a->i); break;
	case AK_FLOAT: ir_print_float(f, a->f, false); break;
	case AK_STRING: ir_print_string(f, a->s); break;
	case AK_INTS:
	case AK_FLOATS:
		fputc('[', f);
		for (int i = 0; i < a->n; i++) {
			fputs(i ? ", " : "", f);
			if (a->kind == AK_INTS)
				fprintf(f, "%lld", (long long)a->ints[i]);
			else
				ir_print_float(f, a->floats[i], false);
		}
		fputc(']', f);
		break;
	case AK_TENSOR:
		fputs("tensor(", f);
		ir_print_type(f, &a->type);
		fputs(", ", f);
		print_data(f, &a->type, a->data);
		fputc(')', f);
		break;
	default: die("bad attribute kind %d", a->kind);
	}
}

/* Prints ` {name=value, ...}` for the attributes that differ from their
 * registry default, or nothing when none do. */
void
ir_print_attrs(FILE *f, const Graph *g, const Node *n)
{
	const OpInfo *o = op_get(n->op);
	int printed = 0;
	for (int i = 0; i < o->nattr; i++) {
		const Attr *a = &g->attr[n->attr + i];
		Attr def;
		ir_parse_default((Graph *)g, &def, &attr_info[o->attr0 + i]);
		if (ir_attr_eq(a, &def))
			continue;
		fputs(printed++ ? ", " : " {", f);
		fprintf(f, "%s=", attr_info[o->attr0 + i].name);
		print_attr(f, a);
	}
	if (printed)
		fputc('}', f);
}

static void
print_init(FILE *f, const Value *v, const PrintOpts *o)
{
	switch (v->init) {
	case INIT_ZEROS: fputs("zeros", f); return;
	case INIT_ONES: fputs("ones", f); return;
	case INIT_HE_UNIFORM:
		fprintf(f, "he_uniform(fan_in=%lld, seed=%llu)",
		        (long long)v->fan_in, (unsigned long long)v->seed);
		return;
	case INIT_GLOROT_UNIFORM:
		fprintf(f, "glorot_uniform(fan_in=%lld, fan_out=%lld, seed=%llu)",
		        (long long)v->fan_in, (long long)v->fan_out,
		        (unsigned long long)v->seed);
		return;
	}
	if (v->data && (type_numel(&v->type) <= IR_ELIDE || o->constants))
		print_data(f, &v->type, v->data);
	else
		fputs("elided", f);
}

static void
print_decl(FILE *f, const Value *v, const PrintOpts *o)
{
	fputs(v->kind == VK_PARAM ? "  param " : "  const ", f);
	ir_print_name(f, '$', v->name);
	fputs(": ", f);
	ir_print_type(f, &v->type);
	fputs(" = ", f);
	print_init(f, v, o);
	print_loc(f, v->loc);
	fputc('\n', f);
}

static void
print_node(FILE *f, const Graph *g, const Node *n)
{
	fputs("  ", f);
	ir_print_name(f, '%', g->val[n->out].name);
	fprintf(f, " = %s", op_get(n->op)->name);
	for (int i = 0; i < n->nin; i++) {
		fputs(i ? ", " : " ", f);
		if (n->in[i] < 0) {
			fputc('_', f);
			continue;
		}
		const Value *v = &g->val[n->in[i]];
		bool global = v->kind == VK_PARAM || v->kind == VK_CONST;
		ir_print_name(f, global ? '$' : '%', v->name);
	}
	ir_print_attrs(f, g, n);
	fputs(" : ", f);
	ir_print_type(f, &g->val[n->out].type);
	print_loc(f, n->loc);
	fputc('\n', f);
}

void
ir_print_graph(FILE *f, const Graph *g, const PrintOpts *o)
{
	static const PrintOpts none;
	if (!o)
		o = &none;
	fputs("graph ", f);
	ir_print_name(f, '@', g->name);
	fputc('(', f);
	for (int i = 0; i < g->ninput; i++) {
		const Value *v = &g->val[g->input[i]];
		fputs(i ? ", " : "", f);
		ir_print_name(f, '%', v->name);
		fputs(": ", f);
		ir_print_type(f, &v->type);
	}
	fputs(") {\n", f);
	for (int i = 0; i < g->nval; i++)
		if (g->val[i].kind == VK_PARAM || g->val[i].kind == VK_CONST)
			print_decl(f, &g->val[i], o);
	for (int i = 0; i < g->nnode; i++)
		if (!g->node[i].dead)
			print_node(f, g, &g->node[i]);
	for (int i = 0; i < g->nupdate; i++) {
		const Value *src = &g->val[g->update[i].src];
		bool global = src->kind == VK_PARAM || src->kind == VK_CONST;
		fputs("  update ", f);
		ir_print_name(f, '$', g->val[g->update[i].dst].name);
		fputs(" = ", f);
		ir_print_name(f, global ? '$' : '%', src->name);
		fputc('\n', f);
	}
	fputs("  return", f);
	for (int i = 0; i < g->noutput; i++) {
		const Value *v = &g->val[g->output[i]];
		fputs(i ? ", " : " ", f);
		bool global = v->kind == VK_PARAM || v->kind == VK_CONST;
		ir_print_name(f, global ? '$' : '%', v->name);
	}
	fputs("\n}\n", f);
}

void
ir_print(FILE *f, const Module *m, const PrintOpts *o)
{
	for (int i = 0; i < m->ngraph; i++) {
		if (i)
			fputc('\n', f);
		ir_print_graph(f, m->graph[i], o);
		cfg_print(f, m->graph[i]);
	}
}
