/* shape.c: shape rules, one function per rule, shared by many ops.
 *
 * A rule reads its node's operand types and attributes, checks them, and
 * sets the result type.  It returns NULL, or a message naming the op and
 * what is wrong; the caller adds the source location.  Operand dtypes were
 * already checked against the registry row by ir_infer().
 */
#include <math.h>
#include <string.h>
#include "ir.h"
#include "kiln.h"

#define ERR(...) arena_printf(g->mod->arena, __VA_ARGS__)

static const Type *
in(Graph *g, const Node *n, int i)
{
	return n->in[i] >= 0 && i < n->nin ? &g->val[n->in[i]].type : NULL;
}

static const char *
name(const Node *n)
{
	return op_get(n->op)->name;
}

static const char *
tstr(Graph *g, const Type *t)
{
	return type_str(g->mod->arena, t);
}

const char *
shape_same(Graph *g, const Node *n, Type *out)
{
	*out = *in(g, n, 0);
	return NULL;
}

bool
shape_broadcast(const Type *a, const Type *b, Type *out)
{
	int r = MAX(a->rank, b->rank);
	out->dtype = a->dtype;
	out->rank = r;
	for (int i = 0; i < r; i++) {
		int64_t da = i < r - a->rank ? 1 : a->dim[i - (r - a->rank)];
		int64_t db = i < r - b->rank ? 1 : b->dim[i - (r - b->rank)];
		if (da != db && da != 1 && db != 1)
			return false;
		out->dim[i] = da == 1 ? db : da;
	}
	return true;
}

const char *
shape_bcast(Graph *g, const Node *n, Type *out)
{
	const Type *a = in(g, n, 0), *b = in(g, n, 1);
	if (!shape_broadcast(a, b, out))
		return ERR("%s: shapes %s and %s do not broadcast", name(n),
		           tstr(g, a), tstr(g, b));
	return NULL;
}

/* mod: broadcasting, and fmod is 0 or 1. */
const char *
shape_mod(Graph *g, const Node *n, Type *out)
{
	int64_t f = ir_attr(g, n, AT_MOD_FMOD)->i;
	if (f != 0 && f != 1)
		return ERR("mod: 'fmod' must be 0 or 1, got %lld", (long long)f);
	return shape_bcast(g, n, out);
}

/* Comparisons: broadcasting, with a bool result. */
const char *
shape_compare(Graph *g, const Node *n, Type *out)
{
	const char *err = shape_bcast(g, n, out);
	out->dtype = DT_BOOL;
	return err;
}

/* isnan, isinf: a bool result of the operand's shape. */
const char *
shape_predicate(Graph *g, const Node *n, Type *out)
{
	*out = *in(g, n, 0);
	out->dtype = DT_BOOL;
	return NULL;
}

/* where(cond, a, b): all three broadcast together; the result has a's
 * dtype (ir_infer has checked cond is bool and b has a's dtype). */
const char *
shape_where(Graph *g, const Node *n, Type *out)
{
	const Type *c = in(g, n, 0), *a = in(g, n, 1), *b = in(g, n, 2);
	Type ab;
	if (!shape_broadcast(a, b, &ab) || !shape_broadcast(c, &ab, out))
		return ERR("where: shapes %s, %s and %s do not broadcast",
		           tstr(g, c), tstr(g, a), tstr(g, b));
	out->dtype = a->dtype;
	return NULL;
}

/* fused: the expression parses (ir/fused.c) and every op in it
 * broadcasts its operands; the result is the root's type, f32. */
const char *
shape_fused(Graph *g, const Node *n, Type *out)
{
	FusedExpr e;
	const char *err = ir_fused_parse(g->mod->arena,
	                                 ir_attr(g, n, AT_FUSED_EXPR)->s, n->nin, &e);
	if (err)
		return err;
	for (int k = 0; k < n->nin; k++)
		if (n->in[k] < 0)
			return ERR("fused: operand %%%d is absent", k);
	Type *t = arena_alloc(g->mod->arena, e.n * sizeof *t);
	for (int i = 0; i < e.n; i++) {
		const FusedTerm *f = &e.t[i];
		if (f->op == FT_OPERAND)
			t[i] = *in(g, n, f->operand);
		else if (f->op == FT_LITERAL)
			t[i] = (Type){.dtype = DT_F32};
		else if (f->nin == 1)
			t[i] = t[f->in[0]];
		else if (!shape_broadcast(&t[f->in[0]], &t[f->in[1]], &t[i]))
			return ERR("fused: %s at column %d: shapes %s and %s do not "
			           "broadcast", op_get(f->op)->name, f->pos + 1,
			           tstr(g, &t[f->in[0]]), tstr(g, &t[f->in[1]]));
	}
	*out = t[e.n - 1];
	out->dtype = DT_F32;
	return NULL;
}

/* cast: the operand's shape, dtype 'to'. */
const char *
shape_cast(Graph *g, const Node *n, Type *out)
{
	int64_t to = ir_attr(g, n, AT_CAST_TO)->i;
	if (to < 0 || to >= NDTYPE)
		return ERR("cast: 'to' must be a dtype number from 0 to %d, got "
		           "%lld", NDTYPE - 1, (long long)to);
	*out = *in(g, n, 0);
	out->dtype = (int)to;
	return NULL;
}

/* The fused epilogue's activations, in the order of the runtime's enum
 * kiln_act. */
const char *const shape_act[] = {"none", "relu", "clip", "leaky_relu",
	"sigmoid", "tanh", "hardswish", "hardsigmoid", "gelu", "gelu_tanh",
	"silu", NULL};

static const char *check_choice(Graph *g, const Node *n, int id,
                                const char *const *names);

/* Checks the epilogue of a conv2d, gemm or matmul whose result type is
 * *out: a known act, and the residual (the op's last operand) of that
 * type. */
static const char *
epilogue(Graph *g, const Node *n, const Type *out)
{
	int id = op_attr_lookup(n->op, "act");
	const char *err = id >= 0 ? check_choice(g, n, id, shape_act) : NULL;
	if (err)
		return err;
	const Type *r = in(g, n, op_get(n->op)->maxin - 1);
	if (id >= 0 && r && !type_eq(r, out))
		return ERR("%s: residual must be %s like the result, got %s",
		           name(n), tstr(g, out), tstr(g, r));
	return NULL;
}

const char *
shape_gemm(Graph *g, const Node *n, Type *out)
{
	const Type *a = in(g, n, 0), *b = in(g, n, 1), *c = in(g, n, 2);
	if (a->rank != 2 || b->rank != 2)
		return ERR("gemm: operands must have rank 2, got %s and %s",
		           tstr(g, a), tstr(g, b));
	bool ta = ir_attr(g, n, AT_GEMM_TRANS_A)->i;
	bool tb = ir_attr(g, n, AT_GEMM_TRANS_B)->i;
	int64_t m = a->dim[ta], ka = a->dim[!ta];
	int64_t kb = b->dim[tb], nn = b->dim[!tb];
	if (ka != kb)
		return ERR("gemm: inner dimensions differ (%lld vs %lld)",
		           (long long)ka, (long long)kb);
	*out = (Type){.dtype = a->dtype, .rank = 2, .dim = {m, nn}};
	Type bc;
	if (c && (c->rank > 2 || !shape_broadcast(out, c, &bc) ||
	          !type_eq(&bc, out)))
		return ERR("gemm: bias %s does not broadcast to %s", tstr(g, c),
		           tstr(g, out));
	return epilogue(g, n, out);
}

const char *
shape_matmul(Graph *g, const Node *n, Type *out)
{
	const Type *a = in(g, n, 0), *b = in(g, n, 1);
	if (a->rank < 2 || b->rank < 2)
		return ERR("matmul: operands must have rank >= 2, got %s and %s",
		           tstr(g, a), tstr(g, b));
	int64_t k1 = a->dim[a->rank - 1], k2 = b->dim[b->rank - 2];
	if (k1 != k2)
		return ERR("matmul: inner dimensions differ (%lld vs %lld)",
		           (long long)k1, (long long)k2);
	Type ba = *a, bb = *b;
	ba.rank -= 2;
	bb.rank -= 2;
	if (!shape_broadcast(&ba, &bb, out))
		return ERR("matmul: batch dimensions of %s and %s do not broadcast",
		           tstr(g, a), tstr(g, b));
	out->dim[out->rank++] = a->dim[a->rank - 2];
	out->dim[out->rank++] = b->dim[b->rank - 1];
	return epilogue(g, n, out);
}

