/* train.c: the training pass.  For a graph @m with a train section it adds
 * two graphs that `kiln build --train` compiles into the trainer (with
 * steps, an @m.step.NAME per step block in place of @m.step):
 *
 *   @m.eval   the model as for inference (dropout off, BatchNorm with its
 *             running statistics) plus the loss: inputs, then labels;
 *             returns the loss and the first loss's prediction.
 *   @m.step   one training step: the forward pass in training mode
 *             (dropout_train masks, BatchNorm on batch statistics with the
 *             running statistics updated), the loss, the backward pass
 *             (ad_grads), gradient clipping and the optimizer's update of
 *             every trained parameter and its slots (`update $w = %new`).
 *             Inputs, then labels, then `train.lr` (f32[]) and
 *             `train.step` (i64[], counting from 1); returns the loss and
 *             the prediction.
 *
 *   @m.attack FGSM adversarial examples of a batch (build_attack), for a
 *             single step and a model with a float input.
 *
 * With steps (a GAN's, docs/language.md section 14.7), each step block,
 * its entries over the section's, gives @m.step.NAME, which returns its
 * loss only; @m.eval returns each step's loss, in order, and no
 * prediction.  All read the parameters of @m by name, so the trainer
 * keeps one state for all.  The optimizer's slots are params of the step
 * graphs only, named after their parameter ("h.w.m", "h.w.v",
 * "h.w.momentum"), initialized to 0; steps that train the same parameter
 * share them.
 * The train section was checked by the frontend (docs/language.md,
 * section 14); what this pass cannot do yet is an error at the entry.
 */
#include <math.h>
#include <string.h>
#include "passes.h"

typedef struct {
	Graph *src, *g;     /* the model, the graph being built */
	const Cfg *train;
	bool training;      /* building @m.step */
	int *vmap;          /* model value -> value of g */
	int lr, step;       /* the step graph's scalar inputs */
	int tf;             /* the step number as f64 */
	int adam_c;         /* Adam's bias correction, once made, or -1 */
	int pred;           /* the first loss's prediction */
} Tr;

/* ---- reading the train section ---- */

static double
num(const Cfg *call, const char *key, double def)
{
	const Cfg *c = cfg_kwarg(call, key);
	if (!c)
		return def;
	if (c->kind == CFG_INT || c->kind == CFG_BOOL)
		return (double)c->i;
	if (c->kind == CFG_FLOAT)
		return c->f;
	diag_error(c->loc, "%s must be a number", key);
}

/* The i-th positional argument of call, or NULL. */
static const Cfg *
arg(const Cfg *call, int i)
{
	for (int k = 0; k < call->n; k++)
		if (!call->key[k] && i-- == 0)
			return call->item[k];
	return NULL;
}

/* ---- the forward pass ---- */

static Type
scalar(int dtype)
{
	return (Type){.dtype = dtype};
}

/* A name for a new input: name, or name.2, ... when the model has it. */
static const char *
fresh(Graph *g, const char *name)
{
	const char *s = name;
	for (int k = 2; ir_find_value(g, s) >= 0; k++)
		s = arena_printf(g->mod->arena, "%s.%d", name, k);
	return s;
}

static void
copy_values(Tr *t)
{
	Graph *m = t->src, *g = t->g;
	for (int i = 0; i < m->ninput; i++) {
		const Value *v = &m->val[m->input[i]];
		t->vmap[m->input[i]] = ir_add_input(g, v->name, v->type, v->loc);
	}
	for (int i = 0; i < m->nval; i++) {
		const Value *v = &m->val[i];
		if (v->kind == VK_LABEL)
			t->vmap[i] = ir_add_input(g, v->name, v->type, v->loc);
	}
	if (t->training) {
		t->lr = ir_add_input(g, fresh(g, "train.lr"), scalar(DT_F32), g->loc);
		t->step = ir_add_input(g, fresh(g, "train.step"), scalar(DT_I64),
		                       g->loc);
	}
	for (int i = 0; i < m->nval; i++) {
		const Value *v = &m->val[i];
		if (v->kind == VK_PARAM || v->kind == VK_CONST)
			t->vmap[i] = pb_copy_global(g, v);
	}
}

/* The momentum of the running statistics whose mean is param mean. */
static double
bn_momentum(Tr *t, int mean)
{
	for (int i = 0; i < t->train->n; i++) {
		const Cfg *c = t->train->item[i];
		if (!t->train->key[i] || strcmp(t->train->key[i], "running_stats") ||
		    c->kind != CFG_CALL)
			continue;
		const Cfg *a = arg(c, 0);
		if (a && a->kind == CFG_VALUE && a->v == mean)
			return num(c, "momentum", 0.99);
	}
	return 0.99;
}

/* BatchNorm in training mode, from the batch's statistics over every dim
 * but the channels (1):  y = (x - mean) / sqrt(var + eps) * gamma + beta,
 * with the running statistics moved towards mean and the unbiased var. */
