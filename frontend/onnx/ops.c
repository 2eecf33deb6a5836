/* ops.c: one translation per ONNX op type (the rows are in onnx.def).
 *
 * A translation reads the node's attributes and its build-time operands
 * (shapes, axes, pads given as constant inputs in newer opsets become IR
 * attributes), adds IR nodes, and binds each ONNX output name to a value.
 * Where kiln has no single op, a short sequence of IR ops does the job
 * (PRelu, ReduceL2, 1-D convolutions lifted to 2-D).  The opset the model
 * imports decides between an op's old and new forms.
 */
#include <math.h>
#include <string.h>
#include "onnx.h"

/* ---- attributes ---- */

const Onnx__AttributeProto *
onnx_attr(const ONode *o, const char *name)
{
	for (size_t i = 0; i < o->p->n_attribute; i++)
		if (strcmp(o->p->attribute[i]->name, name) == 0)
			return o->p->attribute[i];
	return NULL;
}

int64_t
onnx_attr_int(const ONode *o, const char *name, int64_t def)
{
	const Onnx__AttributeProto *a = onnx_attr(o, name);
	return a ? a->i : def;
}

float
onnx_attr_float(const ONode *o, const char *name, float def)
{
	const Onnx__AttributeProto *a = onnx_attr(o, name);
	return a ? a->f : def;
}

const char *
onnx_attr_str(const ONode *o, const char *name, const char *def)
{
	const Onnx__AttributeProto *a = onnx_attr(o, name);
	if (!a)
		return def;
	return arena_strndup(o->m->a, (const char *)a->s.data, a->s.len);
}

/* INTS attribute name into v (at most max); returns the count, or -1
 * when absent. */
int
onnx_attr_ints(const ONode *o, const char *name, int64_t *v, int max)
{
	const Onnx__AttributeProto *a = onnx_attr(o, name);
	if (!a)
		return -1;
	if ((int)a->n_ints > max)
		diag_error(o->loc, "attribute %s has %zu values, at most %d are "
		           "supported", name, a->n_ints, max);
	memcpy(v, a->ints, a->n_ints * sizeof *v);
	return (int)a->n_ints;
}

/* ---- operands ---- */

Type *
onnx_type(const ONode *o, int v)
{
	return &o->m->g->val[v].type;
}

int
onnx_operand(const ONode *o, int i)
{
	if (i >= o->nin || o->in[i] < 0)
		diag_error(o->loc, "input %d is required", i);
	return o->in[i];
}

/* The data of operand i, which must be known at build time. */
const void *
onnx_const_data(ONode *o, int i, const char *what)
{
	int v = onnx_operand(o, i);
	Value *val = &o->m->g->val[v];
	if (!val->data && val->kind == VK_INPUT)
		onnx_freeze(o->m, v);
	if (!val->data)
		diag_error(o->loc, "%s (input %d, '%s') must be a constant: kiln "
		           "compiles for static shapes", what, i, val->name);
	if (v < o->m->nbaked)
		o->m->baked[v] = true;
	return val->data;
}

/* Integer operand i (i64 or i32, rank <= 1) into v; returns the count. */
int
onnx_const_ints(ONode *o, int i, const char *what, int64_t *v, int max)
{
	const void *d = onnx_const_data(o, i, what);
	const Type *t = onnx_type(o, o->in[i]);
	int64_t n = type_numel(t);
	if (t->rank > 1 || n > max || (t->dtype != DT_I64 && t->dtype != DT_I32))
		diag_error(o->loc, "%s must be a list of at most %d integers, not "
		           "%s", what, max, type_str(o->m->a, t));
	for (int64_t k = 0; k < n; k++)
		v[k] = t->dtype == DT_I64 ? ((const int64_t *)d)[k] :
		                            ((const int32_t *)d)[k];
	return (int)n;
}

/* Float operand i (f32 or f64, rank <= 1) into v; returns the count. */
int
onnx_const_floats(ONode *o, int i, const char *what, double *v, int max)
{
	const void *d = onnx_const_data(o, i, what);
	const Type *t = onnx_type(o, o->in[i]);
	int64_t n = type_numel(t);
	if (t->rank > 1 || n > max || (t->dtype != DT_F32 && t->dtype != DT_F64))
		diag_error(o->loc, "%s must be a list of at most %d floats, not %s",
		           what, max, type_str(o->m->a, t));
	for (int64_t k = 0; k < n; k++)
		v[k] = t->dtype == DT_F32 ? ((const float *)d)[k] :
		                            ((const double *)d)[k];
	return (int)n;
}

/* ---- building IR ---- */

int
onnx_node(ONode *o, int op, const int *in, int nin)
{
	return ir_add_node(o->m->g, op, o->loc, in, nin);
}

/* The result of node: named after ONNX output k (k < 0: a fresh temp),
 * typed by its shape rule, and bound. */
int
onnx_result(ONode *o, int node, int k)
{
	Graph *g = o->m->g;
	const char *name = NULL;
	if (k >= 0 && (size_t)k >= o->p->n_output)
		diag_error(o->loc, "the node has %zu output%s; %s gives at least "
		           "%d", o->p->n_output, o->p->n_output == 1 ? "" : "s",
		           o->p->op_type, k + 1);
	if (k >= 0) {
		name = o->p->output[k];
		for (int i = 1; ir_find_value(g, name) >= 0; i++)
			name = arena_printf(o->m->a, "%s.%d", o->p->output[k], i);
	}
	int v = ir_add_result(g, node, name);
	const char *err = ir_infer(g, node);
	if (err)
		diag_error(o->loc, "%s", err);
	Node *n = &g->node[node];
	int x = n->in[0];
	if ((n->op == OP_RESHAPE || n->op == OP_FLATTEN) && g->val[x].data &&
	    g->val[x].kind == VK_CONST) {
		/* a copy of a constant is that constant, so shape arithmetic
		 * (Unsqueeze, Squeeze, Reshape of constants) stays foldable */
		n->dead = true;
		g->val[v].kind = VK_CONST;
		g->val[v].def = -1;
		g->val[v].data = g->val[x].data;
		g->val[v].init = INIT_DATA;
	}
	if (k >= 0)
		onnx_bind(o->m, o->p->output[k], v);
	return v;
}

int
onnx_unary(ONode *o, int op, int x, int k)
{
	return onnx_result(o, onnx_node(o, op, &x, 1), k);
}

int
onnx_binary(ONode *o, int op, int a, int b, int k)
{
	return onnx_result(o, onnx_node(o, op, (int[]){a, b}, 2), k);
}

int
onnx_reshape(ONode *o, int x, const int64_t *dim, int rank, int k)
{
	int n = onnx_node(o, OP_RESHAPE, &x, 1);
	ir_set_ints(o->m->g, n, AT_RESHAPE_SHAPE, dim, rank);
	return onnx_result(o, n, k);
}

int
onnx_scalar(ONode *o, int dtype, double x)
{
	Type t = {.dtype = dtype};
	union { float f; double d; int64_t l; int32_t i; int8_t b; uint8_t u; } v;
	switch (dtype) {
	case DT_F32: v.f = (float)x; break;
	case DT_F64: v.d = x; break;
	case DT_I64: v.l = (int64_t)x; break;
	case DT_I32: v.i = (int32_t)x; break;
	case DT_I8: v.b = (int8_t)x; break;
	default: v.u = (uint8_t)(dtype == DT_BOOL ? x != 0 : x); break;
	}
	return onnx_const(o->m, "c", t, &v, o->loc);
}

_Noreturn void
onnx_unsupported(const ONode *o, const char *what)
{
	diag_error(o->loc, "%s is not supported", what);
}

/* Outputs past the first must be absent (or unused names kiln rejects). */
static void
one_output(const ONode *o)
{
	for (size_t i = 1; i < o->p->n_output; i++)
		if (*o->p->output[i])
			diag_error(o->loc, "output %zu ('%s') is not supported", i,
			           o->p->output[i]);
}

/* Copies ONNX attributes onto IR attributes of the same name. */
static void
copy_attrs(ONode *o, int node, int op, const char *const *skip)
{
	Graph *g = o->m->g;
	for (size_t i = 0; i < o->p->n_attribute; i++) {
		const Onnx__AttributeProto *a = o->p->attribute[i];
		bool skipped = false;
		for (int k = 0; skip && skip[k]; k++)
			skipped |= strcmp(skip[k], a->name) == 0;
		if (skipped)
			continue;
		int id = op_attr_lookup(op, a->name);
		if (id < 0)
			diag_error(o->loc, "attribute '%s' is not supported", a->name);
		switch (attr_info[id].kind) {
		case AK_INT: ir_set_int(g, node, id, a->i); break;
		case AK_FLOAT: ir_set_float(g, node, id, a->f); break;
		case AK_INTS: ir_set_ints(g, node, id, a->ints, (int)a->n_ints);
			break;
		case AK_STRING:
			ir_attr(g, &g->node[node], id)->s = arena_strndup(o->m->a,
			    (const char *)a->s.data, a->s.len);
			break;
		default:
			diag_error(o->loc, "attribute '%s' is not supported", a->name);
		}
	}
}