/* Checks an INTS attribute has count entries, each at least lo and at
 * most INT32_MAX, so that window arithmetic cannot overflow. */
static const char *
check_ints(Graph *g, const Node *n, int id, int count, int64_t lo)
{
	Attr *a = ir_attr(g, n, id);
	if (a->n != count)
		return ERR("%s: '%s' needs %d values, got %d", name(n),
		           attr_info[id].name, count, a->n);
	for (int i = 0; i < a->n; i++) {
		if (a->ints[i] < lo)
			return ERR("%s: '%s' values must be at least %lld, got %lld",
			           name(n), attr_info[id].name, (long long)lo,
			           (long long)a->ints[i]);
		if (a->ints[i] > INT32_MAX)
			return ERR("%s: '%s' values must be at most %d, got %lld",
			           name(n), attr_info[id].name, INT32_MAX,
			           (long long)a->ints[i]);
	}
	return NULL;
}

/* Output size of a sliding window along one spatial dimension. */
static int64_t
window(int64_t size, int64_t k, int64_t s, int64_t p0, int64_t p1, int64_t d,
       bool ceil)
{
	int64_t span = d * (k - 1) + 1, room = size + p0 + p1 - span;
	if (room < 0)
		return 0;
	return (ceil ? (room + s - 1) / s : room / s) + 1;
}

/* Spatial dimensions of a conv, transposed conv or pool op: the 3-D ops
 * have their own rows (and kernels) but share these shape rules. */
static int
nspatial(const Node *n)
{
	switch (n->op) {
	case OP_CONV3D: case OP_CONV3D_TRANSPOSE: case OP_MAXPOOL3D:
	case OP_AVGPOOL3D: case OP_CONV3D_GRAD_W: case OP_MAXPOOL3D_GRAD:
	case OP_AVGPOOL3D_GRAD:
		return 3;
	default:
		return 2;
	}
}

/* The node's attribute called name: the 2-D and 3-D ops share attribute
 * names, not ids. */
static Attr *
named(Graph *g, const Node *n, const char *name)
{
	return ir_attr(g, n, op_attr_lookup(n->op, name));
}

/* "3x3" or "3x3x3", for messages. */
static const char *
dims_str(Graph *g, const int64_t *k, int n)
{
	char *s = ERR("%lld", (long long)k[0]);
	for (int i = 1; i < n; i++)
		s = ERR("%sx%lld", s, (long long)k[i]);
	return s;
}

/* Shared by the convs, the pools and their gradients: x is NCHW or
 * NCDHW, k the kernel's spatial sizes; sets out->dim[2...]. */
static const char *
spatial_of(Graph *g, const Node *n, const Type *x, const int64_t *k,
           bool ceil, Type *out)
{
	const char *err;
	int nsp = nspatial(n);
	if ((err = check_ints(g, n, op_attr_lookup(n->op, "strides"), nsp, 1)) ||
	    (err = check_ints(g, n, op_attr_lookup(n->op, "pads"), 2 * nsp, 0)) ||
	    (err = check_ints(g, n, op_attr_lookup(n->op, "dilations"), nsp, 1)))
		return err;
	int64_t *s = named(g, n, "strides")->ints, *p = named(g, n, "pads")->ints;
	int64_t *d = named(g, n, "dilations")->ints;
	for (int i = 0; i < nsp; i++) {
		out->dim[2 + i] = window(x->dim[2 + i], k[i], s[i], p[i], p[nsp + i],
		                         d[i], ceil);
		if (out->dim[2 + i] < 1)
			return ERR("%s: window %s does not fit input %s with its "
			           "padding", name(n), dims_str(g, k, nsp), tstr(g, x));
	}
	return NULL;
}

/* spatial_of() for the op's first operand */
static const char *
spatial(Graph *g, const Node *n, const int64_t *k, bool ceil, Type *out)
{
	return spatial_of(g, n, in(g, n, 0), k, ceil, out);
}

/* conv2d's parameters for input x, weights w and output y. */
static struct kiln_conv2d
conv2d_params(Graph *g, const Node *n, const Type *x, const Type *w,
              const Type *y)
{
	const int64_t *s = named(g, n, "strides")->ints;
	const int64_t *p = named(g, n, "pads")->ints;
	const int64_t *d = named(g, n, "dilations")->ints;

	return (struct kiln_conv2d){
		x->dim[0], x->dim[1], x->dim[2], x->dim[3], w->dim[0], w->dim[2],
		w->dim[3], y->dim[2], y->dim[3], s[0], s[1], p[0], p[1], d[0], d[1],
		named(g, n, "group")->i,
	};
}

void
shape_conv2d_params(Graph *g, const Node *n, struct kiln_conv2d *p)
{
	*p = conv2d_params(g, n, in(g, n, 0), in(g, n, 1),
	                   &g->val[n->out].type);
}

/* conv2d and conv3d */
const char *
shape_conv(Graph *g, const Node *n, Type *out)
{
	const Type *x = in(g, n, 0), *w = in(g, n, 1), *b = in(g, n, 2);
	int r = nspatial(n) + 2;
	if (x->rank != r || w->rank != r)
		return ERR("%s: input and weights must have rank %d (%s), got %s "
		           "and %s", name(n), r, r == 4 ? "NCHW, OIHW" :
		           "NCDHW, OIDHW", tstr(g, x), tstr(g, w));
	int64_t group = named(g, n, "group")->i;
	if (group < 1)
		return ERR("%s: group must be at least 1, got %lld", name(n),
		           (long long)group);
	if (x->dim[1] % group || w->dim[0] % group)
		return ERR("%s: group %lld must divide the input channels "
		           "(%lld) and output channels (%lld)", name(n),
		           (long long)group, (long long)x->dim[1],
		           (long long)w->dim[0]);
	if (w->dim[1] * group != x->dim[1])
		return ERR("%s: weights %s expect %lld input channels, input "
		           "%s has %lld", name(n), tstr(g, w),
		           (long long)(w->dim[1] * group), tstr(g, x),
		           (long long)x->dim[1]);
	if (b && (b->rank != 1 || b->dim[0] != w->dim[0]))
		return ERR("%s: bias must be [%lld], got %s", name(n),
		           (long long)w->dim[0], tstr(g, b));
	*out = (Type){.dtype = x->dtype, .rank = r, .dim = {x->dim[0], w->dim[0]}};
	const char *err = spatial(g, n, w->dim + 2, false, out);
	if (err)
		return err;
	/* packed weights: the runtime's panels for this conv's shapes */
	int wp = op_attr_lookup(n->op, "wpanel");
	if (wp >= 0 && ir_attr(g, n, wp)->i != 0) {
		struct kiln_conv2d p = conv2d_params(g, n, x, w, out);
		int want = kiln_conv2d_wpanel(&p);
		if (ir_attr(g, n, wp)->i != want)
			return ERR("%s: wpanel must be 0 or, for these shapes, %d; "
			           "got %lld", name(n), want,
			           (long long)ir_attr(g, n, wp)->i);
	}
	return epilogue(g, n, out);
}

/* Checks an INT attribute is 0 or 1. */
static const char *
check_flag(Graph *g, const Node *n, int id)
{
	int64_t v = ir_attr(g, n, id)->i;
	if (v != 0 && v != 1)
		return ERR("%s: %s must be 0 or 1, got %lld", name(n),
		           attr_info[id].name, (long long)v);
	return NULL;
}

/* maxpool2d, maxpool2d_indices (an i64 result), avgpool2d, maxpool3d,
 * avgpool3d */
const char *
shape_pool(Graph *g, const Node *n, Type *out)
{
	const Type *x = in(g, n, 0);
	int r = nspatial(n) + 2;
	if (x->rank != r)
		return ERR("%s: input must have rank %d (%s), got %s", name(n), r,
		           r == 4 ? "NCHW" : "NCDHW", tstr(g, x));
	const char *err = check_ints(g, n, op_attr_lookup(n->op, "kernel"),
	                             r - 2, 1);
	if (err)
		return err;
	bool idx = n->op == OP_MAXPOOL2D_INDICES;
	if (idx && (err = check_flag(g, n, AT_MAXPOOL2D_INDICES_STORAGE_ORDER)))
		return err;
	*out = (Type){.dtype = idx ? DT_I64 : x->dtype, .rank = r,
	              .dim = {x->dim[0], x->dim[1]}};
	return spatial(g, n, named(g, n, "kernel")->ints,
	               named(g, n, "ceil_mode")->i, out);
}

