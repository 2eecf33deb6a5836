/* export.c: one graph to an ONNX model (opset 17, IR version 8).
 *
 * The graph is written as it is, before any pass: graph inputs and
 * outputs become tensor value infos with static shapes, parameters become
 * initializers and constants Constant nodes (raw little-endian data, as
 * the IR keeps it), every temporary gets a value info, and each IR node becomes one
 * ONNX node, or a few where opset 17 has no single op (gelu, silu, mod
 * in Python's sign convention).  IR attributes that ONNX takes as inputs
 * (Reshape's shape, Slice's starts, Clip's bounds, ...) become int64 or
 * scalar initializers named after the node's result.  Value names are
 * kept; node names come from the node's location (an ONNX node name)
 * or are made from the op and the node's index, so the same graph always
 * gives the same bytes.  The train section is not exported.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "backend.h"
#include "onnx.pb-c.h"

enum { OPSET = 17, IR_VERSION = 8, MAXATTR = 16, MAXNODEIN = IR_MAXIN + 4 };

/* ONNX TensorProto.DataType of each DT_ */
static const int onnx_dtype[NDTYPE] = {
	[DT_F32] = 1, [DT_F64] = 11, [DT_I64] = 7, [DT_I32] = 6, [DT_I8] = 3,
	[DT_U8] = 2, [DT_BOOL] = 9, [DT_F16] = 10, [DT_BF16] = 16, [DT_I16] = 5,
	[DT_U16] = 4, [DT_U32] = 12, [DT_U64] = 13,
};

/* A set of names (open addressing, FNV-1a), to keep names unique. */
typedef struct {
	const char **key;
	int cap, n;
} Names;

typedef struct {
	Graph *g;
	Arena *a;
	Names tensor, nodename;     /* names taken */
	Onnx__NodeProto **node;
	int nnode, capnode;
	Onnx__TensorProto **init;
	int ninit, capinit;
	Onnx__ValueInfoProto **vinfo;
	int nvinfo, capvinfo;
	const Node *n;              /* the IR node being exported */
	const char *base;           /* its ONNX node name */
	int *twin;                  /* per node: its twin (twins()), or -1 */
} Ex;

typedef void ExportFn(Ex *e, const Node *n, const char *type);

/* ---- names ---- */

static uint32_t
hash(const char *s)
{
	uint32_t h = 2166136261u;
	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 16777619u;
	return h;
}

/* Adds s to the set; false when it was there already. */
static bool
names_add(Arena *a, Names *t, const char *s)
{
	if (2 * (t->n + 1) > t->cap) {
		Names old = *t;
		t->cap = old.cap ? old.cap * 2 : 256;
		t->key = arena_alloc(a, t->cap * sizeof *t->key);
		t->n = 0;
		for (int i = 0; i < old.cap; i++)
			if (old.key[i])
				names_add(a, t, old.key[i]);
	}
	uint32_t i = hash(s) & (t->cap - 1);
	for (; t->key[i]; i = (i + 1) & (t->cap - 1))
		if (strcmp(t->key[i], s) == 0)
			return false;
	t->key[i] = s;
	t->n++;
	return true;
}

/* base, or base.1, base.2, ... : the first not taken in t, now taken. */
static char *
fresh(Ex *e, Names *t, const char *base)
{
	char *s = arena_strdup(e->a, base);
	for (int k = 1; !names_add(e->a, t, s); k++)
		s = arena_printf(e->a, "%s.%d", base, k);
	return s;
}

/* A new tensor name for a helper of the current node: "RESULT/what". */
static char *
helper(Ex *e, const char *what)
{
	const char *y = e->g->val[e->n->out].name;
	return fresh(e, &e->tensor, arena_printf(e->a, "%s/%s", y, what));
}

/* ---- types and initializers ---- */

static Onnx__TypeProto *
tensor_type(Ex *e, const Type *t)
{
	Onnx__TensorShapeProto *s = arena_alloc(e->a, sizeof *s);
	*s = (Onnx__TensorShapeProto)ONNX__TENSOR_SHAPE_PROTO__INIT;
	s->n_dim = t->rank;
	s->dim = arena_alloc(e->a, (t->rank + 1) * sizeof *s->dim);
	for (int d = 0; d < t->rank; d++) {
		Onnx__TensorShapeProto__Dimension *dim = arena_alloc(e->a, sizeof *dim);
		*dim = (Onnx__TensorShapeProto__Dimension)
			ONNX__TENSOR_SHAPE_PROTO__DIMENSION__INIT;
		dim->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
		dim->dim_value = t->dim[d];
		s->dim[d] = dim;
	}
	Onnx__TypeProto__Tensor *tt = arena_alloc(e->a, sizeof *tt);
	*tt = (Onnx__TypeProto__Tensor)ONNX__TYPE_PROTO__TENSOR__INIT;
	tt->has_elem_type = 1;
	tt->elem_type = onnx_dtype[t->dtype];
	tt->shape = s;
	Onnx__TypeProto *tp = arena_alloc(e->a, sizeof *tp);
	*tp = (Onnx__TypeProto)ONNX__TYPE_PROTO__INIT;
	tp->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
	tp->tensor_type = tt;
	return tp;
}

static Onnx__ValueInfoProto *
value_info(Ex *e, const char *name, const Type *t)
{
	Onnx__ValueInfoProto *vi = arena_alloc(e->a, sizeof *vi);
	*vi = (Onnx__ValueInfoProto)ONNX__VALUE_INFO_PROTO__INIT;
	vi->name = arena_strdup(e->a, name);
	vi->type = tensor_type(e, t);
	return vi;
}

