/* cgen.c: the C backend.  Emits NAME.h (the embeddable API) and NAME.c
 * (the schedule as straight-line calls into the runtime).
 *
 * Requires a planned graph: every temporary has a workspace offset, graph
 * inputs and outputs live in caller buffers, and parameters are read from
 * the weights blob, which NAME.c links with the assembler's .incbin (ELF
 * targets).  With -DKILN_MAIN, NAME.c also defines main() over kiln_main().
 * The output is deterministic: the same graph gives the same bytes.
 */
#include <ctype.h>
#include <math.h>
#include <string.h>
#include "cgen.h"

const char *const ctype[NDTYPE] = {
	"float", "double", "int64_t", "int32_t", "int8_t", "uint8_t", "uint8_t",
	"uint16_t", "uint16_t", "int16_t", "uint16_t", "uint32_t", "uint64_t",
};   /* f16 and bf16 are held as their raw bits */
const char *const kdtype[NDTYPE] = {
	"KILN_F32", "KILN_F64", "KILN_I64", "KILN_I32", "KILN_I8", "KILN_U8",
	"KILN_BOOL", "KILN_F16", "KILN_BF16", "KILN_I16", "KILN_U16", "KILN_U32",
	"KILN_U64",
};

/* C11's keywords, which a tensor name may spell but a field may not. */
static const char *const keywords[] = {
	"auto", "break", "case", "char", "const", "continue", "default", "do",
	"double", "else", "enum", "extern", "float", "for", "goto", "if",
	"inline", "int", "long", "register", "restrict", "return", "short",
	"signed", "sizeof", "static", "struct", "switch", "typedef", "union",
	"unsigned", "void", "volatile", "while", "_Alignas", "_Alignof",
	"_Atomic", "_Bool", "_Complex", "_Generic", "_Imaginary", "_Noreturn",
	"_Static_assert", "_Thread_local",
};

/* name made a C identifier: other characters become '_', a leading digit
 * or a keyword gets a '_' added. */
char *
cgen_ident(Arena *a, const char *name)
{
	size_t n = strlen(name);
	char *s = arena_alloc(a, n + 3);
	char *p = s;
	if (!isalpha((unsigned char)name[0]) && name[0] != '_')
		*p++ = '_';
	for (size_t i = 0; i < n; i++)
		*p++ = isalnum((unsigned char)name[i]) ? name[i] : '_';
	for (int i = 0; i < countof(keywords); i++)
		if (strcmp(s, keywords[i]) == 0)
			*p = '_';
	return s;
}

static char *
upper(Arena *a, const char *s)
{
	char *u = arena_strdup(a, s);
	for (char *p = u; *p; p++)
		*p = toupper((unsigned char)*p);
	return u;
}

/* A C identifier for name not among used[0..n), made unique by _2, _3. */
static char *
unique_ident(Arena *a, const char *name, char **used, int n)
{
	char *base = cgen_ident(a, name), *id = base;
	for (int k = 0, dup = 1; k < n; k++)
		if (strcmp(used[k], id) == 0) {
			id = arena_printf(a, "%s_%d", base, ++dup);
			k = -1;
		}
	return id;
}

/* Names the input and output fields; an output temporary is computed
 * directly into the caller's buffer of its first output. */
void
name_fields(Gen *s)
{
	Graph *g = s->g;
	Arena *a = g->mod->arena;
	int n = g->ninput + g->noutput;
	char **used = arena_alloc(a, n * sizeof *used);
	s->infield = arena_alloc(a, g->nval * sizeof *s->infield);
	s->outfield = used + g->ninput;
	s->outpos = arena_alloc(a, g->nval * sizeof *s->outpos);
	for (int i = 0; i < g->nval; i++)
		s->outpos[i] = -1;
	for (int i = 0; i < n; i++) {
		int v = i < g->ninput ? g->input[i] : g->output[i - g->ninput];
		used[i] = unique_ident(a, g->val[v].name, used, i);
		if (i < g->ninput)
			s->infield[v] = used[i];
		else if (g->val[v].kind == VK_TEMP && s->outpos[v] < 0)
			s->outpos[v] = i - g->ninput;
	}
}

/* A C expression for the data of value v.  A trainer's functions take
 * arrays (in[k], out[k]) and keep parameters in the mutable state. */