const char *
shape_reshape(Graph *g, const Node *n, Type *out)
{
	const Type *x = in(g, n, 0);
	Attr *a = ir_attr(g, n, AT_RESHAPE_SHAPE);
	if (a->n > IR_MAXRANK)
		return ERR("reshape: rank %d is above the maximum %d", a->n,
		           IR_MAXRANK);
	*out = (Type){.dtype = x->dtype, .rank = a->n};
	int infer = -1;
	int64_t known = 1;
	for (int i = 0; i < a->n; i++) {
		int64_t d = a->ints[i];
		if (d == 0 && i < x->rank)
			d = x->dim[i];
		if (d == -1 && infer < 0) {
			infer = i;
			continue;
		}
		if (d < 1)
			return ERR("reshape: bad dimension %lld in shape",
			           (long long)a->ints[i]);
		if (known > INT64_MAX / 8 / d)
			return ERR("reshape: shape has too many elements");
		out->dim[i] = d;
		known *= d;
	}
	int64_t total = type_numel(x);
	if (infer >= 0) {
		if (known == 0 || total % known)
			return ERR("reshape: cannot reshape %s: %lld elements do not "
			           "divide by %lld", tstr(g, x), (long long)total,
			           (long long)known);
		out->dim[infer] = total / known;
		known = total;
	}
	if (known != total)
		return ERR("reshape: cannot reshape %s (%lld elements) to %s",
		           tstr(g, x), (long long)total, tstr(g, out));
	return NULL;
}

const char *
shape_flatten(Graph *g, const Node *n, Type *out)
{
	const Type *x = in(g, n, 0);
	int64_t axis = ir_attr(g, n, AT_FLATTEN_AXIS)->i;
	if (axis < 0)
		axis += x->rank;
	if (axis < 0 || axis > x->rank)
		return ERR("flatten: axis %lld is out of range for %s",
		           (long long)ir_attr(g, n, AT_FLATTEN_AXIS)->i, tstr(g, x));
	int64_t a = 1, b = 1;
	for (int i = 0; i < x->rank; i++)
		*(i < axis ? &a : &b) *= x->dim[i];
	*out = (Type){.dtype = x->dtype, .rank = 2, .dim = {a, b}};
	return NULL;
}

const char *
shape_softmax(Graph *g, const Node *n, Type *out)
{
	const Type *x = in(g, n, 0);
	int id = n->op == OP_SOFTMAX ? AT_SOFTMAX_AXIS : AT_LOG_SOFTMAX_AXIS;
	int64_t axis = ir_attr(g, n, id)->i;
	if (axis < -x->rank || axis >= x->rank || x->rank == 0)
		return ERR("%s: axis %lld is out of range for %s", name(n),
		           (long long)axis, tstr(g, x));
	*out = *x;
	return NULL;
}

const char *
shape_gelu(Graph *g, const Node *n, Type *out)
{
	int64_t a = ir_attr(g, n, AT_GELU_APPROXIMATE)->i;
	if (a != 0 && a != 1)
		return ERR("gelu: approximate must be 0 (erf) or 1 (tanh), got %lld",
		           (long long)a);
	return shape_same(g, n, out);
}

/* The axes attribute of a reduce_* node; keepdims is the one after it
 * (every reduce_* row in ops.def lists axes, then keepdims). */
static int
reduce_axes_id(const Node *n)
{
	switch (n->op) {
	case OP_REDUCE_SUM: return AT_REDUCE_SUM_AXES;
	case OP_REDUCE_MEAN: return AT_REDUCE_MEAN_AXES;
	case OP_REDUCE_MAX: return AT_REDUCE_MAX_AXES;
	case OP_REDUCE_MIN: return AT_REDUCE_MIN_AXES;
	case OP_REDUCE_PROD: return AT_REDUCE_PROD_AXES;
	default: die("%s is not a reduction", name(n));
	}
}

/* The dims a reduction reduces, as a mask (bit d = dim d): its axes, or
 * all dims when axes is empty. */
const char *
shape_reduce_mask(Graph *g, const Node *n, unsigned *mask)
{
	const Type *x = in(g, n, 0);
	Attr *a = ir_attr(g, n, reduce_axes_id(n));
	*mask = a->n == 0 ? (1u << x->rank) - 1 : 0;
	for (int i = 0; i < a->n; i++) {
		int64_t d = a->ints[i] < 0 ? a->ints[i] + x->rank : a->ints[i];
		if (d < 0 || d >= x->rank)
			return ERR("%s: axis %lld is out of range for %s", name(n),
			           (long long)a->ints[i], tstr(g, x));
		if (*mask >> d & 1)
			return ERR("%s: axes name dim %lld twice", name(n),
			           (long long)d);
		*mask |= 1u << d;
	}
	return NULL;
}

const char *
shape_reduce(Graph *g, const Node *n, Type *out)
{
	const Type *x = in(g, n, 0);
	int64_t keep = ir_attr(g, n, reduce_axes_id(n) + 1)->i;
	unsigned mask;
	const char *err = shape_reduce_mask(g, n, &mask);
	if (err)
		return err;
	if (keep != 0 && keep != 1)
		return ERR("%s: keepdims must be 0 or 1, got %lld", name(n),
		           (long long)keep);
	*out = (Type){.dtype = x->dtype};
	for (int i = 0; i < x->rank; i++)
		if (!(mask >> i & 1))
			out->dim[out->rank++] = x->dim[i];
		else if (keep)
			out->dim[out->rank++] = 1;
	return NULL;
}

const char *
shape_dropout(Graph *g, const Node *n, Type *out)
{
	double r = ir_attr(g, n, AT_DROPOUT_RATIO)->f;
	if (!(r >= 0 && r < 1))
		return ERR("dropout: ratio must be at least 0 and below 1, got %g", r);
	return shape_same(g, n, out);
}

/* The type is f32 of the shape attribute; the optional step operand is
 * an integer scalar. */
const char *
shape_random(Graph *g, const Node *n, Type *out)
{
	Attr *a = ir_attr(g, n, AT_RANDOM_NORMAL_SHAPE);
	const Type *t = in(g, n, 0);
	if (t && t->rank != 0)
		return ERR("%s: the step must be a scalar, got %s", name(n),
		           tstr(g, t));
	if (a->n > IR_MAXRANK)
		return ERR("%s: rank %d is above the maximum %d", name(n), a->n,
		           IR_MAXRANK);
	*out = (Type){.dtype = DT_F32, .rank = a->n};
	int64_t total = 1;
	for (int i = 0; i < a->n; i++) {
		int64_t d = a->ints[i];
		if (d < 1)
			return ERR("%s: dimension %lld in shape is not positive",
			           name(n), (long long)d);
		if (total > INT64_MAX / 8 / d)
			return ERR("%s: shape has too many elements", name(n));
		total *= d;
		out->dim[i] = d;
	}
	return NULL;
}

/* ---- layout, normalization, transposed convolution ------------------ */

/* Names of the STRING attribute values, in the order of the runtime's
 * enums (kiln_pad_mode, kiln_resize_mode, kiln_resize_coord, kiln_round). */
const char *const shape_pad_mode[] = {"constant", "reflect", "edge", NULL};
const char *const shape_resize_mode[] = {"nearest", "linear", "cubic", NULL};
const char *const shape_resize_coord[] = {"half_pixel", "pytorch_half_pixel",
	"asymmetric", "align_corners", "tf_half_pixel_for_nn",
	"tf_crop_and_resize", NULL};
const char *const shape_nearest_mode[] = {"round_prefer_floor",
	"round_prefer_ceil", "floor", "ceil", NULL};

int
shape_choice(const char *s, const char *const *names)
{
	for (int i = 0; names[i]; i++)
		if (strcmp(s, names[i]) == 0)
			return i;
	return -1;
}