static int
batchnorm_train(Tr *t, const Node *n)
{
	Graph *g = t->g;
	Loc loc = n->loc;
	int x = t->vmap[n->in[0]], gamma = t->vmap[n->in[1]];
	int beta = t->vmap[n->in[2]], rm = t->vmap[n->in[3]];
	int rv = t->vmap[n->in[4]];
	double eps = ir_attr(t->src, n, AT_BATCHNORM_EPSILON)->f;
	double mom = bn_momentum(t, n->in[3]);
	Type xt = g->val[x].type, ct = xt, vt = g->val[rm].type;
	int64_t axes[IR_MAXRANK], na = 0, count = 1;
	for (int d = 0; d < xt.rank; d++) {
		if (d == 1)
			continue;
		axes[na++] = d;
		count *= xt.dim[d];
		ct.dim[d] = 1;
	}
	int r = pb_op(g, OP_REDUCE_MEAN, loc, &x, 1);
	ir_set_ints(g, r, AT_REDUCE_MEAN_AXES, axes, (int)na);
	int mean = pb_result(g, r);
	int xc = pb_binary(g, loc, OP_SUB, x, mean);
	int sq = pb_binary(g, loc, OP_MUL, xc, xc);
	r = pb_op(g, OP_REDUCE_MEAN, loc, &sq, 1);
	ir_set_ints(g, r, AT_REDUCE_MEAN_AXES, axes, (int)na);
	int var = pb_result(g, r);
	int sd = pb_unary(g, loc, OP_SQRT,
	                  pb_binary(g, loc, OP_ADD, var, pb_scalar(g, eps)));
	int xhat = pb_binary(g, loc, OP_DIV, xc, sd);
	int y = pb_binary(g, loc, OP_MUL, xhat, pb_reshape(g, loc, gamma, &ct));
	y = pb_binary(g, loc, OP_ADD, y, pb_reshape(g, loc, beta, &ct));
	/* running = running * mom + batch * (1 - mom) */
	int keep = pb_scalar(g, mom), take = pb_scalar(g, 1 - mom);
	int bm = pb_reshape(g, loc, mean, &vt);
	int bv = pb_binary(g, loc, OP_MUL, pb_reshape(g, loc, var, &vt),
	                   pb_scalar(g, count > 1 ? (double)count / (count - 1)
	                                          : 1));
	ir_add_update(g, rm, pb_binary(g, loc, OP_ADD,
	              pb_binary(g, loc, OP_MUL, rm, keep),
	              pb_binary(g, loc, OP_MUL, bm, take)));
	ir_add_update(g, rv, pb_binary(g, loc, OP_ADD,
	              pb_binary(g, loc, OP_MUL, rv, keep),
	              pb_binary(g, loc, OP_MUL, bv, take)));
	return y;
}

static int
dropout_train(Tr *t, const Node *n)
{
	Graph *g = t->g;
	double rate = ir_attr(t->src, n, AT_DROPOUT_RATIO)->f;
	int64_t seed = ir_attr(t->src, n, AT_DROPOUT_SEED)->i;
	int x = t->vmap[n->in[0]];
	if (rate == 0)
		return x;
	int d = pb_op(g, OP_DROPOUT_TRAIN, n->loc, (int[]){x, t->step}, 2);
	ir_set_float(g, d, AT_DROPOUT_TRAIN_RATE, rate);
	ir_set_int(g, d, AT_DROPOUT_TRAIN_SEED, seed);
	return pb_result(g, d);
}

/* random_normal draws anew each step: the step number joins its seed. */
static int
random_train(Tr *t, const Node *n)
{
	Graph *g = t->g;
	int r = pb_op(g, OP_RANDOM_NORMAL, n->loc, &t->step, 1);
	const OpInfo *o = op_get(n->op);
	for (int k = 0; k < o->nattr; k++)
		g->attr[g->node[r].attr + k] = t->src->attr[n->attr + k];
	return pb_result(g, r);
}

/* Param v of the model is not trained: non_trainable or frozen.  A
 * BatchNorm whose scale is (an imported backbone's, or a frozen
 * layer's) runs on its running statistics in training too, as Keras
 * runs a BatchNormalization with trainable=False. */
static bool
frozen(const Tr *t, int v)
{
	return cfg_listed(t->train, "non_trainable", v) ||
	       cfg_listed(t->train, "freeze", v);
}

static void
forward(Tr *t)
{
	Graph *m = t->src;
	for (int i = 0; i < m->nnode; i++) {
		Node n = m->node[i];
		if (n.dead)
			continue;
		if (t->training && n.op == OP_BATCHNORM && !frozen(t, n.in[1]))
			t->vmap[n.out] = batchnorm_train(t, &n);
		else if (t->training && n.op == OP_DROPOUT)
			t->vmap[n.out] = dropout_train(t, &n);
		else if (t->training && n.op == OP_RANDOM_NORMAL && n.nin == 0)
			t->vmap[n.out] = random_train(t, &n);
		else
			t->vmap[n.out] = pb_copy_node(t->g, m, &n, t->vmap);
	}
}