/* An initializer named name holding a copy of data (little-endian). */
static void
add_init(Ex *e, const char *name, const Type *t, const void *data)
{
	Onnx__TensorProto *p = arena_alloc(e->a, sizeof *p);
	*p = (Onnx__TensorProto)ONNX__TENSOR_PROTO__INIT;
	p->name = arena_strdup(e->a, name);
	p->n_dims = t->rank;
	p->dims = arena_alloc(e->a, (t->rank + 1) * sizeof *p->dims);
	memcpy(p->dims, t->dim, t->rank * sizeof *p->dims);
	p->has_data_type = 1;
	p->data_type = onnx_dtype[t->dtype];
	size_t n = (size_t)type_bytes(t);
	p->has_raw_data = 1;
	p->raw_data.len = n;
	p->raw_data.data = arena_alloc(e->a, n ? n : 1);
	memcpy(p->raw_data.data, data, n);
	APUSH(e->a, e->init, e->ninit, e->capinit, p);
}

/* A 1-D int64 initializer for the current node; returns its name. */
static const char *
init_ints(Ex *e, const char *what, const int64_t *v, int n)
{
	const char *name = helper(e, what);
	add_init(e, name, &(Type){.dtype = DT_I64, .rank = 1, .dim = {n}}, v);
	return name;
}

/* A rank-0 initializer of dtype dt (not f16 or bf16) holding x. */
static const char *
init_scalar(Ex *e, const char *what, int dt, double x)
{
	const char *name = helper(e, what);
	union { float f; double d; int64_t i64; int32_t i32; int16_t i16;
	        int8_t i8; uint64_t u64; uint32_t u32; uint16_t u16;
	        uint8_t u8; } v;
	/* integer callers pass integers (a clip bound, a pad value) within
	 * the type's range, which the importer read from the same type */
	switch (dt) {
	case DT_F32: v.f = (float)x; break;
	case DT_F64: v.d = x; break;
	case DT_I64: v.i64 = (int64_t)x; break;
	case DT_I32: v.i32 = (int32_t)x; break;
	case DT_I16: v.i16 = (int16_t)x; break;
	case DT_I8: v.i8 = (int8_t)x; break;
	case DT_U64: v.u64 = (uint64_t)x; break;
	case DT_U32: v.u32 = (uint32_t)x; break;
	case DT_U16: v.u16 = (uint16_t)x; break;
	case DT_U8: v.u8 = (uint8_t)x; break;
	case DT_BOOL: v.u8 = x != 0; break;
	default:
		diag_error((Loc){0}, "export: a %s scalar has no ONNX form here",
		           dt_name[dt]);
	}
	add_init(e, name, &(Type){.dtype = dt}, &v);
	return name;
}

/* ---- nodes and attributes ---- */

/* An ONNX node type(in...) -> out for the current IR node; a NULL input
 * is an absent optional one (""). */
static Onnx__NodeProto *
emit(Ex *e, const char *type, const char *const *in, int nin, const char *out)
{
	Onnx__NodeProto *p = arena_alloc(e->a, sizeof *p);
	*p = (Onnx__NodeProto)ONNX__NODE_PROTO__INIT;
	p->name = fresh(e, &e->nodename, e->base);
	p->op_type = arena_strdup(e->a, type);
	while (nin > 0 && !in[nin - 1])
		nin--;      /* trailing absent inputs are left out */
	p->n_input = nin;
	p->input = arena_alloc(e->a, (nin + 1) * sizeof *p->input);
	for (int i = 0; i < nin; i++)
		p->input[i] = arena_strdup(e->a, in[i] ? in[i] : "");
	p->n_output = 1;
	p->output = arena_alloc(e->a, sizeof *p->output);
	p->output[0] = arena_strdup(e->a, out);
	p->attribute = arena_alloc(e->a, MAXATTR * sizeof *p->attribute);
	APUSH(e->a, e->node, e->nnode, e->capnode, p);
	return p;
}

/* A helper node with operands a and b (b may be NULL): returns its
 * result, a fresh name, or out when out is not NULL. */
static const char *
emit2(Ex *e, const char *type, const char *a, const char *b, const char *out)
{
	const char *y = out ? out : helper(e, type);
	emit(e, type, (const char *[]){a, b}, b ? 2 : 1, y);
	return y;
}

static Onnx__AttributeProto *
attr(Ex *e, Onnx__NodeProto *p, const char *name, int type)
{
	if (p->n_attribute == MAXATTR)
		die("node %s: more than %d attributes", p->name, MAXATTR);
	Onnx__AttributeProto *a = arena_alloc(e->a, sizeof *a);
	*a = (Onnx__AttributeProto)ONNX__ATTRIBUTE_PROTO__INIT;
	a->name = arena_strdup(e->a, name);
	a->has_type = 1;
	a->type = type;
	p->attribute[p->n_attribute++] = a;
	return a;
}

static void
attr_int(Ex *e, Onnx__NodeProto *p, const char *name, int64_t v)
{
	Onnx__AttributeProto *a = attr(e, p, name,
		ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT);
	a->has_i = 1;
	a->i = v;
}

static void
attr_float(Ex *e, Onnx__NodeProto *p, const char *name, double v)
{
	Onnx__AttributeProto *a = attr(e, p, name,
		ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT);
	a->has_f = 1;
	a->f = (float)v;
}

static void
attr_ints(Ex *e, Onnx__NodeProto *p, const char *name, const int64_t *v,
          int n)
{
	Onnx__AttributeProto *a = attr(e, p, name,
		ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS);
	a->n_ints = n;
	a->ints = arena_alloc(e->a, (n + 1) * sizeof *a->ints);
	memcpy(a->ints, v, n * sizeof *a->ints);
}

/* IR attribute names ONNX spells differently; the rest keep theirs. */
static const char *
onnx_attr_name(const char *name)
{
	static const char *const rename[][2] = {
		{"kernel", "kernel_shape"}, {"trans_a", "transA"},
		{"trans_b", "transB"},
	};
	for (int i = 0; i < countof(rename); i++)
		if (strcmp(name, rename[i][0]) == 0)
			return rename[i][1];
	return name;
}