/* Checks a STRING attribute is one of names. */
static const char *
check_choice(Graph *g, const Node *n, int id, const char *const *names)
{
	const char *s = ir_attr(g, n, id)->s;
	if (shape_choice(s, names) >= 0)
		return NULL;
	const char *list = "";
	for (int i = 0; names[i]; i++)
		list = arena_printf(g->mod->arena, "%s%s%s", list,
		                    i == 0 ? "" : names[i + 1] ? ", " : " or ",
		                    names[i]);
	return ERR("%s: '%s' must be %s, got \"%s\"", name(n), attr_info[id].name,
	           list, s);
}

/* axis resolved against rank r (negative counts from the end), or -1. */
static int
axis_of(int64_t axis, int r)
{
	if (axis < -r || axis >= r)
		return -1;
	return (int)(axis < 0 ? axis + r : axis);
}

const char *
shape_transpose(Graph *g, const Node *n, Type *out)
{
	const Type *x = in(g, n, 0);
	Attr *p = ir_attr(g, n, AT_TRANSPOSE_PERM);
	bool seen[IR_MAXRANK] = {0};
	if (p->n != x->rank)
		return ERR("transpose: perm has %d entries, input %s has rank %d",
		           p->n, tstr(g, x), x->rank);
	*out = (Type){.dtype = x->dtype, .rank = x->rank};
	for (int d = 0; d < p->n; d++) {
		int64_t k = p->ints[d];
		if (k < 0 || k >= x->rank || seen[k])
			return ERR("transpose: perm must be a permutation of 0..%d",
			           x->rank - 1);
		seen[k] = true;
		out->dim[d] = x->dim[k];
	}
	return NULL;
}

const char *
shape_concat(Graph *g, const Node *n, Type *out)
{
	const Type *x = in(g, n, 0);
	int64_t a = ir_attr(g, n, AT_CONCAT_AXIS)->i;
	int axis = axis_of(a, x->rank);
	if (axis < 0)
		return ERR("concat: axis %lld is out of range for %s", (long long)a,
		           tstr(g, x));
	*out = *x;
	for (int i = 1; i < n->nin; i++) {
		const Type *t = in(g, n, i);
		if (!t)
			return ERR("concat: operand %d is absent", i + 1);
		bool same = t->rank == x->rank;
		for (int d = 0; same && d < x->rank; d++)
			same = d == axis || t->dim[d] == x->dim[d];
		if (!same)
			return ERR("concat: operand %d is %s, which does not match %s "
			           "outside axis %d", i + 1, tstr(g, t), tstr(g, x), axis);
		if (out->dim[axis] > INT64_MAX / 8 - t->dim[axis])
			return ERR("concat: the result is too large");
		out->dim[axis] += t->dim[axis];
	}
	return NULL;
}

/* A slice bound as Python and ONNX clamp it: negative counts from the
 * end, then into [0, dim] for a positive step, [-1, dim-1] otherwise. */
static int64_t
slice_bound(int64_t i, int64_t dim, int64_t step)
{
	int64_t lo = step > 0 ? 0 : -1, hi = step > 0 ? dim : dim - 1;
	if (i < 0)
		i = i < -dim ? -1 : i + dim;
	return i < lo ? lo : i > hi ? hi : i;
}

/* Fills start, step and count for every dim of the slice node n; dims it
 * does not slice are whole.  A dim of count 1 gets step 1, so that
 * start + step stays small. */
const char *
shape_slice_params(Graph *g, const Node *n, int64_t *start, int64_t *step,
                   int64_t *count)
{
	const Type *x = in(g, n, 0);
	Attr *st = ir_attr(g, n, AT_SLICE_STARTS), *en = ir_attr(g, n, AT_SLICE_ENDS);
	Attr *ax = ir_attr(g, n, AT_SLICE_AXES), *sp = ir_attr(g, n, AT_SLICE_STEPS);
	bool seen[IR_MAXRANK] = {0};
	if (en->n != st->n || (ax->n && ax->n != st->n) || (sp->n && sp->n != st->n))
		return ERR("slice: starts, ends and any axes and steps must have "
		           "the same length (%d, %d, %d, %d)", st->n, en->n, ax->n,
		           sp->n);
	for (int d = 0; d < x->rank; d++)
		start[d] = 0, step[d] = 1, count[d] = x->dim[d];
	for (int k = 0; k < st->n; k++) {
		int64_t a = ax->n ? ax->ints[k] : k, s = sp->n ? sp->ints[k] : 1;
		int d = axis_of(a, x->rank);
		if (d < 0)
			return ERR("slice: axis %lld is out of range for %s",
			           (long long)a, tstr(g, x));
		if (seen[d])
			return ERR("slice: axis %d is sliced twice", d);
		if (s == 0)
			return ERR("slice: steps must not be 0");
		seen[d] = true;
		int64_t b = slice_bound(st->ints[k], x->dim[d], s);
		int64_t e = slice_bound(en->ints[k], x->dim[d], s);
		int64_t c = s > 0 ? (e > b ? (e - b - 1) / s + 1 : 0) :
		                    (b > e ? 1 - (b - e - 1) / s : 0);
		if (c < 1)
			return ERR("slice: axis %d of %s would be empty", d, tstr(g, x));
		start[d] = b, step[d] = c == 1 ? 1 : s, count[d] = c;
	}
	return NULL;
}

const char *
shape_slice(Graph *g, const Node *n, Type *out)
{
	int64_t start[IR_MAXRANK], step[IR_MAXRANK];
	const Type *x = in(g, n, 0);
	*out = (Type){.dtype = x->dtype, .rank = x->rank};
	return shape_slice_params(g, n, start, step, out->dim);
}

const char *
shape_pad(Graph *g, const Node *n, Type *out)
{
	const Type *x = in(g, n, 0);
	Attr *p = ir_attr(g, n, AT_PAD_PADS);
	const char *err = check_choice(g, n, AT_PAD_MODE, shape_pad_mode);
	if (err)
		return err;
	bool reflect = !strcmp(ir_attr(g, n, AT_PAD_MODE)->s, "reflect");
	if (p->n != 2 * x->rank)
		return ERR("pad: 'pads' needs %d values (the start of each dim, "
		           "then the end), got %d", 2 * x->rank, p->n);
	*out = *x;
	for (int d = 0; d < x->rank; d++) {
		int64_t b = p->ints[d], e = p->ints[x->rank + d], dim = x->dim[d];
		int64_t kept = b < -dim || e < -dim ? 0 : dim + MIN(b, 0) + MIN(e, 0);
		if (kept < 1 || b > INT32_MAX || e > INT32_MAX)
			return ERR("pad: pads %lld and %lld do not fit dim %d of %s",
			           (long long)b, (long long)e, d, tstr(g, x));
		if (reflect && (b >= kept || e >= kept))
			return ERR("pad: reflect pads must be less than the dim (%lld "
			           "after cropping), got %lld and %lld", (long long)kept,
			           (long long)b, (long long)e);
		out->dim[d] = b + e + dim;
	}
	return NULL;
}

/* Checks resize's scales: none, or one positive finite value per dim
 * that gives the dim in sizes as ONNX does, floor(dim * scale). */
static const char *
check_resize_scales(Graph *g, const Node *n, const Type *x)
{
	const Attr *sc = ir_attr(g, n, AT_RESIZE_SCALES);
	const int64_t *sz = ir_attr(g, n, AT_RESIZE_SIZES)->ints;
	if (sc->n == 0)
		return NULL;
	if (sc->n != x->rank)
		return ERR("resize: 'scales' needs %d values (one per dim) or none, "
		           "got %d", x->rank, sc->n);
	for (int d = 0; d < x->rank; d++) {
		double v = sc->floats[d];
		if (!(v > 0) || !isfinite(v))
			return ERR("resize: 'scales' values must be positive and "
			           "finite, got %g", v);
		if (floor(x->dim[d] * v) != (double)sz[d])
			return ERR("resize: dim %d of %s scaled by %.9g gives %.0f "
			           "elements, but 'sizes' says %lld", d, tstr(g, x), v,
			           floor(x->dim[d] * v), (long long)sz[d]);
	}
	return NULL;
}

/* Checks resize's roi: 2 * rank finite values (starts, then ends) for
 * tf_crop_and_resize, none otherwise, as no other mode reads it. */