char *
ptr(Gen *s, int v)
{
	Graph *g = s->g;
	Arena *a = g->mod->arena;
	if (v < 0)
		return "NULL";
	Value *val = &g->val[v];
	const char *t = ctype[val->type.dtype];
	switch (val->kind) {
	case VK_INPUT:
		if (s->inpos)
			return arena_printf(a, "((const %s *)in[%d])", t, s->inpos[v]);
		return arena_printf(a, "in->%s", s->infield[v]);
	case VK_PARAM:
		if (s->soff)
			return arena_printf(a, "(%s *)(state + %lld)", t,
			                    (long long)s->soff[v]);
		/* fall through */
	case VK_CONST:
		return arena_printf(a, "(const %s *)(wt + %lld)", t,
		                    (long long)s->woff[v]);
	default:
		if (s->outpos[v] >= 0 && s->inpos)
			return arena_printf(a, "((%s *)out[%d])", t, s->outpos[v]);
		if (s->outpos[v] >= 0)
			return arena_printf(a, "out->%s", s->outfield[s->outpos[v]]);
		if (val->offset < 0)
			die("value '%s' has no workspace offset", val->name);
		return arena_printf(a, "(%s *)(ws + %lld)", t,
		                    (long long)val->offset);
	}
}


/* Writes a C comment, breaking any comment terminator in the text. */
static void
comment(FILE *f, const char *text)
{
	fputs("\t/* ", f);
	for (const char *p = text; *p; p++) {
		fputc(*p, f);
		if (p[0] == '*' && p[1] == '/')
			fputc(' ', f);
	}
	fputs(" */\n", f);
}

/* A C expression for x as a float argument (NAN and INFINITY are in the
 * generated file's <math.h>). */
void
emit_float(FILE *f, double x)
{
	if (isnan(x))
		fputs("NAN", f);
	else if (isinf(x))
		fputs(x < 0 ? "-INFINITY" : "INFINITY", f);
	else if (x == 0)
		fputs(signbit(x) ? "-0.0f" : "0.0f", f);
	else
		fprintf(f, "(float)%.17g", x);
}

/* x as a C double literal, exactly. */
static void
emit_double(FILE *f, double x)
{
	if (isnan(x) || isinf(x))
		emit_float(f, x);    /* NAN and INFINITY are the same in double */
	else if (x == 0)
		fputs(signbit(x) ? "-0.0" : "0.0", f);
	else
		fprintf(f, "%.17g", x);
}

/* ---- the calls of backends/lower.c, spelled in C */

static bool
dynamic(const KData *d)
{
	for (int i = 0; i < d->nfield; i++)
		if (d->field[i].kind == KF_PTR)
			return true;
	return false;
}

/* Element k of field f. */
static void
emit_elem(Gen *s, const KField *f, int k)
{
	switch (f->kind) {
	case KF_INT:
	case KF_I64:
	case KF_U8: fprintf(s->f, "%lld", (long long)f->i[k]); break;
	case KF_F32: emit_float(s->f, f->f[k]); break;
	case KF_F64: emit_double(s->f, f->f[k]); break;
	case KF_PTR: fputs(ptr(s, f->v[k]), s->f); break;
	}
}

/* The declaration of d at the start of its call's block: static const
 * unless it holds a pointer into this run's buffers. */
static void
emit_data(Gen *s, const KData *d)
{
	bool dyn = dynamic(d);
	fprintf(s->f, "\t\t%s%s %s%s%s = {", dyn ? "" : "static const ", d->ctype,
	        dyn && d->array ? "const " : "", d->name, d->array ? "[]" : "");
	int close = -1;     /* the field that ends a nested struct */
	for (int i = 0; i < d->nfield; i++) {
		const KField *f = &d->field[i];
		bool list = !d->array && f->n > 1;
		fputs(i ? ", " : "", s->f);
		if (f->nest > 0) {
			fputc('{', s->f);
			close = i + f->nest - 1;
		}
		fputs(list ? "{" : "", s->f);
		for (int k = 0; k < f->n; k++) {
			fputs(k ? ", " : "", s->f);
			emit_elem(s, f, k);
		}
		fputs(list ? "}" : "", s->f);
		if (i == close)
			fputc('}', s->f);
	}
	fputs("};\n", s->f);
}

static void
emit_arg(Gen *s, const KArg *a)
{
	switch (a->kind) {
	case KA_VAL: fputs(ptr(s, a->v), s->f); break;
	case KA_OUT: fprintf(s->f, "out->%s", s->outfield[a->i]); break;
	case KA_INT:
	case KA_I64:
	case KA_SIZE: fprintf(s->f, "%lld", (long long)a->i); break;
	case KA_U64: fprintf(s->f, "%lluu", (unsigned long long)a->i); break;
	case KA_F32: emit_float(s->f, a->f); break;
	case KA_F64: emit_double(s->f, a->f); break;
	case KA_STEP: fprintf(s->f, "(uint64_t)*%s", ptr(s, a->v)); break;
	case KA_MIX:
		fprintf(s->f, "kiln_splitmix64(%lluu, (uint64_t)*%s)",
		        (unsigned long long)a->i, ptr(s, a->v));
		break;
	case KA_DATA:
		fprintf(s->f, "%s%s", a->d->array ? "" : "&", a->d->name);
		break;
	}
}