/* ---- losses ---- */

/* Operand i of a loss: a value of the model, or a number (a tensor of
 * that value, broadcast). */
static int
operand(Tr *t, const Cfg *call, int i)
{
	const Cfg *c = arg(call, i);
	if (!c)
		diag_error(call->loc, "%s: operand %d is missing", call->s, i + 1);
	if (c->kind == CFG_VALUE)
		return t->vmap[c->v];
	if (c->kind == CFG_INT || c->kind == CFG_FLOAT)
		return pb_scalar(t->g, c->kind == CFG_INT ? (double)c->i : c->f);
	diag_error(c->loc, "%s: operand %d must be a tensor or a number",
	           call->s, i + 1);
}

/* The mean of every element of x, as a scalar. */
static int
mean_all(Graph *g, Loc loc, int x)
{
	int r = pb_op(g, OP_REDUCE_MEAN, loc, &x, 1);
	ir_set_int(g, r, AT_REDUCE_MEAN_KEEPDIMS, 0);
	return pb_result(g, r);
}

/* The node of g producing v, or NULL for a non-temporary. */
static const Node *
producer(Graph *g, int v)
{
	return g->val[v].kind == VK_TEMP ? &g->node[g->val[v].def] : NULL;
}

/* The number c (an INT or FLOAT entry). */
static double
cfg_num(const Cfg *c)
{
	if (c->kind == CFG_INT)
		return (double)c->i;
	if (c->kind != CFG_FLOAT)
		diag_error(c->loc, "expected a number");
	return c->f;
}

/* The section's class_weights as an f32[classes] constant, or -1 when it
 * has none. */
static int
class_weights(Tr *t, int64_t classes)
{
	Graph *g = t->g;
	const Cfg *w = cfg_get(t->train, "class_weights");
	if (!w)
		return -1;
	if (w->kind != CFG_LIST || w->n != classes)
		diag_error(w->loc, "class_weights: expected a list of %lld numbers, "
		           "one per class", (long long)classes);
	float *p = arena_alloc(g->mod->arena, (size_t)classes * sizeof *p);
	for (int i = 0; i < w->n; i++)
		p[i] = (float)cfg_num(w->item[i]);
	Type ty = {.dtype = DT_F32, .rank = 1, .dim = {classes}};
	int v = ir_add_value(g, fresh(g, "train.class_weights"), VK_CONST, ty,
	                     w->loc);
	g->val[v].data = p;
	g->val[v].init = INIT_DATA;
	return v;
}

static int
reshape_to(Graph *g, Loc loc, int x, int rank, const int64_t *dim)
{
	Type t = {.dtype = g->val[x].type.dtype, .rank = rank};
	memcpy(t.dim, dim, rank * sizeof *dim);
	return pb_reshape(g, loc, x, &t);
}

/* The sum of every element of x, as a scalar. */
static int
sum_all(Graph *g, Loc loc, int x)
{
	return pb_sum(g, loc, x, (1u << g->val[x].type.rank) - 1, false);
}

/* Class indices y[M] as i64 or i32, the index types of gather. */
static int
index_labels(Graph *g, Loc loc, int y)
{
	int dt = g->val[y].type.dtype;
	if (dt == DT_I64 || dt == DT_I32)
		return y;
	int c = pb_op(g, OP_CAST, loc, &y, 1);
	ir_set_int(g, c, AT_CAST_TO, DT_I64);
	return pb_result(g, c);
}

/* Weighted cross-entropy over class indices, as PyTorch's
 * CrossEntropyLoss(weight=w, label_smoothing=ls): with l = log_softmax(z)
 * [M,C] and W = sum_i w[y_i],
 *   loss = -((1 - ls) sum_i w[y_i] l[i,y_i] + ls/C sum_{i,c} w[c] l[i,c]) / W
 * l[i,y_i] is gather_elements of l at the labels, w[y_i] a gather of w;
 * autodiff differentiates the lot (the weights and labels need nothing). */
static int
xent_weighted(Graph *g, Loc loc, int z, int y, int w, double ls)
{
	Type zt = g->val[z].type;
	int64_t m = zt.dim[0], c = zt.dim[1];
	int l = pb_unary(g, loc, OP_LOG_SOFTMAX, z);
	y = index_labels(g, loc, y);
	int picked = pb_op(g, OP_GATHER_ELEMENTS, loc, (int[]){l,
	                   reshape_to(g, loc, y, 2, (int64_t[]){m, 1})}, 2);
	ir_set_int(g, picked, AT_GATHER_ELEMENTS_AXIS, 1);
	picked = pb_result(g, picked);
	int wy = reshape_to(g, loc, pb_binary(g, loc, OP_GATHER, w, y), 2,
	                    (int64_t[]){m, 1});
	int num = sum_all(g, loc, pb_binary(g, loc, OP_MUL, wy, picked));
	if (ls != 0) {
		int smooth = sum_all(g, loc, pb_binary(g, loc, OP_MUL, l, w));
		num = pb_binary(g, loc, OP_ADD,
		                pb_binary(g, loc, OP_MUL, num, pb_scalar(g, 1 - ls)),
		                pb_binary(g, loc, OP_MUL, smooth,
		                          pb_scalar(g, ls / (double)c)));
	}
	int den = sum_all(g, loc, wy);
	return pb_unary(g, loc, OP_NEG, pb_binary(g, loc, OP_DIV, num, den));
}