static bool
is_default(Ex *e, const Attr *a, int id)
{
	Attr d;
	ir_parse_default(e->g, &d, &attr_info[id]);
	if (!attr_info[id].def || d.kind != a->kind)
		return false;
	switch (a->kind) {
	case AK_INT: return a->i == d.i;
	case AK_FLOAT: return a->f == d.f;
	case AK_STRING: return strcmp(a->s, d.s) == 0;
	case AK_INTS:
		return a->n == d.n && (!a->n ||
		       memcmp(a->ints, d.ints, a->n * sizeof *a->ints) == 0);
	}
	return false;
}

/* Copies IR attribute id of n onto p under its ONNX name, unless it has
 * its default: ops.def's defaults are ONNX's own, and leaving them out
 * keeps a float such as 0.2 exact (an ONNX attribute is a float). */
static void
copy_attr(Ex *e, Onnx__NodeProto *p, const Node *n, int id)
{
	const Attr *a = ir_attr(e->g, n, id);
	const char *name = onnx_attr_name(attr_info[id].name);
	/* An empty INTS attribute would read as a missing one, and where the
	 * IR allows one (a rank-0 transpose's perm) ONNX's default means the
	 * same. */
	if (is_default(e, a, id) || (a->kind == AK_INTS && !a->n))
		return;
	switch (a->kind) {
	case AK_NONE: break;
	case AK_INT: attr_int(e, p, name, a->i); break;
	case AK_FLOAT: attr_float(e, p, name, a->f); break;
	case AK_INTS: attr_ints(e, p, name, a->ints, a->n); break;
	case AK_STRING: {
		Onnx__AttributeProto *pa = attr(e, p, name,
			ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING);
		pa->has_s = 1;
		pa->s.len = strlen(a->s);
		pa->s.data = (uint8_t *)arena_strdup(e->a, a->s);
		break;
	}
	default:
		die("attribute %s of kind %d has no ONNX form", name, a->kind);
	}
}

/* ---- the translations ---- */

static const char *
vname(const Ex *e, int v)
{
	return v < 0 ? NULL : e->g->val[v].name;
}

static const char *
result(const Ex *e, const Node *n)
{
	return e->g->val[n->out].name;
}

/* type(operands...) with the operands in IR order. */
static Onnx__NodeProto *
emit_operands(Ex *e, const Node *n, const char *type)
{
	const char *in[MAXNODEIN];
	for (int i = 0; i < n->nin; i++)
		in[i] = vname(e, n->in[i]);
	return emit(e, type, in, n->nin, result(e, n));
}

/* The same operands, and every IR attribute under its ONNX name. */
static void
ex_plain(Ex *e, const Node *n, const char *type)
{
	Onnx__NodeProto *p = emit_operands(e, n, type);
	const OpInfo *oi = op_get(n->op);
	for (int k = 0; k < oi->nattr; k++)
		copy_attr(e, p, n, oi->attr0 + k);
}

/* Dropout in an inference graph is the identity. */
static void
ex_identity(Ex *e, const Node *n, const char *type)
{
	emit(e, type, (const char *[]){vname(e, n->in[0])}, 1, result(e, n));
}

/* ONNX's AveragePool has no dilations before opset 19.  avgpool2d and
 * avgpool3d share attribute names, not ids. */
static void
ex_avgpool(Ex *e, const Node *n, const char *type)
{
	const Attr *d = ir_attr(e->g, n, op_attr_lookup(n->op, "dilations"));
	for (int i = 0; i < d->n; i++)
		if (d->ints[i] != 1)
			diag_error(n->loc, "export: %s '%s': dilations other than 1 "
			           "have no ONNX form in opset %d (AveragePool takes "
			           "dilations from opset 19)", op_get(n->op)->name,
			           result(e, n), OPSET);
	Onnx__NodeProto *p = emit_operands(e, n, type);
	static const char *const keep[] = {"kernel", "strides", "pads",
	                                   "ceil_mode", "count_include_pad"};
	for (int i = 0; i < countof(keep); i++)
		copy_attr(e, p, n, op_attr_lookup(n->op, keep[i]));
}

/* Reshape, Expand, Tile: the op's one INTS attribute is input 1. */
static void
ex_ints_input(Ex *e, const Node *n, const char *type)
{
	const Attr *a = &e->g->attr[n->attr];
	const char *what = attr_info[op_get(n->op)->attr0].name;
	const char *in[] = {vname(e, n->in[0]), init_ints(e, what, a->ints, a->n)};
	emit(e, type, in, 2, result(e, n));
}

/* ReduceSum takes its axes as an input from opset 13; the other reduces
 * take them as an attribute until opset 18.  Empty axes: all. */
static void
ex_reduce(Ex *e, const Node *n, const char *type)
{
	const Attr *axes = &e->g->attr[n->attr], *keep = axes + 1;
	const char *in[2] = {vname(e, n->in[0]), NULL};
	if (n->op == OP_REDUCE_SUM && axes->n)
		in[1] = init_ints(e, "axes", axes->ints, axes->n);
	Onnx__NodeProto *p = emit(e, type, in, 2, result(e, n));
	if (n->op != OP_REDUCE_SUM && axes->n)
		attr_ints(e, p, "axes", axes->ints, axes->n);
	attr_int(e, p, "keepdims", keep->i);
}

static void
ex_slice(Ex *e, const Node *n, const char *type)
{
	const Attr *st = ir_attr(e->g, n, AT_SLICE_STARTS);
	const Attr *en = ir_attr(e->g, n, AT_SLICE_ENDS);
	const Attr *ax = ir_attr(e->g, n, AT_SLICE_AXES);
	const Attr *sp = ir_attr(e->g, n, AT_SLICE_STEPS);
	const char *in[5] = {vname(e, n->in[0]),
		init_ints(e, "starts", st->ints, st->n),
		init_ints(e, "ends", en->ints, en->n)};
	if (ax->n || sp->n) {
		/* steps need axes before them: the default 0..n-1 */
		int64_t def[IR_MAXRANK];
		for (int i = 0; i < st->n && i < IR_MAXRANK; i++)
			def[i] = i;
		in[3] = ax->n ? init_ints(e, "axes", ax->ints, ax->n) :
		                init_ints(e, "axes", def, st->n);
	}
	if (sp->n)
		in[4] = init_ints(e, "steps", sp->ints, sp->n);
	emit(e, type, in, 5, result(e, n));
}