static const char *
check_resize_roi(Graph *g, const Node *n, const Type *x)
{
	const Attr *roi = ir_attr(g, n, AT_RESIZE_ROI);
	bool crop = strcmp(ir_attr(g, n, AT_RESIZE_COORD)->s,
	                   "tf_crop_and_resize") == 0;
	if (!crop && roi->n)
		return ERR("resize: 'roi' is only read by coordinate_transformation_"
		           "mode \"tf_crop_and_resize\"; leave it out");
	if (crop && roi->n != 2 * x->rank)
		return ERR("resize: tf_crop_and_resize needs a 'roi' of %d values "
		           "(the start of each dim, then the end), got %d",
		           2 * x->rank, roi->n);
	for (int i = 0; i < roi->n; i++)
		if (!isfinite(roi->floats[i]))
			return ERR("resize: 'roi' values must be finite, got %g",
			           roi->floats[i]);
	return NULL;
}

const char *
shape_resize(Graph *g, const Node *n, Type *out)
{
	const Type *x = in(g, n, 0);
	const int64_t *sz = ir_attr(g, n, AT_RESIZE_SIZES)->ints;
	int64_t ex = ir_attr(g, n, AT_RESIZE_EXCLUDE)->i, total = 1;
	double a = ir_attr(g, n, AT_RESIZE_CUBIC_A)->f;
	const char *err;
	if ((err = check_choice(g, n, AT_RESIZE_MODE, shape_resize_mode)) ||
	    (err = check_choice(g, n, AT_RESIZE_COORD, shape_resize_coord)) ||
	    (err = check_choice(g, n, AT_RESIZE_NEAREST_MODE, shape_nearest_mode)))
		return err;
	if (x->rank < 1)
		return ERR("resize: input must have rank >= 1, got %s", tstr(g, x));
	if ((err = check_ints(g, n, AT_RESIZE_SIZES, x->rank, 1)) ||
	    (err = check_resize_scales(g, n, x)) ||
	    (err = check_resize_roi(g, n, x)))
		return err;
	if (ex != 0 && ex != 1)
		return ERR("resize: exclude_outside must be 0 or 1, got %lld",
		           (long long)ex);
	if (!isfinite(a) || !isfinite(ir_attr(g, n, AT_RESIZE_EXTRAPOLATION)->f))
		return ERR("resize: cubic_coeff_a and extrapolation_value must be "
		           "finite");
	*out = *x;
	for (int d = 0; d < x->rank; d++) {
		if (total > INT64_MAX / 8 / sz[d])
			return ERR("resize: sizes has too many elements");
		total *= sz[d];
		out->dim[d] = sz[d];
	}
	return NULL;
}

static const char *check_tuples(Graph *g, const Node *n, const Value *v,
                                const int64_t *dim, int m);

/* Checks the data of a constant index operand v of n against a dim of
 * len. */
static const char *
check_indices(Graph *g, const Node *n, const Value *v, int64_t len)
{
	return check_tuples(g, n, v, &len, 1);
}

const char *
shape_gather(Graph *g, const Node *n, Type *out)
{
	const Type *x = in(g, n, 0), *idx = in(g, n, 1);
	int64_t a = ir_attr(g, n, AT_GATHER_AXIS)->i;
	int axis = axis_of(a, x->rank);
	if (axis < 0)
		return ERR("gather: axis %lld is out of range for %s", (long long)a,
		           tstr(g, x));
	if (x->rank - 1 + idx->rank > IR_MAXRANK)
		return ERR("gather: the result would have rank %d, above the "
		           "maximum %d", x->rank - 1 + idx->rank, IR_MAXRANK);
	*out = (Type){.dtype = x->dtype};
	for (int d = 0; d < axis; d++)
		out->dim[out->rank++] = x->dim[d];
	for (int d = 0; d < idx->rank; d++)
		out->dim[out->rank++] = idx->dim[d];
	for (int d = axis + 1; d < x->rank; d++)
		out->dim[out->rank++] = x->dim[d];
	return check_indices(g, n, &g->val[n->in[1]], x->dim[axis]);
}

const char *
shape_batchnorm(Graph *g, const Node *n, Type *out)
{
	static const char *const what[] = {"", "scale", "bias", "mean", "var"};
	const Type *x = in(g, n, 0);
	if (x->rank < 2)
		return ERR("batchnorm: input must have rank >= 2 (N, C, ...), got %s",
		           tstr(g, x));
	for (int i = 1; i < 5; i++) {
		const Type *t = in(g, n, i);
		if (t->rank != 1 || t->dim[0] != x->dim[1])
			return ERR("batchnorm: %s must be [%lld] (the channels of %s), "
			           "got %s", what[i], (long long)x->dim[1], tstr(g, x),
			           tstr(g, t));
	}
	*out = *x;
	return NULL;
}

const char *
shape_layernorm(Graph *g, const Node *n, Type *out)
{
	const Type *x = in(g, n, 0);
	int64_t a = ir_attr(g, n, AT_LAYERNORM_AXIS)->i;
	int axis = axis_of(a, x->rank);
	if (axis < 0)
		return ERR("layernorm: axis %lld is out of range for %s",
		           (long long)a, tstr(g, x));
	Type want = {.dtype = x->dtype, .rank = x->rank - axis};
	for (int d = axis; d < x->rank; d++)
		want.dim[d - axis] = x->dim[d];
	for (int i = 1; i < 3; i++) {
		const Type *t = in(g, n, i);
		if (t && !type_eq(t, &want))
			return ERR("layernorm: %s must be %s (the dims of %s from axis "
			           "%d), got %s", i == 1 ? "scale" : "bias",
			           tstr(g, &want), tstr(g, x), axis, tstr(g, t));
	}
	*out = *x;
	return NULL;
}

/* Output size of a transposed convolution along one dim (below 1 when
 * the padding leaves nothing), or -1 when it would be too large. */
static int64_t
unwindow(int64_t size, int64_t k, int64_t s, int64_t p0, int64_t p1,
         int64_t d, int64_t op)
{
	if (size - 1 > INT64_MAX / 8 / s || k - 1 > INT64_MAX / 8 / d)
		return -1;
	return s * (size - 1) + op + (k - 1) * d + 1 - p0 - p1;
}

/* conv2d_transpose and conv3d_transpose */
const char *
shape_conv_transpose(Graph *g, const Node *n, Type *out)
{
	const Type *x = in(g, n, 0), *w = in(g, n, 1), *b = in(g, n, 2);
	const char *err;
	int nsp = nspatial(n), r = nsp + 2;
	if (x->rank != r || w->rank != r)
		return ERR("%s: input and weights must have rank %d (%s), got %s "
		           "and %s", name(n), r, r == 4 ? "NCHW, CO'HW" :
		           "NCDHW, CO'DHW", tstr(g, x), tstr(g, w));
	int64_t group = named(g, n, "group")->i;
	if (group < 1)
		return ERR("%s: group must be at least 1, got %lld", name(n),
		           (long long)group);
	if (x->dim[1] % group)
		return ERR("%s: group %lld must divide the input channels (%lld)",
		           name(n), (long long)group, (long long)x->dim[1]);
	if (w->dim[0] != x->dim[1])
		return ERR("%s: weights %s expect %lld input channels, input %s "
		           "has %lld", name(n), tstr(g, w), (long long)w->dim[0],
		           tstr(g, x), (long long)x->dim[1]);
	int64_t oc = w->dim[1] * group;
	if (b && (b->rank != 1 || b->dim[0] != oc))
		return ERR("%s: bias must be [%lld], got %s", name(n),
		           (long long)oc, tstr(g, b));
	if ((err = check_ints(g, n, op_attr_lookup(n->op, "strides"), nsp, 1)) ||
	    (err = check_ints(g, n, op_attr_lookup(n->op, "pads"), 2 * nsp, 0)) ||
	    (err = check_ints(g, n, op_attr_lookup(n->op, "dilations"), nsp, 1)) ||
	    (err = check_ints(g, n, op_attr_lookup(n->op, "output_padding"), nsp,
	                      0)))
		return err;
	int64_t *s = named(g, n, "strides")->ints, *p = named(g, n, "pads")->ints;
	int64_t *d = named(g, n, "dilations")->ints;
	int64_t *op = named(g, n, "output_padding")->ints;
	*out = (Type){.dtype = x->dtype, .rank = r, .dim = {x->dim[0], oc}};
	for (int i = 0; i < nsp; i++) {
		out->dim[2 + i] = unwindow(x->dim[2 + i], w->dim[2 + i], s[i], p[i],
		                           p[nsp + i], d[i], op[i]);
		if (out->dim[2 + i] < 1)
			return ERR("%s: the output for input %s and weights %s would "
			           "be empty or too large", name(n), tstr(g, x),
			           tstr(g, w));
	}
	return NULL;
}

