/* index.c: translations of the ONNX index ops (rows in onnx.def):
 * GatherND, ScatterND, ScatterElements and the deprecated Scatter, TopK,
 * OneHot and Compress.
 *
 * The first four map onto IR ops of their own (ir/ops.def, "index ops").
 * TopK's two outputs become two IR nodes, topk_values and topk_indices,
 * since a kiln node has one result.  OneHot and Compress need no kernel:
 * OneHot is a comparison of the indices against 0..depth-1 and a where,
 * and Compress, whose condition must be known at build time, is a gather
 * with the positions the condition selects.
 */
#include <string.h>
#include "onnx.h"

/* Fails on an attribute not among names (NULL-terminated), so none is
 * silently ignored. */
static void
only_attrs(const ONode *o, const char *const *names)
{
	for (size_t i = 0; i < o->p->n_attribute; i++) {
		const char *a = o->p->attribute[i]->name;
		int k = 0;
		while (names[k] && strcmp(names[k], a) != 0)
			k++;
		if (!names[k])
			diag_error(o->loc, "attribute '%s' is not supported", a);
	}
}

/* Sets STRING attribute id of node from ONNX attribute name, if given. */
static void
set_str(ONode *o, int node, int id, const char *name)
{
	const char *s = onnx_attr_str(o, name, NULL);
	Graph *g = o->m->g;
	if (s)
		ir_attr(g, &g->node[node], id)->s = s;
}

void
tr_gather_nd(ONode *o)
{
	only_attrs(o, (const char *const[]){"batch_dims", NULL});
	int in[] = {onnx_operand(o, 0), onnx_operand(o, 1)};
	int n = onnx_node(o, OP_GATHER_ND, in, 2);
	ir_set_int(o->m->g, n, AT_GATHER_ND_BATCH_DIMS,
	           onnx_attr_int(o, "batch_dims", 0));
	onnx_result(o, n, 0);
}

void
tr_scatter_nd(ONode *o)
{
	only_attrs(o, (const char *const[]){"reduction", NULL});
	int in[] = {onnx_operand(o, 0), onnx_operand(o, 1), onnx_operand(o, 2)};
	int n = onnx_node(o, OP_SCATTER_ND, in, 3);
	set_str(o, n, AT_SCATTER_ND_REDUCTION, "reduction");
	onnx_result(o, n, 0);
}

/* ScatterElements, and Scatter, its older name (no reduction). */
void
tr_scatter_elements(ONode *o)
{
	only_attrs(o, (const char *const[]){"axis", "reduction", NULL});
	int in[] = {onnx_operand(o, 0), onnx_operand(o, 1), onnx_operand(o, 2)};
	int n = onnx_node(o, OP_SCATTER_ELEMENTS, in, 3);
	ir_set_int(o->m->g, n, AT_SCATTER_ELEMENTS_AXIS,
	           onnx_attr_int(o, "axis", 0));
	set_str(o, n, AT_SCATTER_ELEMENTS_REDUCTION, "reduction");
	onnx_result(o, n, 0);
}

/* TopK: k is an attribute before opset 10, then input 1 (a constant).
 * Each output present becomes its own node. */
void
tr_topk(ONode *o)
{
	static const int ops[2] = {OP_TOPK_VALUES, OP_TOPK_INDICES};
	int64_t k;
	only_attrs(o, (const char *const[]){"axis", "k", "largest", "sorted",
	                                    NULL});
	if (o->m->opset < 10) {
		if (!onnx_attr(o, "k"))
			diag_error(o->loc, "the attribute k is required");
		k = onnx_attr_int(o, "k", 0);
	} else if (onnx_const_ints(o, 1, "k", &k, 1) != 1) {
		diag_error(o->loc, "k must hold one integer");
	}
	int x = onnx_operand(o, 0);
	for (int out = 0; out < 2 && out < (int)o->p->n_output; out++) {
		if (!*o->p->output[out])
			continue;
		int n = onnx_node(o, ops[out], &x, 1);
		int a0 = op_get(ops[out])->attr0;   /* k, axis, largest, sorted */
		ir_set_int(o->m->g, n, a0, k);
		ir_set_int(o->m->g, n, a0 + 1, onnx_attr_int(o, "axis", -1));
		ir_set_int(o->m->g, n, a0 + 2, onnx_attr_int(o, "largest", 1));
		ir_set_int(o->m->g, n, a0 + 3, onnx_attr_int(o, "sorted", 1));
		onnx_result(o, n, out);
	}
}

/* values[k] of a [2] tensor, as a [1] slice (broadcasts like a scalar). */
static int
pick(ONode *o, int values, int64_t k)
{
	int n = onnx_node(o, OP_SLICE, &values, 1);
	ir_set_ints(o->m->g, n, AT_SLICE_STARTS, &k, 1);
	ir_set_ints(o->m->g, n, AT_SLICE_ENDS, (int64_t[]){k + 1}, 1);
	return onnx_result(o, n, -1);
}

/* OneHot(indices, depth, values = [off, on]): y has a new dim of depth at
 * axis, on where its position equals the index (negative indices count
 * from depth; fractional ones truncate, as ONNX casts them), else off. */