static void
ex_pad(Ex *e, const Node *n, const char *type)
{
	const Attr *pads = ir_attr(e->g, n, AT_PAD_PADS);
	const Attr *mode = ir_attr(e->g, n, AT_PAD_MODE);
	const char *in[3] = {vname(e, n->in[0]),
		init_ints(e, "pads", pads->ints, pads->n)};
	if (strcmp(mode->s, "constant") == 0)
		in[2] = init_scalar(e, "value", e->g->val[n->out].type.dtype,
		                    ir_attr(e->g, n, AT_PAD_VALUE)->f);
	Onnx__NodeProto *p = emit(e, type, in, 3, result(e, n));
	copy_attr(e, p, n, AT_PAD_MODE);
}

/* A 1-D float initializer of v[n] rounded to f32 for the current node;
 * returns its name. */
static const char *
init_floats(Ex *e, const char *what, const double *v, int n)
{
	const char *name = helper(e, what);
	float *f = arena_alloc(e->a, (n ? n : 1) * sizeof *f);
	for (int i = 0; i < n; i++)
		f[i] = (float)v[i];
	add_init(e, name, &(Type){.dtype = DT_F32, .rank = 1, .dim = {n}}, f);
	return name;
}

/* Resize takes roi (tf_crop_and_resize only) and either scales or sizes
 * as inputs.  Scales, when the IR has them, go out instead of sizes, since
 * they set the coordinate map; ONNX's scales are f32, so a .kir scale that
 * is not one is rounded. */
static void
ex_resize(Ex *e, const Node *n, const char *type)
{
	const Attr *sz = ir_attr(e->g, n, AT_RESIZE_SIZES);
	const Attr *sc = ir_attr(e->g, n, AT_RESIZE_SCALES);
	const Attr *roi = ir_attr(e->g, n, AT_RESIZE_ROI);
	const char *in[4] = {vname(e, n->in[0]), NULL, NULL, NULL};
	if (roi->n)
		in[1] = init_floats(e, "roi", roi->floats, roi->n);
	if (sc->n)
		in[2] = init_floats(e, "scales", sc->floats, sc->n);
	else
		in[3] = init_ints(e, "sizes", sz->ints, sz->n);
	Onnx__NodeProto *p = emit(e, type, in, sc->n ? 3 : 4, result(e, n));
	copy_attr(e, p, n, AT_RESIZE_MODE);
	copy_attr(e, p, n, AT_RESIZE_COORD);
	copy_attr(e, p, n, AT_RESIZE_NEAREST_MODE);
	copy_attr(e, p, n, AT_RESIZE_CUBIC_A);
	copy_attr(e, p, n, AT_RESIZE_EXCLUDE);
	copy_attr(e, p, n, AT_RESIZE_EXTRAPOLATION);
}

/* Clip's bounds are inputs; an infinite one is left out. */
static void
ex_clip(Ex *e, const Node *n, const char *type)
{
	double lo = ir_attr(e->g, n, AT_CLIP_MIN)->f;
	double hi = ir_attr(e->g, n, AT_CLIP_MAX)->f;
	int dt = e->g->val[n->out].type.dtype;
	const char *in[3] = {vname(e, n->in[0]),
		isinf(lo) && lo < 0 ? NULL : init_scalar(e, "min", dt, lo),
		isinf(hi) && hi > 0 ? NULL : init_scalar(e, "max", dt, hi)};
	emit(e, type, in, 3, result(e, n));
}

/* BitShift's direction is a string in ONNX, an int (1 right) in the IR. */
static void
ex_bitshift(Ex *e, const Node *n, const char *type)
{
	Onnx__NodeProto *p = emit_operands(e, n, type);
	const char *dir = ir_attr(e->g, n, AT_BITSHIFT_DIRECTION)->i ? "RIGHT" :
	                  "LEFT";
	Onnx__AttributeProto *pa = attr(e, p, "direction",
		ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING);
	pa->has_s = 1;
	pa->s.len = strlen(dir);
	pa->s.data = (uint8_t *)arena_strdup(e->a, dir);
}

static void
ex_cumsum(Ex *e, const Node *n, const char *type)
{
	const char *in[] = {vname(e, n->in[0]), init_scalar(e, "axis", DT_I64,
		(double)ir_attr(e->g, n, AT_CUMSUM_AXIS)->i)};
	Onnx__NodeProto *p = emit(e, type, in, 2, result(e, n));
	copy_attr(e, p, n, AT_CUMSUM_EXCLUSIVE);
	copy_attr(e, p, n, AT_CUMSUM_REVERSE);
}

static void
ex_trilu(Ex *e, const Node *n, const char *type)
{
	int64_t k = ir_attr(e->g, n, AT_TRILU_K)->i;
	const char *in[] = {vname(e, n->in[0]),
		k ? init_scalar(e, "k", DT_I64, (double)k) : NULL};
	Onnx__NodeProto *p = emit(e, type, in, 2, result(e, n));
	copy_attr(e, p, n, AT_TRILU_UPPER);
}

static void
ex_cast(Ex *e, const Node *n, const char *type)
{
	Onnx__NodeProto *p = emit_operands(e, n, type);
	attr_int(e, p, "to", onnx_dtype[e->g->val[n->out].type.dtype]);
}