/* One call: a statement, or a block declaring its data first and
 * returning the kernel's status unless it is KILN_OK. */
static void
emit_call(Gen *s, const KCall *c)
{
	if (!c->kernel) {
		emit_fused(s, c->node);     /* a generated loop (loop.c) */
		return;
	}
	bool block = c->status;
	for (int i = 0; i < c->narg; i++)
		block |= c->arg[i].kind == KA_DATA;
	if (block)
		fputs("\t{\n", s->f);
	for (int i = 0; i < c->narg; i++)
		if (c->arg[i].kind == KA_DATA)
			emit_data(s, c->arg[i].d);
	fprintf(s->f, "%s%s%s(", block ? "\t\t" : "\t",
	        c->status ? "kiln_status st = " : "", c->kernel);
	for (int i = 0; i < c->narg; i++) {
		fputs(i ? ", " : "", s->f);
		emit_arg(s, &c->arg[i]);
	}
	fputs(");\n", s->f);
	if (c->status)
		fputs("\t\tif (st != KILN_OK)\n\t\t\treturn st;\n", s->f);
	if (block)
		fputs("\t}\n", s->f);
}

/* Calls c[0..n), each node's headed by a comment naming it. */
static void
emit_calls(Gen *s, const KCall *c, int n)
{
	Graph *g = s->g;
	for (int i = 0; i < n; i++) {
		const Node *nd = c[i].node;
		if (nd && (i == 0 || c[i - 1].node != nd))
			comment(s->f, arena_printf(g->mod->arena, "%s = %s  (%s:%d:%d)",
			        g->val[nd->out].name, op_get(nd->op)->name,
			        nd->loc.file ? nd->loc.file : "?", nd->loc.line,
			        nd->loc.col));
		emit_call(s, &c[i]);
	}
}

void
emit_node(Gen *s, const Node *n)
{
	KCall *c = NULL;
	int nc = 0, cap = 0;
	lower_node(s->g, n, &c, &nc, &cap);
	emit_calls(s, c, nc);
}

/* A C string literal for s; other than letters, digits, '_' and '.',
 * bytes are written as octal escapes. */
void
cstring(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++)
		fprintf(f, isalnum((unsigned char)*s) || *s == '_' || *s == '.' ?
		        "%c" : "\\%03o", (unsigned char)*s);
	fputc('"', f);
}

static void
emit_desc(Gen *s, const char *what, const int *vals, int n)
{
	Graph *g = s->g;
	fprintf(s->f, "static const struct kiln_tensor_desc %s_%s_desc[] = {\n",
	        s->o->prefix, what);
	for (int i = 0; i < n; i++) {
		const Value *v = &g->val[vals[i]];
		fputs("\t{", s->f);
		cstring(s->f, v->name);
		fprintf(s->f, ", %s, %d, {", kdtype[v->type.dtype], v->type.rank);
		for (int k = 0; k < v->type.rank; k++)
			fprintf(s->f, "%s%lld", k ? ", " : "", (long long)v->type.dim[k]);
		fputs("}},\n", s->f);
	}
	if (n == 0)
		fputs("\t{0},\n", s->f);
	fputs("};\n", s->f);
}

static void
emit_header(Gen *s, FILE *h)
{
	Graph *g = s->g;
	const char *P = upper(g->mod->arena, s->o->prefix), *p = s->o->prefix;
	fprintf(h, "/* %s.h: model '%s' compiled by kiln from %s.  Generated; "
	        "do not edit.\n *\n"
	        " * %s_run() runs the model on caller buffers.  workspace holds "
	        "%s_WORKSPACE_BYTES\n"
	        " * bytes aligned to KILN_ALIGN, or is NULL to use a static one "
	        "(then calls\n * must not overlap).  Nothing is allocated.  The "
	        "weights are linked from\n * %s (see docs/backend-c.md).\n */\n",
	        p, g->name, s->o->source, p, P, s->o->weights);
	fprintf(h, "#ifndef %s_H\n#define %s_H\n\n#include \"kiln.h\"\n\n", P, P);
	fprintf(h, "#define %s_WORKSPACE_BYTES %lld\n\n", P,
	        (long long)g->workspace);
	fprintf(h, "struct %s_inputs {\n", p);
	for (int i = 0; i < g->ninput; i++) {
		const Value *v = &g->val[g->input[i]];
		fprintf(h, "\tconst %s *%s;  /* %s */\n", ctype[v->type.dtype],
		        s->infield[g->input[i]], type_str(g->mod->arena, &v->type));
	}
	if (g->ninput == 0)     /* a sampler; C has no empty structs */
		fputs("\tchar none;\n", h);
	fprintf(h, "};\n\nstruct %s_outputs {\n", p);
	for (int i = 0; i < g->noutput; i++) {
		const Value *v = &g->val[g->output[i]];
		fprintf(h, "\t%s *%s;  /* %s */\n", ctype[v->type.dtype],
		        s->outfield[i], type_str(g->mod->arena, &v->type));
	}
	fprintf(h, "};\n\nkiln_status %s_run(const struct %s_inputs *in, "
	        "struct %s_outputs *out,\n\tvoid *workspace);\n\n", p, p, p);
	fprintf(h, "/* Names, dtypes and shapes of the inputs and outputs. */\n"
	        "extern const struct kiln_model_desc %s_model;\n\n#endif\n", p);
}

