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

/* The attribute of n called name (the 2-D and 3-D ops share names). */
static const Attr *
named(Ad *ad, const Node *n, const char *name)
{
	return ir_attr(ad->g, n, op_attr_lookup(n->op, name));
}

/* A node op on operands in[] with every attribute of n whose name op
 * also has (the 2-D and 3-D window ops and their gradients share names,
 * not ids); the caller sets the others. */
static int
window_op(Ad *ad, const Node *n, int op, const int *in, int nin)
{
	Graph *g = ad->g;
	int t = pb_op(g, op, ad->loc, in, nin);
	const OpInfo *o = op_get(op);
	for (int k = o->attr0; k < o->attr0 + o->nattr; k++) {
		int from = op_attr_lookup(n->op, attr_info[k].name);
		if (from >= 0)
			*ir_attr(g, &g->node[t], k) = *ir_attr(g, n, from);
	}
	return t;
}

/* The sum of dy over all dims but the channels (1): a bias's gradient. */
static int
channel_sum(Ad *ad, int dy, bool keep)
{
	unsigned all = (1u << ad->g->val[dy].type.rank) - 1;
	return pb_sum(ad->g, ad->loc, dy, all & ~2u, keep);
}

/* The weight and bias gradients of a convolution node n (either way):
 * conv2d_grad_w (conv3d_grad_w) of its input-side operand in and its
 * output-side gradient out, the kernel's window from w; db sums dy over
 * batch and space. */
static void
grad_weight_bias(Ad *ad, const Node *n, int in, int out, int dy)
{
	Graph *g = ad->g;
	int w = n->in[1], b = n->nin > 2 ? n->in[2] : -1;
	int nsp = g->val[w].type.rank - 2;
	int gw = nsp == 2 ? OP_CONV2D_GRAD_W : OP_CONV3D_GRAD_W;
	if (wants(ad, w)) {
		int t = window_op(ad, n, gw, (int[]){in, out}, 2);
		ir_set_ints(g, t, op_attr_lookup(gw, "kernel"),
		            g->val[w].type.dim + 2, nsp);
		acc(ad, w, pb_result(g, t));
	}
	if (wants(ad, b))
		acc(ad, b, channel_sum(ad, dy, false));
}

/* conv2d and conv3d: dx is the transposed convolution of dy with the same
 * weights (output padding restores the rows and columns the strides
 * dropped), dw is conv2d_grad_w (conv3d_grad_w), db sums dy over batch
 * and space. */
static void
grad_conv(Ad *ad, const Node *n, int dy)
{
	Graph *g = ad->g;
	int x = n->in[0], w = n->in[1];
	int nsp = g->val[x].type.rank - 2;
	int tr = nsp == 2 ? OP_CONV2D_TRANSPOSE : OP_CONV3D_TRANSPOSE;
	if (n->op == OP_CONV2D && ir_attr(g, n, AT_CONV2D_WPANEL)->i)
		diag_error(ad->loc, "autodiff: conv2d '%s' has its weights in the "
		           "runtime's panels (wpanel); differentiate the model "
		           "before pack_weights", g->val[n->out].name);
	if (wants(ad, x)) {
		const int64_t *st = named(ad, n, "strides")->ints;
		const int64_t *pads = named(ad, n, "pads")->ints;
		const int64_t *dil = named(ad, n, "dilations")->ints;
		Type xt = g->val[x].type, wt = g->val[w].type, yt = g->val[dy].type;
		int64_t op[3];
		for (int i = 0; i < nsp; i++)
			op[i] = xt.dim[2 + i] - ((yt.dim[2 + i] - 1) * st[i] -
			        pads[i] - pads[nsp + i] + (wt.dim[2 + i] - 1) * dil[i] + 1);
		int t = window_op(ad, n, tr, (int[]){dy, w}, 2);
		ir_set_ints(g, t, op_attr_lookup(tr, "output_padding"), op, nsp);
		acc(ad, x, pb_result(g, t));
	}
	grad_weight_bias(ad, n, x, dy, dy);
}

/* conv2d_transpose (conv3d_transpose) is conv2d's adjoint in x: dx is
 * conv2d(dy, w) with the same attributes, dw is conv2d_grad_w with the
 * roles of input and output gradient swapped, db sums dy over batch and
 * space. */
static void
grad_conv_transpose(Ad *ad, const Node *n, int dy)
{
	Graph *g = ad->g;
	int x = n->in[0], w = n->in[1];
	int nsp = g->val[x].type.rank - 2;
	if (wants(ad, x))
		acc(ad, x, pb_result(g, window_op(ad, n, nsp == 2 ? OP_CONV2D :
		                                  OP_CONV3D, (int[]){dy, w}, 2)));
	grad_weight_bias(ad, n, dy, x, dy);
}

/* maxpool2d (maxpool3d): maxpool2d_grad(dy, x) routes dy to each window's
 * maximum. */
static void
grad_maxpool(Ad *ad, const Node *n, int dy)
{
	int op = n->op == OP_MAXPOOL2D ? OP_MAXPOOL2D_GRAD : OP_MAXPOOL3D_GRAD;
	int t = window_op(ad, n, op, (int[]){dy, n->in[0]}, 2);
	acc(ad, n->in[0], pb_result(ad->g, t));
}

/* avgpool2d (avgpool3d): avgpool2d_grad(dy) spreads dy over each window;
 * it needs only x's size. */