static int
norm_axis(const ONode *o, int64_t axis, int rank)
{
	if (axis < -rank || axis >= MAX(rank, 1))
		diag_error(o->loc, "axis %lld is out of range for rank %d",
		           (long long)axis, rank);
	return (int)(axis < 0 ? axis + rank : axis);
}

/* ---- translations ---- */

/* The IR op of the row with every operand, and the ONNX attributes
 * copied onto IR attributes of the same name. */
static void
tr_simple(ONode *o)
{
	const OnnxOp *t = onnx_op_lookup(o->p->op_type);
	one_output(o);
	for (int i = 0; i < o->nin; i++)
		onnx_operand(o, i);
	int n = onnx_node(o, t->op, o->in, o->nin);
	copy_attrs(o, n, t->op, (const char *const[]){"consumed_inputs", NULL});
	onnx_result(o, n, 0);
}

static void
tr_unary(ONode *o)
{
	if (o->nin > 1)
		diag_error(o->loc, "takes one input, not %d", o->nin);
	tr_simple(o);
}

/* Cast (to: an ONNX data type) and CastLike (the second input's type). */
static void
tr_cast(ONode *o)
{
	int x = onnx_operand(o, 0), to;
	if (strcmp(o->p->op_type, "CastLike") == 0)
		to = onnx_type(o, onnx_operand(o, 1))->dtype;
	else {
		int64_t t = onnx_attr_int(o, "to", 0);
		if ((to = onnx_dtype((int)t)) < 0)
			diag_error(o->loc, "cast to %s is not supported",
			           onnx_dtype_name((int)t));
	}
	if (to == onnx_type(o, x)->dtype) {
		onnx_bind(o->m, o->p->output[0], x);
		return;
	}
	int n = onnx_node(o, OP_CAST, &x, 1);
	ir_set_int(o->m->g, n, AT_CAST_TO, to);
	onnx_result(o, n, 0);
}

/* x cast to dtype dt, when it is not already (for mixed-type ops). */
static int
cast_to(ONode *o, int x, int dt)
{
	if (onnx_type(o, x)->dtype == dt)
		return x;
	int n = onnx_node(o, OP_CAST, &x, 1);
	ir_set_int(o->m->g, n, AT_CAST_TO, dt);
	return onnx_result(o, n, -1);
}

/* Pow: the exponent may have another type than the base. */
static void
tr_pow(ONode *o)
{
	int a = onnx_operand(o, 0), b = onnx_operand(o, 1);
	int dt = onnx_type(o, a)->dtype;
	if (dt != DT_F32 && dt != DT_F64) {
		/* integer base: compute in f64, cast back */
		int y = onnx_binary(o, OP_POW, cast_to(o, a, DT_F64),
		                    cast_to(o, b, DT_F64), -1);
		int n = onnx_node(o, OP_CAST, &y, 1);
		ir_set_int(o->m->g, n, AT_CAST_TO, dt);
		onnx_result(o, n, 0);
		return;
	}
	onnx_binary(o, OP_POW, a, cast_to(o, b, dt), 0);
}

/* Expand, Tile: the shape or repeats input becomes the attribute. */
static void
tr_expand_tile(ONode *o)
{
	const OnnxOp *t = onnx_op_lookup(o->p->op_type);
	int64_t v[IR_MAXRANK];
	int n = onnx_const_ints(o, 1, t->op == OP_EXPAND ? "shape" : "repeats",
	                        v, IR_MAXRANK);
	int node = onnx_node(o, t->op, (int[]){onnx_operand(o, 0)}, 1);
	ir_set_ints(o->m->g, node, op_get(t->op)->attr0, v, n);
	onnx_result(o, node, 0);
}

static void
tr_cumsum(ONode *o)
{
	int64_t axis;
	onnx_const_ints(o, 1, "axis", &axis, 1);
	int n = onnx_node(o, OP_CUMSUM, (int[]){onnx_operand(o, 0)}, 1);
	copy_attrs(o, n, OP_CUMSUM, NULL);
	ir_set_int(o->m->g, n, AT_CUMSUM_AXIS, axis);
	onnx_result(o, n, 0);
}

static void
tr_trilu(ONode *o)
{
	int64_t k = 0;
	if (o->nin > 1 && o->in[1] >= 0)
		onnx_const_ints(o, 1, "k", &k, 1);
	int n = onnx_node(o, OP_TRILU, (int[]){onnx_operand(o, 0)}, 1);
	copy_attrs(o, n, OP_TRILU, NULL);
	ir_set_int(o->m->g, n, AT_TRILU_K, k);
	onnx_result(o, n, 0);
}

static void
tr_where(ONode *o)
{
	int in[3] = {onnx_operand(o, 0), onnx_operand(o, 1), onnx_operand(o, 2)};
	onnx_result(o, onnx_node(o, OP_WHERE, in, 3), 0);
}

/* NegativeLogLikelihoodLoss on log-probabilities lp [N,C,d...] and
 * integer targets [N,d...]: loss = -lp[n, t, d...] * w[t], zero where
 * t == ignore_index, then reduced ("none", "sum", or "mean": the sum over
 * the summed weights). */
static void
nll(ONode *o, int lp, int target, int weight, int k)
{
	Graph *g = o->m->g;
	Type tt = *onnx_type(o, target);
	int dt = onnx_type(o, lp)->dtype;
	int64_t dim[IR_MAXRANK];
	if (tt.rank + 1 > IR_MAXRANK || onnx_type(o, lp)->rank != tt.rank + 1)
		diag_error(o->loc, "the target must have one dimension less than "
		           "the input");
	dim[0] = tt.dim[0], dim[1] = 1;
	memcpy(dim + 2, tt.dim + 1, (tt.rank - 1) * sizeof *dim);
	const Onnx__AttributeProto *ig = onnx_attr(o, "ignore_index");
	int keep = -1, t = target;
	if (ig) {
		int iv = onnx_scalar(o, tt.dtype, (double)ig->i);
		if (tt.dtype == DT_I64)
			*(int64_t *)g->val[iv].data = ig->i;
		keep = onnx_unary(o, OP_NOT, onnx_binary(o, OP_EQUAL, t, iv, -1), -1);
		int zero = onnx_scalar(o, tt.dtype, 0);
		int n = onnx_node(o, OP_WHERE, (int[]){keep, t, zero}, 3);
		t = onnx_result(o, n, -1);
	}
	int t1 = onnx_reshape(o, t, dim, tt.rank + 1, -1);
	int n = onnx_node(o, OP_GATHER_ELEMENTS, (int[]){lp, t1}, 2);
	ir_set_int(g, n, AT_GATHER_ELEMENTS_AXIS, 1);
	int picked = onnx_reshape(o, onnx_result(o, n, -1), tt.dim, tt.rank, -1);
	int loss = onnx_unary(o, OP_NEG, picked, -1), w = -1;
	if (weight >= 0) {
		n = onnx_node(o, OP_GATHER, (int[]){weight, t}, 2);
		w = onnx_result(o, n, -1);
	}
	if (keep >= 0) {
		int kf = cast_to(o, keep, dt);
		w = w >= 0 ? onnx_binary(o, OP_MUL, w, kf, -1) : kf;
	}
	if (w >= 0)
		loss = onnx_binary(o, OP_MUL, loss, w, -1);
	const char *red = onnx_attr_str(o, "reduction", "mean");
	if (strcmp(red, "none") == 0) {
		onnx_reshape(o, loss, tt.dim, tt.rank, k);
		return;
	}
	if (strcmp(red, "sum") != 0 && strcmp(red, "mean") != 0)
		diag_error(o->loc, "reduction '%s' is not supported", red);
	bool mean = strcmp(red, "mean") == 0;
	int op = mean && w < 0 ? OP_REDUCE_MEAN : OP_REDUCE_SUM;
	n = onnx_node(o, op, &loss, 1);
	ir_set_int(g, n, op_get(op)->attr0 + 1, 0);     /* keepdims */
	int y = onnx_result(o, n, mean && w >= 0 ? -1 : k);
	if (mean && w >= 0) {
		n = onnx_node(o, OP_REDUCE_SUM, &w, 1);
		ir_set_int(g, n, AT_REDUCE_SUM_KEEPDIMS, 0);
		onnx_binary(o, OP_DIV, y, onnx_result(o, n, -1), k);
	}
}

static void
tr_nll_loss(ONode *o)
{
	nll(o, onnx_operand(o, 0), onnx_operand(o, 1),
	    o->nin > 2 ? onnx_operand(o, 2) : -1, 0);
}

/* SoftmaxCrossEntropyLoss: log_softmax over dim 1, then the NLL; the
 * second output, when wanted, is the log-probabilities. */
static void
tr_softmax_ce_loss(ONode *o)
{
	int x = onnx_operand(o, 0);
	int n = onnx_node(o, OP_LOG_SOFTMAX, &x, 1);
	ir_set_int(o->m->g, n, AT_LOG_SOFTMAX_AXIS, 1);
	bool want = o->p->n_output > 1 && *o->p->output[1];
	int lp = onnx_result(o, n, want ? 1 : -1);
	nll(o, lp, onnx_operand(o, 1), o->nin > 2 ? onnx_operand(o, 2) : -1, 0);
}