static void
emit_weights_link(Gen *s)
{
	const char *P = upper(s->g->mod->arena, s->o->prefix), *p = s->o->prefix;
	fprintf(s->f, "#ifndef %s_WEIGHTS_FILE\n#define %s_WEIGHTS_FILE \"%s\"\n"
	        "#endif\n", P, P, s->o->weights);
	fprintf(s->f, "__asm__(\".section .rodata\\n.balign %d\\n.local %s_weights\\n"
	        "%s_weights:\\n.incbin \\\"\" %s_WEIGHTS_FILE \"\\\"\\n.previous\");\n"
	        "extern const unsigned char %s_weights[];\n\n", 64, p, p, P, p);
}

static void
emit_run(Gen *s, const Lowered *lw)
{
	Graph *g = s->g;
	const char *p = s->o->prefix;
	fprintf(s->f, "static _Alignas(KILN_ALIGN) unsigned char %s_ws[%lld];\n\n",
	        p, (long long)MAX(g->workspace, 1));
	fprintf(s->f, "kiln_status\n%s_run(const struct %s_inputs *in, "
	        "struct %s_outputs *out,\n\tvoid *workspace)\n{\n", p, p, p);
	fprintf(s->f, "\tunsigned char *ws = workspace ? workspace : %s_ws;\n"
	        "\tconst unsigned char *wt = %s_weights;\n"
	        "\t(void)in;\n\t(void)ws;\n\t(void)wt;\n\n",
	        p, p);
	emit_calls(s, lw->call, lw->ncall);  /* the nodes, the output copies */
	fputs("\treturn KILN_OK;\n}\n\n", s->f);
}

static void
emit_glue(Gen *s)
{
	Graph *g = s->g;
	const char *p = s->o->prefix;
	emit_desc(s, "inputs", g->input, g->ninput);
	emit_desc(s, "outputs", g->output, g->noutput);
	fprintf(s->f, "\nstatic kiln_status\nrun_arrays(const void *const *in, "
	        "void *const *out, void *ws)\n{\n\tstruct %s_inputs i = {", p);
	for (int k = 0; k < g->ninput; k++)
		fprintf(s->f, "%sin[%d]", k ? ", " : "", k);
	fprintf(s->f, "%s};\n\tstruct %s_outputs o = {", g->ninput ? "" : "0", p);
	for (int k = 0; k < g->noutput; k++)
		fprintf(s->f, "%sout[%d]", k ? ", " : "", k);
	fprintf(s->f, "};\n\t(void)in;\n\treturn %s_run(&i, &o, ws);\n}\n\n", p);
	fprintf(s->f, "const struct kiln_model_desc %s_model = {\n\t", p);
	cstring(s->f, g->name);
	fprintf(s->f, ", %d, %d, %s_inputs_desc, %s_outputs_desc,\n"
	        "\t%s_WORKSPACE_BYTES, run_arrays,\n};\n\n", g->ninput,
	        g->noutput, p, p, upper(g->mod->arena, p));
	fprintf(s->f, "#ifdef KILN_MAIN\nint\nmain(int argc, char **argv)\n{\n"
	        "\treturn kiln_main(argc, argv, &%s_model);\n}\n#endif\n", p);
}

void
cgen_emit(Graph *g, const CgenOpts *o, FILE *c, FILE *h)
{
	Lowered *lw = lower_graph(g);
	Gen s = {.g = g, .o = o, .f = c, .woff = lw->woff};
	name_fields(&s);
	emit_header(&s, h);
	fprintf(c, "/* %s.c: model '%s' compiled by kiln from %s.  Generated; "
	        "do not edit. */\n#include <math.h>\n#include <stddef.h>\n"
	        "#include <stdint.h>\n"
	        "#include \"%s\"\n#include \"kiln_scalar.h\"\n\n", o->prefix,
	        g->name, o->source, o->header);
	emit_weights_link(&s);
	emit_run(&s, lw);
	emit_glue(&s);
}

void
cgen_emit_header(Graph *g, const CgenOpts *o, FILE *h)
{
	Gen s = {.g = g, .o = o};
	name_fields(&s);
	emit_header(&s, h);
}