/* ---- data movement, index and reduction ops for ONNX ---------------- */

/* Multiplies *total by d, or returns false when the bytes of a tensor
 * would no longer fit an int64 (the bound type_bytes relies on). */
static bool
grow(int64_t *total, int64_t d)
{
	if (d < 1 || *total > INT64_MAX / 8 / d)
		return false;
	*total *= d;
	return true;
}

const char *
shape_expand(Graph *g, const Node *n, Type *out)
{
	const Type *x = in(g, n, 0);
	Attr *a = ir_attr(g, n, AT_EXPAND_SHAPE);
	if (a->n > IR_MAXRANK)
		return ERR("expand: shape has %d dims, above the maximum %d", a->n,
		           IR_MAXRANK);
	Type s = {.dtype = x->dtype, .rank = a->n};
	for (int d = 0; d < a->n; d++) {
		if (a->ints[d] < 1)
			return ERR("expand: dimension %lld in shape is not positive",
			           (long long)a->ints[d]);
		s.dim[d] = a->ints[d];
	}
	if (!shape_broadcast(x, &s, out))
		return ERR("expand: %s does not broadcast to shape %s", tstr(g, x),
		           tstr(g, &s));
	int64_t total = 1;
	for (int d = 0; d < out->rank; d++)
		if (!grow(&total, out->dim[d]))
			return ERR("expand: the result is too large");
	return NULL;
}

const char *
shape_tile(Graph *g, const Node *n, Type *out)
{
	const Type *x = in(g, n, 0);
	Attr *a = ir_attr(g, n, AT_TILE_REPEATS);
	if (a->n != x->rank)
		return ERR("tile: 'repeats' needs %d values (one per dim of %s), "
		           "got %d", x->rank, tstr(g, x), a->n);
	*out = *x;
	int64_t total = 1;
	for (int d = 0; d < x->rank; d++) {
		if (a->ints[d] < 1)
			return ERR("tile: repeats must be at least 1, got %lld",
			           (long long)a->ints[d]);
		if (!grow(&out->dim[d], a->ints[d]) || !grow(&total, out->dim[d]))
			return ERR("tile: the result is too large");
	}
	return NULL;
}

/* argmax and argmin: i64, the axis kept as 1 or dropped. */
const char *
shape_argext(Graph *g, const Node *n, Type *out)
{
	const Type *x = in(g, n, 0);
	bool max = n->op == OP_ARGMAX;
	int id = max ? AT_ARGMAX_AXIS : AT_ARGMIN_AXIS;
	int keep = max ? AT_ARGMAX_KEEPDIMS : AT_ARGMIN_KEEPDIMS;
	int last = max ? AT_ARGMAX_SELECT_LAST_INDEX : AT_ARGMIN_SELECT_LAST_INDEX;
	int axis = axis_of(ir_attr(g, n, id)->i, x->rank);
	const char *err;
	if (axis < 0)
		return ERR("%s: axis %lld is out of range for %s", name(n),
		           (long long)ir_attr(g, n, id)->i, tstr(g, x));
	if ((err = check_flag(g, n, keep)) || (err = check_flag(g, n, last)))
		return err;
	*out = (Type){.dtype = DT_I64};
	for (int d = 0; d < x->rank; d++)
		if (d != axis)
			out->dim[out->rank++] = x->dim[d];
		else if (ir_attr(g, n, keep)->i)
			out->dim[out->rank++] = 1;
	return NULL;
}

const char *
shape_cumsum(Graph *g, const Node *n, Type *out)
{
	const Type *x = in(g, n, 0);
	int64_t a = ir_attr(g, n, AT_CUMSUM_AXIS)->i;
	const char *err;
	if (axis_of(a, x->rank) < 0)
		return ERR("cumsum: axis %lld is out of range for %s", (long long)a,
		           tstr(g, x));
	if ((err = check_flag(g, n, AT_CUMSUM_EXCLUSIVE)) ||
	    (err = check_flag(g, n, AT_CUMSUM_REVERSE)))
		return err;
	*out = *x;
	return NULL;
}

const char *
shape_trilu(Graph *g, const Node *n, Type *out)
{
	const Type *x = in(g, n, 0);
	const char *err = check_flag(g, n, AT_TRILU_UPPER);
	if (err)
		return err;
	if (x->rank < 2)
		return ERR("trilu: input must have rank >= 2, got %s", tstr(g, x));
	*out = *x;
	return NULL;
}

const char *
shape_gather_elements(Graph *g, const Node *n, Type *out)
{
	const Type *x = in(g, n, 0), *idx = in(g, n, 1);
	int64_t a = ir_attr(g, n, AT_GATHER_ELEMENTS_AXIS)->i;
	int axis = axis_of(a, x->rank);
	if (axis < 0)
		return ERR("gather_elements: axis %lld is out of range for %s",
		           (long long)a, tstr(g, x));
	if (idx->rank != x->rank)
		return ERR("gather_elements: indices %s must have the rank of the "
		           "data %s", tstr(g, idx), tstr(g, x));
	for (int d = 0; d < x->rank; d++)
		if (d != axis && idx->dim[d] > x->dim[d])
			return ERR("gather_elements: indices %s are larger than the "
			           "data %s in dim %d", tstr(g, idx), tstr(g, x), d);
	*out = (Type){.dtype = x->dtype, .rank = idx->rank};
	memcpy(out->dim, idx->dim, sizeof out->dim);
	return check_indices(g, n, &g->val[n->in[1]], x->dim[axis]);
}

const char *
shape_hardmax(Graph *g, const Node *n, Type *out)
{
	const Type *x = in(g, n, 0);
	int64_t a = ir_attr(g, n, AT_HARDMAX_AXIS)->i;
	if (axis_of(a, x->rank) < 0)
		return ERR("hardmax: axis %lld is out of range for %s", (long long)a,
		           tstr(g, x));
	*out = *x;
	return NULL;
}

const char *
shape_lrn(Graph *g, const Node *n, Type *out)
{
	const Type *x = in(g, n, 0);
	int64_t size = ir_attr(g, n, AT_LRN_SIZE)->i;
	if (x->rank < 2)
		return ERR("lrn: input must have rank >= 2 (N, C, ...), got %s",
		           tstr(g, x));
	if (size < 1 || size > INT32_MAX)
		return ERR("lrn: size must be at least 1, got %lld", (long long)size);
	*out = *x;
	return NULL;
}

const char *
shape_instance_norm(Graph *g, const Node *n, Type *out)
{
	const Type *x = in(g, n, 0);
	if (x->rank < 3)
		return ERR("instance_norm: input must have rank >= 3 (N, C, D, ...), "
		           "got %s", tstr(g, x));
	for (int i = 1; i < 3; i++) {
		const Type *t = in(g, n, i);
		if (t->rank != 1 || t->dim[0] != x->dim[1])
			return ERR("instance_norm: %s must be [%lld] (the channels of "
			           "%s), got %s", i == 1 ? "scale" : "bias",
			           (long long)x->dim[1], tstr(g, x), tstr(g, t));
	}
	*out = *x;
	return NULL;
}

/* Names of depth_to_space's modes, in the order cgen expects. */
const char *const shape_d2s_mode[] = {"DCR", "CRD", NULL};

/* The blocksize of a depth_to_space or space_to_depth node on NCHW x. */
static const char *
check_block(Graph *g, const Node *n, int id, int64_t *b)
{
	const Type *x = in(g, n, 0);
	*b = ir_attr(g, n, id)->i;
	if (x->rank != 4)
		return ERR("%s: input must have rank 4 (NCHW), got %s", name(n),
		           tstr(g, x));
	if (*b < 1 || *b > INT32_MAX)
		return ERR("%s: blocksize must be at least 1, got %lld", name(n),
		           (long long)*b);
	return NULL;
}

const char *
shape_depth_to_space(Graph *g, const Node *n, Type *out)
{
	const Type *x = in(g, n, 0);
	int64_t b;
	const char *err;
	if ((err = check_choice(g, n, AT_DEPTH_TO_SPACE_MODE, shape_d2s_mode)) ||
	    (err = check_block(g, n, AT_DEPTH_TO_SPACE_BLOCKSIZE, &b)))
		return err;
	if (x->dim[1] % (b * b))
		return ERR("depth_to_space: the channels of %s do not divide by "
		           "blocksize^2 = %lld", tstr(g, x), (long long)(b * b));
	*out = (Type){.dtype = x->dtype, .rank = 4,
	              .dim = {x->dim[0], x->dim[1] / (b * b), x->dim[2] * b,
	                      x->dim[3] * b}};
	return NULL;
}