static void
tr_binary(ONode *o)
{
	const OnnxOp *t = onnx_op_lookup(o->p->op_type);
	int a = onnx_operand(o, 0), b = onnx_operand(o, 1);
	if (onnx_attr_int(o, "broadcast", 0) && onnx_attr(o, "axis")) {
		/* opset < 7: b's dims line up with a's from axis on */
		Type at = *onnx_type(o, a), bt = *onnx_type(o, b);
		int axis = norm_axis(o, onnx_attr_int(o, "axis", 0), at.rank);
		if (axis + bt.rank > at.rank)
			diag_error(o->loc, "broadcast axis %d does not fit", axis);
		for (int i = bt.rank; i < at.rank - axis; i++)
			bt.dim[i] = 1;
		b = onnx_reshape(o, b, bt.dim, at.rank - axis, -1);
	}
	int n = onnx_node(o, t->op, (int[]){a, b}, 2);
	copy_attrs(o, n, t->op, (const char *const[]){"broadcast", "axis",
	           "consumed_inputs", NULL});
	onnx_result(o, n, 0);
}

/* BitShift: direction is a string in ONNX, an int (1 right) in the IR. */
static void
tr_bitshift(ONode *o)
{
	const char *dir = onnx_attr_str(o, "direction", NULL);
	if (!dir || (strcmp(dir, "LEFT") != 0 && strcmp(dir, "RIGHT") != 0))
		diag_error(o->loc, "direction must be \"LEFT\" or \"RIGHT\"");
	int n = onnx_node(o, OP_BITSHIFT,
	                  (int[]){onnx_operand(o, 0), onnx_operand(o, 1)}, 2);
	ir_set_int(o->m->g, n, AT_BITSHIFT_DIRECTION, strcmp(dir, "RIGHT") == 0);
	onnx_result(o, n, 0);
}

/* Sum, Mean (and the variadic Max, Min): a chain of binary ops. */
static void
tr_variadic(ONode *o)
{
	const OnnxOp *t = onnx_op_lookup(o->p->op_type);
	bool mean = strcmp(o->p->op_type, "Mean") == 0;
	int acc = onnx_operand(o, 0);
	if (o->nin == 1 && !mean) {
		onnx_bind(o->m, o->p->output[0], acc);
		return;
	}
	for (int i = 1; i < o->nin; i++)
		acc = onnx_binary(o, t->op, acc, onnx_operand(o, i),
		             i == o->nin - 1 && !mean ? 0 : -1);
	if (mean)
		onnx_binary(o, OP_DIV, acc, onnx_scalar(o, onnx_type(o, acc)->dtype, o->nin), 0);
}

static void
tr_identity(ONode *o)
{
	onnx_bind(o->m, o->p->output[0], onnx_operand(o, 0));
}

static void
tr_needs_const(ONode *o)
{
	diag_error(o->loc, "every input must be known at build time");
}

static void
tr_dropout(ONode *o)
{
	bool training = o->m->opset < 7 ? !onnx_attr_int(o, "is_test", 0) : false;
	if (o->nin > 2 && *(const uint8_t *)onnx_const_data(o, 2, "training_mode"))
		training = true;
	double ratio = 0.5;
	if (training && o->m->opset < 12)
		ratio = onnx_attr_float(o, "ratio", 0.5f);
	else if (training && o->nin > 1 && o->in[1] >= 0)
		onnx_const_floats(o, 1, "ratio", &ratio, 1);
	if (ratio == 0)
		training = false;       /* then training drops nothing */
	if (training)
		onnx_unsupported(o, "Dropout in training mode (kiln imports inference "
		            "graphs)");
	int x = onnx_operand(o, 0);
	onnx_bind(o->m, o->p->output[0], x);
	if (o->p->n_output > 1 && *o->p->output[1]) {
		Type t = *onnx_type(o, x);
		t.dtype = DT_BOOL;
		if (type_numel(&t) > ONNX_MAXFOLD)
			diag_error(o->loc, "the mask %s has more than the %d elements "
			           "kiln computes at build time", type_str(o->m->a, &t),
			           ONNX_MAXFOLD);
		uint8_t *ones = arena_alloc(o->m->a, type_numel(&t));
		memset(ones, 1, type_numel(&t));
		onnx_bind(o->m, o->p->output[1],
		          onnx_const(o->m, o->p->output[1], t, ones, o->loc));
	}
}

static void
tr_constant(ONode *o)
{
	const Onnx__AttributeProto *a = o->p->n_attribute == 1 ?
	                                o->p->attribute[0] : NULL;
	if (!a)
		diag_error(o->loc, "a Constant needs exactly one value attribute");
	Type t = {0};
	void *data = NULL;
	const char *name = a->name, *err = NULL;
	if (strcmp(name, "value") == 0 && a->t)
		err = onnx_tensor(o->m->a, a->t, o->m->dir, &t, &data);
	else if (strcmp(name, "value_float") == 0) {
		t = (Type){.dtype = DT_F32};
		data = arena_alloc(o->m->a, 4);
		*(float *)data = a->f;
	} else if (strcmp(name, "value_int") == 0) {
		t = (Type){.dtype = DT_I64};
		data = arena_alloc(o->m->a, 8);
		*(int64_t *)data = a->i;
	} else if (strcmp(name, "value_floats") == 0 && a->n_floats) {
		t = (Type){.dtype = DT_F32, .rank = 1, .dim = {(int64_t)a->n_floats}};
		data = arena_alloc(o->m->a, 4 * a->n_floats);
		memcpy(data, a->floats, 4 * a->n_floats);
	} else if (strcmp(name, "value_ints") == 0 && a->n_ints) {
		t = (Type){.dtype = DT_I64, .rank = 1, .dim = {(int64_t)a->n_ints}};
		data = arena_alloc(o->m->a, 8 * a->n_ints);
		memcpy(data, a->ints, 8 * a->n_ints);
	} else
		diag_error(o->loc, "Constant attribute '%s' is not supported", name);
	if (err)
		diag_error(o->loc, "%s", err);
	onnx_bind(o->m, o->p->output[0],
	          onnx_const(o->m, o->p->output[0], t, data, o->loc));
}

/* pads for auto_pad SAME_UPPER/SAME_LOWER/VALID, given the spatial
 * sizes, kernel, strides and dilations; pads = [begin..., end...]. */
static bool
auto_pad(ONode *o, int nsp, const int64_t *in, const int64_t *k,
         const int64_t *st, const int64_t *d, int64_t *pads)
{
	const char *ap = onnx_attr_str(o, "auto_pad", "NOTSET");
	if (strcmp(ap, "NOTSET") == 0)
		return false;
	for (int i = 0; i < nsp; i++) {
		pads[i] = pads[nsp + i] = 0;
		if (strcmp(ap, "VALID") == 0)
			continue;
		int64_t out = (in[i] + st[i] - 1) / st[i];
		int64_t total = MAX((out - 1) * st[i] + (k[i] - 1) * d[i] + 1 -
		                    in[i], 0);
		bool upper = strcmp(ap, "SAME_UPPER") == 0;
		if (!upper && strcmp(ap, "SAME_LOWER") != 0)
			diag_error(o->loc, "auto_pad '%s' is not supported", ap);
		pads[i] = upper ? total / 2 : total - total / 2;
		pads[nsp + i] = total - pads[i];
	}
	return true;
}

/* Spatial attributes of Conv, ConvTranspose and the pools, lifted to
 * 2-D when the op is 1-D (a height of 1 is added). */
typedef struct {
	int nsp;                    /* spatial dims in the model: 1, 2 or 3 */
	int ndim;                   /* spatial dims of the IR op: 2 or 3 */
	int64_t k[3], st[3], d[3], pads[6], outpad[3];
} Window;

/* ConvTranspose's pads for auto_pad SAME_* (output = input * stride) or
 * an output_shape attribute:  total = stride*(in-1) + output_padding +
 * (k-1)*d + 1 - out, split with the odd one at the end for SAME_UPPER,
 * at the start otherwise.  An output larger than the full transposed
 * convolution (total < 0) is reached with more output padding. */
static void
transpose_pads(ONode *o, int nsp, const int64_t *in, const int64_t *k,
               const int64_t *st, const int64_t *d, int64_t *op,
               int64_t *pads)
{
	const char *ap = onnx_attr_str(o, "auto_pad", "NOTSET");
	int64_t out[3];
	int n = onnx_attr_ints(o, "output_shape", out, 3);
	bool same = strncmp(ap, "SAME_", 5) == 0;
	if (n < 0 && !same) {
		if (strcmp(ap, "VALID") == 0)
			memset(pads, 0, 2 * nsp * sizeof *pads);
		return;
	}
	if (n >= 0 && n != nsp)
		diag_error(o->loc, "output_shape needs %d values", nsp);
	for (int i = 0; i < nsp; i++) {
		int64_t want = n >= 0 ? out[i] : in[i] * st[i];
		int64_t total = st[i] * (in[i] - 1) + op[i] + (k[i] - 1) * d[i] + 1 -
		                want;
		if (total < 0) {
			op[i] -= total;
			total = 0;
		}
		bool upper = strcmp(ap, "SAME_UPPER") == 0;
		pads[i] = upper ? total / 2 : total - total / 2;
		pads[nsp + i] = total - pads[i];
	}
}