/* Cross-entropy against probabilities q[M,C] (one-hot rows or soft
 * labels), as PyTorch's CrossEntropyLoss with probability targets: the
 * targets smoothed, q (1 - ls) + ls/C, weighted per class when w >= 0,
 *   loss = -1/M sum_{i,c} w[c] q[i,c] log_softmax(z)[i,c]. */
static int
xent_soft(Graph *g, Loc loc, int z, int q, int w, double ls)
{
	Type zt = g->val[z].type;
	if (ls != 0)
		q = pb_binary(g, loc, OP_ADD,
		              pb_binary(g, loc, OP_MUL, q, pb_scalar(g, 1 - ls)),
		              pb_scalar(g, ls / (double)zt.dim[1]));
	if (w >= 0)
		q = pb_binary(g, loc, OP_MUL, q, w);
	int l = pb_unary(g, loc, OP_LOG_SOFTMAX, z);
	int s = sum_all(g, loc, pb_binary(g, loc, OP_MUL, q, l));
	return pb_binary(g, loc, OP_MUL, s,
	                 pb_scalar(g, -1.0 / (double)zt.dim[0]));
}

/* cross_entropy over the last axis of the prediction [batch, ..., C],
 * against class indices [batch, ...] or probabilities of the
 * prediction's type; from logits, or from the probabilities of a softmax
 * over that axis, which is undone to use its logits (log of a softmax
 * loses what the logits keep).  Rows beyond the batch are flattened into
 * it: the loss is the mean over all M rows.  Plain class indices (no
 * class_weights) make one softmax_cross_entropy op. */
static int
cross_entropy(Tr *t, const Cfg *c)
{
	Graph *g = t->g;
	int p = operand(t, c, 0), y = operand(t, c, 1);
	Type pt = g->val[p].type, yt = g->val[y].type;
	bool logits = num(c, "from_logits", 0) != 0;
	bool soft = type_eq(&pt, &yt);
	bool index = yt.rank == pt.rank - 1 && !memcmp(yt.dim, pt.dim,
	             yt.rank * sizeof *yt.dim) && (yt.dtype == DT_I64 ||
	             yt.dtype == DT_I32 || yt.dtype == DT_I8 || yt.dtype == DT_U8);
	if (pt.rank < 2 || pt.dtype != DT_F32 || (!soft && !index))
		diag_error(c->loc, "%s: kiln trains on f32 predictions [batch, ..., "
		           "classes] against class indices or probabilities of the "
		           "prediction's type so far (got %s and %s)", c->s,
		           type_str(g->mod->arena, &pt),
		           type_str(g->mod->arena, &yt));
	if (!logits) {
		const Node *s = producer(g, p);
		int64_t axis = s && s->op == OP_SOFTMAX ?
		               ir_attr(g, s, AT_SOFTMAX_AXIS)->i : 0;
		if (!s || s->op != OP_SOFTMAX || (axis != -1 &&
		                                  axis != pt.rank - 1))
			diag_error(c->loc, "%s: from probabilities, the prediction "
			           "must come from a softmax over the classes (kiln "
			           "then uses its logits)", c->s);
		p = s->in[0];
	}
	int64_t classes = pt.dim[pt.rank - 1], rows = type_numel(&pt) / classes;
	double ls = num(c, "label_smoothing", 0);
	int w = class_weights(t, classes);
	p = reshape_to(g, c->loc, p, 2, (int64_t[]){rows, classes});
	if (soft)
		return xent_soft(g, c->loc, p, reshape_to(g, c->loc, y, 2,
		                 (int64_t[]){rows, classes}), w, ls);
	y = reshape_to(g, c->loc, y, 1, &rows);
	if (w >= 0)
		return xent_weighted(g, c->loc, p, y, w, ls);
	int n = pb_op(g, OP_SOFTMAX_CROSS_ENTROPY, c->loc, (int[]){p, y}, 2);
	ir_set_float(g, n, AT_SOFTMAX_CROSS_ENTROPY_LABEL_SMOOTHING, ls);
	return pb_result(g, n);
}

/* binary_cross_entropy of probabilities p:
 * -mean(y log p + (1 - y) log(1 - p)), p clipped away from 0 and 1;
 * from logits z: mean(softplus(z) - z y). */
