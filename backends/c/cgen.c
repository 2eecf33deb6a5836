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

static const Type *
ty(Gen *s, int v)
{
	return &s->g->val[v].type;
}

static int64_t
ival(Gen *s, const Node *n, int id)
{
	return ir_attr(s->g, n, id)->i;
}

static int64_t *
ints(Gen *s, const Node *n, int id)
{
	return ir_attr(s->g, n, id)->ints;
}

/* The INT attribute called name (see named_ints). */
static int64_t
named_ival(Gen *s, const Node *n, const char *name)
{
	return ival(s, n, op_attr_lookup(n->op, name));
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

static void
emit_array(FILE *f, const char *name, const int64_t *v, int n)
{
	fprintf(f, "\t\tstatic const int64_t %s[] = {", name);
	for (int i = 0; i < MAX(n, 1); i++)
		fprintf(f, "%s%lld", i ? ", " : "", n ? (long long)v[i] : 0LL);
	fputs("};\n", f);
}

/* The kernel node n calls: the registry's name, with the name of the op's
 * dtype (its first data operand's) appended when the name ends in '_',
 * a family with one kernel per dtype (ir/ops.def). */
static const char *
kernel_name(Gen *s, const Node *n)
{
	const char *k = op_get(n->op)->kernel;
	size_t len = k ? strlen(k) : 0;
	if (len == 0 || k[len - 1] != '_')
		return k;
	int d = ir_data_operand(n);
	if (d < 0)
		die("%s: a kernel family needs a data operand", op_get(n->op)->name);
	return arena_printf(s->g->mod->arena, "%s%s", k,
	                    dt_name[ty(s, n->in[d])->dtype]);
}


/* Writes ", a" for each INT and FLOAT attribute in registry order. */
static void
emit_attr_args(Gen *s, const Node *n)
{
	const OpInfo *o = op_get(n->op);
	for (int i = 0; i < o->nattr; i++) {
		const Attr *a = &s->g->attr[n->attr + i];
		fputs(", ", s->f);
		if (a->kind == AK_INT)
			fprintf(s->f, "%lld", (long long)a->i);
		else if (a->kind == AK_FLOAT)
			emit_float(s->f, a->f);
		else
			die("%s: an elementwise op's attributes must be INT or FLOAT",
			    o->name);
	}
}

/* A two-operand ELTWISE op: kernel(y, a, b, rank, yd, as, bs, then its
 * INT and FLOAT attributes). */
static void
emit_binary(Gen *s, const Node *n)
{
	const Type *y = ty(s, n->out);
	int64_t as[IR_MAXRANK], bs[IR_MAXRANK];
	type_bcast_strides(ty(s, n->in[0]), y, as);
	type_bcast_strides(ty(s, n->in[1]), y, bs);
	fputs("\t{\n", s->f);
	emit_array(s->f, "yd", y->dim, y->rank);
	emit_array(s->f, "as", as, y->rank);
	emit_array(s->f, "bs", bs, y->rank);
	fprintf(s->f, "\t\t%s(%s, %s, %s, %d, yd, as, bs", kernel_name(s, n),
	        ptr(s, n->out), ptr(s, n->in[0]), ptr(s, n->in[1]), y->rank);
	emit_attr_args(s, n);
	fputs(");\n\t}\n", s->f);
}

static void
emit_where(Gen *s, const Node *n)
{
	const Type *y = ty(s, n->out);
	int64_t cs[IR_MAXRANK], as[IR_MAXRANK], bs[IR_MAXRANK];
	type_bcast_strides(ty(s, n->in[0]), y, cs);
	type_bcast_strides(ty(s, n->in[1]), y, as);
	type_bcast_strides(ty(s, n->in[2]), y, bs);
	fputs("\t{\n", s->f);
	emit_array(s->f, "yd", y->dim, y->rank);
	emit_array(s->f, "cs", cs, y->rank);
	emit_array(s->f, "as", as, y->rank);
	emit_array(s->f, "bs", bs, y->rank);
	fprintf(s->f, "\t\t%s(%s, %s, %s, %s, %d, %d, yd, cs, as, bs);\n\t}\n",
	        kernel_name(s, n), ptr(s, n->out), ptr(s, n->in[0]),
	        ptr(s, n->in[1]), ptr(s, n->in[2]), dt_size[y->dtype], y->rank);
}

static void
emit_cast(Gen *s, const Node *n)
{
	const Type *x = ty(s, n->in[0]), *y = ty(s, n->out);
	fprintf(s->f, "\t%s(%s, %s, %s, %s, %lld);\n", kernel_name(s, n),
	        ptr(s, n->out), kdtype[y->dtype], ptr(s, n->in[0]),
	        kdtype[x->dtype], (long long)type_numel(y));
}

/* The fused epilogue of a conv2d, gemm or matmul (its act attribute and
 * its residual, the op's last operand): declares `e` at the start of a
 * block (opened first when open) and returns "&e", or returns NULL when
 * there is none. */
static const char *
emit_epilogue(Gen *s, const Node *n, bool open)
{
	int id = op_attr_lookup(n->op, "act"), last = op_get(n->op)->maxin - 1;
	if (id < 0)
		return NULL;
	int act = shape_choice(ir_attr(s->g, n, id)->s, shape_act);
	int res = last < n->nin ? n->in[last] : -1;
	if (act == 0 && res < 0)
		return NULL;
	fprintf(s->f, "%s\t\tconst struct kiln_epilogue e = {%d, ",
	        open ? "\t{\n" : "", act);
	emit_float(s->f, ir_attr(s->g, n, id + 1)->f);
	fputs(", ", s->f);
	emit_float(s->f, ir_attr(s->g, n, id + 2)->f);
	fprintf(s->f, ", %s};\n", ptr(s, res));
	return "&e";
}

/* The kernel of a node with the epilogue e: kiln_X_f32 becomes
 * kiln_X_ep_f32. */
static const char *
ep_kernel(Gen *s, const Node *n, const char *e)
{
	const char *k = op_get(n->op)->kernel;
	if (!e)
		return k;
	size_t len = strlen(k) - strlen("_f32");
	return arena_printf(s->g->mod->arena, "%.*s_ep_f32", (int)len, k);
}

static void
emit_gemm(Gen *s, const Node *n)
{
	const Type *a = ty(s, n->in[0]), *y = ty(s, n->out);
	int64_t ta = ival(s, n, AT_GEMM_TRANS_A), tb = ival(s, n, AT_GEMM_TRANS_B);
	int64_t rs = 0, cs = 0;
	int c = n->nin > 2 ? n->in[2] : -1;
	if (c >= 0) {
		const Type *t = ty(s, c);
		int64_t rows = t->rank == 2 ? t->dim[0] : 1;
		int64_t cols = t->rank >= 1 ? t->dim[t->rank - 1] : 1;
		rs = rows == 1 ? 0 : cols;
		cs = cols == 1 ? 0 : 1;
	}
	const char *e = emit_epilogue(s, n, true);
	fprintf(s->f, "%s%s(%s, %s, %s, %s, %lld, %lld, %lld, %d, %d, "
	        "(float)%.17g, (float)%.17g, %lld, %lld%s%s);\n%s",
	        e ? "\t\t" : "\t", ep_kernel(s, n, e), ptr(s, n->out), ptr(s, n->in[0]),
	        ptr(s, n->in[1]), ptr(s, c), (long long)y->dim[0],
	        (long long)y->dim[1], (long long)a->dim[ta ? 0 : 1], (int)ta,
	        (int)tb, ir_attr(s->g, n, AT_GEMM_ALPHA)->f,
	        ir_attr(s->g, n, AT_GEMM_BETA)->f, (long long)rs, (long long)cs,
	        e ? ", " : "", e ? e : "", e ? "\t}\n" : "");
}

/* Batch stride of a matmul operand: its matrices are packed, or one
 * matrix is shared by the whole batch.  Other broadcasts are refused. */
static int64_t
batch_stride(Gen *s, const Node *n, const Type *t, const Type *y)
{
	int64_t nb = type_numel(t) / (t->dim[t->rank - 1] * t->dim[t->rank - 2]);
	int64_t yb = type_numel(y) / (y->dim[y->rank - 1] * y->dim[y->rank - 2]);
	if (nb == 1)
		return 0;
	if (nb == yb)
		return t->dim[t->rank - 1] * t->dim[t->rank - 2];
	diag_error(n->loc, "matmul: the C backend does not handle this batch "
	           "broadcast (%s)", type_str(s->g->mod->arena, t));
}

static void
emit_matmul(Gen *s, const Node *n)
{
	const Type *a = ty(s, n->in[0]), *b = ty(s, n->in[1]), *y = ty(s, n->out);
	int64_t m = y->dim[y->rank - 2], nn = y->dim[y->rank - 1];
	int64_t k = a->dim[a->rank - 1];
	const char *e = emit_epilogue(s, n, true);
	fprintf(s->f, "%s%s(%s, %s, %s, %lld, %lld, %lld, %lld, %lld, "
	        "%lld%s%s);\n%s",
	        e ? "\t\t" : "\t", ep_kernel(s, n, e), ptr(s, n->out), ptr(s, n->in[0]),
	        ptr(s, n->in[1]), (long long)(type_numel(y) / (m * nn)),
	        (long long)m, (long long)nn, (long long)k,
	        (long long)batch_stride(s, n, a, y),
	        (long long)batch_stride(s, n, b, y), e ? ", " : "", e ? e : "",
	        e ? "\t}\n" : "");
}

/* The INTS attribute called name: the 2-D and 3-D conv and pool ops
 * share attribute names, not ids. */
static int64_t *
named_ints(Gen *s, const Node *n, const char *name)
{
	return ints(s, n, op_attr_lookup(n->op, name));
}

/* conv2d, conv3d, their transposes and conv2d_grad_w: opens a block with
 * p, the kiln_conv2d initializer of the height and width for input x,
 * kernel spatial sizes wd and output y, wrapped for the 3-D ops in a
 * kiln_conv3d one that adds the depth (spatial dim 0). */
static void
emit_conv_params(Gen *s, const Node *n, const Type *x, const int64_t *wd,
                 const Type *y)
{
	int nsp = x->rank - 2, e = nsp - 2;     /* e: spatial index of the height */
	const int64_t *xd = x->dim + 2, *yd = y->dim + 2;
	int64_t *st = named_ints(s, n, "strides"), *p = named_ints(s, n, "pads");
	int64_t *d = named_ints(s, n, "dilations");
	fprintf(s->f, "\t{\n\t\tstatic const struct kiln_conv%dd p = {%s"
	        "%lld, %lld, %lld, %lld, %lld, %lld, %lld, %lld, %lld, "
	        "%lld, %lld, %lld, %lld, %lld, %lld, %lld", nsp, e ? "{" : "",
	        (long long)x->dim[0], (long long)x->dim[1], (long long)xd[e],
	        (long long)xd[e + 1], (long long)y->dim[1], (long long)wd[e],
	        (long long)wd[e + 1], (long long)yd[e], (long long)yd[e + 1],
	        (long long)st[e], (long long)st[e + 1], (long long)p[e],
	        (long long)p[e + 1], (long long)d[e], (long long)d[e + 1],
	        (long long)named_ival(s, n, "group"));
	if (e)
		fprintf(s->f, "}, %lld, %lld, %lld, %lld, %lld, %lld",
		        (long long)xd[0], (long long)wd[0], (long long)yd[0],
		        (long long)st[0], (long long)p[0], (long long)d[0]);
	fputs("};\n", s->f);
}

static void
emit_conv(Gen *s, const Node *n)
{
	emit_conv_params(s, n, ty(s, n->in[0]), ty(s, n->in[1])->dim + 2,
	                 ty(s, n->out));
	const char *e = emit_epilogue(s, n, false);
	fprintf(s->f, "\t\t%s(%s, %s, %s, %s, &p%s%s);\n\t}\n",
	        ep_kernel(s, n, e), ptr(s, n->out), ptr(s, n->in[0]),
	        ptr(s, n->in[1]), ptr(s, n->nin > 2 ? n->in[2] : -1),
	        e ? ", " : "", e ? e : "");
}

/* The pools and maxpool2d_grad, the same way: p, a kiln_pool2d for
 * input x and output y, in a kiln_pool3d for 3-D. */
static void
emit_pool_params(Gen *s, const Node *n, const Type *x, const Type *y)
{
	int nsp = x->rank - 2, e = nsp - 2;
	const int64_t *xd = x->dim + 2, *yd = y->dim + 2;
	int64_t *k = named_ints(s, n, "kernel"), *st = named_ints(s, n, "strides");
	int64_t *p = named_ints(s, n, "pads"), *d = named_ints(s, n, "dilations");
	int cip = op_attr_lookup(n->op, "count_include_pad") < 0 ? 0 :
	          (int)named_ival(s, n, "count_include_pad");
	fprintf(s->f, "\t{\n\t\tstatic const struct kiln_pool%dd p = {%s"
	        "%lld, %lld, %lld, %lld, %lld, %lld, %lld, %lld, %lld, %lld, "
	        "%lld, %lld, %lld, %lld, %d", nsp, e ? "{" : "",
	        (long long)x->dim[0], (long long)x->dim[1], (long long)xd[e],
	        (long long)xd[e + 1], (long long)yd[e], (long long)yd[e + 1],
	        (long long)k[e], (long long)k[e + 1], (long long)st[e],
	        (long long)st[e + 1], (long long)p[e], (long long)p[e + 1],
	        (long long)d[e], (long long)d[e + 1], cip);
	if (e)
		fprintf(s->f, "}, %lld, %lld, %lld, %lld, %lld, %lld",
		        (long long)xd[0], (long long)yd[0], (long long)k[0],
		        (long long)st[0], (long long)p[0], (long long)d[0]);
	fputs("};\n", s->f);
}

/* maxpool2d_indices adds its storage order. */
static void
emit_pool(Gen *s, const Node *n)
{
	emit_pool_params(s, n, ty(s, n->in[0]), ty(s, n->out));
	fprintf(s->f, "\t\t%s(%s, %s, &p", kernel_name(s, n), ptr(s, n->out),
	        ptr(s, n->in[0]));
	if (n->op == OP_MAXPOOL2D_INDICES)
		fprintf(s->f, ", %d",
		        (int)ival(s, n, AT_MAXPOOL2D_INDICES_STORAGE_ORDER));
	fprintf(s->f, ");\n\t}\n");
}

static void
emit_softmax(Gen *s, const Node *n)
{
	const Type *x = ty(s, n->in[0]);
	int64_t axis = ival(s, n, n->op == OP_SOFTMAX ? AT_SOFTMAX_AXIS :
	                                                AT_LOG_SOFTMAX_AXIS);
	if (axis < 0)
		axis += x->rank;
	int64_t outer = 1, inner = 1;
	for (int i = 0; i < x->rank; i++)
		if (i < axis)
			outer *= x->dim[i];
		else if (i > axis)
			inner *= x->dim[i];
	fprintf(s->f, "\t%s(%s, %s, %lld, %lld, %lld);\n", op_get(n->op)->kernel,
	        ptr(s, n->out), ptr(s, n->in[0]), (long long)outer,
	        (long long)x->dim[axis], (long long)inner);
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

/* A one-operand ELTWISE op: kernel(y, x, n, then each INT and FLOAT
 * attribute in registry order), so a new one needs no code here. */
static void
emit_unary(Gen *s, const Node *n)
{
	fprintf(s->f, "\t%s(%s, %s, %lld", kernel_name(s, n), ptr(s, n->out),
	        ptr(s, n->in[0]), (long long)type_numel(ty(s, n->out)));
	emit_attr_args(s, n);
	fputs(");\n", s->f);
}

static void
emit_reduce(Gen *s, const Node *n)
{
	const Type *x = ty(s, n->in[0]);
	unsigned mask;
	const char *err = shape_reduce_mask(s->g, n, &mask);
	if (err)
		die("%s", err);
	fputs("\t{\n", s->f);
	emit_array(s->f, "xd", x->dim, x->rank);
	fprintf(s->f, "\t\t%s(%s, %s, %d, xd, 0x%xu);\n\t}\n",
	        op_get(n->op)->kernel, ptr(s, n->out), ptr(s, n->in[0]), x->rank,
	        mask);
}

static void
emit_random(Gen *s, const Node *n)
{
	fprintf(s->f, "\t%s(%s, %lld, ", op_get(n->op)->kernel, ptr(s, n->out),
	        (long long)type_numel(ty(s, n->out)));
	emit_float(s->f, ir_attr(s->g, n, AT_RANDOM_NORMAL_MEAN)->f);
	fputs(", ", s->f);
	emit_float(s->f, ir_attr(s->g, n, AT_RANDOM_NORMAL_SCALE)->f);
	unsigned long long seed = (unsigned long long)ival(s, n,
	                                                   AT_RANDOM_NORMAL_SEED);
	if (n->nin > 0 && n->in[0] >= 0)    /* a new draw per step */
		fprintf(s->f, ", kiln_splitmix64(%lluu, (uint64_t)*%s));\n", seed,
		        ptr(s, n->in[0]));
	else
		fprintf(s->f, ", %lluu);\n", seed);
}

static int
axis_arg(Gen *s, const Node *n, int id, int rank)
{
	int64_t axis = ival(s, n, id);
	return (int)(axis < 0 ? axis + rank : axis);
}

/* Transpose and slice: a copy of x through strides st from offset off. */
static void
emit_strided(Gen *s, const Node *n, const int64_t *st, int64_t off)
{
	const Type *y = ty(s, n->out);
	fputs("\t{\n", s->f);
	emit_array(s->f, "yd", y->dim, y->rank);
	emit_array(s->f, "xs", st, y->rank);
	fprintf(s->f, "\t\t%s(%s, %s, %d, %d, yd, xs, %lld);\n\t}\n",
	        op_get(n->op)->kernel, ptr(s, n->out), ptr(s, n->in[0]),
	        dt_size[y->dtype], y->rank, (long long)off);
}

static void
emit_transpose(Gen *s, const Node *n)
{
	int64_t xs[IR_MAXRANK], st[IR_MAXRANK];
	const int64_t *perm = ints(s, n, AT_TRANSPOSE_PERM);
	const Type *x = ty(s, n->in[0]);
	type_strides(x, xs);
	for (int d = 0; d < x->rank; d++)
		st[d] = xs[perm[d]];
	emit_strided(s, n, st, 0);
}

static void
emit_slice(Gen *s, const Node *n)
{
	int64_t start[IR_MAXRANK], step[IR_MAXRANK], count[IR_MAXRANK];
	int64_t xs[IR_MAXRANK], off = 0;
	const Type *x = ty(s, n->in[0]);
	const char *err = shape_slice_params(s->g, n, start, step, count);
	if (err)
		die("%s", err);
	type_strides(x, xs);
	for (int d = 0; d < x->rank; d++) {
		off += start[d] * xs[d];
		xs[d] *= step[d];
	}
	emit_strided(s, n, xs, off);
}

static void
emit_concat(Gen *s, const Node *n)
{
	const Type *y = ty(s, n->out);
	int axis = axis_arg(s, n, AT_CONCAT_AXIS, y->rank);
	int64_t outer, inner, len[IR_MAXIN];
	type_outer_inner(y, axis, &outer, &inner);
	fputs("\t{\n\t\tconst void *const xs[] = {", s->f);
	for (int k = 0; k < n->nin; k++) {
		fprintf(s->f, "%s%s", k ? ", " : "", ptr(s, n->in[k]));
		len[k] = ty(s, n->in[k])->dim[axis];
	}
	fputs("};\n", s->f);
	emit_array(s->f, "len", len, n->nin);
	fprintf(s->f, "\t\t%s(%s, xs, %d, len, %lld, %lld, %d);\n\t}\n",
	        op_get(n->op)->kernel, ptr(s, n->out), n->nin, (long long)outer,
	        (long long)inner, dt_size[y->dtype]);
}

/* The run stops with the kernel's status when an index is out of range. */
static void
emit_gather(Gen *s, const Node *n)
{
	const Type *x = ty(s, n->in[0]), *idx = ty(s, n->in[1]);
	int axis = axis_arg(s, n, AT_GATHER_AXIS, x->rank);
	int64_t outer, inner;
	type_outer_inner(x, axis, &outer, &inner);
	fprintf(s->f, "\t{\n\t\tkiln_status st = %s(%s, %s, %s, %s, %lld, %lld, "
	        "%lld, %lld, %d);\n\t\tif (st != KILN_OK)\n\t\t\treturn st;\n\t}\n",
	        op_get(n->op)->kernel, ptr(s, n->out), ptr(s, n->in[0]),
	        ptr(s, n->in[1]), kdtype[idx->dtype], (long long)outer,
	        (long long)x->dim[axis], (long long)type_numel(idx),
	        (long long)inner, dt_size[x->dtype]);
}

/* Writes "{v[0], v[1], ...}" (at least one element). */
static void
emit_list(FILE *f, const int64_t *v, int n)
{
	fputc('{', f);
	for (int i = 0; i < MAX(n, 1); i++)
		fprintf(f, "%s%lld", i ? ", " : "", n ? (long long)v[i] : 0LL);
	fputc('}', f);
}

/* x as a C double literal, exactly. */
static void
emit_double(FILE *f, double x)
{
	if (isnan(x) || isinf(x))
		emit_float(f, x);    /* NAN and INFINITY are the same in double */
	else
		fprintf(f, "%.17g", x);
}

static void
emit_pad(Gen *s, const Node *n)
{
	const Type *x = ty(s, n->in[0]);
	const int64_t *pads = ints(s, n, AT_PAD_PADS);
	fprintf(s->f, "\t{\n\t\tstatic const struct kiln_pad p = {%d, ", x->rank);
	emit_list(s->f, x->dim, x->rank);
	fputs(", ", s->f);
	emit_list(s->f, pads, x->rank);
	fputs(", ", s->f);
	emit_list(s->f, pads + x->rank, x->rank);
	fprintf(s->f, ", %d, ", shape_choice(ir_attr(s->g, n, AT_PAD_MODE)->s,
	                                     shape_pad_mode));
	emit_float(s->f, 0);
	/* the fill value becomes x's dtype as cast would convert it */
	fputs("};\n\t\tconst double v = ", s->f);
	emit_double(s->f, ir_attr(s->g, n, AT_PAD_VALUE)->f);
	fprintf(s->f, ";\n\t\t%s e;\n\t\tkiln_cast(&e, %s, &v, KILN_F64, 1);\n"
	        "\t\t%s(%s, %s, sizeof e, &e, &p);\n\t}\n", ctype[x->dtype],
	        kdtype[x->dtype], op_get(n->op)->kernel, ptr(s, n->out),
	        ptr(s, n->in[0]));
}

/* Writes "{v[0], v[1], ...}" of doubles, exactly (at least one element). */
static void
emit_doubles(FILE *f, const double *v, int n)
{
	fputc('{', f);
	for (int i = 0; i < MAX(n, 1); i++)
		fprintf(f, "%s%.17g", i ? ", " : "", n ? v[i] : 0.0);
	fputc('}', f);
}

/* struct kiln_resize, with ONNX's scale and length_resized per dim worked
 * out here: the scales given, or ydim/xdim and ydim. */
static void
emit_resize(Gen *s, const Node *n)
{
	const Type *x = ty(s, n->in[0]), *y = ty(s, n->out);
	const Attr *sc = ir_attr(s->g, n, AT_RESIZE_SCALES);
	const Attr *roi = ir_attr(s->g, n, AT_RESIZE_ROI);
	double scale[IR_MAXRANK], len[IR_MAXRANK];
	for (int d = 0; d < x->rank; d++) {
		scale[d] = sc->n ? sc->floats[d] : (double)y->dim[d] / x->dim[d];
		len[d] = sc->n ? x->dim[d] * sc->floats[d] : (double)y->dim[d];
	}
	fprintf(s->f, "\t{\n\t\tstatic const struct kiln_resize p = {.rank = %d, "
	        ".xdim = ", x->rank);
	emit_list(s->f, x->dim, x->rank);
	fputs(", .ydim = ", s->f);
	emit_list(s->f, y->dim, y->rank);
	fputs(",\n\t\t\t.scale = ", s->f);
	emit_doubles(s->f, scale, x->rank);
	fputs(", .olen = ", s->f);
	emit_doubles(s->f, len, x->rank);
	fputs(", .roi = ", s->f);
	emit_doubles(s->f, roi->floats, roi->n);
	fprintf(s->f, ",\n\t\t\t.mode = %d, .coord = %d, .nearest = %d, "
	        ".cubic_a = %.17g, .exclude_outside = %d, .extrapolation = ",
	        shape_choice(ir_attr(s->g, n, AT_RESIZE_MODE)->s,
	                     shape_resize_mode),
	        shape_choice(ir_attr(s->g, n, AT_RESIZE_COORD)->s,
	                     shape_resize_coord),
	        shape_choice(ir_attr(s->g, n, AT_RESIZE_NEAREST_MODE)->s,
	                     shape_nearest_mode),
	        ir_attr(s->g, n, AT_RESIZE_CUBIC_A)->f,
	        (int)ir_attr(s->g, n, AT_RESIZE_EXCLUDE)->i);
	emit_float(s->f, ir_attr(s->g, n, AT_RESIZE_EXTRAPOLATION)->f);
	fprintf(s->f, "};\n\t\t%s(%s, %s, &p);\n\t}\n", op_get(n->op)->kernel,
	        ptr(s, n->out), ptr(s, n->in[0]));
}

static void
emit_batchnorm(Gen *s, const Node *n)
{
	const Type *x = ty(s, n->in[0]);
	fprintf(s->f, "\t%s(%s, %s, %s, %s, %s, %s, %lld, %lld, %lld, ",
	        op_get(n->op)->kernel, ptr(s, n->out), ptr(s, n->in[0]),
	        ptr(s, n->in[1]), ptr(s, n->in[2]), ptr(s, n->in[3]),
	        ptr(s, n->in[4]), (long long)x->dim[0], (long long)x->dim[1],
	        (long long)(type_numel(x) / (x->dim[0] * x->dim[1])));
	emit_float(s->f, ir_attr(s->g, n, AT_BATCHNORM_EPSILON)->f);
	fputs(");\n", s->f);
}

static void
emit_layernorm(Gen *s, const Node *n)
{
	const Type *x = ty(s, n->in[0]);
	int axis = axis_arg(s, n, AT_LAYERNORM_AXIS, x->rank);
	int64_t outer, inner;
	type_outer_inner(x, axis, &outer, &inner);
	fprintf(s->f, "\t%s(%s, %s, %s, %s, %lld, %lld, ", op_get(n->op)->kernel,
	        ptr(s, n->out), ptr(s, n->in[0]), ptr(s, n->in[1]),
	        ptr(s, n->nin > 2 ? n->in[2] : -1), (long long)outer,
	        (long long)(x->dim[axis] * inner));
	emit_float(s->f, ir_attr(s->g, n, AT_LAYERNORM_EPSILON)->f);
	fputs(");\n", s->f);
}

/* ---- data movement, index and reduction ops for ONNX */

/* A copy of x through strides xs from offset 0 into y seen with dims yd
 * (rank up to 8): expand, depth_to_space and space_to_depth. */
static void
emit_view(Gen *s, const Node *n, int rank, const int64_t *yd,
          const int64_t *xs)
{
	fputs("\t{\n", s->f);
	emit_array(s->f, "yd", yd, rank);
	emit_array(s->f, "xs", xs, rank);
	fprintf(s->f, "\t\t%s(%s, %s, %d, %d, yd, xs, 0);\n\t}\n",
	        op_get(n->op)->kernel, ptr(s, n->out), ptr(s, n->in[0]),
	        dt_size[ty(s, n->out)->dtype], rank);
}

static void
emit_expand(Gen *s, const Node *n)
{
	const Type *y = ty(s, n->out);
	int64_t xs[IR_MAXRANK];
	type_bcast_strides(ty(s, n->in[0]), y, xs);
	emit_view(s, n, y->rank, y->dim, xs);
}

/* depth_to_space sees y[N,C',H*b,W*b] as [N,C',H,b,W,b] and
 * space_to_depth sees y[N,C*b*b,H',W'] as [N,b,b,C,H',W']; the strides
 * say where each of those six indices moves in x[N,C,H,W]. */
static void
emit_space(Gen *s, const Node *n)
{
	const Type *x = ty(s, n->in[0]);
	int64_t c = x->dim[1], h = x->dim[2], w = x->dim[3], hw = h * w;
	if (n->op == OP_SPACE_TO_DEPTH) {
		int64_t b = ival(s, n, AT_SPACE_TO_DEPTH_BLOCKSIZE);
		int64_t yd[6] = {x->dim[0], b, b, c, h / b, w / b};
		int64_t xs[6] = {c * hw, w, 1, hw, b * w, b};
		emit_view(s, n, 6, yd, xs);
		return;
	}
	int64_t b = ival(s, n, AT_DEPTH_TO_SPACE_BLOCKSIZE), cb = c / (b * b);
	int64_t yd[6] = {x->dim[0], cb, h, b, w, b};
	int64_t dcr[6] = {c * hw, hw, w, b * cb * hw, 1, cb * hw};
	int64_t crd[6] = {c * hw, b * b * hw, w, b * hw, 1, hw};
	bool is_dcr = shape_choice(ir_attr(s->g, n, AT_DEPTH_TO_SPACE_MODE)->s,
	                           shape_d2s_mode) == 0;
	emit_view(s, n, 6, yd, is_dcr ? dcr : crd);
}

static void
emit_tile(Gen *s, const Node *n)
{
	const Type *x = ty(s, n->in[0]);
	fputs("\t{\n", s->f);
	emit_array(s->f, "xd", x->dim, x->rank);
	emit_array(s->f, "reps", ints(s, n, AT_TILE_REPEATS), x->rank);
	fprintf(s->f, "\t\t%s(%s, %s, %d, %d, xd, reps);\n\t}\n",
	        op_get(n->op)->kernel, ptr(s, n->out), ptr(s, n->in[0]),
	        dt_size[x->dtype], x->rank);
}

/* argmax, argmin, cumsum and hardmax: x as [outer, len, inner]. */
static void
emit_axis_op(Gen *s, const Node *n)
{
	const Type *x = ty(s, n->in[0]);
	int id = n->op == OP_ARGMAX ? AT_ARGMAX_AXIS :
	         n->op == OP_ARGMIN ? AT_ARGMIN_AXIS :
	         n->op == OP_CUMSUM ? AT_CUMSUM_AXIS : AT_HARDMAX_AXIS;
	int axis = axis_arg(s, n, id, x->rank);
	int64_t outer, inner;
	type_outer_inner(x, axis, &outer, &inner);
	fprintf(s->f, "\t%s(%s, %s, ", op_get(n->op)->kernel, ptr(s, n->out),
	        ptr(s, n->in[0]));
	if (n->op != OP_HARDMAX)
		fprintf(s->f, "%s, ", kdtype[x->dtype]);
	fprintf(s->f, "%lld, %lld, %lld", (long long)outer,
	        (long long)x->dim[axis], (long long)inner);
	if (n->op == OP_ARGMAX || n->op == OP_ARGMIN)
		fprintf(s->f, ", %d", (int)ival(s, n, n->op == OP_ARGMAX ?
		        AT_ARGMAX_SELECT_LAST_INDEX : AT_ARGMIN_SELECT_LAST_INDEX));
	else if (n->op == OP_CUMSUM)
		fprintf(s->f, ", %d, %d", (int)ival(s, n, AT_CUMSUM_EXCLUSIVE),
		        (int)ival(s, n, AT_CUMSUM_REVERSE));
	fputs(");\n", s->f);
}

static void
emit_trilu(Gen *s, const Node *n)
{
	const Type *x = ty(s, n->in[0]);
	int64_t rows = x->dim[x->rank - 2], cols = x->dim[x->rank - 1];
	int64_t k = ival(s, n, AT_TRILU_K);
	/* j - i lies in [-rows, cols], so clamping k there changes nothing
	 * and keeps it a plain C literal */
	k = k < -rows ? -rows : k > cols ? cols : k;
	fprintf(s->f, "\t%s(%s, %s, %d, %lld, %lld, %lld, %d, %lld);\n",
	        op_get(n->op)->kernel, ptr(s, n->out), ptr(s, n->in[0]),
	        dt_size[x->dtype], (long long)(type_numel(x) / (rows * cols)),
	        (long long)rows, (long long)cols,
	        (int)ival(s, n, AT_TRILU_UPPER), (long long)k);
}

/* The run stops with the kernel's status when an index is out of range. */
static void
emit_gather_elements(Gen *s, const Node *n)
{
	const Type *x = ty(s, n->in[0]), *idx = ty(s, n->in[1]);
	fputs("\t{\n", s->f);
	emit_array(s->f, "xd", x->dim, x->rank);
	emit_array(s->f, "id", idx->dim, idx->rank);
	fprintf(s->f, "\t\tkiln_status st = %s(%s, %s, %s, %s, %d, xd, id, %d, "
	        "%d);\n\t\tif (st != KILN_OK)\n\t\t\treturn st;\n\t}\n",
	        op_get(n->op)->kernel, ptr(s, n->out), ptr(s, n->in[0]),
	        ptr(s, n->in[1]), kdtype[idx->dtype], x->rank,
	        axis_arg(s, n, AT_GATHER_ELEMENTS_AXIS, x->rank), dt_size[x->dtype]);
}

static void
emit_lrn(Gen *s, const Node *n)
{
	const Type *x = ty(s, n->in[0]);
	fprintf(s->f, "\t%s(%s, %s, %lld, %lld, %lld, %lld, ",
	        op_get(n->op)->kernel, ptr(s, n->out), ptr(s, n->in[0]),
	        (long long)x->dim[0], (long long)x->dim[1],
	        (long long)(type_numel(x) / (x->dim[0] * x->dim[1])),
	        (long long)ival(s, n, AT_LRN_SIZE));
	emit_float(s->f, ir_attr(s->g, n, AT_LRN_ALPHA)->f);
	fputs(", ", s->f);
	emit_float(s->f, ir_attr(s->g, n, AT_LRN_BETA)->f);
	fputs(", ", s->f);
	emit_float(s->f, ir_attr(s->g, n, AT_LRN_BIAS)->f);
	fputs(");\n", s->f);
}

static void
emit_instance_norm(Gen *s, const Node *n)
{
	const Type *x = ty(s, n->in[0]);
	fprintf(s->f, "\t%s(%s, %s, %s, %s, %lld, %lld, %lld, ",
	        op_get(n->op)->kernel, ptr(s, n->out), ptr(s, n->in[0]),
	        ptr(s, n->in[1]), ptr(s, n->in[2]), (long long)x->dim[0],
	        (long long)x->dim[1],
	        (long long)(type_numel(x) / (x->dim[0] * x->dim[1])));
	emit_float(s->f, ir_attr(s->g, n, AT_INSTANCE_NORM_EPSILON)->f);
	fputs(");\n", s->f);
}

/* ---- index ops: gather_nd, scatter, topk */

/* Ends an emitted block whose kernel returned status st. */
static void
emit_status_end(Gen *s)
{
	fputs("\t\tif (st != KILN_OK)\n\t\t\treturn st;\n\t}\n", s->f);
}

static int64_t
prod(const int64_t *dim, int from, int to)
{
	int64_t p = 1;
	for (int d = from; d < to; d++)
		p *= dim[d];
	return p;
}

/* x as [batch, dims indexed, inner], idx as [batch, ntuple, m]. */
static void
emit_gather_nd(Gen *s, const Node *n)
{
	const Type *x = ty(s, n->in[0]), *idx = ty(s, n->in[1]);
	int b = (int)ival(s, n, AT_GATHER_ND_BATCH_DIMS);
	int m = (int)idx->dim[idx->rank - 1];
	fputs("\t{\n", s->f);
	emit_array(s->f, "dim", x->dim + b, m);
	fprintf(s->f, "\t\tkiln_status st = %s(%s, %s, %s, %s, %lld, %lld, %d, "
	        "dim, %lld, %d);\n", op_get(n->op)->kernel, ptr(s, n->out),
	        ptr(s, n->in[0]), ptr(s, n->in[1]), kdtype[idx->dtype],
	        (long long)prod(x->dim, 0, b),
	        (long long)prod(idx->dim, b, idx->rank - 1), m,
	        (long long)prod(x->dim, b + m, x->rank), dt_size[x->dtype]);
	emit_status_end(s);
}

static int
reduction_arg(Gen *s, const Node *n, int id)
{
	return shape_choice(ir_attr(s->g, n, id)->s, shape_scatter_reduction);
}

static void
emit_scatter_nd(Gen *s, const Node *n)
{
	const Type *x = ty(s, n->in[0]), *idx = ty(s, n->in[1]);
	int m = (int)idx->dim[idx->rank - 1];
	fputs("\t{\n", s->f);
	emit_array(s->f, "dim", x->dim, m);
	fprintf(s->f, "\t\tkiln_status st = %s(%s, %s, %s, %s, %s, %s, %d, "
	        "%lld, %d, dim, %lld);\n", op_get(n->op)->kernel, ptr(s, n->out),
	        ptr(s, n->in[0]), ptr(s, n->in[1]), kdtype[idx->dtype],
	        ptr(s, n->in[2]), kdtype[x->dtype],
	        reduction_arg(s, n, AT_SCATTER_ND_REDUCTION),
	        (long long)prod(idx->dim, 0, idx->rank - 1), m,
	        (long long)prod(x->dim, m, x->rank));
	emit_status_end(s);
}

static void
emit_scatter_elements(Gen *s, const Node *n)
{
	const Type *x = ty(s, n->in[0]), *idx = ty(s, n->in[1]);
	fputs("\t{\n", s->f);
	emit_array(s->f, "xd", x->dim, x->rank);
	emit_array(s->f, "id", idx->dim, idx->rank);
	fprintf(s->f, "\t\tkiln_status st = %s(%s, %s, %s, %s, %s, %s, %d, %d, "
	        "xd, id, %d);\n", op_get(n->op)->kernel, ptr(s, n->out),
	        ptr(s, n->in[0]), ptr(s, n->in[1]), kdtype[idx->dtype],
	        ptr(s, n->in[2]), kdtype[x->dtype],
	        reduction_arg(s, n, AT_SCATTER_ELEMENTS_REDUCTION), x->rank,
	        axis_arg(s, n, AT_SCATTER_ELEMENTS_AXIS, x->rank));
	emit_status_end(s);
}

/* topk_values and topk_indices: one kernel, told which result to write. */
static void
emit_topk(Gen *s, const Node *n)
{
	const Type *x = ty(s, n->in[0]);
	bool val = n->op == OP_TOPK_VALUES;
	int axis = axis_arg(s, n, val ? AT_TOPK_VALUES_AXIS :
	                               AT_TOPK_INDICES_AXIS, x->rank);
	int64_t outer, inner;
	type_outer_inner(x, axis, &outer, &inner);
	fprintf(s->f, "\t%s(%s, %s, %s, %lld, %lld, %lld, %lld, %d, %d);\n",
	        op_get(n->op)->kernel, ptr(s, n->out), ptr(s, n->in[0]),
	        kdtype[x->dtype], (long long)outer, (long long)x->dim[axis],
	        (long long)inner,
	        (long long)ival(s, n, val ? AT_TOPK_VALUES_K : AT_TOPK_INDICES_K),
	        (int)ival(s, n, val ? AT_TOPK_VALUES_LARGEST :
	                              AT_TOPK_INDICES_LARGEST), !val);
}

/* ---- training: gradients, dropout and losses */

/* relu_grad: kernel(dx, dy, x, n) over operands of one shape. */
static void
emit_relu_grad(Gen *s, const Node *n)
{
	fprintf(s->f, "\t%s(%s, %s, %s, %lld);\n", kernel_name(s, n),
	        ptr(s, n->out), ptr(s, n->in[0]), ptr(s, n->in[1]),
	        (long long)type_numel(ty(s, n->out)));
}

/* The window gradients: conv2d_grad_w(x, dy), conv3d_grad_w(x, dy),
 * maxpool2d_grad(dy, x), maxpool3d_grad(dy, x), avgpool2d_grad(dy),
 * avgpool3d_grad(dy).  p holds the forward op's parameters for its input
 * (x, or for the average pools dx, which has x's shape), the output
 * sizes from dy (and the convolutions' kernel from the attribute); then
 * kernel(result, the operands..., &p). */
static void
emit_window_grad(Gen *s, const Node *n)
{
	bool conv = n->op == OP_CONV2D_GRAD_W || n->op == OP_CONV3D_GRAD_W;
	bool avg = n->op == OP_AVGPOOL2D_GRAD || n->op == OP_AVGPOOL3D_GRAD;
	if (conv)
		emit_conv_params(s, n, ty(s, n->in[0]), named_ints(s, n, "kernel"),
		                 ty(s, n->in[1]));
	else
		emit_pool_params(s, n, ty(s, avg ? n->out : n->in[1]),
		                 ty(s, n->in[0]));
	fprintf(s->f, "\t\t%s(%s, %s, ", kernel_name(s, n), ptr(s, n->out),
	        ptr(s, n->in[0]));
	if (!avg)
		fprintf(s->f, "%s, ", ptr(s, n->in[1]));
	fputs("&p);\n\t}\n", s->f);
}

/* dropout_train(x, t): the step is read from its scalar operand. */
static void
emit_dropout_train(Gen *s, const Node *n)
{
	fprintf(s->f, "\t%s(%s, %s, %lld, ", kernel_name(s, n), ptr(s, n->out),
	        ptr(s, n->in[0]), (long long)type_numel(ty(s, n->out)));
	emit_float(s->f, ir_attr(s->g, n, AT_DROPOUT_TRAIN_RATE)->f);
	fprintf(s->f, ", %lluu, *%s);\n",
	        (unsigned long long)ival(s, n, AT_DROPOUT_TRAIN_SEED),
	        ptr(s, n->in[1]));
}

/* softmax_cross_entropy and its gradient (which adds dloss): the run stops
 * with the kernel's status when a label is out of range. */
static void
emit_xent(Gen *s, const Node *n)
{
	const Type *z = ty(s, n->in[0]);
	bool grad = n->op == OP_SOFTMAX_CROSS_ENTROPY_GRAD;
	fprintf(s->f, "\t{\n\t\tkiln_status st = %s(%s, %s, %s, %s, ",
	        kernel_name(s, n), ptr(s, n->out), ptr(s, n->in[0]),
	        ptr(s, n->in[1]), kdtype[ty(s, n->in[1])->dtype]);
	if (grad)
		fprintf(s->f, "%s, ", ptr(s, n->in[2]));
	fprintf(s->f, "%lld, %lld, ", (long long)z->dim[0], (long long)z->dim[1]);
	emit_float(s->f, ir_attr(s->g, n, grad ?
	           AT_SOFTMAX_CROSS_ENTROPY_GRAD_LABEL_SMOOTHING :
	           AT_SOFTMAX_CROSS_ENTROPY_LABEL_SMOOTHING)->f);
	fputs(");\n", s->f);
	emit_status_end(s);
}

/* The one switch over op kinds. */
void
emit_node(Gen *s, const Node *n)
{
	Graph *g = s->g;
	const char *kernel = kernel_name(s, n);
	comment(s->f, arena_printf(g->mod->arena, "%s = %s  (%s:%d:%d)",
	        g->val[n->out].name, op_get(n->op)->name,
	        n->loc.file ? n->loc.file : "?", n->loc.line, n->loc.col));
	switch (n->op) {
	case OP_GEMM: emit_gemm(s, n); break;
	case OP_MATMUL: emit_matmul(s, n); break;
	case OP_CONV2D:
	case OP_CONV3D: emit_conv(s, n); break;
	case OP_MAXPOOL2D:
	case OP_MAXPOOL2D_INDICES:
	case OP_AVGPOOL2D:
	case OP_MAXPOOL3D:
	case OP_AVGPOOL3D: emit_pool(s, n); break;
	case OP_ADD:
	case OP_SUB:
	case OP_MUL:
	case OP_DIV:
	case OP_POW:
	case OP_MAX:
	case OP_MIN:
	case OP_MOD:
	case OP_BITSHIFT:
	case OP_EQUAL:
	case OP_LESS:
	case OP_LESS_EQUAL:
	case OP_GREATER:
	case OP_GREATER_EQUAL:
	case OP_AND:
	case OP_OR:
	case OP_XOR: emit_binary(s, n); break;
	case OP_WHERE: emit_where(s, n); break;
	case OP_CAST: emit_cast(s, n); break;
	case OP_SOFTMAX:
	case OP_LOG_SOFTMAX: emit_softmax(s, n); break;
	case OP_REDUCE_SUM:
	case OP_REDUCE_MEAN:
	case OP_REDUCE_MAX: emit_reduce(s, n); break;
	case OP_RANDOM_NORMAL: emit_random(s, n); break;
	case OP_DROPOUT:        /* the identity at inference */
	case OP_RESHAPE:
	case OP_FLATTEN:
		fprintf(s->f, "\t%s(%s, %s, %lld);\n", kernel, ptr(s, n->out),
		        ptr(s, n->in[0]), (long long)type_bytes(ty(s, n->out)));
		break;
	case OP_TRANSPOSE: emit_transpose(s, n); break;
	case OP_SLICE: emit_slice(s, n); break;
	case OP_CONCAT: emit_concat(s, n); break;
	case OP_GATHER: emit_gather(s, n); break;
	case OP_PAD: emit_pad(s, n); break;
	case OP_RESIZE: emit_resize(s, n); break;
	case OP_BATCHNORM: emit_batchnorm(s, n); break;
	case OP_LAYERNORM: emit_layernorm(s, n); break;
	case OP_CONV2D_TRANSPOSE:
	case OP_CONV3D_TRANSPOSE: emit_conv(s, n); break;
	case OP_EXPAND: emit_expand(s, n); break;
	case OP_DEPTH_TO_SPACE:
	case OP_SPACE_TO_DEPTH: emit_space(s, n); break;
	case OP_TILE: emit_tile(s, n); break;
	case OP_ARGMAX:
	case OP_ARGMIN:
	case OP_CUMSUM:
	case OP_HARDMAX: emit_axis_op(s, n); break;
	case OP_REDUCE_MIN:
	case OP_REDUCE_PROD: emit_reduce(s, n); break;
	case OP_TRILU: emit_trilu(s, n); break;
	case OP_GATHER_ELEMENTS: emit_gather_elements(s, n); break;
	case OP_LRN: emit_lrn(s, n); break;
	case OP_INSTANCE_NORM: emit_instance_norm(s, n); break;
	case OP_GATHER_ND: emit_gather_nd(s, n); break;
	case OP_SCATTER_ND: emit_scatter_nd(s, n); break;
	case OP_SCATTER_ELEMENTS: emit_scatter_elements(s, n); break;
	case OP_TOPK_VALUES:
	case OP_TOPK_INDICES: emit_topk(s, n); break;
	case OP_RELU_GRAD: emit_relu_grad(s, n); break;
	case OP_CONV2D_GRAD_W:
	case OP_CONV3D_GRAD_W:
	case OP_MAXPOOL2D_GRAD:
	case OP_MAXPOOL3D_GRAD:
	case OP_AVGPOOL2D_GRAD:
	case OP_AVGPOOL3D_GRAD: emit_window_grad(s, n); break;
	case OP_DROPOUT_TRAIN: emit_dropout_train(s, n); break;
	case OP_SOFTMAX_CROSS_ENTROPY:
	case OP_SOFTMAX_CROSS_ENTROPY_GRAD: emit_xent(s, n); break;
	case OP_FUSED: emit_fused(s, n); break;    /* a generated loop */
	default:
		if (op_get(n->op)->cls == ELTWISE && op_get(n->op)->maxin == 1) {
			emit_unary(s, n);
			break;
		}
		diag_error(n->loc, "%s: the C backend has no code for this op",
		           op_get(n->op)->name);
	}
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
emit_run(Gen *s)
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
	for (int i = 0; i < g->nnode; i++)
		if (!g->node[i].dead)
			emit_node(s, &g->node[i]);
	for (int i = 0; i < g->noutput; i++) {
		int v = g->output[i];
		if (s->outpos[v] == i)
			continue;
		fprintf(s->f, "\tkiln_copy(out->%s, %s, %lld);\n", s->outfield[i],
		        ptr(s, v), (long long)type_bytes(&g->val[v].type));
	}
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
	Gen s = {.g = g, .o = o, .f = c};
	if (g->workspace < 0)
		die("cgen: graph '%s' is not planned", g->name);
	s.woff = arena_alloc(g->mod->arena, g->nval * sizeof *s.woff);
	blob_layout(g, s.woff);
	name_fields(&s);
	emit_header(&s, h);
	fprintf(c, "/* %s.c: model '%s' compiled by kiln from %s.  Generated; "
	        "do not edit. */\n#include <math.h>\n#include <stddef.h>\n"
	        "#include <stdint.h>\n"
	        "#include \"%s\"\n#include \"kiln_scalar.h\"\n\n", o->prefix,
	        g->name, o->source, o->header);
	emit_weights_link(&s);
	emit_run(&s);
	emit_glue(&s);
}
