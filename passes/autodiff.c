/* autodiff.c: reverse-mode differentiation in the IR, and the helpers
 * the training passes build ops with.
 *
 * ad_grads() walks the schedule backwards from a scalar loss.  Each op on
 * a path from a wanted value to the loss has a gradient rule (rules[],
 * one entry per op kind) that adds the ops computing its operands'
 * gradients from its result's, as ordinary IR ops appended to the graph:
 * the backward pass is printable, verifiable and planned like the rest.
 * Gradients of a value used several times are summed.  Only values that
 * depend on a wanted value (need[]) get gradients, so frozen parameters,
 * inputs and labels cost nothing.
 *
 * A rule may read its node's operands and result: they stay alive until
 * the backward ops that use them (the memory planner sees the uses).
 * Ops never hold pointers into the graph's arrays across pb_op(), which
 * may move them.
 */
#include <math.h>
#include <string.h>
#include "passes.h"

#define PI 3.14159265358979323846

/* ---- building ops ---- */

int
pb_op(Graph *g, int op, Loc loc, const int *in, int nin)
{
	return ir_add_node(g, op, loc, in, nin);
}

/* The result of node (a fresh temporary), typed by its shape rule.  The
 * training passes only build ops whose operands they have checked, so a
 * shape error here is kiln's bug. */
int
pb_result(Graph *g, int node)
{
	int v = ir_add_result(g, node, NULL);
	const char *err = ir_infer(g, node);
	if (err)
		die("training graph: %s", err);
	return v;
}

int
pb_unary(Graph *g, Loc loc, int op, int a)
{
	return pb_result(g, pb_op(g, op, loc, &a, 1));
}

int
pb_binary(Graph *g, Loc loc, int op, int a, int b)
{
	return pb_result(g, pb_op(g, op, loc, (int[]){a, b}, 2));
}

/* A constant scalar of dtype f32 or f64: an existing one of the same
 * bits when the graph has it, so that rules and optimizers do not
 * scatter copies of 1 and 0.9 over the graph. */
int
pb_const(Graph *g, int dtype, double x)
{
	void *p = arena_alloc(g->mod->arena, sizeof(double));
	size_t size = dtype == DT_F64 ? sizeof(double) : sizeof(float);
	if (dtype == DT_F64)
		*(double *)p = x;
	else
		*(float *)p = (float)x;
	for (int i = 0; i < g->nval; i++) {
		const Value *c = &g->val[i];
		if (c->kind == VK_CONST && c->type.rank == 0 &&
		    c->type.dtype == dtype && c->data && !memcmp(c->data, p, size))
			return i;
	}
	int v = ir_add_value(g, ir_temp_name(g), VK_CONST,
	                     (Type){.dtype = dtype}, g->loc);
	g->val[v].data = p;
	g->val[v].init = INIT_DATA;
	return v;
}

int
pb_scalar(Graph *g, double x)
{
	return pb_const(g, DT_F32, x);
}

int
pb_reshape(Graph *g, Loc loc, int x, const Type *to)
{
	if (type_eq(&g->val[x].type, to))
		return x;
	int n = pb_op(g, OP_RESHAPE, loc, &x, 1);
	ir_set_ints(g, n, AT_RESHAPE_SHAPE, to->dim, to->rank);
	return pb_result(g, n);
}

/* reduce_sum of x over the dims set in mask; keepdims as given. */
int
pb_sum(Graph *g, Loc loc, int x, unsigned mask, bool keep)
{
	int64_t axes[IR_MAXRANK];
	int na = 0;
	for (int d = 0; d < g->val[x].type.rank; d++)
		if (mask & 1u << d)
			axes[na++] = d;
	int n = pb_op(g, OP_REDUCE_SUM, loc, &x, 1);
	ir_set_ints(g, n, AT_REDUCE_SUM_AXES, axes, na);
	ir_set_int(g, n, AT_REDUCE_SUM_KEEPDIMS, keep);
	return pb_result(g, n);
}

/* A copy in g of node n of graph src (another graph), operands mapped by
 * vmap, the result named as n's; returns the result. */
int
pb_copy_node(Graph *g, const Graph *src, const Node *n, const int *vmap)
{
	int in[IR_MAXIN];
	for (int k = 0; k < n->nin; k++)
		in[k] = n->in[k] < 0 ? -1 : vmap[n->in[k]];
	int c = pb_op(g, n->op, n->loc, in, n->nin);
	const OpInfo *o = op_get(n->op);
	for (int k = 0; k < o->nattr; k++)
		g->attr[g->node[c].attr + k] = src->attr[n->attr + k];
	int v = ir_add_result(g, c, src->val[n->out].name);
	const char *err = ir_infer(g, c);
	if (err)
		die("copying a node: %s", err);
	return v;
}