static int
binary_cross_entropy(Tr *t, const Cfg *c)
{
	Graph *g = t->g;
	Loc loc = c->loc;
	int p = operand(t, c, 0), y = operand(t, c, 1);
	if (num(c, "from_logits", 0) != 0) {
		int sp = pb_unary(g, loc, OP_SOFTPLUS, p);
		return mean_all(g, loc, pb_binary(g, loc, OP_SUB, sp,
		                pb_binary(g, loc, OP_MUL, p, y)));
	}
	int one = pb_scalar(g, 1);
	int cl = pb_op(g, OP_CLIP, loc, &p, 1);
	ir_set_float(g, cl, AT_CLIP_MIN, 1e-7);
	ir_set_float(g, cl, AT_CLIP_MAX, 1 - 1e-7);
	p = pb_result(g, cl);
	int a = pb_binary(g, loc, OP_MUL, y, pb_unary(g, loc, OP_LOG, p));
	int b = pb_binary(g, loc, OP_MUL, pb_binary(g, loc, OP_SUB, one, y),
	                  pb_unary(g, loc, OP_LOG,
	                           pb_binary(g, loc, OP_SUB, one, p)));
	return pb_unary(g, loc, OP_NEG,
	                mean_all(g, loc, pb_binary(g, loc, OP_ADD, a, b)));
}

/* Huber's loss of the differences d: the mean of 0.5 q^2 + delta (|d| - q)
 * with q = min(|d|, delta), which is 0.5 d^2 where |d| <= delta and
 * delta (|d| - 0.5 delta) beyond. */
static int
huber(Graph *g, Loc loc, int d, double delta)
{
	int a = pb_unary(g, loc, OP_ABS, d);
	int q = pb_binary(g, loc, OP_MIN, a, pb_scalar(g, delta));
	int sq = pb_binary(g, loc, OP_MUL, pb_binary(g, loc, OP_MUL, q, q),
	                   pb_scalar(g, 0.5));
	int lin = pb_binary(g, loc, OP_MUL, pb_binary(g, loc, OP_SUB, a, q),
	                    pb_scalar(g, delta));
	return mean_all(g, loc, pb_binary(g, loc, OP_ADD, sq, lin));
}

/* One loss term, unweighted. */
static int
loss_term(Tr *t, const Cfg *c)
{
	Graph *g = t->g;
	Loc loc = c->loc;
	if (c->kind != CFG_CALL)
		diag_error(c->loc, "a loss must be a call such as mse(y, t)");
	if (strcmp(c->s, "cross_entropy") == 0 ||
	    strcmp(c->s, "sparse_cross_entropy") == 0)
		return cross_entropy(t, c);
	if (strcmp(c->s, "binary_cross_entropy") == 0)
		return binary_cross_entropy(t, c);
	if (strcmp(c->s, "kl") == 0)
		return mean_all(g, loc, operand(t, c, 0));
	int d = pb_binary(g, loc, OP_SUB, operand(t, c, 0), operand(t, c, 1));
	if (strcmp(c->s, "mse") == 0)
		return mean_all(g, loc, pb_binary(g, loc, OP_MUL, d, d));
	if (strcmp(c->s, "mae") == 0)
		return mean_all(g, loc, pb_unary(g, loc, OP_ABS, d));
	if (strcmp(c->s, "huber") == 0)
		return huber(g, loc, d, num(c, "delta", 1));
	diag_error(c->loc, "loss %s is not supported by the trainer yet", c->s);
}

/* Plus the section's `regularize = l1($w, f)` and `l2($w, f)` terms
 * (recorded by layers given a kernel_regularizer): f * sum(|w|) and
 * f * sum(w^2), as Keras adds them. */
static int
regularized(Tr *t, int sum)
{
	Graph *g = t->g;
	for (int i = 0; i < t->train->n; i++) {
		const Cfg *c = t->train->item[i];
		if (!t->train->key[i] || strcmp(t->train->key[i], "regularize"))
			continue;
		const Cfg *w = arg(c, 0), *f = arg(c, 1);
		if (c->kind != CFG_CALL || !w || w->kind != CFG_VALUE || !f)
			diag_error(c->loc, "regularize: expected l1($w, f) or l2($w, f)");
		int v = t->vmap[w->v];
		int e = strcmp(c->s, "l1") == 0 ? pb_unary(g, c->loc, OP_ABS, v) :
		        pb_binary(g, c->loc, OP_MUL, v, v);
		int r = pb_sum(g, c->loc, e, (1u << g->val[v].type.rank) - 1, false);
		double k = f->kind == CFG_INT ? (double)f->i : f->f;
		sum = pb_binary(g, c->loc, OP_ADD, sum,
		                pb_binary(g, c->loc, OP_MUL, r, pb_scalar(g, k)));
	}
	return sum;
}

/* The weighted sum of the section's losses and regularizers; sets
 * t->pred. */