static void
window(ONode *o, const Type *x, const int64_t *kernel, bool transpose,
       Window *w)
{
	int nsp = x->rank - 2;
	if (nsp < 1 || nsp > 3)
		diag_error(o->loc, "%d-D inputs are not supported (1-D, 2-D and "
		           "3-D are)", nsp);
	int64_t k[3], st[3] = {1, 1, 1}, d[3] = {1, 1, 1}, p[6] = {0};
	int64_t op[3] = {0};
	memcpy(k, kernel, nsp * sizeof *k);
	int64_t ks[3];
	int n = onnx_attr_ints(o, "kernel_shape", ks, 3);
	if (n >= 0 && (n != nsp || memcmp(ks, k, nsp * sizeof *k)))
		diag_error(o->loc, "kernel_shape does not match the weights");
	if ((n = onnx_attr_ints(o, "strides", st, 3)) >= 0 && n != nsp)
		diag_error(o->loc, "strides needs %d values", nsp);
	if ((n = onnx_attr_ints(o, "dilations", d, 3)) >= 0 && n != nsp)
		diag_error(o->loc, "dilations needs %d values", nsp);
	if ((n = onnx_attr_ints(o, "pads", p, 6)) >= 0 && n != 2 * nsp)
		diag_error(o->loc, "pads needs %d values", 2 * nsp);
	if ((n = onnx_attr_ints(o, "output_padding", op, 3)) >= 0 && n != nsp)
		diag_error(o->loc, "output_padding needs %d values", nsp);
	if (transpose)
		transpose_pads(o, nsp, x->dim + 2, k, st, d, op, p);
	else
		auto_pad(o, nsp, x->dim + 2, k, st, d, p);
	*w = (Window){.nsp = nsp, .ndim = MAX(nsp, 2)};
	int off = w->ndim - nsp;        /* 1-D: the width is dim 1 of 2 */
	for (int i = 0; i < w->ndim; i++) {
		w->k[i] = w->st[i] = w->d[i] = 1;
	}
	for (int i = 0; i < nsp; i++) {
		w->k[off + i] = k[i];
		w->st[off + i] = st[i];
		w->d[off + i] = d[i];
		w->pads[off + i] = p[i];
		w->pads[w->ndim + off + i] = p[nsp + i];
		w->outpad[off + i] = op[i];
	}
}

/* x[N,C,L] as x[N,C,1,L] for the 2-D kernels; 2-D and 3-D stay. */
static int
lift(ONode *o, int v, int nsp)
{
	if (nsp >= 2)
		return v;
	const Type *t = onnx_type(o, v);
	return onnx_reshape(o, v, (int64_t[]){t->dim[0], t->dim[1], 1, t->dim[2]}, 4,
	               -1);
}

static void
lower_back_at(ONode *o, int y, int nsp, int out)
{
	if (nsp >= 2) {
		onnx_bind(o->m, o->p->output[out], y);
		return;
	}
	const Type *t = onnx_type(o, y);
	onnx_reshape(o, y, (int64_t[]){t->dim[0], t->dim[1], t->dim[3]}, 3, out);
}

static void
lower_back(ONode *o, int y, int nsp)
{
	lower_back_at(o, y, nsp, 0);
}

static void
conv_common(ONode *o, bool transpose)
{
	Graph *g = o->m->g;
	int x = onnx_operand(o, 0), w = onnx_operand(o, 1);
	const Type *xt = onnx_type(o, x), *wt = onnx_type(o, w);
	if (wt->rank != xt->rank)
		diag_error(o->loc, "weights of rank %d for an input of rank %d",
		           wt->rank, xt->rank);
	Window win;
	window(o, xt, wt->dim + 2, transpose, &win);
	int in[3] = {lift(o, x, win.nsp), lift(o, w, win.nsp), -1};
	int nin = 2;
	if (o->nin > 2)
		in[nin++] = onnx_operand(o, 2);
	static const int ops[2][2] = {{OP_CONV2D, OP_CONV3D},
	                              {OP_CONV2D_TRANSPOSE, OP_CONV3D_TRANSPOSE}};
	int op = ops[transpose][win.ndim == 3], nd = win.ndim;
	int n = onnx_node(o, op, in, nin);
	/* the 2-D and 3-D ops share attribute names, not ids */
	ir_set_ints(g, n, op_attr_lookup(op, "strides"), win.st, nd);
	ir_set_ints(g, n, op_attr_lookup(op, "dilations"), win.d, nd);
	ir_set_ints(g, n, op_attr_lookup(op, "pads"), win.pads, 2 * nd);
	ir_set_int(g, n, op_attr_lookup(op, "group"),
	           onnx_attr_int(o, "group", 1));
	if (transpose)
		ir_set_ints(g, n, op_attr_lookup(op, "output_padding"), win.outpad,
		            nd);
	lower_back(o, onnx_result(o, n, win.nsp >= 2 ? 0 : -1), win.nsp);
}

static void
tr_conv(ONode *o)
{
	conv_common(o, false);
}

static void
tr_conv_transpose(ONode *o)
{
	conv_common(o, true);
}

/* The IR attributes of a pool node n of kind op from window w. */
static void
set_pool_attrs(ONode *o, int n, int op, const Window *w)
{
	Graph *g = o->m->g;
	int nd = w->ndim;
	/* the 2-D and 3-D ops share attribute names, not ids */
	ir_set_ints(g, n, op_attr_lookup(op, "kernel"), w->k, nd);
	ir_set_ints(g, n, op_attr_lookup(op, "strides"), w->st, nd);
	ir_set_ints(g, n, op_attr_lookup(op, "pads"), w->pads, 2 * nd);
	ir_set_ints(g, n, op_attr_lookup(op, "dilations"), w->d, nd);
	ir_set_int(g, n, op_attr_lookup(op, "ceil_mode"),
	           onnx_attr_int(o, "ceil_mode", 0));
}

/* MaxPool and AveragePool; MaxPool's optional second output, Indices,
 * is a maxpool2d_indices node beside the maxpool2d. */
static void
tr_pool(ONode *o)
{
	Graph *g = o->m->g;
	bool max = strcmp(o->p->op_type, "MaxPool") == 0;
	bool indices = max && o->p->n_output > 1 && *o->p->output[1];
	if (!indices)
		one_output(o);
	int x = onnx_operand(o, 0);
	int64_t k[3];
	if (onnx_attr_ints(o, "kernel_shape", k, 3) != onnx_type(o, x)->rank - 2)
		diag_error(o->loc, "kernel_shape needs one value per spatial "
		           "dimension");
	Window win;
	window(o, onnx_type(o, x), k, false, &win);
	if (indices && win.ndim == 3)
		onnx_unsupported(o, "the Indices output of a 3-D MaxPool");
	static const int ops[2][2] = {{OP_AVGPOOL2D, OP_AVGPOOL3D},
	                              {OP_MAXPOOL2D, OP_MAXPOOL3D}};
	int op = ops[max][win.ndim == 3];
	int xl = lift(o, x, win.nsp);
	int n = onnx_node(o, op, &xl, 1);
	set_pool_attrs(o, n, op, &win);
	if (!max)
		ir_set_int(g, n, op_attr_lookup(op, "count_include_pad"),
		           onnx_attr_int(o, "count_include_pad", 0));
	lower_back(o, onnx_result(o, n, win.nsp >= 2 ? 0 : -1), win.nsp);
	if (!indices)
		return;
	n = onnx_node(o, OP_MAXPOOL2D_INDICES, &xl, 1);
	set_pool_attrs(o, n, OP_MAXPOOL2D_INDICES, &win);
	ir_set_int(g, n, AT_MAXPOOL2D_INDICES_STORAGE_ORDER,
	           onnx_attr_int(o, "storage_order", 0));
	lower_back_at(o, onnx_result(o, n, win.nsp >= 2 ? 1 : -1), win.nsp, 1);
}

static void
tr_global_pool(ONode *o)
{
	const OnnxOp *t = onnx_op_lookup(o->p->op_type);
	int x = onnx_operand(o, 0);
	int64_t axes[IR_MAXRANK];
	int r = onnx_type(o, x)->rank;
	for (int i = 2; i < r; i++)
		axes[i - 2] = i;
	if (r < 3)
		diag_error(o->loc, "the input needs a spatial dimension");
	int n = onnx_node(o, t->op, &x, 1);
	ir_set_ints(o->m->g, n, t->op == OP_REDUCE_MEAN ? AT_REDUCE_MEAN_AXES :
	            AT_REDUCE_MAX_AXES, axes, r - 2);
	onnx_result(o, n, 0);
}