/* ONNX's seed is a float: seeds above 2^24 lose their low bits, and the
 * numbers drawn are the runtime's own in any case.  A scalar is drawn as
 * shape [1] and reshaped, since an empty shape attribute reads as none. */
static void
ex_random_normal(Ex *e, const Node *n, const char *type)
{
	const Attr *shape = ir_attr(e->g, n, AT_RANDOM_NORMAL_SHAPE);
	if (n->nin > 0)
		diag_error(n->loc, "export: random_normal '%s' draws per training "
		           "step, which ONNX's RandomNormal cannot say",
		           e->g->val[n->out].name);
	const char *y = shape->n ? result(e, n) : helper(e, "value");
	Onnx__NodeProto *p = emit(e, type, NULL, 0, y);
	attr_int(e, p, "dtype", onnx_dtype[e->g->val[n->out].type.dtype]);
	copy_attr(e, p, n, AT_RANDOM_NORMAL_MEAN);
	copy_attr(e, p, n, AT_RANDOM_NORMAL_SCALE);
	attr_float(e, p, "seed", (double)ir_attr(e->g, n, AT_RANDOM_NORMAL_SEED)->i);
	attr_ints(e, p, "shape", shape->n ? shape->ints : (int64_t[]){1},
	          shape->n ? shape->n : 1);
	if (!shape->n)
		emit(e, "Reshape", (const char *[]){y, init_ints(e, "shape", (int64_t[]){0},
		     0)}, 2, result(e, n));
}

/* Gelu is an ONNX op only from opset 20: its formula in primitives.
 *   approximate=0: y = x * (1 + erf(x / sqrt 2)) * 0.5
 *   approximate=1: y = x * (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) * 0.5 */
static void
ex_gelu(Ex *e, const Node *n, const char *type)
{
	(void)type;
	const char *x = vname(e, n->in[0]), *t;
	if (ir_attr(e->g, n, AT_GELU_APPROXIMATE)->i) {
		t = emit2(e, "Mul", x, x, NULL);
		t = emit2(e, "Mul", t, x, NULL);
		t = emit2(e, "Mul", t, init_scalar(e, "c", DT_F32, 0.044715), NULL);
		t = emit2(e, "Add", x, t, NULL);
		t = emit2(e, "Mul", t, init_scalar(e, "k", DT_F32,
		          0.79788456080286535588 /* sqrt(2/pi) */), NULL);
		t = emit2(e, "Tanh", t, NULL, NULL);
	} else {
		t = emit2(e, "Mul", x, init_scalar(e, "rsqrt2", DT_F32, 0.70710678118654752440),
		          NULL);
		t = emit2(e, "Erf", t, NULL, NULL);
	}
	t = emit2(e, "Add", t, init_scalar(e, "one", DT_F32, 1), NULL);
	t = emit2(e, "Mul", x, t, NULL);
	emit2(e, "Mul", t, init_scalar(e, "half", DT_F32, 0.5), result(e, n));
}

/* y = x * sigmoid(x) */
static void
ex_silu(Ex *e, const Node *n, const char *type)
{
	(void)type;
	const char *x = vname(e, n->in[0]);
	emit2(e, "Mul", x, emit2(e, "Sigmoid", x, NULL, NULL), result(e, n));
}

/* ONNX's Mod takes fmod=1 for floats; Python's sign convention (fmod=0)
 * moves a remainder of the wrong sign to b's side, as the runtime does:
 * r = fmod(a, b);  y = r != 0 and (r < 0) != (b < 0) ? r + b : r */
static void
ex_mod(Ex *e, const Node *n, const char *type)
{
	int dt = e->g->val[n->out].type.dtype;
	if (ir_attr(e->g, n, AT_MOD_FMOD)->i || (dt != DT_F32 && dt != DT_F64)) {
		ex_plain(e, n, type);
		return;
	}
	const char *a = vname(e, n->in[0]), *b = vname(e, n->in[1]);
	const char *r = helper(e, "fmod");
	attr_int(e, emit(e, type, (const char *[]){a, b}, 2, r), "fmod", 1);
	const char *zero = init_scalar(e, "zero", dt, 0);
	const char *nz = emit2(e, "Not", emit2(e, "Equal", r, zero, NULL), NULL,
	                       NULL);
	const char *sign = emit2(e, "Xor", emit2(e, "Less", r, zero, NULL),
	                         emit2(e, "Less", b, zero, NULL), NULL);
	const char *in[] = {emit2(e, "And", nz, sign, NULL),
	                    emit2(e, "Add", r, b, NULL), r};
	emit(e, "Where", in, 3, result(e, n));
}

/* topk_values, topk_indices: TopK with k as input 1 and both outputs: the
 * twin's result, or when there is none a helper named after the result
 * ("y/indices", "y/values"); ONNX's TopK outputs are not optional. */
static void
ex_topk(Ex *e, const Node *n, const char *type)
{
	bool val = n->op == OP_TOPK_VALUES;
	int64_t k = ir_attr(e->g, n, val ? AT_TOPK_VALUES_K :
	                                   AT_TOPK_INDICES_K)->i;
	const char *in[] = {vname(e, n->in[0]), init_ints(e, "k", &k, 1)};
	int twin = e->twin[n - e->g->node];
	const char *other = twin >= 0 ? result(e, &e->g->node[twin]) :
	                    helper(e, val ? "indices" : "values");
	Onnx__NodeProto *p = emit(e, type, in, 2, result(e, n));
	p->output = arena_alloc(e->a, 2 * sizeof *p->output);
	p->n_output = 2;
	p->output[val ? 0 : 1] = arena_strdup(e->a, result(e, n));
	p->output[val ? 1 : 0] = arena_strdup(e->a, other);
	const OpInfo *oi = op_get(n->op);
	for (int a = 1; a < oi->nattr; a++)    /* all but k */
		copy_attr(e, p, n, oi->attr0 + a);
}