/* A param or const like v of graph src, in g; returns it. */
int
pb_copy_global(Graph *g, const Value *v)
{
	int n = ir_add_value(g, v->name, v->kind, v->type, v->loc);
	Value *c = &g->val[n];
	c->init = v->init;
	c->fan_in = v->fan_in;
	c->fan_out = v->fan_out;
	c->seed = v->seed;
	c->data = v->data;
	c->elided = v->elided;
	return n;
}

/* ---- differentiation ---- */

typedef struct {
	Graph *g;
	Loc loc;            /* the node being differentiated */
	int *grad;          /* per value: its gradient so far, or -1 */
	bool *need;         /* per value: depends on a wanted value */
} Ad;

typedef void GradRule(Ad *ad, const Node *n, int dy);

/* Adds gradient contribution d to value v. */
static void
acc(Ad *ad, int v, int d)
{
	if (v < 0 || !ad->need[v])
		return;
	ad->grad[v] = ad->grad[v] < 0 ? d :
	              pb_binary(ad->g, ad->loc, OP_ADD, ad->grad[v], d);
}

/* d, the gradient of a broadcast result, summed back to the shape of
 * operand v: over the dims v lacks (leading) or has as 1. */
static int
unbroadcast(Ad *ad, int d, int v)
{
	Type to = ad->g->val[v].type, from = ad->g->val[d].type;
	if (type_eq(&to, &from))
		return d;
	unsigned mask = 0;
	int off = from.rank - to.rank;
	for (int i = 0; i < from.rank; i++)
		if (i < off || (to.dim[i - off] == 1 && from.dim[i] != 1))
			mask |= 1u << i;
	if (mask)
		d = pb_sum(ad->g, ad->loc, d, mask, true);
	return pb_reshape(ad->g, ad->loc, d, &to);
}

static int
bin(Ad *ad, int op, int a, int b)
{
	return pb_binary(ad->g, ad->loc, op, a, b);
}

static int
un(Ad *ad, int op, int a)
{
	return pb_unary(ad->g, ad->loc, op, a);
}

static bool
wants(Ad *ad, int v)
{
	return v >= 0 && ad->need[v];
}

static void
grad_add(Ad *ad, const Node *n, int dy)
{
	acc(ad, n->in[0], unbroadcast(ad, dy, n->in[0]));
	acc(ad, n->in[1], unbroadcast(ad, dy, n->in[1]));
}

static void
grad_sub(Ad *ad, const Node *n, int dy)
{
	acc(ad, n->in[0], unbroadcast(ad, dy, n->in[0]));
	if (wants(ad, n->in[1]))
		acc(ad, n->in[1], unbroadcast(ad, un(ad, OP_NEG, dy), n->in[1]));
}

static void
grad_mul(Ad *ad, const Node *n, int dy)
{
	int a = n->in[0], b = n->in[1];
	if (wants(ad, a))
		acc(ad, a, unbroadcast(ad, bin(ad, OP_MUL, dy, b), a));
	if (wants(ad, b))
		acc(ad, b, unbroadcast(ad, bin(ad, OP_MUL, dy, a), b));
}

/* y = a / b:  da = dy / b,  db = -dy * y / b */
static void
grad_div(Ad *ad, const Node *n, int dy)
{
	int a = n->in[0], b = n->in[1];
	if (wants(ad, a))
		acc(ad, a, unbroadcast(ad, bin(ad, OP_DIV, dy, b), a));
	if (wants(ad, b)) {
		int t = bin(ad, OP_DIV, bin(ad, OP_MUL, dy, n->out), b);
		acc(ad, b, unbroadcast(ad, un(ad, OP_NEG, t), b));
	}
}

static void
grad_neg(Ad *ad, const Node *n, int dy)
{
	acc(ad, n->in[0], un(ad, OP_NEG, dy));
}

static void
grad_relu(Ad *ad, const Node *n, int dy)
{
	acc(ad, n->in[0], bin(ad, OP_RELU_GRAD, dy, n->in[0]));
}

/* y = sigmoid(x): dx = dy * y * (1 - y) */
static void
grad_sigmoid(Ad *ad, const Node *n, int dy)
{
	int y = n->out;
	int t = bin(ad, OP_SUB, pb_scalar(ad->g, 1), y);
	acc(ad, n->in[0], bin(ad, OP_MUL, bin(ad, OP_MUL, dy, y), t));
}

/* y = tanh(x): dx = dy * (1 - y * y) */
static void
grad_tanh(Ad *ad, const Node *n, int dy)
{
	int y = n->out;
	int t = bin(ad, OP_SUB, pb_scalar(ad->g, 1), bin(ad, OP_MUL, y, y));
	acc(ad, n->in[0], bin(ad, OP_MUL, dy, t));
}

static void
grad_exp(Ad *ad, const Node *n, int dy)
{
	acc(ad, n->in[0], bin(ad, OP_MUL, dy, n->out));
}