const char *
shape_space_to_depth(Graph *g, const Node *n, Type *out)
{
	const Type *x = in(g, n, 0);
	int64_t b;
	const char *err = check_block(g, n, AT_SPACE_TO_DEPTH_BLOCKSIZE, &b);
	if (err)
		return err;
	if (x->dim[2] % b || x->dim[3] % b)
		return ERR("space_to_depth: the height and width of %s do not "
		           "divide by blocksize %lld", tstr(g, x), (long long)b);
	*out = (Type){.dtype = x->dtype, .rank = 4,
	              .dim = {x->dim[0], x->dim[1] * b * b, x->dim[2] / b,
	                      x->dim[3] / b}};
	return NULL;
}

/* ---- index ops: gather_nd, scatter, topk */

/* Names of the scatter reductions, in kiln_scatter_reduction's order. */
const char *const shape_scatter_reduction[] = {"none", "add", "mul", NULL};

/* Checks the data of a constant index operand v holding tuples of m
 * indices, entry j of each against dim[j]. */
static const char *
check_tuples(Graph *g, const Node *n, const Value *v, const int64_t *dim,
             int m)
{
	if (v->kind != VK_CONST || !v->data)
		return NULL;
	for (int64_t i = 0; i < type_numel(&v->type); i++) {
		int64_t k, len = dim[i % m];
		int32_t k32;
		if (v->type.dtype == DT_I64) {
			memcpy(&k, (char *)v->data + 8 * i, 8);
		} else {
			memcpy(&k32, (char *)v->data + 4 * i, 4);
			k = k32;
		}
		if (k < -len || k >= len)
			return ERR("%s: index %lld is out of range for a dim of %lld",
			           name(n), (long long)k, (long long)len);
	}
	return NULL;
}

const char *
shape_gather_nd(Graph *g, const Node *n, Type *out)
{
	const Type *x = in(g, n, 0), *idx = in(g, n, 1);
	int64_t b = ir_attr(g, n, AT_GATHER_ND_BATCH_DIMS)->i;
	if (idx->rank < 1)
		return ERR("gather_nd: indices must have rank >= 1, got %s",
		           tstr(g, idx));
	if (b < 0 || b >= idx->rank || b >= x->rank)
		return ERR("gather_nd: batch_dims %lld must be at least 0 and below "
		           "the ranks of %s and %s", (long long)b, tstr(g, x),
		           tstr(g, idx));
	int64_t m = idx->dim[idx->rank - 1];
	if (m < 1 || m > x->rank - b)
		return ERR("gather_nd: index tuples of %lld entries do not fit %s "
		           "after %lld batch dims", (long long)m, tstr(g, x),
		           (long long)b);
	for (int d = 0; d < b; d++)
		if (x->dim[d] != idx->dim[d])
			return ERR("gather_nd: batch dim %d differs between %s and %s", d,
			           tstr(g, x), tstr(g, idx));
	if (idx->rank - 1 + x->rank - b - m > IR_MAXRANK)
		return ERR("gather_nd: the result would have rank %lld, above the "
		           "maximum %d", (long long)(idx->rank - 1 + x->rank - b - m),
		           IR_MAXRANK);
	*out = (Type){.dtype = x->dtype, .rank = idx->rank - 1};
	memcpy(out->dim, idx->dim, (idx->rank - 1) * sizeof *out->dim);
	for (int d = (int)(b + m); d < x->rank; d++)
		out->dim[out->rank++] = x->dim[d];
	return check_tuples(g, n, &g->val[n->in[1]], x->dim + b, (int)m);
}

/* scatter_nd and scatter_elements: the reduction, which needs a number
 * unless it is "none". */
static const char *
check_reduction(Graph *g, const Node *n, int id, const Type *x)
{
	const char *err = check_choice(g, n, id, shape_scatter_reduction);
	if (err)
		return err;
	if (x->dtype == DT_BOOL && strcmp(ir_attr(g, n, id)->s, "none") != 0)
		return ERR("%s: reduction \"%s\" needs a numeric dtype, not %s",
		           name(n), ir_attr(g, n, id)->s, tstr(g, x));
	return NULL;
}

const char *
shape_scatter_nd(Graph *g, const Node *n, Type *out)
{
	const Type *x = in(g, n, 0), *idx = in(g, n, 1), *u = in(g, n, 2);
	const char *err = check_reduction(g, n, AT_SCATTER_ND_REDUCTION, x);
	if (err)
		return err;
	if (idx->rank < 1)
		return ERR("scatter_nd: indices must have rank >= 1, got %s",
		           tstr(g, idx));
	int64_t m = idx->dim[idx->rank - 1];
	if (m < 1 || m > x->rank)
		return ERR("scatter_nd: index tuples of %lld entries do not fit %s",
		           (long long)m, tstr(g, x));
	/* the updates' shape: idx.shape[:-1] + x.shape[m:] */
	Type want = {.dtype = x->dtype, .rank = idx->rank - 1};
	memcpy(want.dim, idx->dim, (idx->rank - 1) * sizeof *want.dim);
	if (want.rank + x->rank - m > IR_MAXRANK)
		return ERR("scatter_nd: the updates would need rank above %d",
		           IR_MAXRANK);
	for (int d = (int)m; d < x->rank; d++)
		want.dim[want.rank++] = x->dim[d];
	if (!type_eq(&want, u))
		return ERR("scatter_nd: updates must be %s for data %s and indices "
		           "%s, got %s", tstr(g, &want), tstr(g, x), tstr(g, idx),
		           tstr(g, u));
	*out = *x;
	return check_tuples(g, n, &g->val[n->in[1]], x->dim, (int)m);
}

const char *
shape_scatter_elements(Graph *g, const Node *n, Type *out)
{
	const Type *x = in(g, n, 0), *idx = in(g, n, 1), *u = in(g, n, 2);
	int64_t a = ir_attr(g, n, AT_SCATTER_ELEMENTS_AXIS)->i;
	int axis = axis_of(a, x->rank);
	const char *err = check_reduction(g, n, AT_SCATTER_ELEMENTS_REDUCTION, x);
	if (err)
		return err;
	if (axis < 0)
		return ERR("scatter_elements: axis %lld is out of range for %s",
		           (long long)a, tstr(g, x));
	if (idx->rank != x->rank)
		return ERR("scatter_elements: indices %s must have the rank of the "
		           "data %s", tstr(g, idx), tstr(g, x));
	for (int d = 0; d < x->rank; d++)
		if (d != axis && idx->dim[d] > x->dim[d])
			return ERR("scatter_elements: indices %s are larger than the "
			           "data %s in dim %d", tstr(g, idx), tstr(g, x), d);
	if (u->rank != idx->rank ||
	    memcmp(u->dim, idx->dim, idx->rank * sizeof *u->dim) != 0)
		return ERR("scatter_elements: updates %s must have the shape of the "
		           "indices %s", tstr(g, u), tstr(g, idx));
	*out = *x;
	return check_indices(g, n, &g->val[n->in[1]], x->dim[axis]);
}

/* topk_values and topk_indices: x with k along the axis. */
const char *
shape_topk(Graph *g, const Node *n, Type *out)
{
	const Type *x = in(g, n, 0);
	bool val = n->op == OP_TOPK_VALUES;
	int64_t k = ir_attr(g, n, val ? AT_TOPK_VALUES_K : AT_TOPK_INDICES_K)->i;
	int64_t a = ir_attr(g, n, val ? AT_TOPK_VALUES_AXIS :
	                                AT_TOPK_INDICES_AXIS)->i;
	int axis = axis_of(a, x->rank);
	const char *err;
	if ((err = check_flag(g, n, val ? AT_TOPK_VALUES_LARGEST :
	                                  AT_TOPK_INDICES_LARGEST)) ||
	    (err = check_flag(g, n, val ? AT_TOPK_VALUES_SORTED :
	                                  AT_TOPK_INDICES_SORTED)))
		return err;
	if (axis < 0)
		return ERR("%s: axis %lld is out of range for %s", name(n),
		           (long long)a, tstr(g, x));
	if (k < 1 || k > x->dim[axis])
		return ERR("%s: k must be from 1 to %lld (the dim of %s along axis "
		           "%d), got %lld", name(n), (long long)x->dim[axis],
		           tstr(g, x), axis, (long long)k);
	*out = *x;
	out->dim[axis] = k;
	if (!val)
		out->dtype = DT_I64;
	return NULL;
}