static void
tr_gemm(ONode *o)
{
	Graph *g = o->m->g;
	int in[3] = {onnx_operand(o, 0), onnx_operand(o, 1), -1}, nin = 2;
	if (o->nin > 2)
		in[nin++] = onnx_operand(o, 2);
	int n = onnx_node(o, OP_GEMM, in, nin);
	ir_set_float(g, n, AT_GEMM_ALPHA, onnx_attr_float(o, "alpha", 1));
	ir_set_float(g, n, AT_GEMM_BETA, onnx_attr_float(o, "beta", 1));
	ir_set_int(g, n, AT_GEMM_TRANS_A, onnx_attr_int(o, "transA", 0));
	ir_set_int(g, n, AT_GEMM_TRANS_B, onnx_attr_int(o, "transB", 0));
	onnx_result(o, n, 0);
}

/* numpy matmul: a 1-D operand gets a dim of 1, removed again after. */
static void
tr_matmul(ONode *o)
{
	int a = onnx_operand(o, 0), b = onnx_operand(o, 1);
	const Type at = *onnx_type(o, a), bt = *onnx_type(o, b);
	if (at.rank >= 2 && bt.rank >= 2) {
		onnx_binary(o, OP_MATMUL, a, b, 0);
		return;
	}
	if (at.rank == 1)
		a = onnx_reshape(o, a, (int64_t[]){1, at.dim[0]}, 2, -1);
	if (bt.rank == 1)
		b = onnx_reshape(o, b, (int64_t[]){bt.dim[0], 1}, 2, -1);
	int y = onnx_binary(o, OP_MATMUL, a, b, -1);
	Type yt = *onnx_type(o, y);
	int64_t dim[IR_MAXRANK];
	int r = 0;
	for (int i = 0; i < yt.rank; i++)
		if (!(at.rank == 1 && i == yt.rank - 2) &&
		    !(bt.rank == 1 && i == yt.rank - 1))
			dim[r++] = yt.dim[i];
	onnx_reshape(o, y, dim, r, 0);
}

/* BatchNormalization in training mode normalizes with the batch's own
 * mean and (biased) variance over every dim but 1, and its outputs 1 and
 * 2 are the running statistics: running * momentum + batch * (1 -
 * momentum).  in[3], in[4] become the batch statistics. */
static void
batch_stats(ONode *o, int *in)
{
	Graph *g = o->m->g;
	Type xt = *onnx_type(o, in[0]);
	int64_t axes[IR_MAXRANK], dim[IR_MAXRANK] = {xt.rank > 1 ? xt.dim[1] : 1};
	int na = 0;
	for (int i = 0; i < xt.rank; i++)
		if (i != 1)
			axes[na++] = i;
	for (int i = 1; i < xt.rank - 1; i++)
		dim[i] = 1;
	int n = onnx_node(o, OP_REDUCE_MEAN, &in[0], 1);
	ir_set_ints(g, n, AT_REDUCE_MEAN_AXES, axes, na);
	ir_set_int(g, n, AT_REDUCE_MEAN_KEEPDIMS, 0);
	int mean = onnx_result(o, n, -1);
	int d = onnx_binary(o, OP_SUB, in[0],
	                    onnx_reshape(o, mean, dim, xt.rank - 1, -1), -1);
	int sq = onnx_binary(o, OP_MUL, d, d, -1);
	n = onnx_node(o, OP_REDUCE_MEAN, &sq, 1);
	ir_set_ints(g, n, AT_REDUCE_MEAN_AXES, axes, na);
	ir_set_int(g, n, AT_REDUCE_MEAN_KEEPDIMS, 0);
	int var = onnx_result(o, n, -1);
	double mom = onnx_attr_float(o, "momentum", 0.9f);
	int dt = xt.dtype, batch[2] = {mean, var};
	for (int k = 1; k <= 2 && k < (int)o->p->n_output; k++)
		if (*o->p->output[k])
			onnx_binary(o, OP_ADD,
			    onnx_binary(o, OP_MUL, in[2 + k], onnx_scalar(o, dt, mom),
			                -1),
			    onnx_binary(o, OP_MUL, batch[k - 1],
			                onnx_scalar(o, dt, 1 - mom), -1), k);
	in[3] = mean;
	in[4] = var;
}

static void
tr_batchnorm(ONode *o)
{
	if (o->m->opset < 7 && !onnx_attr_int(o, "spatial", 1))
		onnx_unsupported(o, "spatial=0");
	int in[5];
	for (int i = 0; i < 5; i++)
		in[i] = onnx_operand(o, i);
	if (onnx_attr_int(o, "training_mode", 0))
		batch_stats(o, in);
	else
		one_output(o);
	int n = onnx_node(o, OP_BATCHNORM, in, 5);
	ir_set_float(o->m->g, n, AT_BATCHNORM_EPSILON,
	             onnx_attr_float(o, "epsilon", 1e-5f));
	onnx_result(o, n, 0);
}

static void
tr_layernorm(ONode *o)
{
	Graph *g = o->m->g;
	int x = onnx_operand(o, 0);
	int in[3] = {x, onnx_operand(o, 1), -1}, nin = 2;
	if (o->nin > 2)
		in[nin++] = onnx_operand(o, 2);
	int r = onnx_type(o, x)->rank;
	int axis = norm_axis(o, onnx_attr_int(o, "axis", -1), r);
	float eps = onnx_attr_float(o, "epsilon", 1e-5f);
	int n = onnx_node(o, OP_LAYERNORM, in, nin);
	ir_set_int(g, n, AT_LAYERNORM_AXIS, axis);
	ir_set_float(g, n, AT_LAYERNORM_EPSILON, eps);
	onnx_result(o, n, 0);
	bool want_mean = o->p->n_output > 1 && *o->p->output[1];
	bool want_inv = o->p->n_output > 2 && *o->p->output[2];
	if (!want_mean && !want_inv)
		return;
	/* the statistics outputs: mean and 1/sqrt(var + eps) over the
	 * normalized dims, kept as dims of 1 */
	int64_t axes[IR_MAXRANK];
	for (int i = axis; i < r; i++)
		axes[i - axis] = i;
	n = onnx_node(o, OP_REDUCE_MEAN, &x, 1);
	ir_set_ints(g, n, AT_REDUCE_MEAN_AXES, axes, r - axis);
	int mean = onnx_result(o, n, want_mean ? 1 : -1);
	if (!want_inv)
		return;
	int d = onnx_binary(o, OP_SUB, x, mean, -1);
	int sq = onnx_binary(o, OP_MUL, d, d, -1);
	n = onnx_node(o, OP_REDUCE_MEAN, &sq, 1);
	ir_set_ints(g, n, AT_REDUCE_MEAN_AXES, axes, r - axis);
	int var = onnx_result(o, n, -1);
	int dt = onnx_type(o, x)->dtype;
	int sd = onnx_unary(o, OP_SQRT, onnx_binary(o, OP_ADD, var,
	                    onnx_scalar(o, dt, eps), -1), -1);
	onnx_binary(o, OP_DIV, onnx_scalar(o, dt, 1), sd, 2);
}

/* Before opset 13, Softmax works on x flattened to 2-D at axis
 * (default 1); from 13 along one axis (default -1). */
static void
tr_softmax(ONode *o)
{
	const OnnxOp *t = onnx_op_lookup(o->p->op_type);
	int x = onnx_operand(o, 0);
	Type xt = *onnx_type(o, x);
	bool old = o->m->opset < 13;
	int axis = norm_axis(o, onnx_attr_int(o, "axis", old ? 1 : -1), xt.rank);
	int id = op_attr_lookup(t->op, "axis");
	if (!old || axis == xt.rank - 1) {
		int n = onnx_node(o, t->op, &x, 1);
		ir_set_int(o->m->g, n, id, axis);
		onnx_result(o, n, 0);
		return;
	}
	int64_t outer = 1, inner = 1;
	for (int i = 0; i < xt.rank; i++)
		*(i < axis ? &outer : &inner) *= xt.dim[i];
	int f = onnx_reshape(o, x, (int64_t[]){outer, inner}, 2, -1);
	int n = onnx_node(o, t->op, &f, 1);
	ir_set_int(o->m->g, n, id, 1);
	onnx_reshape(o, onnx_result(o, n, -1), xt.dim, xt.rank, 0);
}

/* Operand i, a constant scalar of x's numeric dtype (Clip's bounds, Pad's
 * constant_value), as a double: exact up to 2^53. */
double
onnx_const_number(ONode *o, int i, const char *what)
{
	const void *d = onnx_const_data(o, i, what);
	const Type *t = onnx_type(o, o->in[i]);
	if (type_numel(t) != 1 || t->rank > 1)
		diag_error(o->loc, "%s must be one number, not %s", what,
		           type_str(o->m->a, t));
	switch (t->dtype) {
	case DT_F32: return *(const float *)d;
	case DT_F64: return *(const double *)d;
	case DT_I64: return (double)*(const int64_t *)d;
	case DT_I32: return *(const int32_t *)d;
	case DT_I8: return *(const int8_t *)d;
	case DT_U8: return *(const uint8_t *)d;
	case DT_I16: return *(const int16_t *)d;
	case DT_U16: return *(const uint16_t *)d;
	case DT_U32: return *(const uint32_t *)d;
	case DT_U64: return (double)*(const uint64_t *)d;
	}
	diag_error(o->loc, "%s must be a number, not %s", what,
	           type_str(o->m->a, t));
}