static void
grad_log(Ad *ad, const Node *n, int dy)
{
	acc(ad, n->in[0], bin(ad, OP_DIV, dy, n->in[0]));
}

/* y = sqrt(x): dx = dy / (2 y) */
static void
grad_sqrt(Ad *ad, const Node *n, int dy)
{
	int t = bin(ad, OP_MUL, n->out, pb_scalar(ad->g, 2));
	acc(ad, n->in[0], bin(ad, OP_DIV, dy, t));
}

/* y = 1 / x: dx = -dy * y * y */
static void
grad_reciprocal(Ad *ad, const Node *n, int dy)
{
	int t = bin(ad, OP_MUL, dy, bin(ad, OP_MUL, n->out, n->out));
	acc(ad, n->in[0], un(ad, OP_NEG, t));
}

static void
grad_abs(Ad *ad, const Node *n, int dy)
{
	acc(ad, n->in[0], bin(ad, OP_MUL, dy, un(ad, OP_SIGN, n->in[0])));
}

/* softplus' = sigmoid */
static void
grad_softplus(Ad *ad, const Node *n, int dy)
{
	acc(ad, n->in[0], bin(ad, OP_MUL, dy, un(ad, OP_SIGMOID, n->in[0])));
}

/* where(cond, dy, other): the gradient through a piecewise op */
static int
select(Ad *ad, int cond, int dy, int other)
{
	int w = pb_op(ad->g, OP_WHERE, ad->loc, (int[]){cond, dy, other}, 3);
	return pb_result(ad->g, w);
}

/* y = x > 0 ? x : alpha x */
static void
grad_leaky_relu(Ad *ad, const Node *n, int dy)
{
	double alpha = ir_attr(ad->g, n, AT_LEAKY_RELU_ALPHA)->f;
	int x = n->in[0];
	int pos = bin(ad, OP_GREATER, x, pb_scalar(ad->g, 0));
	acc(ad, x, select(ad, pos, dy, bin(ad, OP_MUL, dy,
	                                   pb_scalar(ad->g, alpha))));
}

/* the gradient passes where min <= x <= max */
static void
grad_clip(Ad *ad, const Node *n, int dy)
{
	double lo = ir_attr(ad->g, n, AT_CLIP_MIN)->f;
	double hi = ir_attr(ad->g, n, AT_CLIP_MAX)->f;
	int x = n->in[0];
	int in = bin(ad, OP_AND,
	             bin(ad, OP_GREATER_EQUAL, x, pb_scalar(ad->g, lo)),
	             bin(ad, OP_LESS_EQUAL, x, pb_scalar(ad->g, hi)));
	acc(ad, x, select(ad, in, dy, pb_scalar(ad->g, 0)));
}

/* Copies of the data in another shape: the gradient is reshaped back. */
static void
grad_reshape(Ad *ad, const Node *n, int dy)
{
	Type t = ad->g->val[n->in[0]].type;
	acc(ad, n->in[0], pb_reshape(ad->g, ad->loc, dy, &t));
}

static void
grad_identity(Ad *ad, const Node *n, int dy)
{
	acc(ad, n->in[0], dy);
}

static void
grad_transpose(Ad *ad, const Node *n, int dy)
{
	const Attr *p = ir_attr(ad->g, n, AT_TRANSPOSE_PERM);
	int64_t inv[IR_MAXRANK];
	for (int i = 0; i < p->n; i++)
		inv[p->ints[i]] = i;
	int r = p->n, t = pb_op(ad->g, OP_TRANSPOSE, ad->loc, &dy, 1);
	ir_set_ints(ad->g, t, AT_TRANSPOSE_PERM, inv, r);
	acc(ad, n->in[0], pb_result(ad->g, t));
}

/* y = alpha op(A) op(B) + beta C with op(T) = T or T^T:
 *   dA = alpha dy op(B)^T    (A^T: alpha op(B) dy^T)
 *   dB = alpha op(A)^T dy    (B^T: alpha dy^T op(A))
 *   dC = beta dy, summed to C's shape */
static void
grad_gemm(Ad *ad, const Node *n, int dy)
{
	Graph *g = ad->g;
	double alpha = ir_attr(g, n, AT_GEMM_ALPHA)->f;
	double beta = ir_attr(g, n, AT_GEMM_BETA)->f;
	int ta = (int)ir_attr(g, n, AT_GEMM_TRANS_A)->i;
	int tb = (int)ir_attr(g, n, AT_GEMM_TRANS_B)->i;
	int a = n->in[0], b = n->in[1], c = n->nin > 2 ? n->in[2] : -1;
	/* operands and transposes of the gemm giving dA, then dB */
	int x[2] = {ta ? b : dy, tb ? dy : a}, y[2] = {ta ? dy : b, tb ? a : dy};
	int tx[2] = {ta ? tb : 0, tb ? 1 : !ta}, ty[2] = {ta ? 1 : !tb,
	                                                  tb ? ta : 0};
	for (int k = 0; k < 2; k++) {
		if (!wants(ad, n->in[k]))
			continue;
		int m = pb_op(g, OP_GEMM, ad->loc, (int[]){x[k], y[k]}, 2);
		ir_set_float(g, m, AT_GEMM_ALPHA, alpha);
		ir_set_int(g, m, AT_GEMM_TRANS_A, tx[k]);
		ir_set_int(g, m, AT_GEMM_TRANS_B, ty[k]);
		acc(ad, n->in[k], pb_result(g, m));
	}
	if (wants(ad, c)) {
		int t = unbroadcast(ad, dy, c);
		if (beta != 1)
			t = bin(ad, OP_MUL, t, pb_scalar(g, beta));
		acc(ad, c, t);
	}
}