/* MaxPool from maxpool2d and maxpool2d_indices: one node with both
 * outputs when the two are twins, else the output ONNX requires (Y) is a
 * helper named "y/values" beside the indices. */
static void
ex_maxpool(Ex *e, const Node *n, const char *type)
{
	Onnx__NodeProto *p = emit_operands(e, n, type);
	int twin = e->twin[n - e->g->node];
	if (n->op == OP_MAXPOOL2D_INDICES || twin >= 0) {
		bool idx = n->op == OP_MAXPOOL2D_INDICES;
		p->output = arena_alloc(e->a, 2 * sizeof *p->output);
		p->n_output = 2;
		p->output[idx] = arena_strdup(e->a, result(e, n));
		p->output[!idx] = arena_strdup(e->a, twin >= 0 ?
		    result(e, &e->g->node[twin]) : helper(e, "values"));
	}
	const OpInfo *oi = op_get(n->op);
	for (int k = 0; k < oi->nattr; k++)
		copy_attr(e, p, n, oi->attr0 + k);
	if (twin >= 0 && n->op == OP_MAXPOOL2D)
		copy_attr(e, p, &e->g->node[twin],
		          AT_MAXPOOL2D_INDICES_STORAGE_ORDER);
}

/* The one table: IR op -> ONNX op type and its translation.  An op
 * without a row cannot be exported (an error names it). */
static const struct {
	const char *type;
	ExportFn *fn;
} optab[NOP] = {
	[OP_GEMM] = {"Gemm", ex_plain},
	[OP_MATMUL] = {"MatMul", ex_plain},
	[OP_CONV2D] = {"Conv", ex_plain},
	[OP_CONV2D_TRANSPOSE] = {"ConvTranspose", ex_plain},
	[OP_MAXPOOL2D] = {"MaxPool", ex_maxpool},
	[OP_MAXPOOL2D_INDICES] = {"MaxPool", ex_maxpool},
	[OP_AVGPOOL2D] = {"AveragePool", ex_avgpool},
	[OP_CONV3D] = {"Conv", ex_plain},
	[OP_CONV3D_TRANSPOSE] = {"ConvTranspose", ex_plain},
	[OP_MAXPOOL3D] = {"MaxPool", ex_plain},
	[OP_AVGPOOL3D] = {"AveragePool", ex_avgpool},
	[OP_ADD] = {"Add", ex_plain},
	[OP_SUB] = {"Sub", ex_plain},
	[OP_MUL] = {"Mul", ex_plain},
	[OP_DIV] = {"Div", ex_plain},
	[OP_RELU] = {"Relu", ex_plain},
	[OP_SIGMOID] = {"Sigmoid", ex_plain},
	[OP_TANH] = {"Tanh", ex_plain},
	[OP_EXP] = {"Exp", ex_plain},
	[OP_LOG] = {"Log", ex_plain},
	[OP_SQRT] = {"Sqrt", ex_plain},
	[OP_NEG] = {"Neg", ex_plain},
	[OP_ABS] = {"Abs", ex_plain},
	[OP_LEAKY_RELU] = {"LeakyRelu", ex_plain},
	[OP_ELU] = {"Elu", ex_plain},
	[OP_SELU] = {"Selu", ex_plain},
	[OP_GELU] = {"Gelu", ex_gelu},
	[OP_SILU] = {"Silu", ex_silu},
	[OP_HARDSWISH] = {"HardSwish", ex_plain},
	[OP_HARDSIGMOID] = {"HardSigmoid", ex_plain},
	[OP_CLIP] = {"Clip", ex_clip},
	[OP_SOFTMAX] = {"Softmax", ex_plain},
	[OP_LOG_SOFTMAX] = {"LogSoftmax", ex_plain},
	[OP_HARDMAX] = {"Hardmax", ex_plain},
	[OP_REDUCE_SUM] = {"ReduceSum", ex_reduce},
	[OP_REDUCE_MEAN] = {"ReduceMean", ex_reduce},
	[OP_REDUCE_MAX] = {"ReduceMax", ex_reduce},
	[OP_REDUCE_MIN] = {"ReduceMin", ex_reduce},
	[OP_REDUCE_PROD] = {"ReduceProd", ex_reduce},
	[OP_DROPOUT] = {"Identity", ex_identity},
	[OP_RANDOM_NORMAL] = {"RandomNormal", ex_random_normal},
	[OP_RESHAPE] = {"Reshape", ex_ints_input},
	[OP_EXPAND] = {"Expand", ex_ints_input},
	[OP_TILE] = {"Tile", ex_ints_input},
	[OP_FLATTEN] = {"Flatten", ex_plain},
	[OP_TRANSPOSE] = {"Transpose", ex_plain},
	[OP_CONCAT] = {"Concat", ex_plain},
	[OP_SLICE] = {"Slice", ex_slice},
	[OP_PAD] = {"Pad", ex_pad},
	[OP_RESIZE] = {"Resize", ex_resize},
	[OP_GATHER] = {"Gather", ex_plain},
	[OP_GATHER_ELEMENTS] = {"GatherElements", ex_plain},
	[OP_BATCHNORM] = {"BatchNormalization", ex_plain},
	[OP_LAYERNORM] = {"LayerNormalization", ex_plain},
	[OP_INSTANCE_NORM] = {"InstanceNormalization", ex_plain},
	[OP_LRN] = {"LRN", ex_plain},
	[OP_ARGMAX] = {"ArgMax", ex_plain},
	[OP_ARGMIN] = {"ArgMin", ex_plain},
	[OP_CUMSUM] = {"CumSum", ex_cumsum},
	[OP_TRILU] = {"Trilu", ex_trilu},
	[OP_DEPTH_TO_SPACE] = {"DepthToSpace", ex_plain},
	[OP_SPACE_TO_DEPTH] = {"SpaceToDepth", ex_plain},
	[OP_POW] = {"Pow", ex_plain},
	[OP_MAX] = {"Max", ex_plain},
	[OP_MIN] = {"Min", ex_plain},
	[OP_MOD] = {"Mod", ex_mod},
	[OP_BITSHIFT] = {"BitShift", ex_bitshift},
	[OP_EQUAL] = {"Equal", ex_plain},
	[OP_LESS] = {"Less", ex_plain},
	[OP_LESS_EQUAL] = {"LessOrEqual", ex_plain},
	[OP_GREATER] = {"Greater", ex_plain},
	[OP_GREATER_EQUAL] = {"GreaterOrEqual", ex_plain},
	[OP_AND] = {"And", ex_plain},
	[OP_OR] = {"Or", ex_plain},
	[OP_XOR] = {"Xor", ex_plain},
	[OP_NOT] = {"Not", ex_plain},
	[OP_WHERE] = {"Where", ex_plain},
	[OP_CAST] = {"Cast", ex_cast},
	[OP_SIN] = {"Sin", ex_plain},
	[OP_COS] = {"Cos", ex_plain},
	[OP_TAN] = {"Tan", ex_plain},
	[OP_ASIN] = {"Asin", ex_plain},
	[OP_ACOS] = {"Acos", ex_plain},
	[OP_ATAN] = {"Atan", ex_plain},
	[OP_SINH] = {"Sinh", ex_plain},
	[OP_COSH] = {"Cosh", ex_plain},
	[OP_ASINH] = {"Asinh", ex_plain},
	[OP_ACOSH] = {"Acosh", ex_plain},
	[OP_ATANH] = {"Atanh", ex_plain},
	[OP_CEIL] = {"Ceil", ex_plain},
	[OP_FLOOR] = {"Floor", ex_plain},
	[OP_ROUND] = {"Round", ex_plain},
	[OP_SIGN] = {"Sign", ex_plain},
	[OP_ERF] = {"Erf", ex_plain},
	[OP_RECIPROCAL] = {"Reciprocal", ex_plain},
	[OP_SOFTPLUS] = {"Softplus", ex_plain},
	[OP_SOFTSIGN] = {"Softsign", ex_plain},
	[OP_CELU] = {"Celu", ex_plain},
	[OP_THRESHOLDED_RELU] = {"ThresholdedRelu", ex_plain},
	[OP_SHRINK] = {"Shrink", ex_plain},
	[OP_ISNAN] = {"IsNaN", ex_plain},
	[OP_ISINF] = {"IsInf", ex_plain},
	[OP_GATHER_ND] = {"GatherND", ex_plain},
	[OP_SCATTER_ND] = {"ScatterND", ex_plain},
	[OP_SCATTER_ELEMENTS] = {"ScatterElements", ex_plain},
	[OP_TOPK_VALUES] = {"TopK", ex_topk},
	[OP_TOPK_INDICES] = {"TopK", ex_topk},
};