static void
tr_clip(ONode *o)
{
	double lo = -INFINITY, hi = INFINITY;
	if (o->m->opset < 11) {
		lo = onnx_attr_float(o, "min", -INFINITY);
		hi = onnx_attr_float(o, "max", INFINITY);
	} else {
		if (o->nin > 1 && o->in[1] >= 0)
			lo = onnx_const_number(o, 1, "min");
		if (o->nin > 2 && o->in[2] >= 0)
			hi = onnx_const_number(o, 2, "max");
	}
	int n = onnx_node(o, OP_CLIP, (int[]){onnx_operand(o, 0)}, 1);
	ir_set_float(o->m->g, n, AT_CLIP_MIN, lo);
	ir_set_float(o->m->g, n, AT_CLIP_MAX, hi);
	onnx_result(o, n, 0);
}

static void
tr_concat(ONode *o)
{
	if (o->nin > IR_MAXIN)
		diag_error(o->loc, "more than %d inputs", IR_MAXIN);
	for (int i = 0; i < o->nin; i++)
		onnx_operand(o, i);
	int n = onnx_node(o, OP_CONCAT, o->in, o->nin);
	ir_set_int(o->m->g, n, AT_CONCAT_AXIS, onnx_attr_int(o, "axis", 0));
	onnx_result(o, n, 0);
}

static void
tr_flatten(ONode *o)
{
	int x = onnx_operand(o, 0);
	int r = onnx_type(o, x)->rank;
	int64_t axis = onnx_attr_int(o, "axis", 1);
	if (axis < -r || axis > r)
		diag_error(o->loc, "axis %lld is out of range for rank %d",
		           (long long)axis, r);
	int n = onnx_node(o, OP_FLATTEN, &x, 1);
	ir_set_int(o->m->g, n, AT_FLATTEN_AXIS, axis < 0 ? axis + r : axis);
	onnx_result(o, n, 0);
}

static void
tr_gather(ONode *o)
{
	int n = onnx_node(o, OP_GATHER, (int[]){onnx_operand(o, 0), onnx_operand(o, 1)}, 2);
	ir_set_int(o->m->g, n, AT_GATHER_AXIS, onnx_attr_int(o, "axis", 0));
	onnx_result(o, n, 0);
}

static void
tr_transpose(ONode *o)
{
	int x = onnx_operand(o, 0);
	int r = onnx_type(o, x)->rank;
	int64_t perm[IR_MAXRANK];
	if (onnx_attr_ints(o, "perm", perm, IR_MAXRANK) < 0)
		for (int i = 0; i < r; i++)
			perm[i] = r - 1 - i;
	int n = onnx_node(o, OP_TRANSPOSE, &x, 1);
	ir_set_ints(o->m->g, n, AT_TRANSPOSE_PERM, perm, r);
	onnx_result(o, n, 0);
}

static void
tr_reshape(ONode *o)
{
	int64_t shape[IR_MAXRANK];
	int r = o->m->opset < 5 ? onnx_attr_ints(o, "shape", shape, IR_MAXRANK) :
	        onnx_const_ints(o, 1, "the shape", shape, IR_MAXRANK);
	if (r < 0)
		diag_error(o->loc, "the shape attribute is required");
	if (onnx_attr_int(o, "allowzero", 0))
		for (int i = 0; i < r; i++)
			if (shape[i] == 0)
				onnx_unsupported(o, "allowzero=1 with a zero dimension");
	onnx_reshape(o, onnx_operand(o, 0), shape, r, 0);
}

/* Squeeze and Unsqueeze: axes from the attribute (opset < 13) or the
 * second input. */
static int
axes_of(ONode *o, int64_t *axes)
{
	if (o->m->opset < 13)
		return onnx_attr_ints(o, "axes", axes, IR_MAXRANK);
	if (o->nin < 2)
		return -1;
	return onnx_const_ints(o, 1, "axes", axes, IR_MAXRANK);
}

static void
tr_squeeze(ONode *o)
{
	int x = onnx_operand(o, 0);
	Type t = *onnx_type(o, x);
	int64_t axes[IR_MAXRANK], dim[IR_MAXRANK];
	int na = axes_of(o, axes);
	bool drop[IR_MAXRANK] = {0};
	for (int i = 0; i < t.rank; i++)
		drop[i] = na < 0 && t.dim[i] == 1;
	for (int k = 0; k < na; k++) {
		int a = norm_axis(o, axes[k], t.rank);
		if (t.dim[a] != 1)
			diag_error(o->loc, "cannot squeeze dimension %d of %s", a,
			           type_str(o->m->a, &t));
		drop[a] = true;
	}
	int r = 0;
	for (int i = 0; i < t.rank; i++)
		if (!drop[i])
			dim[r++] = t.dim[i];
	onnx_reshape(o, x, dim, r, 0);
}

static void
tr_unsqueeze(ONode *o)
{
	int x = onnx_operand(o, 0);
	Type t = *onnx_type(o, x);
	int64_t axes[IR_MAXRANK], dim[IR_MAXRANK];
	int na = axes_of(o, axes);
	if (na < 0)
		diag_error(o->loc, "axes are required");
	int r = t.rank + na;
	if (r > IR_MAXRANK)
		diag_error(o->loc, "the result's rank %d is above kiln's maximum",
		           r);
	bool ins[IR_MAXRANK] = {0};
	for (int k = 0; k < na; k++) {
		int a = norm_axis(o, axes[k], r);
		if (ins[a])
			diag_error(o->loc, "axis %d is repeated", a);
		ins[a] = true;
	}
	for (int i = 0, j = 0; i < r; i++)
		dim[i] = ins[i] ? 1 : t.dim[j++];
	onnx_reshape(o, x, dim, r, 0);
}

static void
tr_slice(ONode *o)
{
	Graph *g = o->m->g;
	int64_t st[IR_MAXRANK], en[IR_MAXRANK], ax[IR_MAXRANK], sp[IR_MAXRANK];
	int ns, ne, na = -1, nsp = -1;
	if (o->m->opset < 10) {
		ns = onnx_attr_ints(o, "starts", st, IR_MAXRANK);
		ne = onnx_attr_ints(o, "ends", en, IR_MAXRANK);
		na = onnx_attr_ints(o, "axes", ax, IR_MAXRANK);
	} else {
		ns = onnx_const_ints(o, 1, "starts", st, IR_MAXRANK);
		ne = onnx_const_ints(o, 2, "ends", en, IR_MAXRANK);
		if (o->nin > 3 && o->in[3] >= 0)
			na = onnx_const_ints(o, 3, "axes", ax, IR_MAXRANK);
		if (o->nin > 4 && o->in[4] >= 0)
			nsp = onnx_const_ints(o, 4, "steps", sp, IR_MAXRANK);
	}
	if (ns < 0 || ns != ne || (na >= 0 && na != ns) || (nsp >= 0 && nsp != ns))
		diag_error(o->loc, "starts, ends, axes and steps must have equal "
		           "lengths");
	int n = onnx_node(o, OP_SLICE, (int[]){onnx_operand(o, 0)}, 1);
	ir_set_ints(g, n, AT_SLICE_STARTS, st, ns);
	ir_set_ints(g, n, AT_SLICE_ENDS, en, ne);
	if (na >= 0)
		ir_set_ints(g, n, AT_SLICE_AXES, ax, na);
	if (nsp >= 0)
		ir_set_ints(g, n, AT_SLICE_STEPS, sp, nsp);
	onnx_result(o, n, 0);
}

static void
tr_pad(ONode *o)
{
	Graph *g = o->m->g;
	int x = onnx_operand(o, 0);
	int r = onnx_type(o, x)->rank;
	int64_t pads[2 * IR_MAXRANK];
	double value = 0;
	int np;
	if (o->m->opset < 11) {
		np = onnx_attr_ints(o, "pads", pads, 2 * IR_MAXRANK);
		if (np < 0)
			np = onnx_attr_ints(o, "paddings", pads, 2 * IR_MAXRANK);
		value = onnx_attr_float(o, "value", 0);
	} else {
		np = onnx_const_ints(o, 1, "pads", pads, 2 * IR_MAXRANK);
		if (o->nin > 2 && o->in[2] >= 0)
			value = onnx_const_number(o, 2, "constant_value");
		if (o->nin > 3 && o->in[3] >= 0) {
			int64_t axes[IR_MAXRANK], all[2 * IR_MAXRANK] = {0};
			int na = onnx_const_ints(o, 3, "axes", axes, IR_MAXRANK);
			if (np != 2 * na)
				diag_error(o->loc, "pads needs two values per axis");
			for (int k = 0; k < na; k++) {
				int a = norm_axis(o, axes[k], r);
				all[a] = pads[k];
				all[r + a] = pads[na + k];
			}
			memcpy(pads, all, sizeof all);
			np = 2 * r;
		}
	}
	if (np != 2 * r)
		diag_error(o->loc, "pads has %d values; a rank-%d input needs %d",
		           np, r, 2 * r);
	const char *mode = onnx_attr_str(o, "mode", "constant");
	if (shape_choice(mode, shape_pad_mode) < 0)
		diag_error(o->loc, "pad mode '%s' is not supported", mode);
	int n = onnx_node(o, OP_PAD, &x, 1);
	ir_set_ints(g, n, AT_PAD_PADS, pads, np);
	ir_attr(g, &g->node[n], AT_PAD_MODE)->s = mode;
	ir_set_float(g, n, AT_PAD_VALUE, value);
	onnx_result(o, n, 0);
}