/* ---- training: gradients, dropout and losses ------------------------ */

/* relu_grad: every operand has the first one's type (no broadcasting). */
const char *
shape_same_all(Graph *g, const Node *n, Type *out)
{
	const Type *a = in(g, n, 0);
	for (int i = 1; i < n->nin; i++)
		if (!type_eq(in(g, n, i), a))
			return ERR("%s: operands must have one shape, got %s and %s",
			           name(n), tstr(g, a), tstr(g, in(g, n, i)));
	*out = *a;
	return NULL;
}

/* A gradient op's dy against want, the output of its forward op (fwd) for
 * input x with the node's kernel and other attributes. */
static const char *
check_dy(Graph *g, const Node *n, const Type *dy, const Type *want,
         const Type *x, const char *fwd)
{
	if (type_eq(dy, want))
		return NULL;
	return ERR("%s: dy %s must be %s, the output of %s for input %s with "
	           "kernel %s and these attributes", name(n), tstr(g, dy),
	           tstr(g, want), fwd, tstr(g, x),
	           dims_str(g, named(g, n, "kernel")->ints, nspatial(n)));
}

/* conv2d_grad_w(x, dy) and conv3d_grad_w: the weights' shape [O, C/G,
 * KH, KW] or [O, C/G, KD, KH, KW]. */
const char *
shape_conv_grad_w(Graph *g, const Node *n, Type *out)
{
	const Type *x = in(g, n, 0), *dy = in(g, n, 1);
	int nsp = nspatial(n), r = nsp + 2;
	const int64_t *k = named(g, n, "kernel")->ints;
	int64_t group = named(g, n, "group")->i, total = 1;
	const char *err;
	if (x->rank != r || dy->rank != r)
		return ERR("%s: input and dy must have rank %d (%s), got %s and %s",
		           name(n), r, r == 4 ? "NCHW" : "NCDHW", tstr(g, x),
		           tstr(g, dy));
	if ((err = check_ints(g, n, op_attr_lookup(n->op, "kernel"), nsp, 1)))
		return err;
	if (group < 1 || x->dim[1] % group || dy->dim[1] % group)
		return ERR("%s: group %lld must divide the channels of input %s "
		           "and dy %s", name(n), (long long)group, tstr(g, x),
		           tstr(g, dy));
	Type y = {.dtype = x->dtype, .rank = r, .dim = {x->dim[0], dy->dim[1]}};
	if ((err = spatial(g, n, k, false, &y)) ||
	    (err = check_dy(g, n, dy, &y, x, r == 4 ? "conv2d" : "conv3d")))
		return err;
	*out = (Type){.dtype = x->dtype, .rank = r,
	              .dim = {dy->dim[1], x->dim[1] / group}};
	memcpy(out->dim + 2, k, nsp * sizeof *k);
	for (int d = 0; d < r; d++)
		if (!grow(&total, out->dim[d]))
			return ERR("%s: the result is too large", name(n));
	return NULL;
}

/* The pool gradients: checks the attributes and that dy is the output of
 * the forward pool (fwd) for input x; dx has x's type. */
static const char *
pool_grad(Graph *g, const Node *n, const Type *dy, const Type *x,
          const char *fwd, Type *out)
{
	int r = nspatial(n) + 2;
	const char *err;
	if (x->rank != r)
		return ERR("%s: input must have rank %d (%s), got %s", name(n), r,
		           r == 4 ? "NCHW" : "NCDHW", tstr(g, x));
	int cip = op_attr_lookup(n->op, "count_include_pad");
	if ((err = check_ints(g, n, op_attr_lookup(n->op, "kernel"), r - 2, 1)) ||
	    (err = check_flag(g, n, op_attr_lookup(n->op, "ceil_mode"))) ||
	    (cip >= 0 && (err = check_flag(g, n, cip))))
		return err;
	Type y = {.dtype = x->dtype, .rank = r, .dim = {x->dim[0], x->dim[1]}};
	if ((err = spatial_of(g, n, x, named(g, n, "kernel")->ints,
	                      named(g, n, "ceil_mode")->i, &y)) ||
	    (err = check_dy(g, n, dy, &y, x, fwd)))
		return err;
	*out = *x;
	return NULL;
}

/* maxpool2d_grad(dy, x) and maxpool3d_grad: x's shape. */
const char *
shape_maxpool_grad(Graph *g, const Node *n, Type *out)
{
	return pool_grad(g, n, in(g, n, 0), in(g, n, 1),
	                 nspatial(n) == 2 ? "maxpool2d" : "maxpool3d", out);
}

/* avgpool2d_grad(dy) and avgpool3d_grad: [N, C] of dy, then input_size. */
const char *
shape_avgpool_grad(Graph *g, const Node *n, Type *out)
{
	const Type *dy = in(g, n, 0);
	int nsp = nspatial(n), id = op_attr_lookup(n->op, "input_size");
	const char *err;
	if (dy->rank != nsp + 2)
		return ERR("%s: dy must have rank %d (%s), got %s", name(n), nsp + 2,
		           nsp == 2 ? "NCHW" : "NCDHW", tstr(g, dy));
	if ((err = check_ints(g, n, id, nsp, 1)))
		return err;
	Type x = {.dtype = dy->dtype, .rank = nsp + 2,
	          .dim = {dy->dim[0], dy->dim[1]}};
	memcpy(x.dim + 2, ir_attr(g, n, id)->ints, nsp * sizeof *x.dim);
	int64_t total = 1;
	for (int d = 0; d < x.rank; d++)
		if (!grow(&total, x.dim[d]))
			return ERR("%s: the result is too large", name(n));
	return pool_grad(g, n, dy, &x, nsp == 2 ? "avgpool2d" : "avgpool3d",
	                 out);
}

/* dropout_train(x, t): x's shape; t is the step, a scalar. */
const char *
shape_dropout_train(Graph *g, const Node *n, Type *out)
{
	const Type *t = in(g, n, 1);
	double r = ir_attr(g, n, AT_DROPOUT_TRAIN_RATE)->f;
	/* the kernel scales by 1/(1 - rate) in f32, so a rate that rounds to
	 * 1 there is out of range too */
	if (!(r >= 0 && r < 1 && (float)r < 1))
		return ERR("dropout_train: rate must be at least 0 and below 1, "
		           "got %g", r);
	if (t->rank != 0)
		return ERR("dropout_train: the step t must be a scalar, got %s",
		           tstr(g, t));
	return shape_same(g, n, out);
}

/* softmax_cross_entropy(z, labels): f32[];  softmax_cross_entropy_grad(z,
 * labels, dloss): z's type. */
const char *
shape_xent(Graph *g, const Node *n, Type *out)
{
	const Type *z = in(g, n, 0), *lab = in(g, n, 1), *dl = in(g, n, 2);
	bool grad = n->op == OP_SOFTMAX_CROSS_ENTROPY_GRAD;
	double ls = ir_attr(g, n, grad ?
	                    AT_SOFTMAX_CROSS_ENTROPY_GRAD_LABEL_SMOOTHING :
	                    AT_SOFTMAX_CROSS_ENTROPY_LABEL_SMOOTHING)->f;
	if (z->rank != 2)
		return ERR("%s: logits must have rank 2 ([N, C]), got %s", name(n),
		           tstr(g, z));
	if (lab->rank != 1 || lab->dim[0] != z->dim[0])
		return ERR("%s: labels must be [%lld] (a class per row of logits "
		           "%s), got %s", name(n), (long long)z->dim[0], tstr(g, z),
		           tstr(g, lab));
	if (!(ls >= 0 && ls <= 1))
		return ERR("%s: label_smoothing must be from 0 to 1, got %g",
		           name(n), ls);
	if (grad && dl->rank != 0)
		return ERR("%s: dloss must be a scalar, got %s", name(n),
		           tstr(g, dl));
	*out = grad ? *z : (Type){.dtype = z->dtype};
	return NULL;
}