/* ---- the graph ---- */

static void
export_node(Ex *e, int i)
{
	const Node *n = &e->g->node[i];
	const char *name = op_get(n->op)->name;
	if (!optab[n->op].fn)
		diag_error(n->loc, "export: op '%s' (computing '%s') has no ONNX "
		           "mapping, so kiln cannot export this model", name,
		           e->g->val[n->out].name);
	int act, res;
	if (ir_epilogue(e->g, n, &act, &res) && (act != 0 || res >= 0))
		diag_error(n->loc, "export: %s '%s' has a fused epilogue, which "
		           "ONNX has no form for; export the model before "
		           "fuse_epilogue", name, e->g->val[n->out].name);
	if (n->op == OP_CONV2D && ir_attr(e->g, n, AT_CONV2D_WPANEL)->i)
		diag_error(n->loc, "export: %s '%s' has its weights in the "
		           "runtime's panels (wpanel), which ONNX has no form for; "
		           "export the model before pack_weights", name,
		           e->g->val[n->out].name);
	e->n = n;
	e->base = n->loc.node ? n->loc.node :
	          arena_printf(e->a, "%s_%d", name, i);
	optab[n->op].fn(e, n, optab[n->op].type);
}

/* Every value name is taken before any helper is named.  Node names are
 * taken as nodes are made: the first node with a name keeps it. */
static void
take_names(Ex *e)
{
	Graph *g = e->g;
	for (int v = 0; v < g->nval; v++)
		if (!names_add(e->a, &e->tensor, g->val[v].name))
			die("value name '%s' is not unique", g->val[v].name);
}

/* A Constant node holding constant v, named as its location says. */
static void
export_const(Ex *e, int v)
{
	const Value *val = &e->g->val[v];
	e->base = val->loc.node ? val->loc.node : val->name;
	Onnx__NodeProto *p = emit(e, "Constant", NULL, 0, val->name);
	Onnx__AttributeProto *a = attr(e, p, "value",
		ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR);
	/* add_init() builds the tensor; it moves from the list to here */
	add_init(e, "", &val->type, val->data);
	a->t = e->init[--e->ninit];
}

/* Parameters as initializers (so `kiln build --weights` may replace them
 * after a re-import), constants as Constant nodes, in value order. */
static void
export_data(Ex *e)
{
	Graph *g = e->g;
	for (int v = 0; v < g->nval; v++) {
		Value *val = &g->val[v];
		if (val->kind != VK_PARAM && val->kind != VK_CONST)
			continue;
		if (!val->data && val->init == INIT_DATA)
			diag_error(val->loc, "'%s': its data was elided from this IR; "
			           "give it with --weights FILE", val->name);
		ir_materialize(g, v);
		if (val->kind == VK_PARAM)
			add_init(e, val->name, &val->type, val->data);
		else
			export_const(e, v);
	}
}

static Onnx__ValueInfoProto **
infos(Ex *e, const int *v, int n, size_t *count)
{
	Onnx__ValueInfoProto **p = arena_alloc(e->a, (n + 1) * sizeof *p);
	for (int i = 0; i < n; i++)
		p[i] = value_info(e, e->g->val[v[i]].name, &e->g->val[v[i]].type);
	*count = n;
	return p;
}