/* Resize (opset 10: X, scales; 11+: X, roi, scales, sizes) and
 * Upsample (7: scales attribute; 9: scales input).  Every mode and
 * coordinate mode of opsets 11-19 maps onto the IR op; axes does not. */
static void
tr_resize(ONode *o)
{
	Graph *g = o->m->g;
	int x = onnx_operand(o, 0);
	Type t = *onnx_type(o, x);
	bool up = strcmp(o->p->op_type, "Upsample") == 0;
	double sc[IR_MAXRANK];
	int64_t sizes[IR_MAXRANK];
	int ns = -1, nz = -1;
	if (up && o->m->opset < 9) {
		const Onnx__AttributeProto *a = onnx_attr(o, "scales");
		ns = a ? (int)a->n_floats : -1;
		for (int i = 0; i < ns && i < IR_MAXRANK; i++)
			sc[i] = a->floats[i];
	} else if (up || o->m->opset < 11) {
		ns = onnx_const_floats(o, 1, "scales", sc, IR_MAXRANK);
	} else {
		if (o->nin > 2 && o->in[2] >= 0)
			ns = onnx_const_floats(o, 2, "scales", sc, IR_MAXRANK);
		if (o->nin > 3 && o->in[3] >= 0)
			nz = onnx_const_ints(o, 3, "sizes", sizes, IR_MAXRANK);
		if (ns == 0)
			ns = -1;
	}
	/* Given scales also set the coordinate map, so they stay with the
	 * node; the sizes they give are ONNX's floor(dim * scale). */
	bool scaled = nz < 0;
	if (scaled) {
		if (ns != t.rank)
			diag_error(o->loc, "scales needs one value per dimension");
		for (int i = 0; i < t.rank; i++) {
			if (!(sc[i] > 0) || !isfinite(sc[i]) || t.dim[i] * sc[i] < 1 ||
			    t.dim[i] * sc[i] > INT32_MAX)
				diag_error(o->loc, "scale %g of dimension %d (size %lld) "
				           "must be positive and give 1 to 2^31-1 elements",
				           sc[i], i, (long long)t.dim[i]);
			sizes[i] = (int64_t)floor(t.dim[i] * sc[i]);
		}
		nz = t.rank;
	}
	if (onnx_attr(o, "axes"))
		onnx_unsupported(o, "the axes attribute");
	const char *mode = onnx_attr_str(o, "mode", "nearest");
	if (strcmp(mode, "bilinear") == 0)
		mode = "linear";
	const char *coord = up || o->m->opset < 11 ? "asymmetric" :
	    onnx_attr_str(o, "coordinate_transformation_mode", "half_pixel");
	const char *nearest = up || o->m->opset < 11 ? "floor" :
	    onnx_attr_str(o, "nearest_mode", "round_prefer_floor");
	if (up && strcmp(mode, "linear") == 0)
		coord = "asymmetric";
	if (shape_choice(mode, shape_resize_mode) < 0 ||
	    shape_choice(coord, shape_resize_coord) < 0 ||
	    shape_choice(nearest, shape_nearest_mode) < 0)
		diag_error(o->loc, "mode '%s' with coordinate_transformation_mode "
		           "'%s' and nearest_mode '%s' is not supported", mode, coord,
		           nearest);
	/* roi (starts, then ends) only matters to tf_crop_and_resize */
	double roi[2 * IR_MAXRANK];
	int nr = 0;
	if (strcmp(coord, "tf_crop_and_resize") == 0) {
		if (o->nin > 1 && o->in[1] >= 0)
			nr = onnx_const_floats(o, 1, "roi", roi, 2 * IR_MAXRANK);
		if (nr != 2 * t.rank)
			diag_error(o->loc, "tf_crop_and_resize needs a roi of %d values "
			           "(two per dimension), got %d", 2 * t.rank, nr);
	}
	int n = onnx_node(o, OP_RESIZE, &x, 1);
	ir_set_ints(g, n, AT_RESIZE_SIZES, sizes, nz);
	if (scaled)
		ir_set_floats(g, n, AT_RESIZE_SCALES, sc, t.rank);
	ir_set_floats(g, n, AT_RESIZE_ROI, roi, nr);
	ir_attr(g, &g->node[n], AT_RESIZE_MODE)->s = mode;
	ir_attr(g, &g->node[n], AT_RESIZE_COORD)->s = coord;
	ir_attr(g, &g->node[n], AT_RESIZE_NEAREST_MODE)->s = nearest;
	ir_set_float(g, n, AT_RESIZE_CUBIC_A,
	             onnx_attr_float(o, "cubic_coeff_a", -0.75));
	ir_set_int(g, n, AT_RESIZE_EXCLUDE, onnx_attr_int(o, "exclude_outside", 0));
	ir_set_float(g, n, AT_RESIZE_EXTRAPOLATION,
	             onnx_attr_float(o, "extrapolation_value", 0));
	onnx_result(o, n, 0);
}

/* ReduceSum takes axes as an input from opset 13, the others from 18. */
static void
tr_reduce(ONode *o)
{
	Graph *g = o->m->g;
	const char *name = o->p->op_type;
	int x = onnx_operand(o, 0);
	int64_t axes[IR_MAXRANK];
	int na;
	bool axes_input = strcmp(name, "ReduceSum") == 0 ? o->m->opset >= 13 :
	                  o->m->opset >= 18;
	if (axes_input)
		na = o->nin > 1 && o->in[1] >= 0 ?
		     onnx_const_ints(o, 1, "axes", axes, IR_MAXRANK) : 0;
	else
		na = MAX(onnx_attr_ints(o, "axes", axes, IR_MAXRANK), 0);
	if (na == 0 && onnx_attr_int(o, "noop_with_empty_axes", 0)) {
		onnx_bind(o->m, o->p->output[0], x);
		return;
	}
	/* the reduction, with what comes before and after it */
	int pre = -1, red = OP_REDUCE_SUM, post = -1;
	if (strcmp(name, "ReduceL1") == 0)
		pre = OP_ABS;
	else if (strcmp(name, "ReduceL2") == 0)
		pre = OP_MUL, post = OP_SQRT;
	else if (strcmp(name, "ReduceSumSquare") == 0)
		pre = OP_MUL;
	else if (strcmp(name, "ReduceLogSum") == 0)
		post = OP_LOG;
	else if (strcmp(name, "ReduceLogSumExp") == 0)
		pre = OP_EXP, post = OP_LOG;
	else
		red = onnx_op_lookup(name)->op;
	if (pre == OP_MUL)
		x = onnx_binary(o, OP_MUL, x, x, -1);
	else if (pre >= 0)
		x = onnx_unary(o, pre, x, -1);
	int n = onnx_node(o, red, &x, 1);
	int at = op_get(red)->attr0;      /* axes, then keepdims */
	ir_set_ints(g, n, at, axes, na);
	ir_set_int(g, n, at + 1, onnx_attr_int(o, "keepdims", 1));
	int y = onnx_result(o, n, post < 0 ? 0 : -1);
	if (post >= 0)
		onnx_unary(o, post, y, 0);
}

/* PRelu: y = relu(x) - slope * relu(-x) */
static void
tr_prelu(ONode *o)
{
	int x = onnx_operand(o, 0), slope = onnx_operand(o, 1);
	Type xt = *onnx_type(o, x), st = *onnx_type(o, slope), bt;
	if (!shape_broadcast(&xt, &st, &bt) && st.rank == 1 && xt.rank > 2 &&
	    st.dim[0] == xt.dim[1]) {
		/* older exporters: one slope per channel, dim 1 */
		int64_t dim[IR_MAXRANK] = {st.dim[0]};
		for (int i = 1; i < xt.rank - 1; i++)
			dim[i] = 1;
		slope = onnx_reshape(o, slope, dim, xt.rank - 1, -1);
	}
	int pos = onnx_unary(o, OP_RELU, x, -1);
	int neg = onnx_unary(o, OP_RELU, onnx_unary(o, OP_NEG, x, -1), -1);
	onnx_binary(o, OP_SUB, pos, onnx_binary(o, OP_MUL, slope, neg, -1), 0);
}