static int
total_loss(Tr *t)
{
	Graph *g = t->g;
	const Cfg *l = cfg_get(t->train, "loss");
	if (!l)
		diag_error(t->src->loc, "the train section has no loss (training "
		           "in several steps is not supported yet)");
	int n = l->kind == CFG_LIST ? l->n : 1, sum = -1;
	t->pred = -1;
	for (int i = 0; i < n; i++) {
		const Cfg *c = l->kind == CFG_LIST ? l->item[i] : l;
		int term = loss_term(t, c);
		if (t->pred < 0 && c->kind == CFG_CALL && arg(c, 0)->kind == CFG_VALUE)
			t->pred = t->vmap[arg(c, 0)->v];
		double w = num(c, "weight", 1);
		if (w != 1)
			term = pb_binary(g, c->loc, OP_MUL, term, pb_scalar(g, w));
		sum = sum < 0 ? term : pb_binary(g, c->loc, OP_ADD, sum, term);
	}
	return regularized(t, sum);
}

/* ---- the optimizer ---- */

/* A zero-initialized slot of param p, named p.what. */
static int
slot(Graph *g, int p, const char *what)
{
	const Value *v = &g->val[p];
	const char *name = arena_printf(g->mod->arena, "%s.%s", v->name, what);
	int s = ir_add_value(g, fresh(g, name), VK_PARAM, v->type, v->loc);
	g->val[s].init = INIT_ZEROS;
	return s;
}

typedef struct {
	Graph *g;
	Loc loc;
} B;

static int
mul(B *b, int x, int y)
{
	return pb_binary(b->g, b->loc, OP_MUL, x, y);
}

static int
add(B *b, int x, int y)
{
	return pb_binary(b->g, b->loc, OP_ADD, x, y);
}

static int
sub(B *b, int x, int y)
{
	return pb_binary(b->g, b->loc, OP_SUB, x, y);
}

static int
k(B *b, double x)
{
	return pb_scalar(b->g, x);
}

/* The moving average s * r + x * (1 - r) into slot s (updated). */
static int
moving(B *b, int s, int x, double r)
{
	int v = add(b, mul(b, s, k(b, r)), mul(b, x, k(b, 1 - r)));
	ir_add_update(b->g, s, v);
	return v;
}

/* x / (sqrt(s) + eps) */
static int
scaled(B *b, int x, int s, double eps)
{
	int d = add(b, pb_unary(b->g, b->loc, OP_SQRT, s), k(b, eps));
	return pb_binary(b->g, b->loc, OP_DIV, x, d);
}

/* Adam's sqrt(1 - b2^t) / (1 - b1^t) for the step number t (f64[]):
 * 1 - b2^t cancels most of its digits early in training, so the
 * scalars are computed in f64 and only the final square root in f32. */
static int
bias_correction(B *b, double b1, double b2, int t)
{
	Graph *g = b->g;
	int one = pb_const(g, DT_F64, 1);
	int c1 = sub(b, one, pb_binary(g, b->loc, OP_POW,
	                               pb_const(g, DT_F64, b1), t));
	int c2 = sub(b, one, pb_binary(g, b->loc, OP_POW,
	                               pb_const(g, DT_F64, b2), t));
	int q = pb_binary(g, b->loc, OP_DIV, c2, mul(b, c1, c1));
	int c = pb_op(g, OP_CAST, b->loc, &q, 1);
	ir_set_int(g, c, AT_CAST_TO, DT_F32);
	return pb_unary(g, b->loc, OP_SQRT, pb_result(g, c));
}

/* The update of param w with gradient gr by the optimizer call opt
 * (NULL: the trainer's choice, adam).  t->lr is the step's learning
 * rate, t->tf the step number as f64. */
static void
optimize(Tr *t, const Cfg *opt, int w, int gr)
{
	B b = {t->g, opt ? opt->loc : t->src->loc};
	const char *name = opt ? opt->s : "adam";  /* a call or a string */
	int lr = t->lr, step;
	double eps = num(opt, "eps", 1e-7);
	if (strcmp(name, "sgd") == 0) {
		double mu = num(opt, "momentum", 0), wd = num(opt, "weight_decay", 0);
		if (wd != 0)
			gr = add(&b, gr, mul(&b, w, k(&b, wd)));
		step = gr;
		if (mu != 0) {
			int v = slot(t->g, w, "momentum");
			int nv = add(&b, mul(&b, v, k(&b, mu)), gr);
			ir_add_update(t->g, v, nv);
			step = num(opt, "nesterov", 0) != 0 ?
			       add(&b, gr, mul(&b, nv, k(&b, mu))) : nv;
		}
	} else if (strcmp(name, "adam") == 0 || strcmp(name, "adamw") == 0) {
		double b1 = num(opt, "beta1", 0.9), b2 = num(opt, "beta2", 0.999);
		int m = moving(&b, slot(t->g, w, "m"), gr, b1);
		int v = moving(&b, slot(t->g, w, "v"), mul(&b, gr, gr), b2);
		if (t->adam_c < 0)      /* the same for every parameter */
			t->adam_c = bias_correction(&b, b1, b2, t->tf);
		step = mul(&b, scaled(&b, m, v, eps), t->adam_c);
		if (strcmp(name, "adamw") == 0) {
			double wd = num(opt, "weight_decay", 0.004);
			step = add(&b, step, mul(&b, w, k(&b, wd)));
		}
	} else if (strcmp(name, "rmsprop") == 0) {
		double rho = num(opt, "rho", 0.9), mu = num(opt, "momentum", 0);
		int s = moving(&b, slot(t->g, w, "ms"), mul(&b, gr, gr), rho);
		step = scaled(&b, gr, s, eps);
		if (mu != 0) {
			int v = slot(t->g, w, "momentum");
			step = add(&b, mul(&b, v, k(&b, mu)), step);
			ir_add_update(t->g, v, step);
		}
	} else if (strcmp(name, "adagrad") == 0) {
		int s = slot(t->g, w, "sum");
		int ns = add(&b, s, mul(&b, gr, gr));
		ir_add_update(t->g, s, ns);
		step = scaled(&b, gr, ns, eps);
	} else {
		diag_error(b.loc, "optimizer %s is not supported yet", name);
	}
	ir_add_update(t->g, w, sub(&b, w, mul(&b, step, lr)));
}

