/* shape.c: shape rules, one function per rule, shared by many ops.
 *
 * A rule reads its node's operand types and attributes, checks them, and
 * sets the result type.  It returns NULL, or a message naming the op and
 * what is wrong; the caller adds the source location.  Operand dtypes were
 * already checked against the registry row by ir_infer().
 */
#include "ir.h"

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
	return NULL;
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
	return NULL;
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

/* Shared by conv2d and the pools: x is NCHW, kernel kh x kw. */
static const char *
spatial(Graph *g, const Node *n, const int ids[3], int64_t kh, int64_t kw,
        bool ceil, Type *out)
{
	const Type *x = in(g, n, 0);
	const char *err;
	if ((err = check_ints(g, n, ids[0], 2, 1)) ||
	    (err = check_ints(g, n, ids[1], 4, 0)) ||
	    (err = check_ints(g, n, ids[2], 2, 1)))
		return err;
	int64_t *s = ir_attr(g, n, ids[0])->ints, *p = ir_attr(g, n, ids[1])->ints;
	int64_t *d = ir_attr(g, n, ids[2])->ints;
	int64_t oh = window(x->dim[2], kh, s[0], p[0], p[2], d[0], ceil);
	int64_t ow = window(x->dim[3], kw, s[1], p[1], p[3], d[1], ceil);
	if (oh < 1 || ow < 1)
		return ERR("%s: window %lldx%lld does not fit input %s with its "
		           "padding", name(n), (long long)kh, (long long)kw,
		           tstr(g, x));
	out->dim[2] = oh;
	out->dim[3] = ow;
	return NULL;
}

const char *
shape_conv2d(Graph *g, const Node *n, Type *out)
{
	const Type *x = in(g, n, 0), *w = in(g, n, 1), *b = in(g, n, 2);
	if (x->rank != 4 || w->rank != 4)
		return ERR("conv2d: input and weights must have rank 4 (NCHW, "
		           "OIHW), got %s and %s", tstr(g, x), tstr(g, w));
	int64_t group = ir_attr(g, n, AT_CONV2D_GROUP)->i;
	if (group < 1 || x->dim[1] % group || w->dim[0] % group)
		return ERR("conv2d: group %lld must divide the input channels "
		           "(%lld) and output channels (%lld)", (long long)group,
		           (long long)x->dim[1], (long long)w->dim[0]);
	if (w->dim[1] * group != x->dim[1])
		return ERR("conv2d: weights %s expect %lld input channels, input "
		           "%s has %lld", tstr(g, w), (long long)(w->dim[1] * group),
		           tstr(g, x), (long long)x->dim[1]);
	if (b && (b->rank != 1 || b->dim[0] != w->dim[0]))
		return ERR("conv2d: bias must be [%lld], got %s",
		           (long long)w->dim[0], tstr(g, b));
	*out = (Type){.dtype = x->dtype, .rank = 4, .dim = {x->dim[0], w->dim[0]}};
	static const int ids[3] = {AT_CONV2D_STRIDES, AT_CONV2D_PADS,
	                           AT_CONV2D_DILATIONS};
	return spatial(g, n, ids, w->dim[2], w->dim[3], false, out);
}

const char *
shape_pool2d(Graph *g, const Node *n, Type *out)
{
	static const int maxids[4] = {AT_MAXPOOL2D_STRIDES, AT_MAXPOOL2D_PADS,
	    AT_MAXPOOL2D_DILATIONS, AT_MAXPOOL2D_KERNEL};
	static const int avgids[4] = {AT_AVGPOOL2D_STRIDES, AT_AVGPOOL2D_PADS,
	    AT_AVGPOOL2D_DILATIONS, AT_AVGPOOL2D_KERNEL};
	const int *ids = n->op == OP_MAXPOOL2D ? maxids : avgids;
	int ceil_id = n->op == OP_MAXPOOL2D ? AT_MAXPOOL2D_CEIL_MODE :
	                                      AT_AVGPOOL2D_CEIL_MODE;
	const Type *x = in(g, n, 0);
	if (x->rank != 4)
		return ERR("%s: input must have rank 4 (NCHW), got %s", name(n),
		           tstr(g, x));
	const char *err = check_ints(g, n, ids[3], 2, 1);
	if (err)
		return err;
	int64_t *k = ir_attr(g, n, ids[3])->ints;
	*out = (Type){.dtype = x->dtype, .rank = 4, .dim = {x->dim[0], x->dim[1]}};
	return spatial(g, n, ids, k[0], k[1], ir_attr(g, n, ceil_id)->i, out);
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
	int64_t axis = ir_attr(g, n, AT_SOFTMAX_AXIS)->i;
	if (axis < -x->rank || axis >= x->rank || x->rank == 0)
		return ERR("softmax: axis %lld is out of range for %s",
		           (long long)axis, tstr(g, x));
	*out = *x;
	return NULL;
}