/* Split: one slice per output, sizes from the attribute (opset < 13) or
 * the second input, else equal parts (the last one smaller). */
static void
tr_split(ONode *o)
{
	Graph *g = o->m->g;
	int x = onnx_operand(o, 0);
	Type t = *onnx_type(o, x);
	int axis = norm_axis(o, onnx_attr_int(o, "axis", 0), t.rank);
	int nout = (int)o->p->n_output;
	int64_t sizes[ONNX_MAXIO];
	int n = o->m->opset < 13 ? onnx_attr_ints(o, "split", sizes, ONNX_MAXIO) :
	        o->nin > 1 ? onnx_const_ints(o, 1, "split", sizes, ONNX_MAXIO) : -1;
	if (n < 0) {
		int64_t part = (t.dim[axis] + nout - 1) / nout;
		for (int i = 0; i < nout; i++)
			sizes[i] = MIN(part, t.dim[axis] - i * part);
		n = nout;
	}
	int64_t sum = 0;
	for (int i = 0; i < n; i++)
		sum += sizes[i];
	if (n != nout || sum != t.dim[axis])
		diag_error(o->loc, "the split sizes do not add up to dimension %d "
		           "(%lld) over %d outputs", axis, (long long)t.dim[axis],
		           nout);
	int64_t at = 0, ax = axis;
	for (int i = 0; i < nout; i++) {
		if (sizes[i] <= 0)
			diag_error(o->loc, "output %d would be empty", i);
		int node = onnx_node(o, OP_SLICE, &x, 1);
		ir_set_ints(g, node, AT_SLICE_STARTS, &at, 1);
		ir_set_ints(g, node, AT_SLICE_ENDS, (int64_t[]){at + sizes[i]}, 1);
		ir_set_ints(g, node, AT_SLICE_AXES, &ax, 1);
		onnx_result(o, node, i);
		at += sizes[i];
	}
}

/* DepthToSpace and SpaceToDepth: reshape, transpose, reshape. */
static void
tr_depth_space(ONode *o)
{
	Graph *g = o->m->g;
	int x = onnx_operand(o, 0);
	Type t = *onnx_type(o, x);
	int64_t b = onnx_attr_int(o, "blocksize", 0);
	if (t.rank != 4 || b < 1)
		diag_error(o->loc, "needs a rank-4 input and a positive blocksize");
	int64_t n = t.dim[0], c = t.dim[1], h = t.dim[2], w = t.dim[3];
	int64_t dim[6], perm[6], out[4];
	if (strcmp(o->p->op_type, "DepthToSpace") == 0) {
		if (c % (b * b))
			diag_error(o->loc, "channels %lld are not a multiple of "
			           "blocksize^2", (long long)c);
		bool crd = strcmp(onnx_attr_str(o, "mode", "DCR"), "CRD") == 0;
		int64_t dcr[6] = {n, b, b, c / (b * b), h, w},
		        cr[6] = {n, c / (b * b), b, b, h, w};
		int64_t pd[6] = {0, 3, 4, 1, 5, 2}, pc[6] = {0, 1, 4, 2, 5, 3};
		memcpy(dim, crd ? cr : dcr, sizeof dim);
		memcpy(perm, crd ? pc : pd, sizeof perm);
		memcpy(out, (int64_t[]){n, c / (b * b), h * b, w * b}, sizeof out);
	} else {
		if (h % b || w % b)
			diag_error(o->loc, "height and width must be multiples of "
			           "the blocksize");
		memcpy(dim, (int64_t[]){n, c, h / b, b, w / b, b}, sizeof dim);
		memcpy(perm, (int64_t[]){0, 3, 5, 1, 2, 4}, sizeof perm);
		memcpy(out, (int64_t[]){n, c * b * b, h / b, w / b}, sizeof out);
	}
	int r = onnx_reshape(o, x, dim, 6, -1);
	int node = onnx_node(o, OP_TRANSPOSE, &r, 1);
	ir_set_ints(g, node, AT_TRANSPOSE_PERM, perm, 6);
	onnx_reshape(o, onnx_result(o, node, -1), out, 4, 0);
}

/* ---- quantization: QuantizeLinear, DequantizeLinear and
 * DynamicQuantizeLinear as f32 arithmetic, round (half to even), clip
 * and cast */

/* A per-axis scale or zero point [C] shaped to broadcast along axis of a
 * rank-r tensor; a scalar as it is. */
static int
per_axis(ONode *o, int v, int r)
{
	Type t = *onnx_type(o, v);
	if (t.rank == 0)
		return v;
	int axis = norm_axis(o, onnx_attr_int(o, "axis", 1), r);
	if (t.rank != 1)
		diag_error(o->loc, "a scale or zero point must be a scalar or a "
		           "list, not %s", type_str(o->m->a, &t));
	int64_t dim[IR_MAXRANK] = {t.dim[0]};
	for (int i = 1; i < r - axis; i++)
		dim[i] = 1;
	return onnx_reshape(o, v, dim, r - axis, -1);
}

static int
clip(ONode *o, int x, double lo, double hi, int k)
{
	int n = onnx_node(o, OP_CLIP, &x, 1);
	ir_set_float(o->m->g, n, AT_CLIP_MIN, lo);
	ir_set_float(o->m->g, n, AT_CLIP_MAX, hi);
	return onnx_result(o, n, k);
}

static int
cast_result(ONode *o, int x, int dt, int k)
{
	int n = onnx_node(o, OP_CAST, &x, 1);
	ir_set_int(o->m->g, n, AT_CAST_TO, dt);
	return onnx_result(o, n, k);
}

/* y = saturate(round(x / scale) + zero_point), u8 or i8 */
static void
tr_quantize(ONode *o)
{
	int x = onnx_operand(o, 0), r = onnx_type(o, x)->rank;
	int scale = per_axis(o, onnx_operand(o, 1), r);
	int zp = o->nin > 2 ? per_axis(o, onnx_operand(o, 2), r) : -1;
	int dt = zp >= 0 ? onnx_type(o, zp)->dtype : DT_U8;
	if (dt != DT_U8 && dt != DT_I8)
		diag_error(o->loc, "quantizing to %s is not supported", dt_name[dt]);
	int q = onnx_unary(o, OP_ROUND, onnx_binary(o, OP_DIV, x, scale, -1), -1);
	if (zp >= 0)
		q = onnx_binary(o, OP_ADD, q, cast_to(o, zp, DT_F32), -1);
	q = clip(o, q, dt == DT_U8 ? 0 : -128, dt == DT_U8 ? 255 : 127, -1);
	cast_result(o, q, dt, 0);
}

/* y = (x - zero_point) * scale */
static void
tr_dequantize(ONode *o)
{
	int x = onnx_operand(o, 0), r = onnx_type(o, x)->rank;
	int scale = per_axis(o, onnx_operand(o, 1), r);
	int y = cast_to(o, x, DT_F32);
	if (o->nin > 2)
		y = onnx_binary(o, OP_SUB, y, cast_to(o, per_axis(o,
		                onnx_operand(o, 2), r), DT_F32), -1);
	onnx_binary(o, OP_MUL, y, scale, 0);
}

static int
reduce_all(ONode *o, int op, int x)
{
	int n = onnx_node(o, op, &x, 1);
	ir_set_int(o->m->g, n, op_get(op)->attr0 + 1, 0);     /* keepdims */
	return onnx_result(o, n, -1);
}

/* u8 quantization over the range of x widened to hold 0:
 * scale = (max - min) / 255, zero_point = saturate(round(-min / scale)) */
static void
tr_dynamic_quantize(ONode *o)
{
	int x = onnx_operand(o, 0), zero = onnx_scalar(o, DT_F32, 0);
	int hi = onnx_binary(o, OP_MAX, reduce_all(o, OP_REDUCE_MAX, x), zero,
	                     -1);
	int lo = onnx_binary(o, OP_MIN, reduce_all(o, OP_REDUCE_MIN, x), zero,
	                     -1);
	int scale = onnx_binary(o, OP_DIV, onnx_binary(o, OP_SUB, hi, lo, -1),
	                        onnx_scalar(o, DT_F32, 255), 1);
	int zp = clip(o, onnx_unary(o, OP_ROUND, onnx_unary(o, OP_NEG,
	              onnx_binary(o, OP_DIV, lo, scale, -1), -1), -1), 0, 255,
	              -1);
	cast_result(o, zp, DT_U8, 2);
	int q = onnx_unary(o, OP_ROUND, onnx_binary(o, OP_DIV, x, scale, -1), -1);
	q = clip(o, onnx_binary(o, OP_ADD, q, zp, -1), 0, 255, -1);
	cast_result(o, q, DT_U8, 0);
}

/* ---- the table ---- */

static const OnnxOp table[] = {
#define ONNX(name, op, fn, since) {name, op, fn, since},
#include "onnx.def"
#undef ONNX
};

const OnnxOp *
onnx_op_lookup(const char *name)
{
	for (int i = 0; i < countof(table); i++)
		if (strcmp(table[i].name, name) == 0)
			return &table[i];
	return NULL;
}