/* Gradients scaled so that their global L2 norm is at most c. */
static void
clip_norm(Tr *t, int *grads, int n, double c)
{
	B b = {t->g, t->src->loc};
	int sq = -1;
	for (int i = 0; i < n; i++) {
		if (grads[i] < 0)
			continue;
		int s = pb_op(t->g, OP_REDUCE_SUM, b.loc,
		              (int[]){mul(&b, grads[i], grads[i])}, 1);
		ir_set_int(t->g, s, AT_REDUCE_SUM_KEEPDIMS, 0);
		s = pb_result(t->g, s);
		sq = sq < 0 ? s : add(&b, sq, s);
	}
	if (sq < 0)
		return;
	int norm = add(&b, pb_unary(t->g, b.loc, OP_SQRT, sq), k(&b, 1e-6));
	int f = pb_binary(t->g, b.loc, OP_MIN, k(&b, 1),
	                  pb_binary(t->g, b.loc, OP_DIV, k(&b, c), norm));
	for (int i = 0; i < n; i++)
		if (grads[i] >= 0)
			grads[i] = mul(&b, grads[i], f);
}

/* The parameters the step trains: float params not listed as
 * non_trainable or frozen, and when `update` is given, only those. */
static int
trained(Tr *t, int *wrt)
{
	Graph *m = t->src;
	bool only = cfg_get(t->train, "update") != NULL;
	int n = 0;
	for (int i = 0; i < m->nval; i++) {
		const Value *v = &m->val[i];
		if (v->kind != VK_PARAM || (v->type.dtype != DT_F32) ||
		    cfg_listed(t->train, "non_trainable", i) ||
		    cfg_listed(t->train, "freeze", i) ||
		    (only && !cfg_listed(t->train, "update", i)))
			continue;
		wrt[n++] = t->vmap[i];
	}
	return n;
}

static void
backward(Tr *t, int loss)
{
	Graph *g = t->g;
	int *wrt = arena_alloc(g->mod->arena, (t->src->nval + 1) * sizeof *wrt);
	int n = trained(t, wrt);
	int *grads = arena_alloc(g->mod->arena, (n + 1) * sizeof *grads);
	ad_grads(g, loss, wrt, n, grads);
	const Cfg *cv = cfg_get(t->train, "clip_value");
	const Cfg *cn = cfg_get(t->train, "clip_norm");
	for (int i = 0; i < n && cv; i++) {
		if (grads[i] < 0)
			continue;
		double c = cv->kind == CFG_INT ? (double)cv->i : cv->f;
		int cl = pb_op(g, OP_CLIP, cv->loc, &grads[i], 1);
		ir_set_float(g, cl, AT_CLIP_MIN, -c);
		ir_set_float(g, cl, AT_CLIP_MAX, c);
		grads[i] = pb_result(g, cl);
	}
	if (cn)
		clip_norm(t, grads, n, cn->kind == CFG_INT ? (double)cn->i : cn->f);
	int c = pb_op(g, OP_CAST, g->loc, &t->step, 1);
	ir_set_int(g, c, AT_CAST_TO, DT_F64);
	t->tf = pb_result(g, c);
	t->adam_c = -1;
	for (int i = 0; i < n; i++)
		if (grads[i] >= 0)
			optimize(t, cfg_get(t->train, "optimizer"), wrt[i], grads[i]);
}

/* The settings of step block st: its own entries, then those of the
 * section it does not set (its steps apart). */
static Cfg *
step_cfg(Graph *m, const Cfg *st)
{
	Arena *a = m->mod->arena;
	Cfg *c = cfg_new(a, CFG_BLOCK, st->loc);
	c->s = st->s;
	for (int i = 0; i < st->n; i++)
		cfg_add(a, c, st->key[i], st->item[i]);
	for (int i = 0; i < m->train->n; i++) {
		const char *k = m->train->key[i];
		if (k && strcmp(k, "step") && (!strcmp(k, "label") ||
		                               !cfg_get(st, k)))
			cfg_add(a, c, k, m->train->item[i]);
	}
	return c;
}