/* A node op on (a, b) with n's strides, pads, dilations and group (n a
 * conv2d or conv2d_transpose: the attributes share names, not ids); a
 * conv2d_grad_w also gets the kernel of n's weights. */
static int
conv_like(Ad *ad, const Node *n, int op, int a, int b)
{
	Graph *g = ad->g;
	static const char *const names[] = {"strides", "pads", "dilations",
	                                    "group"};
	int t = pb_op(g, op, ad->loc, (int[]){a, b}, 2);
	for (int k = 0; k < countof(names); k++)
		*ir_attr(g, &g->node[t], op_attr_lookup(op, names[k])) =
		    *ir_attr(g, n, op_attr_lookup(n->op, names[k]));
	if (op == OP_CONV2D_GRAD_W)
		ir_set_ints(g, t, AT_CONV2D_GRAD_W_KERNEL,
		            g->val[n->in[1]].type.dim + 2, 2);
	return t;
}

/* conv2d: dx is the transposed convolution of dy with the same weights
 * (output padding restores the rows and columns the strides dropped),
 * dw is conv2d_grad_w, db sums dy over batch and space. */
static void
grad_conv2d(Ad *ad, const Node *n, int dy)
{
	Graph *g = ad->g;
	int x = n->in[0], w = n->in[1], b = n->nin > 2 ? n->in[2] : -1;
	if (wants(ad, x)) {
		const int64_t *st = ir_attr(g, n, AT_CONV2D_STRIDES)->ints;
		const int64_t *pads = ir_attr(g, n, AT_CONV2D_PADS)->ints;
		const int64_t *dil = ir_attr(g, n, AT_CONV2D_DILATIONS)->ints;
		Type xt = g->val[x].type, wt = g->val[w].type, yt = g->val[dy].type;
		int64_t op[2];
		for (int i = 0; i < 2; i++)
			op[i] = xt.dim[2 + i] - ((yt.dim[2 + i] - 1) * st[i] -
			        pads[i] - pads[2 + i] + (wt.dim[2 + i] - 1) * dil[i] + 1);
		int t = conv_like(ad, n, OP_CONV2D_TRANSPOSE, dy, w);
		ir_set_ints(g, t, AT_CONV2D_TRANSPOSE_OUTPUT_PADDING, op, 2);
		acc(ad, x, pb_result(g, t));
	}
	if (wants(ad, w))
		acc(ad, w, pb_result(g, conv_like(ad, n, OP_CONV2D_GRAD_W, x, dy)));
	if (wants(ad, b))
		acc(ad, b, pb_sum(g, ad->loc, dy, 1u | 4u | 8u, false));
}

/* conv2d_transpose is conv2d's adjoint in x: dx is conv2d(dy, w) with
 * the same attributes, dw is conv2d_grad_w with the roles of input and
 * output gradient swapped, db sums dy over batch and space. */
static void
grad_conv2d_transpose(Ad *ad, const Node *n, int dy)
{
	Graph *g = ad->g;
	int x = n->in[0], w = n->in[1], b = n->nin > 2 ? n->in[2] : -1;
	if (wants(ad, x))
		acc(ad, x, pb_result(g, conv_like(ad, n, OP_CONV2D, dy, w)));
	if (wants(ad, w))
		acc(ad, w, pb_result(g, conv_like(ad, n, OP_CONV2D_GRAD_W, dy, x)));
	if (wants(ad, b))
		acc(ad, b, pb_sum(g, ad->loc, dy, 1u | 4u | 8u, false));
}

static void
grad_maxpool2d(Ad *ad, const Node *n, int dy)
{
	Graph *g = ad->g;
	int t = pb_op(g, OP_MAXPOOL2D_GRAD, ad->loc, (int[]){dy, n->in[0]}, 2);
	static const char *const names[] = {"kernel", "strides", "pads",
	                                    "dilations", "ceil_mode"};
	for (int k = 0; k < countof(names); k++)
		*ir_attr(g, &g->node[t], op_attr_lookup(OP_MAXPOOL2D_GRAD,
		                                        names[k])) =
		    *ir_attr(g, n, op_attr_lookup(OP_MAXPOOL2D, names[k]));
	acc(ad, n->in[0], pb_result(g, t));
}