/* Graph outputs must be distinct temporaries: an output that is an input,
 * a parameter or an earlier output is copied into a fresh name. */
static int *
output_names(Ex *e, const char ***names)
{
	Graph *g = e->g;
	int *out = arena_alloc(e->a, (g->noutput + 1) * sizeof *out);
	*names = arena_alloc(e->a, (g->noutput + 1) * sizeof **names);
	for (int i = 0; i < g->noutput; i++) {
		int v = out[i] = g->output[i];
		bool again = false;
		for (int j = 0; j < i; j++)
			again |= g->output[j] == v;
		(*names)[i] = g->val[v].name;
		if (!again && g->val[v].kind == VK_TEMP)
			continue;
		e->base = arena_printf(e->a, "output_%d", i);
		(*names)[i] = fresh(e, &e->tensor, g->val[v].name);
		emit(e, "Identity", (const char *[]){g->val[v].name}, 1,
		     (*names)[i]);
	}
	return out;
}

/* ONNX nodes with two outputs that the IR computes as two nodes on the
 * same operand with the same attributes where both have them (MaxPool's Y
 * and Indices: storage_order is the indices' own; TopK's
 * Values and Indices) become one ONNX node again: e->twin[i] = j and
 * e->twin[j] = i for such a pair i < j (the second is not exported on its
 * own), -1 for other nodes. */
static void
twins(Ex *e)
{
	static const int pairs[][2] = {
		{OP_MAXPOOL2D, OP_MAXPOOL2D_INDICES},
		{OP_TOPK_VALUES, OP_TOPK_INDICES},
	};
	Graph *g = e->g;
	e->twin = arena_alloc(e->a, (g->nnode + 1) * sizeof *e->twin);
	for (int i = 0; i < g->nnode; i++)
		e->twin[i] = -1;
	for (int i = 0; i < g->nnode; i++)
	for (int j = i + 1; j < g->nnode && e->twin[i] < 0; j++) {
		const Node *a = &g->node[i], *b = &g->node[j];
		bool pair = false;
		for (int k = 0; k < countof(pairs); k++)
			pair |= (a->op == pairs[k][0] && b->op == pairs[k][1]) ||
			        (a->op == pairs[k][1] && b->op == pairs[k][0]);
		if (!pair || a->dead || b->dead || e->twin[j] >= 0 ||
		    a->in[0] != b->in[0])
			continue;
		const OpInfo *oa = op_get(a->op);
		for (int k = 0; k < oa->nattr && pair; k++) {
			int id = op_attr_lookup(b->op, attr_info[oa->attr0 + k].name);
			pair = id < 0 || ir_attr_eq(ir_attr(g, a, oa->attr0 + k),
			                            ir_attr(g, b, id));
		}
		if (pair)
			e->twin[i] = j, e->twin[j] = i;
	}
}

static Onnx__GraphProto *
export_graph(Ex *e)
{
	Graph *g = e->g;
	Onnx__GraphProto *gp = arena_alloc(e->a, sizeof *gp);
	*gp = (Onnx__GraphProto)ONNX__GRAPH_PROTO__INIT;
	gp->name = arena_strdup(e->a, g->name);
	take_names(e);
	export_data(e);
	twins(e);
	for (int i = 0; i < g->nnode; i++)
		if (!g->node[i].dead && !(e->twin[i] >= 0 && e->twin[i] < i))
			export_node(e, i);
	const char **oname;
	int *out = output_names(e, &oname);
	gp->input = infos(e, g->input, g->ninput, &gp->n_input);
	gp->output = infos(e, out, g->noutput, &gp->n_output);
	for (int i = 0; i < g->noutput; i++)
		gp->output[i]->name = arena_strdup(e->a, oname[i]);
	for (int v = 0; v < g->nval; v++)
		if (g->val[v].kind == VK_TEMP && g->val[v].def >= 0 &&
		    !g->node[g->val[v].def].dead)
			APUSH(e->a, e->vinfo, e->nvinfo, e->capvinfo,
			      value_info(e, g->val[v].name, &g->val[v].type));
	gp->node = e->node, gp->n_node = e->nnode;
	gp->initializer = e->init, gp->n_initializer = e->ninit;
	gp->value_info = e->vinfo, gp->n_value_info = e->nvinfo;
	return gp;
}

void
onnx_export(Graph *g, const char *path)
{
	for (int i = 0; i < g->nnode; i++)
		for (int k = 0; k < g->node[i].nin && !g->node[i].dead; k++)
			if (g->node[i].in[k] >= 0 &&
			    g->val[g->node[i].in[k]].kind == VK_LABEL)
				diag_error(g->node[i].loc, "export: this node reads the "
				           "training label '%s'; ONNX export writes "
				           "inference graphs only",
				           g->val[g->node[i].in[k]].name);
	Ex e = {.g = g, .a = g->mod->arena};
	Onnx__OperatorSetIdProto opset = ONNX__OPERATOR_SET_ID_PROTO__INIT;
	opset.domain = "";
	opset.has_version = 1;
	opset.version = OPSET;
	Onnx__OperatorSetIdProto *opsets[] = {&opset};
	Onnx__ModelProto m = ONNX__MODEL_PROTO__INIT;
	m.has_ir_version = 1;
	m.ir_version = IR_VERSION;
	m.n_opset_import = 1;
	m.opset_import = opsets;
	m.producer_name = "kiln";
	m.graph = export_graph(&e);
	size_t len = onnx__model_proto__get_packed_size(&m);
	uint8_t *buf = xmalloc(len ? len : 1);
	onnx__model_proto__pack(&m, buf);
	int rc = write_file_atomic(path, buf, len);
	free(buf);
	if (rc != 0)
		fatal("cannot write '%s': %s", path, strerror(errno));
}