/* The steps of the section, in order, into steps[]; their number. */
static int
steps_of(Graph *m, const Cfg **steps)
{
	int n = 0;
	for (int i = 0; i < m->train->n; i++) {
		if (!m->train->key[i] || strcmp(m->train->key[i], "step"))
			continue;
		if (n == TRAIN_MAXSTEPS)
			diag_error(m->train->item[i]->loc, "more than %d training "
			           "steps", TRAIN_MAXSTEPS);
		steps[n++] = m->train->item[i];
	}
	return n;
}

static Tr
start(Graph *m, const char *name, const Cfg *train, bool training)
{
	Arena *a = m->mod->arena;
	Tr t = {.src = m, .train = train, .training = training};
	t.g = ir_new_graph(m->mod, name, m->loc);
	t.vmap = arena_alloc(a, (m->nval + 1) * sizeof *t.vmap);
	for (int i = 0; i < m->nval; i++)
		t.vmap[i] = -1;
	copy_values(&t);
	forward(&t);
	return t;
}

/* @m.step, or with steps @m.step.NAME for step block st: the training
 * forward pass, the loss, the backward pass and the updates.  Only a
 * single step returns the prediction (the metrics' classes). */
static void
build_step(Graph *m, const Cfg *st)
{
	Arena *a = m->mod->arena;
	const char *name = st ? arena_printf(a, "%s.step.%s", m->name, st->s)
	                      : arena_printf(a, "%s.step", m->name);
	Tr t = start(m, name, st ? step_cfg(m, st) : m->train, true);
	int loss = total_loss(&t);
	backward(&t, loss);
	ir_add_output(t.g, loss);
	if (!st && t.pred >= 0 && t.pred != loss)
		ir_add_output(t.g, t.pred);
	ir_verify(t.g);
}

/* @m.eval: the model in inference mode, then the loss and the
 * prediction, or with steps each step's loss. */
static void
build_eval(Graph *m, const Cfg **steps, int nsteps)
{
	Arena *a = m->mod->arena;
	Tr t = start(m, arena_printf(a, "%s.eval", m->name), m->train, false);
	for (int i = 0; i < nsteps; i++) {
		t.train = step_cfg(m, steps[i]);
		ir_add_output(t.g, total_loss(&t));
	}
	if (nsteps == 0) {
		int loss = total_loss(&t);
		ir_add_output(t.g, loss);
		if (t.pred >= 0 && t.pred != loss)
			ir_add_output(t.g, t.pred);
	}
	ir_verify(t.g);
}

/* @m.attack: FGSM adversarial examples of a batch (Goodfellow et al.,
 * 2015) for the trainer's --attack and --adversarial-training: the model
 * in inference mode and its loss, the loss's gradient with respect to
 * each float input x, then x + eps * sign(gradient), eps the input
 * `train.eps` (f32[]).  Returns one tensor per input, in order; an input
 * the loss does not depend on (or not float) comes back as it is. */
static void
build_attack(Graph *m)
{
	Arena *a = m->mod->arena;
	Tr t = start(m, arena_printf(a, "%s.attack", m->name), m->train, false);
	Graph *g = t.g;
	int eps = ir_add_input(g, fresh(g, "train.eps"), scalar(DT_F32), g->loc);
	int n = m->ninput, *wrt = arena_alloc(a, (n + 1) * sizeof *wrt);
	int *grads = arena_alloc(a, (n + 1) * sizeof *grads);
	for (int i = 0; i < n; i++)
		wrt[i] = t.vmap[m->input[i]];
	ad_grads(g, total_loss(&t), wrt, n, grads);
	for (int i = 0; i < n; i++) {
		int x = wrt[i];
		if (grads[i] >= 0 && g->val[x].type.dtype == DT_F32)
			x = pb_binary(g, g->loc, OP_ADD, x,
			              pb_binary(g, g->loc, OP_MUL, eps,
			                        pb_unary(g, g->loc, OP_SIGN,
			                                 grads[i])));
		ir_add_output(g, x);
	}
	ir_verify(g);
}

void
pass_train(Graph *g)
{
	if (!g->train || (!cfg_get(g->train, "loss") &&
	                  !cfg_get(g->train, "step")))
		return;     /* nothing to train (a BatchNorm's entries only) */
	const Cfg *steps[TRAIN_MAXSTEPS];
	int n = steps_of(g, steps);
	g->mod->training = true;
	build_eval(g, steps, n);
	for (int i = 0; i < n; i++)
		build_step(g, steps[i]);
	bool float_in = false;
	for (int i = 0; i < g->ninput; i++)
		float_in |= g->val[g->input[i]].type.dtype == DT_F32;
	if (n == 0)
		build_step(g, NULL);
	if (n == 0 && float_in)
		build_attack(g);
}