/* The mask is a function of (seed, step, position): the same op on dy. */
static void
grad_dropout_train(Ad *ad, const Node *n, int dy)
{
	Graph *g = ad->g;
	int t = pb_op(g, OP_DROPOUT_TRAIN, ad->loc, (int[]){dy, n->in[1]}, 2);
	*ir_attr(g, &g->node[t], AT_DROPOUT_TRAIN_RATE) =
	    *ir_attr(g, n, AT_DROPOUT_TRAIN_RATE);
	*ir_attr(g, &g->node[t], AT_DROPOUT_TRAIN_SEED) =
	    *ir_attr(g, n, AT_DROPOUT_TRAIN_SEED);
	acc(ad, n->in[0], pb_result(g, t));
}

/* Sums over axes broadcast back: dy (reduced, keepdims or not) expanded to
 * the input's shape, divided by the count for a mean. */
static void
grad_reduce(Ad *ad, const Node *n, int dy)
{
	Graph *g = ad->g;
	int x = n->in[0];
	Type xt = g->val[x].type, kt = xt;
	unsigned mask;
	const char *err = shape_reduce_mask(g, n, &mask);
	if (err)
		die("%s", err);
	int64_t count = 1;
	for (int d = 0; d < xt.rank; d++)
		if (mask & 1u << d) {
			count *= xt.dim[d];
			kt.dim[d] = 1;
		}
	int t = pb_reshape(g, ad->loc, dy, &kt);
	int e = pb_op(g, OP_EXPAND, ad->loc, &t, 1);
	ir_set_ints(g, e, AT_EXPAND_SHAPE, xt.dim, xt.rank);
	t = pb_result(g, e);
	if (n->op == OP_REDUCE_MEAN)
		t = bin(ad, OP_MUL, t, pb_scalar(g, 1.0 / (double)count));
	acc(ad, x, t);
}

/* y = softmax(x) along axis: dx = y * (dy - sum(dy * y)) */
static void
grad_softmax(Ad *ad, const Node *n, int dy)
{
	Graph *g = ad->g;
	int y = n->out, r = g->val[y].type.rank;
	int64_t axis = ir_attr(g, n, AT_SOFTMAX_AXIS)->i;
	axis = axis < 0 ? axis + r : axis;
	int s = pb_sum(g, ad->loc, bin(ad, OP_MUL, dy, y), 1u << axis, true);
	acc(ad, n->in[0], bin(ad, OP_MUL, y, bin(ad, OP_SUB, dy, s)));
}

/* y = log_softmax(x): dx = dy - exp(y) * sum(dy) */
static void
grad_log_softmax(Ad *ad, const Node *n, int dy)
{
	Graph *g = ad->g;
	int y = n->out, r = g->val[y].type.rank;
	int64_t axis = ir_attr(g, n, AT_LOG_SOFTMAX_AXIS)->i;
	axis = axis < 0 ? axis + r : axis;
	int s = pb_sum(g, ad->loc, dy, 1u << axis, true);
	int p = un(ad, OP_EXP, y);
	acc(ad, n->in[0], bin(ad, OP_SUB, dy, bin(ad, OP_MUL, p, s)));
}

static void
grad_softmax_cross_entropy(Ad *ad, const Node *n, int dy)
{
	Graph *g = ad->g;
	int t = pb_op(g, OP_SOFTMAX_CROSS_ENTROPY_GRAD, ad->loc,
	              (int[]){n->in[0], n->in[1], dy}, 3);
	*ir_attr(g, &g->node[t], AT_SOFTMAX_CROSS_ENTROPY_GRAD_LABEL_SMOOTHING) =
	    *ir_attr(g, n, AT_SOFTMAX_CROSS_ENTROPY_LABEL_SMOOTHING);
	acc(ad, n->in[0], pb_result(g, t));
}

/* y = x Phi(x):  dx = dy (Phi(x) + x phi(x)), Phi the normal CDF;
 * approximate=1: y = x (1 + tanh u) / 2, u = c (x + 0.044715 x^3),
 * dx = dy ((1 + tanh u) / 2 + x (1 - tanh^2 u) c (1 + 3 * 0.044715 x^2) / 2) */