static void
grad_avgpool(Ad *ad, const Node *n, int dy)
{
	Graph *g = ad->g;
	int op = n->op == OP_AVGPOOL2D ? OP_AVGPOOL2D_GRAD : OP_AVGPOOL3D_GRAD;
	Type xt = g->val[n->in[0]].type;
	int t = window_op(ad, n, op, &dy, 1);
	ir_set_ints(g, t, op_attr_lookup(op, "input_size"), xt.dim + 2,
	            xt.rank - 2);
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

/* The type of reduce node n's operand with the dims n reduces set to 1
 * (its result with keepdims); their mask and element count. */
static Type
kept_type(Ad *ad, const Node *n, unsigned *mask, int64_t *count)
{
	Type kt = ad->g->val[n->in[0]].type;
	const char *err = shape_reduce_mask(ad->g, n, mask);
	if (err)
		die("%s", err);
	*count = 1;
	for (int d = 0; d < kt.rank; d++)
		if (*mask & 1u << d) {
			*count *= kt.dim[d];
			kt.dim[d] = 1;
		}
	return kt;
}

/* Sums over axes broadcast back: dy (reduced, keepdims or not) expanded to
 * the input's shape, divided by the count for a mean. */
static void
grad_reduce(Ad *ad, const Node *n, int dy)
{
	Graph *g = ad->g;
	int x = n->in[0];
	Type xt = g->val[x].type;
	unsigned mask;
	int64_t count;
	Type kt = kept_type(ad, n, &mask, &count);
	int t = pb_reshape(g, ad->loc, dy, &kt);
	int e = pb_op(g, OP_EXPAND, ad->loc, &t, 1);
	ir_set_ints(g, e, AT_EXPAND_SHAPE, xt.dim, xt.rank);
	t = pb_result(g, e);
	if (n->op == OP_REDUCE_MEAN)
		t = bin(ad, OP_MUL, t, pb_scalar(g, 1.0 / (double)count));
	acc(ad, x, t);
}

/* reduce_max, reduce_min: dy goes to the elements equal to the result,
 * split evenly between ties (as PyTorch's amax and amin do). */
static void
grad_reduce_ext(Ad *ad, const Node *n, int dy)
{
	Graph *g = ad->g;
	int x = n->in[0];
	unsigned mask;
	int64_t count;
	Type kt = kept_type(ad, n, &mask, &count);
	int y = pb_reshape(g, ad->loc, n->out, &kt);
	int hit = select(ad, bin(ad, OP_EQUAL, x, y), pb_scalar(g, 1),
	                 pb_scalar(g, 0));
	int share = bin(ad, OP_DIV, pb_reshape(g, ad->loc, dy, &kt),
	                pb_sum(g, ad->loc, hit, mask, true));
	acc(ad, x, bin(ad, OP_MUL, hit, share));
}

/* y = product of x:  dx = dy y / x where x != 0.  Where x = 0 that is
 * undefined; dx is dy times the product of the other elements, which is
 * that of the nonzero ones when x is the only zero, else 0. */
static void
grad_reduce_prod(Ad *ad, const Node *n, int dy)
{
	Graph *g = ad->g;
	int x = n->in[0], zero = pb_scalar(g, 0), one = pb_scalar(g, 1);
	unsigned mask;
	int64_t count, axes[IR_MAXRANK];
	Type kt = kept_type(ad, n, &mask, &count);
	int na = 0;
	for (int d = 0; d < kt.rank; d++)
		if (mask & 1u << d)
			axes[na++] = d;
	int isz = bin(ad, OP_EQUAL, x, zero);
	int r = pb_op(g, OP_REDUCE_PROD, ad->loc,
	              (int[]){select(ad, isz, one, x)}, 1);
	ir_set_ints(g, r, AT_REDUCE_PROD_AXES, axes, na);
	int nonzero = pb_result(g, r);
	int zeros = pb_sum(g, ad->loc, select(ad, isz, one, zero), mask, true);
	int at0 = select(ad, bin(ad, OP_EQUAL, zeros, one), nonzero, zero);
	int y = pb_reshape(g, ad->loc, n->out, &kt);
	int others = select(ad, isz, at0, bin(ad, OP_DIV, y, x));
	acc(ad, x, bin(ad, OP_MUL, others, pb_reshape(g, ad->loc, dy, &kt)));
}

/* y = cumsum(x) along an axis: dx = cumsum(dy) the other way round,
 * exclusive when y is. */
static void
grad_cumsum(Ad *ad, const Node *n, int dy)
{
	Graph *g = ad->g;
	int c = pb_op(g, OP_CUMSUM, ad->loc, &dy, 1);
	ir_set_int(g, c, AT_CUMSUM_AXIS, ir_attr(g, n, AT_CUMSUM_AXIS)->i);
	ir_set_int(g, c, AT_CUMSUM_EXCLUSIVE,
	           ir_attr(g, n, AT_CUMSUM_EXCLUSIVE)->i);
	ir_set_int(g, c, AT_CUMSUM_REVERSE, !ir_attr(g, n, AT_CUMSUM_REVERSE)->i);
	acc(ad, n->in[0], pb_result(g, c));
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

/* A scalar constant x of v's dtype (f32 or f64), for the rules of ops
 * that take both. */
static int
like(Ad *ad, int v, double x)
{
	return pb_const(ad->g, ad->g->val[v].type.dtype, x);
}

/* y = gamma (x > 0 ? x : alpha (e^x - 1)):
 * dx = x > 0 ? gamma dy : dy (y + gamma alpha) */
static void
grad_selu(Ad *ad, const Node *n, int dy)
{
	Graph *g = ad->g;
	double alpha = ir_attr(g, n, AT_SELU_ALPHA)->f;
	double gamma = ir_attr(g, n, AT_SELU_GAMMA)->f;
	int x = n->in[0];
	int pos = bin(ad, OP_GREATER, x, pb_scalar(g, 0));
	int neg = bin(ad, OP_MUL, dy, bin(ad, OP_ADD, n->out,
	                                  pb_scalar(g, gamma * alpha)));
	acc(ad, x, select(ad, pos, bin(ad, OP_MUL, dy, pb_scalar(g, gamma)), neg));
}

/* y = x h, h = clip(x/6 + 1/2, 0, 1):  dx = dy (x/3 + 1/2) = dy (2h - 1/2)
 * where 0 < h < 1, else dy h (0 or 1) */
static void
grad_hardswish(Ad *ad, const Node *n, int dy)
{
	Graph *g = ad->g;
	int x = n->in[0], zero = pb_scalar(g, 0), one = pb_scalar(g, 1);
	int h = bin(ad, OP_ADD, bin(ad, OP_MUL, x, pb_scalar(g, 1.0 / 6)),
	            pb_scalar(g, 0.5));
	int in = bin(ad, OP_AND, bin(ad, OP_GREATER, h, zero),
	             bin(ad, OP_LESS, h, one));
	int mid = bin(ad, OP_SUB, bin(ad, OP_MUL, h, pb_scalar(g, 2)),
	              pb_scalar(g, 0.5));
	int out = select(ad, bin(ad, OP_GREATER_EQUAL, h, one), one, zero);
	acc(ad, x, bin(ad, OP_MUL, dy, select(ad, in, mid, out)));
}

/* y = clip(alpha x + beta, 0, 1):
 * dx = alpha dy where 0 < alpha x + beta < 1, else 0 */
static void
grad_hardsigmoid(Ad *ad, const Node *n, int dy)
{
	Graph *g = ad->g;
	double alpha = ir_attr(g, n, AT_HARDSIGMOID_ALPHA)->f;
	double beta = ir_attr(g, n, AT_HARDSIGMOID_BETA)->f;
	int x = n->in[0], zero = pb_scalar(g, 0);
	int t = bin(ad, OP_ADD, bin(ad, OP_MUL, x, pb_scalar(g, alpha)),
	            pb_scalar(g, beta));
	int in = bin(ad, OP_AND, bin(ad, OP_GREATER, t, zero),
	             bin(ad, OP_LESS, t, pb_scalar(g, 1)));
	acc(ad, x, select(ad, in, bin(ad, OP_MUL, dy, pb_scalar(g, alpha)), zero));
}

/* y = x / (1 + |x|):  dx = dy / (1 + |x|)^2 */
static void
grad_softsign(Ad *ad, const Node *n, int dy)
{
	int x = n->in[0];
	int d = bin(ad, OP_ADD, pb_scalar(ad->g, 1), un(ad, OP_ABS, x));
	acc(ad, x, bin(ad, OP_DIV, dy, bin(ad, OP_MUL, d, d)));
}

/* y = max(0, x) + min(0, alpha (e^(x/alpha) - 1)):
 * dx = x > 0 ? dy : dy e^(x/alpha) */
static void
grad_celu(Ad *ad, const Node *n, int dy)
{
	Graph *g = ad->g;
	double alpha = ir_attr(g, n, AT_CELU_ALPHA)->f;
	int x = n->in[0];
	int e = un(ad, OP_EXP, bin(ad, OP_MUL, x, pb_scalar(g, 1 / alpha)));
	acc(ad, x, select(ad, bin(ad, OP_GREATER, x, pb_scalar(g, 0)), dy,
	                  bin(ad, OP_MUL, dy, e)));
}

/* y = x > alpha ? x : 0 */
static void
grad_thresholded_relu(Ad *ad, const Node *n, int dy)
{
	Graph *g = ad->g;
	double alpha = ir_attr(g, n, AT_THRESHOLDED_RELU_ALPHA)->f;
	int x = n->in[0];
	acc(ad, x, select(ad, bin(ad, OP_GREATER, x, pb_scalar(g, alpha)), dy,
	                  pb_scalar(g, 0)));
}

/* y = x -+ bias outside [-lambd, lambd], else 0 */
static void
grad_shrink(Ad *ad, const Node *n, int dy)
{
	Graph *g = ad->g;
	double lambd = ir_attr(g, n, AT_SHRINK_LAMBD)->f;
	int x = n->in[0];
	int out = bin(ad, OP_GREATER, un(ad, OP_ABS, x), pb_scalar(g, lambd));
	acc(ad, x, select(ad, out, dy, pb_scalar(g, 0)));
}

/* erf' = 2/sqrt(pi) e^(-x^2) */
static void
grad_erf(Ad *ad, const Node *n, int dy)
{
	Graph *g = ad->g;
	int x = n->in[0];
	int e = un(ad, OP_EXP, bin(ad, OP_MUL, bin(ad, OP_MUL, x, x),
	                           pb_scalar(g, -1)));
	acc(ad, x, bin(ad, OP_MUL, dy, bin(ad, OP_MUL, e,
	                                   pb_scalar(g, 2 / sqrt(PI)))));
}

static void
grad_sin(Ad *ad, const Node *n, int dy)
{
	acc(ad, n->in[0], bin(ad, OP_MUL, dy, un(ad, OP_COS, n->in[0])));
}

static void
grad_cos(Ad *ad, const Node *n, int dy)
{
	int s = un(ad, OP_NEG, un(ad, OP_SIN, n->in[0]));
	acc(ad, n->in[0], bin(ad, OP_MUL, dy, s));
}

/* y = a^b:  da = dy b a^(b-1),  db = dy y ln(a) (real for a > 0 only) */
static void
grad_pow(Ad *ad, const Node *n, int dy)
{
	int a = n->in[0], b = n->in[1];
	if (wants(ad, a)) {
		int p = bin(ad, OP_POW, a, bin(ad, OP_SUB, b, like(ad, b, 1)));
		acc(ad, a, unbroadcast(ad, bin(ad, OP_MUL, dy, bin(ad, OP_MUL, b, p)),
		                       a));
	}
	if (wants(ad, b)) {
		if (ad->g->val[a].type.dtype != DT_F32)
			diag_error(ad->loc, "autodiff: the gradient of pow's exponent "
			           "needs f32 operands (log is f32 only)");
		int t = bin(ad, OP_MUL, n->out, un(ad, OP_LOG, a));
		acc(ad, b, unbroadcast(ad, bin(ad, OP_MUL, dy, t), b));
	}
}

/* y = max(a, b) (min: the smaller):  dy goes to the larger operand, half
 * to each on a tie, as PyTorch's maximum and minimum do. */
static void
grad_max(Ad *ad, const Node *n, int dy)
{
	int a = n->in[0], b = n->in[1];
	int cmp = n->op == OP_MAX ? OP_GREATER : OP_LESS;
	int tie = select(ad, bin(ad, OP_EQUAL, a, b), like(ad, dy, 0.5),
	                 like(ad, dy, 0));
	int w = select(ad, bin(ad, cmp, a, b), like(ad, dy, 1), tie);
	int da = bin(ad, OP_MUL, dy, w);
	if (wants(ad, a))
		acc(ad, a, unbroadcast(ad, da, a));
	if (wants(ad, b))
		acc(ad, b, unbroadcast(ad, bin(ad, OP_SUB, dy, da), b));
}

/* y = cond ? a : b:  dy goes to a where cond holds, to b elsewhere; the
 * condition (bool) has no gradient. */
static void
grad_where(Ad *ad, const Node *n, int dy)
{
	int c = n->in[0], a = n->in[1], b = n->in[2], zero = like(ad, dy, 0);
	if (wants(ad, a))
		acc(ad, a, unbroadcast(ad, select(ad, c, dy, zero), a));
	if (wants(ad, b))
		acc(ad, b, unbroadcast(ad, select(ad, c, zero, dy), b));
}

/* A cast between f32 and f64 passes dy, cast back.  Other casts carry no
 * gradient: their results or operands are not f32 or f64, so need[] has
 * stopped them before (f16 and bf16 have no arithmetic to train). */
static void
grad_cast(Ad *ad, const Node *n, int dy)
{
	Graph *g = ad->g;
	int x = n->in[0], dt = g->val[x].type.dtype;
	if (!wants(ad, x))
		return;
	if (g->val[dy].type.dtype != dt) {
		int c = pb_op(g, OP_CAST, ad->loc, &dy, 1);
		ir_set_int(g, c, AT_CAST_TO, dt);
		dy = pb_result(g, c);
	}
	acc(ad, x, dy);
}

/* floor, ceil, round, sign and hardmax are constant between their jumps:
 * their gradient is 0 wherever it exists, so they pass nothing back, as
 * comparisons and argmax, whose results are not float, pass nothing. */
static void
grad_none(Ad *ad, const Node *n, int dy)
{
	(void)ad, (void)n, (void)dy;
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

/* t[start:end:step] along axis. */
static int
slice1(Ad *ad, int t, int64_t axis, int64_t start, int64_t end, int64_t step)
{
	Graph *g = ad->g;
	int s = pb_op(g, OP_SLICE, ad->loc, &t, 1);
	ir_set_ints(g, s, AT_SLICE_STARTS, &start, 1);
	ir_set_ints(g, s, AT_SLICE_ENDS, &end, 1);
	ir_set_ints(g, s, AT_SLICE_AXES, &axis, 1);
	if (step != 1)
		ir_set_ints(g, s, AT_SLICE_STEPS, &step, 1);
	return pb_result(g, s);
}

/* t with before and after zeros along axis. */
static int
pad1(Ad *ad, int t, int axis, int64_t before, int64_t after)
{
	Graph *g = ad->g;
	int r = g->val[t].type.rank;
	int64_t pads[2 * IR_MAXRANK] = {0};
	if (before == 0 && after == 0)
		return t;
	pads[axis] = before;
	pads[r + axis] = after;
	int p = pb_op(g, OP_PAD, ad->loc, &t, 1);
	ir_set_ints(g, p, AT_PAD_PADS, pads, 2 * r);
	return pb_result(g, p);
}

/* t transposed by perm, or t when perm keeps every dim in place. */
static int
permute(Ad *ad, int t, const int64_t *perm)
{
	int r = ad->g->val[t].type.rank, id = 1;
	for (int i = 0; i < r; i++)
		id &= perm[i] == i;
	if (id)
		return t;
	int n = pb_op(ad->g, OP_TRANSPOSE, ad->loc, &t, 1);
	ir_set_ints(ad->g, n, AT_TRANSPOSE_PERM, perm, r);
	return pb_result(ad->g, n);
}

/* Zeros of v's type, as expand of a scalar 0. */
static int
zeros_like(Ad *ad, int v)
{
	Type t = ad->g->val[v].type;
	int zero = pb_const(ad->g, t.dtype, 0);
	int e = pb_op(ad->g, OP_EXPAND, ad->loc, &zero, 1);
	ir_set_ints(ad->g, e, AT_EXPAND_SHAPE, t.dim, t.rank);
	return pb_result(ad->g, e);
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
		if (wants(ad, n->in[k]))
			acc(ad, n->in[k], slice1(ad, dy, axis, off, off + d, 1));
		off += d;
	}
}

/* dy of a slice taking count elements step apart along axis (backwards
 * when step < 0), spread onto the span they came from in order, first to
 * last, with zeros between: (count - 1) |step| + 1 elements. */
static int
unstride(Ad *ad, int t, int axis, int64_t step, int64_t count)
{
	Graph *g = ad->g;
	int64_t k = step < 0 ? -step : step;
	if (step < 0)
		t = slice1(ad, t, axis, count - 1, -count - 1, -1);
	if (k == 1)
		return t;
	/* [..., count, ...] -> [..., count, 1, ...], padded to k, merged */
	Type s = g->val[t].type, u = s;
	if (s.rank == IR_MAXRANK)
		diag_error(ad->loc, "autodiff: the gradient of a slice with steps "
		           "is not supported for rank %d", IR_MAXRANK);
	u.rank++;
	memmove(u.dim + axis + 2, s.dim + axis + 1,
	        (s.rank - axis - 1) * sizeof *u.dim);
	u.dim[axis + 1] = 1;
	t = pad1(ad, pb_reshape(g, ad->loc, t, &u), axis + 1, 0, k - 1);
	s.dim[axis] = count * k;
	t = pb_reshape(g, ad->loc, t, &s);
	return slice1(ad, t, axis, 0, (count - 1) * k + 1, 1);
}

/* dy put back where the slice took it from, zeros elsewhere. */
static void
grad_slice(Ad *ad, const Node *n, int dy)
{
	Graph *g = ad->g;
	Type xt = g->val[n->in[0]].type;
	int64_t start[IR_MAXRANK], step[IR_MAXRANK], count[IR_MAXRANK];
	int64_t pads[2 * IR_MAXRANK];
	int t = dy;
	if (shape_slice_params(g, n, start, step, count))
		die("slice gradient: bad slice");
	for (int d = 0; d < xt.rank; d++) {
		int64_t k = step[d] < 0 ? -step[d] : step[d];
		int64_t first = step[d] < 0 ? start[d] + (count[d] - 1) * step[d] :
		                              start[d];
		if (step[d] != 1)
			t = unstride(ad, t, d, step[d], count[d]);
		pads[d] = first;
		pads[xt.rank + d] = xt.dim[d] - first - (count[d] - 1) * k - 1;
	}
	int p = pb_op(g, OP_PAD, ad->loc, &t, 1);
	ir_set_ints(g, p, AT_PAD_PADS, pads, 2 * xt.rank);
	acc(ad, n->in[0], pb_result(g, p));
}

/* The gradient of reflect (edge) padding along one axis: t is b + m + a
 * long there; its middle m, plus its first b and last a elements added to
 * the elements they mirror (repeat). */
static int
unpad(Ad *ad, int t, int axis, int64_t b, int64_t a, int64_t m, bool edge)
{
	Graph *g = ad->g;
	int64_t len = b + m + a;
	if (b == 0 && a == 0)
		return t;
	int mid = slice1(ad, t, axis, b, b + m, 1), part;
	if (b > 0) {
		if (edge)
			part = pad1(ad, pb_sum(g, ad->loc, slice1(ad, t, axis, 0, b, 1),
			                       1u << axis, true), axis, 0, m - 1);
		else    /* y[i] = x[b - i]: x[1..b] get y[b-1..0] */
			part = pad1(ad, slice1(ad, t, axis, b - 1, -len - 1, -1), axis,
			            1, m - 1 - b);
		mid = bin(ad, OP_ADD, mid, part);
	}
	if (a > 0) {
		if (edge)
			part = pad1(ad, pb_sum(g, ad->loc, slice1(ad, t, axis, b + m,
			                       len, 1), 1u << axis, true), axis, m - 1, 0);
		else    /* y[b+m+j] = x[m-2-j]: x[m-1-a..m-2] get y[len-1..b+m] */
			part = pad1(ad, slice1(ad, t, axis, len - 1, b + m - 1, -1),
			            axis, m - 1 - a, 1);
		mid = bin(ad, OP_ADD, mid, part);
	}
	return mid;
}

/* pad: dy without the padding, plus for reflect and edge padding the
 * padded elements' dy added to the elements they copy; negative pads
 * crop x first, so its cropped elements get zeros. */
static void
grad_pad(Ad *ad, const Node *n, int dy)
{
	Graph *g = ad->g;
	const int64_t *p = ir_attr(g, n, AT_PAD_PADS)->ints;
	const char *mode = ir_attr(g, n, AT_PAD_MODE)->s;
	Type xt = g->val[n->in[0]].type;
	int r = xt.rank, t = dy;
	int64_t starts[IR_MAXRANK], ends[IR_MAXRANK], crop[2 * IR_MAXRANK];
	bool cropped = false, constant = strcmp(mode, "constant") == 0;
	for (int d = 0; d < r; d++) {
		int64_t b = MAX(p[d], 0), a = MAX(p[r + d], 0);
		crop[d] = MAX(-p[d], 0);
		crop[r + d] = MAX(-p[r + d], 0);
		cropped |= crop[d] || crop[r + d];
		int64_t m = xt.dim[d] - crop[d] - crop[r + d];
		starts[d] = b;
		ends[d] = b + m;
		if (!constant)
			t = unpad(ad, t, d, b, a, m, strcmp(mode, "edge") == 0);
	}
	if (constant) {
		int s = pb_op(g, OP_SLICE, ad->loc, &t, 1);
		ir_set_ints(g, s, AT_SLICE_STARTS, starts, r);
		ir_set_ints(g, s, AT_SLICE_ENDS, ends, r);
		t = pb_result(g, s);
	}
	if (cropped) {
		int c = pb_op(g, OP_PAD, ad->loc, &t, 1);
		ir_set_ints(g, c, AT_PAD_PADS, crop, 2 * r);
		t = pb_result(g, c);
	}
	acc(ad, n->in[0], t);
}

/* gather along axis a: dy's slices are added into zeros at their indices
 * (scatter_nd with reduction add), which indexes the leading dims, so
 * the zeros have axis a first and dy its index dims first; the sum is
 * transposed back.  For a = 0 (an embedding) nothing moves. */
static void
grad_gather(Ad *ad, const Node *n, int dy)
{
	Graph *g = ad->g;
	int x = n->in[0], idx = n->in[1];
	Type xt = g->val[x].type, it = g->val[idx].type, zt = xt;
	int r = xt.rank, ri = it.rank, ry = g->val[dy].type.rank;
	int a = (int)ir_attr(g, n, AT_GATHER_AXIS)->i;
	int64_t pd[IR_MAXRANK], back[IR_MAXRANK];
	a = a < 0 ? a + r : a;
	for (int i = 0; i < ry; i++)   /* dy: [x before a, idx, x after a] */
		pd[i] = i < ri ? a + i : i < ri + a ? i - ri : i;
	for (int i = 0; i < r; i++) {  /* zeros: [x[a], x before a, x after a] */
		zt.dim[i] = i == 0 ? xt.dim[a] : i <= a ? xt.dim[i - 1] : xt.dim[i];
		back[i] = i < a ? i + 1 : i == a ? 0 : i;
	}
	int d = permute(ad, dy, pd);
	int zero = pb_const(g, xt.dtype, 0);
	int e = pb_op(g, OP_EXPAND, ad->loc, &zero, 1);
	ir_set_ints(g, e, AT_EXPAND_SHAPE, zt.dim, zt.rank);
	int z = pb_result(g, e);
	it.dim[it.rank++] = 1;
	int ii = pb_reshape(g, ad->loc, idx, &it);
	int s = pb_op(g, OP_SCATTER_ND, ad->loc, (int[]){z, ii, d}, 3);
	ir_attr(g, &g->node[s], AT_SCATTER_ND_REDUCTION)->s = "add";
	acc(ad, x, permute(ad, pb_result(g, s), back));
}

/* gather_elements: dy added into zeros at its indices along the axis. */
static void
grad_gather_elements(Ad *ad, const Node *n, int dy)
{
	Graph *g = ad->g;
	int x = n->in[0];
	int s = pb_op(g, OP_SCATTER_ELEMENTS, ad->loc,
	              (int[]){zeros_like(ad, x), n->in[1], dy}, 3);
	ir_set_int(g, s, AT_SCATTER_ELEMENTS_AXIS,
	           ir_attr(g, n, AT_GATHER_ELEMENTS_AXIS)->i);
	ir_attr(g, &g->node[s], AT_SCATTER_ELEMENTS_REDUCTION)->s = "add";
	acc(ad, x, pb_result(g, s));
}

/* depth_to_space and space_to_depth move elements, so the gradient moves
 * them back: space_to_depth undoes depth_to_space's DCR mode and the
 * other way round; CRD is undone as a reshape and transpose,
 * [N,C,H*b,W*b] -> [N,C,H,b,W,b] -> [N,C,b,b,H,W] -> [N,C*b*b,H,W]. */
static void
grad_depth_to_space(Ad *ad, const Node *n, int dy)
{
	Graph *g = ad->g;
	int x = n->in[0], t;
	Type xt = g->val[x].type, yt = g->val[dy].type;
	bool d2s = n->op == OP_DEPTH_TO_SPACE;
	int64_t b = ir_attr(g, n, d2s ? AT_DEPTH_TO_SPACE_BLOCKSIZE :
	                              AT_SPACE_TO_DEPTH_BLOCKSIZE)->i;
	if (d2s && strcmp(ir_attr(g, n, AT_DEPTH_TO_SPACE_MODE)->s, "CRD") == 0) {
		Type s = {.dtype = yt.dtype, .rank = 6, .dim = {yt.dim[0], yt.dim[1],
		          xt.dim[2], b, xt.dim[3], b}};
		t = permute(ad, pb_reshape(g, ad->loc, dy, &s),
		            (int64_t[]){0, 1, 3, 5, 2, 4});
		t = pb_reshape(g, ad->loc, t, &xt);
	} else {
		int op = d2s ? OP_SPACE_TO_DEPTH : OP_DEPTH_TO_SPACE;
		int k = pb_op(g, op, ad->loc, &dy, 1);
		ir_set_int(g, k, op == OP_DEPTH_TO_SPACE ? AT_DEPTH_TO_SPACE_BLOCKSIZE :
		           AT_SPACE_TO_DEPTH_BLOCKSIZE, b);
		t = pb_result(g, k);
	}
	acc(ad, x, t);
}

/* The n x n identity, an f32 constant. */
static int
eye(Ad *ad, int64_t n)
{
	Graph *g = ad->g;
	float *p = arena_alloc(g->mod->arena, (size_t)(n * n) * sizeof *p);
	for (int64_t i = 0; i < n * n; i++)
		p[i] = i % (n + 1) == 0;
	int v = ir_add_value(g, ir_temp_name(g), VK_CONST,
	                     (Type){.dtype = DT_F32, .rank = 2, .dim = {n, n}},
	                     g->loc);
	g->val[v].data = p;
	g->val[v].init = INIT_DATA;
	return v;
}

/* Whether resize node n leaves dim d as it is (the identity map). */
static bool
resize_keeps(Graph *g, const Node *n, int d)
{
	const Attr *sc = ir_attr(g, n, AT_RESIZE_SCALES);
	const char *coord = ir_attr(g, n, AT_RESIZE_COORD)->s;
	return g->val[n->in[0]].type.dim[d] == g->val[n->out].type.dim[d] &&
	       (sc->n == 0 || sc->floats[d] == 1) &&
	       strcmp(coord, "tf_half_pixel_for_nn") != 0 &&
	       strcmp(coord, "tf_crop_and_resize") != 0;
}

/* M[m,n], resize's map along dim d (y = M x there): the resize, with
 * n's attributes, of the n x n identity along its dim 0 (dim 1 kept). */
static int
resize_matrix(Ad *ad, const Node *n, int d)
{
	Graph *g = ad->g;
	int64_t xn = g->val[n->in[0]].type.dim[d];
	int64_t sz[2] = {g->val[n->out].type.dim[d], xn};
	const Attr *sc = ir_attr(g, n, AT_RESIZE_SCALES);
	const Attr *roi = ir_attr(g, n, AT_RESIZE_ROI);
	int r = g->val[n->in[0]].type.rank;
	int k = window_op(ad, n, OP_RESIZE, (int[]){eye(ad, xn)}, 1);
	ir_set_ints(g, k, AT_RESIZE_SIZES, sz, 2);
	if (sc->n)
		ir_set_floats(g, k, AT_RESIZE_SCALES,
		              (double[]){sc->floats[d], 1}, 2);
	if (roi->n)
		ir_set_floats(g, k, AT_RESIZE_ROI,
		              (double[]){roi->floats[d], 0, roi->floats[r + d], 1}, 4);
	/* an element outside a tf_crop_and_resize's roi reads no x */
	ir_set_float(g, k, AT_RESIZE_EXTRAPOLATION, 0);
	return pb_result(g, k);
}

/* resize is linear and separable: along each dim d it changes, y = M_d x
 * (resize_matrix).  dx applies each M_d^T: dy with dim d moved last, as a
 * matrix [rest, m], times M_d.  That needs the resize to map dim 1 of the
 * identity to itself, which tf_half_pixel_for_nn does only in nearest
 * mode rounding down. */
static void
grad_resize(Ad *ad, const Node *n, int dy)
{
	Graph *g = ad->g;
	const char *mode = ir_attr(g, n, AT_RESIZE_MODE)->s;
	const char *near = ir_attr(g, n, AT_RESIZE_NEAREST_MODE)->s;
	int r = g->val[dy].type.rank, t = dy;
	if (strcmp(ir_attr(g, n, AT_RESIZE_COORD)->s, "tf_half_pixel_for_nn") ==
	    0 && (strcmp(mode, "nearest") != 0 || (strcmp(near, "floor") != 0 &&
	    strcmp(near, "round_prefer_floor") != 0)))
		diag_error(ad->loc, "autodiff: the gradient of resize with "
		           "tf_half_pixel_for_nn is supported only in nearest mode "
		           "with nearest_mode floor or round_prefer_floor");
	for (int d = 0; d < r; d++) {
		if (resize_keeps(g, n, d))
			continue;
		int64_t perm[IR_MAXRANK], m = g->val[t].type.dim[d];
		for (int i = 0; i < r; i++)
			perm[i] = i == d ? r - 1 : i == r - 1 ? d : i;
		t = permute(ad, t, perm);
		Type s = g->val[t].type;
		Type flat = {.dtype = s.dtype, .rank = 2,
		             .dim = {type_numel(&s) / m, m}};
		t = bin(ad, OP_MATMUL, pb_reshape(g, ad->loc, t, &flat),
		        resize_matrix(ad, n, d));
		s.dim[r - 1] = g->val[n->in[0]].type.dim[d];
		t = permute(ad, pb_reshape(g, ad->loc, t, &s), perm);
	}
	acc(ad, n->in[0], t);
}

/* expand: dy summed back over the dims it broadcast. */
static void
grad_expand(Ad *ad, const Node *n, int dy)
{
	acc(ad, n->in[0], unbroadcast(ad, dy, n->in[0]));
}

/* tile: the copies along each tiled dim summed, one dim at a time:
 * [..., r*d, ...] as [..., r, d, ...] summed over r. */
static void
grad_tile(Ad *ad, const Node *n, int dy)
{
	Graph *g = ad->g;
	const int64_t *rep = ir_attr(g, n, AT_TILE_REPEATS)->ints;
	Type xt = g->val[n->in[0]].type;
	int t = dy;
	for (int d = 0; d < xt.rank; d++) {
		if (rep[d] == 1)
			continue;
		if (xt.rank == IR_MAXRANK)
			diag_error(ad->loc, "autodiff: the gradient of tile is not "
			           "supported for rank %d", IR_MAXRANK);
		Type s = g->val[t].type, u = s;
		u.rank++;
		memmove(u.dim + d + 1, s.dim + d, (s.rank - d) * sizeof *u.dim);
		u.dim[d] = rep[d];
		u.dim[d + 1] = xt.dim[d];
		t = pb_sum(g, ad->loc, pb_reshape(g, ad->loc, t, &u), 1u << d, false);
	}
	acc(ad, n->in[0], t);
}

/* The normalization of x over the dims in norm, xhat = (x - mean) / sd
 * (biased variance plus eps under the root), scaled by sc (broadcast to
 * x): adds dx to x when wanted and returns xhat.  With gs = dy sc,
 * dx = (gs - mean(gs) - xhat mean(gs xhat)) / sd, means over norm. */
static int
norm_grad(Ad *ad, int x, int sc, unsigned norm, double eps, int dy)
{
	Graph *g = ad->g;
	Type xt = g->val[x].type;
	int64_t cnt = 1;
	for (int d = 0; d < xt.rank; d++)
		if (norm & 1u << d)
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
	return xhat;
}

/* layernorm over dims axis..: norm_grad, then dscale = sum of dy xhat and
 * dbias = sum of dy over the leading dims. */
static void
grad_layernorm(Ad *ad, const Node *n, int dy)
{
	Graph *g = ad->g;
	int x = n->in[0], sc = n->in[1], bias = n->nin > 2 ? n->in[2] : -1;
	int r = g->val[x].type.rank;
	int64_t axis = ir_attr(g, n, AT_LAYERNORM_AXIS)->i;
	double eps = ir_attr(g, n, AT_LAYERNORM_EPSILON)->f;
	axis = axis < 0 ? axis + r : axis;
	unsigned norm = 0;
	for (int d = (int)axis; d < r; d++)
		norm |= 1u << d;
	int xhat = norm_grad(ad, x, sc, norm, eps, dy);
	if (wants(ad, sc))
		acc(ad, sc, unbroadcast(ad, bin(ad, OP_MUL, dy, xhat), sc));
	if (wants(ad, bias))
		acc(ad, bias, unbroadcast(ad, dy, bias));
}

/* The type [1, C, 1, ...] of x's rank: a per-channel operand broadcast. */
static Type
channel_type(Ad *ad, int x)
{
	Type t = ad->g->val[x].type;
	for (int d = 0; d < t.rank; d++)
		if (d != 1)
			t.dim[d] = 1;
	return t;
}

/* instance_norm: layernorm over the dims after the channels, scale and
 * bias per channel. */
static void
grad_instance_norm(Ad *ad, const Node *n, int dy)
{
	Graph *g = ad->g;
	int x = n->in[0], sc = n->in[1], bias = n->in[2];
	Type ct = channel_type(ad, x);
	double eps = ir_attr(g, n, AT_INSTANCE_NORM_EPSILON)->f;
	unsigned norm = ((1u << ct.rank) - 1) & ~3u;
	int xhat = norm_grad(ad, x, pb_reshape(g, ad->loc, sc, &ct), norm, eps,
	                     dy);
	if (wants(ad, sc))
		acc(ad, sc, channel_sum(ad, bin(ad, OP_MUL, dy, xhat), false));
	if (wants(ad, bias))
		acc(ad, bias, channel_sum(ad, dy, false));
}

/* batchnorm with fixed statistics (inference form, or a frozen
 * BatchNorm), per channel: with s = sqrt(var + eps), k = scale / s and
 * xhat = (x - mean) / s,  dx = dy k,  dscale = sum dy xhat,  dbias =
 * sum dy,  dmean = -k sum dy,  dvar = -k sum(dy xhat) / 2s, each sum over
 * every dim but the channels. */
static void
grad_batchnorm(Ad *ad, const Node *n, int dy)
{
	Graph *g = ad->g;
	int x = n->in[0], sc = n->in[1], bias = n->in[2], mean = n->in[3];
	int var = n->in[4];
	Type ct = channel_type(ad, x), pt = g->val[sc].type;
	double eps = ir_attr(g, n, AT_BATCHNORM_EPSILON)->f;
	int m = pb_reshape(g, ad->loc, mean, &ct);
	int s = un(ad, OP_SQRT, bin(ad, OP_ADD, pb_reshape(g, ad->loc, var, &ct),
	                            pb_scalar(g, eps)));
	int k = bin(ad, OP_DIV, pb_reshape(g, ad->loc, sc, &ct), s);
	if (wants(ad, x))
		acc(ad, x, bin(ad, OP_MUL, dy, k));
	if (wants(ad, bias) || wants(ad, mean)) {
		int sd = channel_sum(ad, dy, true);
		if (wants(ad, bias))
			acc(ad, bias, pb_reshape(g, ad->loc, sd, &pt));
		if (wants(ad, mean))
			acc(ad, mean, pb_reshape(g, ad->loc, un(ad, OP_NEG,
			                         bin(ad, OP_MUL, sd, k)), &pt));
	}
	if (wants(ad, sc) || wants(ad, var)) {
		int xhat = bin(ad, OP_DIV, bin(ad, OP_SUB, x, m), s);
		int sx = channel_sum(ad, bin(ad, OP_MUL, dy, xhat), true);
		if (wants(ad, sc))
			acc(ad, sc, pb_reshape(g, ad->loc, sx, &pt));
		if (wants(ad, var)) {
			int f = bin(ad, OP_DIV, k, bin(ad, OP_MUL, s, pb_scalar(g, -2)));
			acc(ad, var, pb_reshape(g, ad->loc, bin(ad, OP_MUL, sx, f), &pt));
		}
	}
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
	[OP_SELU] = grad_selu,
	[OP_HARDSWISH] = grad_hardswish,
	[OP_HARDSIGMOID] = grad_hardsigmoid,
	[OP_SOFTSIGN] = grad_softsign,
	[OP_CELU] = grad_celu,
	[OP_THRESHOLDED_RELU] = grad_thresholded_relu,
	[OP_SHRINK] = grad_shrink,
	[OP_ERF] = grad_erf,
	[OP_SIN] = grad_sin,
	[OP_COS] = grad_cos,
	[OP_POW] = grad_pow,
	[OP_MAX] = grad_max,
	[OP_MIN] = grad_max,
	[OP_WHERE] = grad_where,
	[OP_CAST] = grad_cast,
	[OP_FLOOR] = grad_none,
	[OP_CEIL] = grad_none,
	[OP_ROUND] = grad_none,
	[OP_SIGN] = grad_none,
	[OP_HARDMAX] = grad_none,
	[OP_RESHAPE] = grad_reshape,
	[OP_FLATTEN] = grad_reshape,
	[OP_DROPOUT] = grad_identity,       /* inference dropout copies */
	[OP_TRANSPOSE] = grad_transpose,
	[OP_EXPAND] = grad_expand,
	[OP_TILE] = grad_tile,
	[OP_DEPTH_TO_SPACE] = grad_depth_to_space,
	[OP_SPACE_TO_DEPTH] = grad_depth_to_space,
	[OP_GEMM] = grad_gemm,
	[OP_CONV2D] = grad_conv,
	[OP_CONV3D] = grad_conv,
	[OP_CONV2D_TRANSPOSE] = grad_conv_transpose,
	[OP_CONV3D_TRANSPOSE] = grad_conv_transpose,
	[OP_GELU] = grad_gelu,
	[OP_SILU] = grad_silu,
	[OP_ELU] = grad_elu,
	[OP_MATMUL] = grad_matmul,
	[OP_CONCAT] = grad_concat,
	[OP_SLICE] = grad_slice,
	[OP_PAD] = grad_pad,
	[OP_RESIZE] = grad_resize,
	[OP_GATHER] = grad_gather,
	[OP_GATHER_ELEMENTS] = grad_gather_elements,
	[OP_LAYERNORM] = grad_layernorm,
	[OP_INSTANCE_NORM] = grad_instance_norm,
	[OP_BATCHNORM] = grad_batchnorm,
	[OP_MAXPOOL2D] = grad_maxpool,
	[OP_MAXPOOL3D] = grad_maxpool,
	[OP_AVGPOOL2D] = grad_avgpool,
	[OP_AVGPOOL3D] = grad_avgpool,
	[OP_DROPOUT_TRAIN] = grad_dropout_train,
	[OP_REDUCE_SUM] = grad_reduce,
	[OP_REDUCE_MEAN] = grad_reduce,
	[OP_REDUCE_MAX] = grad_reduce_ext,
	[OP_REDUCE_MIN] = grad_reduce_ext,
	[OP_REDUCE_PROD] = grad_reduce_prod,
	[OP_CUMSUM] = grad_cumsum,
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
		int act, res;
		if (ir_epilogue(g, &n, &act, &res) && (act != 0 || res >= 0))
			diag_error(n.loc, "autodiff: '%s' is a %s with a fused epilogue, "
			           "which has no gradient rule; train the model before "
			           "fuse_epilogue", g->val[n.out].name,
			           op_get(n.op)->name);
		ad.loc = n.loc;
		rules[n.op](&ad, &n, ad.grad[n.out]);
	}
	for (int i = 0; i < nwrt; i++)
		out[i] = ad.grad[wrt[i]];
}