void
tr_onehot(ONode *o)
{
	Graph *g = o->m->g;
	only_attrs(o, (const char *const[]){"axis", NULL});
	int idx = onnx_operand(o, 0), values = onnx_operand(o, 2);
	Type it = *onnx_type(o, idx);
	double dd = onnx_const_number(o, 1, "depth");
	int64_t depth = (int64_t)dd;
	if (!(dd >= 1))
		diag_error(o->loc, "depth must be at least 1, got %g", dd);
	if (dd > ONNX_MAXFOLD)      /* 0..depth-1 is a constant made here */
		diag_error(o->loc, "depth %.0f is more than the %d kiln allows",
		           dd, ONNX_MAXFOLD);
	if (it.rank + 1 > IR_MAXRANK)
		diag_error(o->loc, "the result would have rank above %d", IR_MAXRANK);
	const Type *vt = onnx_type(o, values);
	if (vt->rank != 1 || vt->dim[0] != 2)
		diag_error(o->loc, "values must be [off, on], not %s",
		           type_str(o->m->a, vt));
	int64_t a = onnx_attr_int(o, "axis", -1);
	if (a < -(it.rank + 1) || a > it.rank)
		diag_error(o->loc, "axis %lld is out of range for rank %d",
		           (long long)a, it.rank + 1);
	int axis = (int)(a < 0 ? a + it.rank + 1 : a);

	/* i64 indices in [0, depth) where valid */
	if (it.dtype != DT_I64) {
		int n = onnx_node(o, OP_CAST, &idx, 1);
		ir_set_int(g, n, AT_CAST_TO, DT_I64);
		idx = onnx_result(o, n, -1);
	}
	int zero = onnx_scalar(o, DT_I64, 0), dep = onnx_scalar(o, DT_I64, 0);
	*(int64_t *)g->val[dep].data = depth;
	int neg = onnx_binary(o, OP_LESS, idx, zero, -1);
	int wrapped = onnx_binary(o, OP_ADD, idx, dep, -1);
	int n = onnx_node(o, OP_WHERE, (int[]){neg, wrapped, idx}, 3);
	idx = onnx_result(o, n, -1);

	/* indices with a 1 at axis against 0..depth-1 along axis */
	int64_t dim[IR_MAXRANK];
	for (int d = 0, s = 0; d <= it.rank; d++)
		dim[d] = d == axis ? 1 : it.dim[s++];
	idx = onnx_reshape(o, idx, dim, it.rank + 1, -1);
	Type rt = {.dtype = DT_I64, .rank = it.rank + 1};
	for (int d = 0; d <= it.rank; d++)
		rt.dim[d] = d == axis ? depth : 1;
	int64_t *r = arena_alloc(o->m->a, depth * sizeof *r);
	for (int64_t k = 0; k < depth; k++)
		r[k] = k;
	int range = onnx_const(o->m, "range", rt, r, o->loc);
	int hit = onnx_binary(o, OP_EQUAL, idx, range, -1);
	int in[] = {hit, pick(o, values, 1), pick(o, values, 0)};
	onnx_result(o, onnx_node(o, OP_WHERE, in, 3), 0);
}

/* Compress(x, condition): the slices along axis (of x flattened when no
 * axis is given) where the condition, known at build time, is true. */
void
tr_compress(ONode *o)
{
	only_attrs(o, (const char *const[]){"axis", NULL});
	int x = onnx_operand(o, 0);
	Type xt = *onnx_type(o, x);
	const uint8_t *c = onnx_const_data(o, 1, "the condition");
	const Type *ct = onnx_type(o, o->in[1]);
	if (ct->dtype != DT_BOOL || ct->rank != 1)
		diag_error(o->loc, "the condition must be a 1-D bool tensor, not %s",
		           type_str(o->m->a, ct));
	int axis = 0;
	if (onnx_attr(o, "axis")) {
		int64_t a = onnx_attr_int(o, "axis", 0);
		if (a < -xt.rank || a >= xt.rank)
			diag_error(o->loc, "axis %lld is out of range for rank %d",
			           (long long)a, xt.rank);
		axis = (int)(a < 0 ? a + xt.rank : a);
	} else {
		int64_t numel = type_numel(&xt);
		x = onnx_reshape(o, x, &numel, 1, -1);
		xt = *onnx_type(o, x);
	}
	int64_t len = xt.dim[axis], count = 0;
	int64_t *pos = arena_alloc(o->m->a, (ct->dim[0] + 1) * sizeof *pos);
	for (int64_t i = 0; i < ct->dim[0]; i++) {
		if (!c[i])
			continue;
		if (i >= len)
			diag_error(o->loc, "the condition selects position %lld, past "
			           "the %lld of the axis", (long long)i, (long long)len);
		pos[count++] = i;
	}
	if (count == 0)
		diag_error(o->loc, "the condition selects nothing, and kiln has no "
		           "empty tensors");
	Type pt = {.dtype = DT_I64, .rank = 1, .dim = {count}};
	int idx = onnx_const(o->m, "positions", pt, pos, o->loc);
	int n = onnx_node(o, OP_GATHER, (int[]){x, idx}, 2);
	ir_set_int(o->m->g, n, AT_GATHER_AXIS, axis);
	onnx_result(o, n, 0);
}