static void
grad_gelu(Ad *ad, const Node *n, int dy)
{
	Graph *g = ad->g;
	int x = n->in[0], d;
	int half = pb_scalar(g, 0.5), one = pb_scalar(g, 1);
	if (ir_attr(g, n, AT_GELU_APPROXIMATE)->i) {
		double c = sqrt(2 / PI);
		int x2 = bin(ad, OP_MUL, x, x);
		int u = bin(ad, OP_MUL, bin(ad, OP_ADD, x, bin(ad, OP_MUL,
		        bin(ad, OP_MUL, x2, x), pb_scalar(g, 0.044715))),
		        pb_scalar(g, c));
		int th = un(ad, OP_TANH, u);
		int du = bin(ad, OP_MUL, bin(ad, OP_ADD, one, bin(ad, OP_MUL, x2,
		             pb_scalar(g, 3 * 0.044715))), pb_scalar(g, c));
		int sech2 = bin(ad, OP_SUB, one, bin(ad, OP_MUL, th, th));
		d = bin(ad, OP_MUL, half, bin(ad, OP_ADD, bin(ad, OP_ADD, one, th),
		        bin(ad, OP_MUL, bin(ad, OP_MUL, x, sech2), du)));
	} else {
		int cdf = bin(ad, OP_MUL, half, bin(ad, OP_ADD, one,
		              un(ad, OP_ERF, bin(ad, OP_MUL, x,
		                                 pb_scalar(g, sqrt(0.5))))));
		int pdf = bin(ad, OP_MUL, un(ad, OP_EXP, bin(ad, OP_MUL,
		              bin(ad, OP_MUL, x, x), pb_scalar(g, -0.5))),
		              pb_scalar(g, 1 / sqrt(2 * PI)));
		d = bin(ad, OP_ADD, cdf, bin(ad, OP_MUL, x, pdf));
	}
	acc(ad, x, bin(ad, OP_MUL, dy, d));
}

/* y = x s, s = sigmoid(x): dx = dy s (1 + x (1 - s)) */
static void
grad_silu(Ad *ad, const Node *n, int dy)
{
	int x = n->in[0], s = un(ad, OP_SIGMOID, x);
	int t = bin(ad, OP_SUB, pb_scalar(ad->g, 1), s);
	t = bin(ad, OP_ADD, pb_scalar(ad->g, 1), bin(ad, OP_MUL, x, t));
	acc(ad, x, bin(ad, OP_MUL, dy, bin(ad, OP_MUL, s, t)));
}

/* y = x > 0 ? x : alpha (e^x - 1): dx = x > 0 ? dy : dy (y + alpha) */
static void
grad_elu(Ad *ad, const Node *n, int dy)
{
	double alpha = ir_attr(ad->g, n, AT_ELU_ALPHA)->f;
	int x = n->in[0];
	int pos = bin(ad, OP_GREATER, x, pb_scalar(ad->g, 0));
	int neg = bin(ad, OP_MUL, dy, bin(ad, OP_ADD, n->out,
	                                  pb_scalar(ad->g, alpha)));
	acc(ad, x, select(ad, pos, dy, neg));
}

/* The transpose of t's last two dims. */
static int
swap_last(Ad *ad, int t)
{
	int r = ad->g->val[t].type.rank;
	int64_t perm[IR_MAXRANK];
	for (int i = 0; i < r; i++)
		perm[i] = i;
	perm[r - 2] = r - 1;
	perm[r - 1] = r - 2;
	int n = pb_op(ad->g, OP_TRANSPOSE, ad->loc, &t, 1);
	ir_set_ints(ad->g, n, AT_TRANSPOSE_PERM, perm, r);
	return pb_result(ad->g, n);
}

/* y = a @ b (batch dims broadcast): da = dy @ b^T, db = a^T @ dy, each
 * summed over the batch dims its operand was broadcast along. */
static void
grad_matmul(Ad *ad, const Node *n, int dy)
{
	int a = n->in[0], b = n->in[1];
	if (wants(ad, a))
		acc(ad, a, unbroadcast(ad, bin(ad, OP_MATMUL, dy, swap_last(ad, b)),
		                       a));
	if (wants(ad, b))
		acc(ad, b, unbroadcast(ad, bin(ad, OP_MATMUL, swap_last(ad, a), dy),
		                       b));
}

/* Each operand's part of dy, sliced along the axis. */
static void
grad_concat(Ad *ad, const Node *n, int dy)
{
	Graph *g = ad->g;
	int r = g->val[n->out].type.rank;
	int64_t axis = ir_attr(g, n, AT_CONCAT_AXIS)->i, off = 0;
	axis = axis < 0 ? axis + r : axis;
	for (int k = 0; k < n->nin; k++) {
		int64_t d = g->val[n->in[k]].type.dim[axis];
		if (wants(ad, n->in[k])) {
			int s = pb_op(g, OP_SLICE, ad->loc, &dy, 1);
			int64_t end = off + d;
			ir_set_ints(g, s, AT_SLICE_STARTS, &off, 1);
			ir_set_ints(g, s, AT_SLICE_ENDS, &end, 1);
			ir_set_ints(g, s, AT_SLICE_AXES, &axis, 1);
			acc(ad, n->in[k], pb_result(g, s));
		}
		off += d;
	}
}

/* dy padded with zeros back to x's shape (unit steps). */
static void
grad_slice(Ad *ad, const Node *n, int dy)
{
	Graph *g = ad->g;
	Type xt = g->val[n->in[0]].type;
	int64_t start[IR_MAXRANK], step[IR_MAXRANK], count[IR_MAXRANK];
	int64_t pads[2 * IR_MAXRANK];
	if (shape_slice_params(g, n, start, step, count))
		die("slice gradient: bad slice");
	for (int d = 0; d < xt.rank; d++) {
		if (step[d] != 1)
			diag_error(n->loc, "autodiff: the gradient of a slice with "
			           "steps other than 1 is not supported yet");
		pads[d] = start[d];
		pads[xt.rank + d] = xt.dim[d] - start[d] - count[d];
	}
	int p = pb_op(g, OP_PAD, ad->loc, &dy, 1);
	ir_set_ints(g, p, AT_PAD_PADS, pads, 2 * xt.rank);
	acc(ad, n->in[0], pb_result(g, p));
}

/* constant padding: the gradient is dy without the padding */
static void
grad_pad(Ad *ad, const Node *n, int dy)
{
	Graph *g = ad->g;
	const Attr *p = ir_attr(g, n, AT_PAD_PADS);
	Type xt = g->val[n->in[0]].type;
	int64_t starts[IR_MAXRANK], ends[IR_MAXRANK];
	if (strcmp(ir_attr(g, n, AT_PAD_MODE)->s, "constant") != 0)
		diag_error(n->loc, "autodiff: only constant padding has a gradient "
		           "rule so far");
	for (int d = 0; d < xt.rank; d++) {
		if (p->ints[d] < 0 || p->ints[xt.rank + d] < 0)
			diag_error(n->loc, "autodiff: padding that crops has no "
			           "gradient rule yet");
		starts[d] = p->ints[d];
		ends[d] = p->ints[d] + xt.dim[d];
	}
	int s = pb_op(g, OP_SLICE, ad->loc, &dy, 1);
	ir_set_ints(g, s, AT_SLICE_STARTS, starts, xt.rank);
	ir_set_ints(g, s, AT_SLICE_ENDS, ends, xt.rank);
	acc(ad, n->in[0], pb_result(g, s));
}

/* An embedding lookup (gather along axis 0): dy's rows are added into a
 * zero table at their indices (scatter_nd with reduction add). */
static void
grad_gather(Ad *ad, const Node *n, int dy)
{
	Graph *g = ad->g;
	int x = n->in[0], idx = n->in[1];
	if (ir_attr(g, n, AT_GATHER_AXIS)->i != 0)
		diag_error(n->loc, "autodiff: the gradient of a gather along an "
		           "axis other than 0 is not supported yet");
	Type xt = g->val[x].type, it = g->val[idx].type;
	it.dim[it.rank++] = 1;
	int zero = pb_scalar(g, 0);
	int e = pb_op(g, OP_EXPAND, ad->loc, &zero, 1);
	ir_set_ints(g, e, AT_EXPAND_SHAPE, xt.dim, xt.rank);
	int z = pb_result(g, e);
	int ii = pb_reshape(g, ad->loc, idx, &it);
	int s = pb_op(g, OP_SCATTER_ND, ad->loc, (int[]){z, ii, dy}, 3);
	ir_attr(g, &g->node[s], AT_SCATTER_ND_REDUCTION)->s = "add";
	acc(ad, x, pb_result(g, s));
}

/* layernorm over dims axis..: with xhat = (x - mean) / sd and
 * gs = dy * scale,  dx = (gs - mean(gs) - xhat mean(gs xhat)) / sd,
 * dscale = sum of dy xhat and dbias = sum of dy over the leading dims. */
static void
grad_layernorm(Ad *ad, const Node *n, int dy)
{
	Graph *g = ad->g;
	int x = n->in[0], sc = n->in[1], bias = n->nin > 2 ? n->in[2] : -1;
	Type xt = g->val[x].type;
	int64_t axis = ir_attr(g, n, AT_LAYERNORM_AXIS)->i;
	double eps = ir_attr(g, n, AT_LAYERNORM_EPSILON)->f;
	axis = axis < 0 ? axis + xt.rank : axis;
	unsigned norm = 0;
	for (int d = (int)axis; d < xt.rank; d++)
		norm |= 1u << d;
	int64_t cnt = 1;
	for (int d = (int)axis; d < xt.rank; d++)
		cnt *= xt.dim[d];
	int inv = pb_scalar(g, 1.0 / (double)cnt);
	int mean = bin(ad, OP_MUL, pb_sum(g, ad->loc, x, norm, true), inv);
	int xc = bin(ad, OP_SUB, x, mean);
	int var = bin(ad, OP_MUL, pb_sum(g, ad->loc, bin(ad, OP_MUL, xc, xc),
	                                 norm, true), inv);
	int sd = un(ad, OP_SQRT, bin(ad, OP_ADD, var, pb_scalar(g, eps)));
	int xhat = bin(ad, OP_DIV, xc, sd);
	if (wants(ad, x)) {
		int gs = bin(ad, OP_MUL, dy, sc);
		int m1 = bin(ad, OP_MUL, pb_sum(g, ad->loc, gs, norm, true), inv);
		int m2 = bin(ad, OP_MUL, pb_sum(g, ad->loc, bin(ad, OP_MUL, gs, xhat),
		                                norm, true), inv);
		int t = bin(ad, OP_SUB, bin(ad, OP_SUB, gs, m1),
		            bin(ad, OP_MUL, xhat, m2));
		acc(ad, x, bin(ad, OP_DIV, t, sd));
	}
	if (wants(ad, sc))
		acc(ad, sc, unbroadcast(ad, bin(ad, OP_MUL, dy, xhat), sc));
	if (wants(ad, bias))
		acc(ad, bias, unbroadcast(ad, dy, bias));
}

static GradRule *const rules[NOP] = {
	[OP_ADD] = grad_add,
	[OP_SUB] = grad_sub,
	[OP_MUL] = grad_mul,
	[OP_DIV] = grad_div,
	[OP_NEG] = grad_neg,
	[OP_RELU] = grad_relu,
	[OP_SIGMOID] = grad_sigmoid,
	[OP_TANH] = grad_tanh,
	[OP_EXP] = grad_exp,
	[OP_LOG] = grad_log,
	[OP_SQRT] = grad_sqrt,
	[OP_RECIPROCAL] = grad_reciprocal,
	[OP_ABS] = grad_abs,
	[OP_SOFTPLUS] = grad_softplus,
	[OP_LEAKY_RELU] = grad_leaky_relu,
	[OP_CLIP] = grad_clip,
	[OP_RESHAPE] = grad_reshape,
	[OP_FLATTEN] = grad_reshape,
	[OP_DROPOUT] = grad_identity,       /* inference dropout copies */
	[OP_TRANSPOSE] = grad_transpose,
	[OP_GEMM] = grad_gemm,
	[OP_CONV2D] = grad_conv2d,
	[OP_CONV2D_TRANSPOSE] = grad_conv2d_transpose,
	[OP_GELU] = grad_gelu,
	[OP_SILU] = grad_silu,
	[OP_ELU] = grad_elu,
	[OP_MATMUL] = grad_matmul,
	[OP_CONCAT] = grad_concat,
	[OP_SLICE] = grad_slice,
	[OP_PAD] = grad_pad,
	[OP_GATHER] = grad_gather,
	[OP_LAYERNORM] = grad_layernorm,
	[OP_MAXPOOL2D] = grad_maxpool2d,
	[OP_DROPOUT_TRAIN] = grad_dropout_train,
	[OP_REDUCE_SUM] = grad_reduce,
	[OP_REDUCE_MEAN] = grad_reduce,
	[OP_SOFTMAX] = grad_softmax,
	[OP_LOG_SOFTMAX] = grad_log_softmax,
	[OP_SOFTMAX_CROSS_ENTROPY] = grad_softmax_cross_entropy,
};

bool
ad_has_rule(int op)
{
	return rules[op] != NULL;
}

void
ad_grads(Graph *g, int loss, const int *wrt, int nwrt, int *out)
{
	Arena *a = g->mod->arena;
	int nv = g->nval, nn = g->nnode;
	Ad ad = {.g = g};
	ad.grad = arena_alloc(a, (nv + 1) * sizeof *ad.grad);
	ad.need = arena_alloc(a, nv + 1);
	for (int v = 0; v < nv; v++)
		ad.grad[v] = -1;
	for (int i = 0; i < nwrt; i++)
		ad.need[wrt[i]] = true;
	for (int i = 0; i < nn; i++) {
		const Node *n = &g->node[i];
		bool need = false;
		for (int k = 0; k < n->nin && !n->dead; k++)
			need |= n->in[k] >= 0 && ad.need[n->in[k]];
		ad.need[n->out] = need && (g->val[n->out].type.dtype == DT_F32 ||
		                           g->val[n->out].type.dtype == DT_F64);
	}
	/* values made from here on are gradients; need[] covers the old ones */
	ad.grad[loss] = pb_scalar(g, 1);
	for (int i = nn - 1; i >= 0; i--) {
		Node n = g->node[i];
		if (n.dead || n.out >= nv || ad.grad[n.out] < 0 || !ad.need[n.out])
			continue;
		if (!rules[n.op])
			diag_error(n.loc, "autodiff: %s has no gradient rule yet, and "
			           "'%s' lies between a trained parameter and the loss",
			           op_get(n.op)->name, g->val[n.out].name);
		ad.loc = n.loc;
		rules[n.op](&ad, &n, ad.grad[n.out]);
	}
	for (int i = 0; i < nwrt; i++)
		out[i] = ad.grad[wrt[i]];
}
