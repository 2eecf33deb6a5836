/* layers2.c: the built-in layers that are neither dense, convolutions nor
 * pools (those, and the table of every built-in, are in layers.c):
 * batchnorm and layernorm, embedding, the reductions mean, sum and max,
 * swish, the layers that act only in training (dropout, gaussian_noise),
 * the VAE's sample and kl_divergence, and the regularizers l1, l2 and
 * l1_l2.  What training needs beyond the graph (which parameters are
 * running statistics, the regularization terms, where noise goes) is
 * written into the graph's train section as entries for the training
 * pipeline (docs/language.md, "What layers record for training").
 *
 * Legend: x [N, C, ...] has its channels on axis 1 unless an axis says
 * otherwise; ns is the namespace of the call (Name in kiln.h).
 */
#include <math.h>
#include <string.h>
#include "kiln.h"

/* ---- the train section ---- */

static Cfg *
cfg_value(Lower *L, int v, Loc loc)
{
	Cfg *c = cfg_new(L->a, CFG_VALUE, loc);
	c->v = v;
	return c;
}

static Cfg *
cfg_float(Lower *L, double f, Loc loc)
{
	Cfg *c = cfg_new(L->a, CFG_FLOAT, loc);
	c->f = f;
	return c;
}

/* callee(v, f) */
static Cfg *
cfg_call(Lower *L, const char *callee, int v, double f, Loc loc)
{
	Cfg *c = cfg_new(L->a, CFG_CALL, loc);
	c->s = callee;
	cfg_add(L->a, c, NULL, cfg_value(L, v, loc));
	cfg_add(L->a, c, NULL, cfg_float(L, f, loc));
	return c;
}

/* The train section's first entry key, or NULL. */
static Cfg *
entry(Graph *g, const char *key)
{
	for (int i = 0; g->train && i < g->train->n; i++)
		if (g->train->key[i] && strcmp(g->train->key[i], key) == 0)
			return g->train->item[i];
	return NULL;
}

/* Does an entry key name v, as its value, in its list or among the
 * operands of a call to callee (NULL: any)?  A model called twice makes
 * its layers twice but its parameters once; they are recorded once. */
static bool
recorded(const Graph *g, const char *key, const char *callee, int v)
{
	const Cfg *t = g->train;
	for (int i = 0; t && i < t->n; i++) {
		const Cfg *c = t->item[i];
		if (!t->key[i] || strcmp(t->key[i], key) != 0)
			continue;
		if (c->kind == CFG_VALUE && c->v == v)
			return true;
		if (c->kind == CFG_CALL && callee && strcmp(c->s, callee) != 0)
			continue;
		for (int k = 0; k < c->n; k++)
			if (c->item[k]->kind == CFG_VALUE && c->item[k]->v == v)
				return true;
	}
	return false;
}

/* Adds `key = item` at the end of the train section, made if missing. */
static void
record(Lower *L, const char *key, Cfg *item)
{
	Graph *g = L->g;
	if (!g->train)
		g->train = cfg_new(L->a, CFG_BLOCK, item->loc);
	cfg_add(L->a, g->train, key, item);
}

/* Adds v to the one `non_trainable = [...]` list. */
void
kl_non_trainable(Lower *L, int v, Loc loc)
{
	if (recorded(L->g, "non_trainable", NULL, v))
		return;
	Cfg *list = entry(L->g, "non_trainable");
	if (!list) {
		list = cfg_new(L->a, CFG_LIST, loc);
		record(L, "non_trainable", list);
	}
	cfg_add(L->a, list, NULL, cfg_value(L, v, loc));
}

/* ---- regularizers ---- */

static double
factor(const Val *v, const char *fn, const char *what, double def)
{
	double f = kl_number(v, fn, what, def);
	if (!(f >= 0 && f < INFINITY))
		diag_error(v->loc, "%s: '%s' must be a non-negative number, got %g",
		           fn, what, f);
	return f;
}

/* l1(l1=0.01), l2(l2=0.01), l1_l2(l1=0, l2=0) (Keras's defaults): the
 * list [l1, l2] of the factors, marked as a regularizer (Val.s). */
Val
kl_regularizer(Lower *L, const Expr *call, Val *arg)
{
	const char *fn = call->s;
	double f[2] = {0, 0};
	if (strcmp(fn, "l1_l2") == 0) {
		f[0] = factor(&arg[0], fn, "l1", 0);
		f[1] = factor(&arg[1], fn, "l2", 0);
	} else {
		f[strcmp(fn, "l2") == 0] = factor(&arg[0], fn, fn, 0.01);
	}
	Val v = {.kind = VAL_LIST, .loc = call->loc, .s = "regularizer", .n = 2};
	v.elem = arena_alloc(L->a, 2 * sizeof *v.elem);
	for (int i = 0; i < 2; i++)
		v.elem[i] = (Val){.kind = VAL_FLOAT, .loc = call->loc, .f = f[i]};
	return v;
}

/* A kernel_regularizer= or bias_regularizer= argument: l1(...), l2(...),
 * l1_l2(...), or "l1", "l2", "l1_l2" with factors 0.01.  Records
 * `regularize = l1(param, f)` and `regularize = l2(param, f)` for its
 * factors that are not 0; with param < 0 it only checks the argument. */
void
kl_regularize(Lower *L, const Val *r, int param, const char *fn,
              const char *what)
{
	static const char *const names[] = {"l1", "l2", "l1_l2", NULL};
	double f[2];
	if (r->kind == VAL_NONE)
		return;
	if (r->kind == VAL_STR) {
		int k = kl_choice(L, r, fn, "regularizer", names, 0);
		f[0] = k != 1 ? 0.01 : 0;
		f[1] = k != 0 ? 0.01 : 0;
	} else if (r->kind == VAL_LIST && r->s && !strcmp(r->s, "regularizer")) {
		f[0] = r->elem[0].f;
		f[1] = r->elem[1].f;
	} else {
		diag_error(r->loc, "%s: '%s' must be l1(...), l2(...) or "
		           "l1_l2(...), got %s", fn, what, kl_kind(r));
	}
	for (int i = 0; i < 2 && param >= 0; i++) {
		const char *kind = names[i];
		if (f[i] > 0 && !recorded(L->g, "regularize", kind, param))
			record(L, "regularize", cfg_call(L, kind, param, f[i], r->loc));
	}
}

/* ---- helpers ---- */

static const char *
tstr(Lower *L, int v)
{
	return type_str(L->a, &L->g->val[v].type);
}

/* A scalar f32 constant named ns.base. */
static int
scalar(Lower *L, const char *ns, const char *base, double x, Loc loc)
{
	Graph *g = L->g;
	int c = ir_add_value(g, kl_fresh(L, ns, base), VK_CONST,
	                     (Type){.dtype = DT_F32}, loc);
	float *p = arena_alloc(L->a, sizeof *p);
	*p = (float)x;
	g->val[c].data = p;
	return c;
}

static int
op1(Lower *L, const Expr *call, int op, int a, const char *name)
{
	return kl_result(L, ir_add_node(L->g, op, call->loc, &a, 1), name);
}

static int
op2(Lower *L, const Expr *call, int op, int a, int b, const char *name)
{
	int in[2] = {a, b};
	return kl_result(L, ir_add_node(L->g, op, call->loc, in, 2), name);
}

/* An axis of x, negative counting from the end, as given or def. */
static int
axis_arg(Lower *L, const Val *v, const char *fn, int x, int64_t def)
{
	int64_t a = kl_int(v, fn, "axis", def);
	int r = L->g->val[x].type.rank;
	if (a < -r || a >= r)
		diag_error(v->kind == VAL_NONE ? L->g->val[x].loc : v->loc,
		           "%s: axis %lld is out of range for %s", fn, (long long)a,
		           tstr(L, x));
	return (int)(a < 0 ? a + r : a);
}

/* The seed of a random layer: as given, or made from the model's seed and
 * the layer's name like a parameter's (so that two layers differ), in 63
 * bits as the seed attributes are signed. */
static int64_t
seed_arg(Lower *L, const Val *v, const char *fn, const char *name)
{
	if (v->kind == VAL_NONE)
		return (int64_t)(kl_seed(L->seed, name) >> 1);
	int64_t s = kl_int(v, fn, "seed", 0);
	if (s < 0)
		diag_error(v->loc, "%s: 'seed' must not be negative, got %lld", fn,
		           (long long)s);
	return s;
}

/* The node transposing v by perm, named name. */
static int
transpose(Lower *L, const Expr *call, int v, const int64_t *perm,
          const char *name)
{
	int n = ir_add_node(L->g, OP_TRANSPOSE, call->loc, &v, 1);
	ir_set_ints(L->g, n, AT_TRANSPOSE_PERM, perm, L->g->val[v].type.rank);
	return kl_result(L, n, name);
}

/* ---- normalization ---- */

/* non_trainable = [..., $mean, $var] and
 * running_stats = moving_average($mean, $var, momentum=m) */
static void
running_stats(Lower *L, int mean, int var, double momentum, Loc loc)
{
	kl_non_trainable(L, mean, loc);
	kl_non_trainable(L, var, loc);
	if (recorded(L->g, "running_stats", NULL, mean))
		return;
	Cfg *c = cfg_new(L->a, CFG_CALL, loc);
	c->s = "moving_average";
	cfg_add(L->a, c, NULL, cfg_value(L, mean, loc));
	cfg_add(L->a, c, NULL, cfg_value(L, var, loc));
	cfg_add(L->a, c, "momentum", cfg_float(L, momentum, loc));
	record(L, "running_stats", c);
}

/* batchnorm(x, momentum=0.99, epsilon=1e-3, axis=1):
 *   batchnorm(x, ns.gamma, ns.beta, ns.mean, ns.var), each [x.dim[axis]];
 *   another axis than 1 is moved to 1 and back by transposes.  Records
 *   non_trainable = [..., $ns.mean, $ns.var] and
 *   running_stats = moving_average($ns.mean, $ns.var, momentum=m). */
int
kl_batchnorm(Lower *L, const Expr *call, Val *arg, Name nm)
{
	static const char fn[] = "batchnorm";
	int x = kl_tensor(&arg[0], fn, "x");
	Type xt = L->g->val[x].type;
	if (xt.rank < 2)
		diag_error(arg[0].loc, "batchnorm: the input must have rank 2 or "
		           "more [batch, channels, ...], got %s", tstr(L, x));
	double momentum = kl_number(&arg[1], fn, "momentum", 0.99);
	if (!(momentum >= 0 && momentum <= 1))
		diag_error(arg[1].loc, "batchnorm: 'momentum' must be from 0 to 1, "
		           "got %g", momentum);
	double eps = kl_number(&arg[2], fn, "epsilon", 1e-3);
	if (!(eps > 0 && eps < INFINITY))
		diag_error(arg[2].loc, "batchnorm: 'epsilon' must be positive, got "
		           "%g", eps);
	int axis = axis_arg(L, &arg[3], fn, x, 1);
	if (axis == 0)
		diag_error(arg[3].loc, "batchnorm: 'axis' cannot be 0, the batch "
		           "axis");
	Type t = {.dtype = DT_F32, .rank = 1, .dim = {xt.dim[axis]}};
	static const char *const what[] = {"gamma", "beta", "mean", "var"};
	static const int init[] = {INIT_ONES, INIT_ZEROS, INIT_ZEROS, INIT_ONES};
	int in[5];
	for (int i = 0; i < 4; i++)
		in[i + 1] = kl_param(L, nm.ns, what[i], t, call->loc, init[i], 0, 0);
	int64_t perm[IR_MAXRANK];
	for (int d = 0; d < xt.rank; d++)
		perm[d] = d == 1 ? axis : d == axis ? 1 : d;
	in[0] = axis == 1 ? x : transpose(L, call, x, perm,
	                                  kl_fresh(L, nm.ns, "transpose"));
	int n = ir_add_node(L->g, OP_BATCHNORM, call->loc, in, 5);
	ir_set_float(L->g, n, AT_BATCHNORM_EPSILON, eps);
	int y = kl_result(L, n, axis == 1 ? nm.result :
	                        kl_fresh(L, nm.ns, "batchnorm"));
	if (axis != 1)
		y = transpose(L, call, y, perm, nm.result);
	running_stats(L, in[3], in[4], momentum, call->loc);
	return y;
}

/* layernorm(x, axis=-1, epsilon=1e-5):
 *   layernorm(x, ns.gamma, ns.beta) {axis}, gamma and beta of x's dims
 *   from axis on */
int
kl_layernorm(Lower *L, const Expr *call, Val *arg, Name nm)
{
	static const char fn[] = "layernorm";
	int x = kl_tensor(&arg[0], fn, "x");
	Type xt = L->g->val[x].type;
	if (xt.rank < 2)
		diag_error(arg[0].loc, "layernorm: the input must have rank 2 or "
		           "more [batch, ...], got %s", tstr(L, x));
	int axis = axis_arg(L, &arg[1], fn, x, -1);
	if (axis == 0)
		diag_error(arg[1].loc, "layernorm: 'axis' cannot be 0, the batch "
		           "axis");
	double eps = kl_number(&arg[2], fn, "epsilon", 1e-5);
	if (!(eps > 0 && eps < INFINITY))
		diag_error(arg[2].loc, "layernorm: 'epsilon' must be positive, got "
		           "%g", eps);
	Type t = {.dtype = DT_F32, .rank = xt.rank - axis};
	memcpy(t.dim, xt.dim + axis, t.rank * sizeof *t.dim);
	int in[3] = {x, kl_param(L, nm.ns, "gamma", t, call->loc, INIT_ONES, 0,
	                         0)};
	in[2] = kl_param(L, nm.ns, "beta", t, call->loc, INIT_ZEROS, 0, 0);
	int n = ir_add_node(L->g, OP_LAYERNORM, call->loc, in, 3);
	ir_set_int(L->g, n, AT_LAYERNORM_AXIS, kl_int(&arg[1], fn, "axis", -1));
	ir_set_float(L->g, n, AT_LAYERNORM_EPSILON, eps);
	return kl_result(L, n, nm.result);
}

/* ---- embedding, reductions, swish ---- */

/* embedding(ids, vocab, dim):
 *   gather(ns.table [vocab, dim], ids) along axis 0: [ids..., dim];
 *   the table is Glorot uniform with fan_in = vocab, fan_out = dim */
int
kl_embedding(Lower *L, const Expr *call, Val *arg, Name nm)
{
	static const char fn[] = "embedding";
	int ids = kl_tensor(&arg[0], fn, "ids");
	int dt = L->g->val[ids].type.dtype;
	if (dt != DT_I64 && dt != DT_I32)
		diag_error(arg[0].loc, "embedding: 'ids' must be i64 or i32 token "
		           "indices, got %s", tstr(L, ids));
	int64_t vocab = kl_positive(&arg[1], fn, "vocab", 1);
	int64_t dim = kl_positive(&arg[2], fn, "dim", 1);
	kl_fits(call->loc, fn, 2, (int64_t[]){vocab, dim});
	Type t = {.dtype = DT_F32, .rank = 2, .dim = {vocab, dim}};
	int in[2] = {kl_param(L, nm.ns, "table", t, call->loc,
	                      INIT_GLOROT_UNIFORM, vocab, dim), ids};
	return kl_result(L, ir_add_node(L->g, OP_GATHER, call->loc, in, 2),
	                 nm.result);
}

/* mean(x, axis=all, keepdims=false), and sum and max:
 *   reduce_mean, reduce_sum or reduce_max over the axes */
int
kl_reduce(Lower *L, const Expr *call, Val *arg, Name nm)
{
	const char *fn = call->s;
	int op = op_lookup(arena_printf(L->a, "reduce_%s", fn));
	int x = kl_tensor(&arg[0], fn, "x");
	int r = L->g->val[x].type.rank;
	int64_t axes[IR_MAXRANK];
	int na = 0;
	if (arg[1].kind != VAL_NONE)
		na = kl_ints(&arg[1], fn, "axis", axes, IR_MAXRANK);
	if (arg[1].kind != VAL_NONE && na == 0)
		diag_error(arg[1].loc, "%s: 'axis' must name at least one axis", fn);
	for (int i = 0; i < na; i++)
		if (axes[i] < -r || axes[i] >= r)
			diag_error(arg[1].loc, "%s: axis %lld is out of range for %s", fn,
			           (long long)axes[i], tstr(L, x));
	int n = ir_add_node(L->g, op, call->loc, &x, 1);
	if (na)
		ir_set_ints(L->g, n, op_attr_lookup(op, "axes"), axes, na);
	ir_set_int(L->g, n, op_attr_lookup(op, "keepdims"),
	           kl_bool(&arg[2], fn, "keepdims", false));
	return kl_result(L, n, nm.result);
}

/* swish(x): silu, under Keras's name */
int
kl_swish(Lower *L, const Expr *call, Val *arg, Name nm)
{
	return op1(L, call, OP_SILU, kl_tensor(&arg[0], "swish", "x"),
	           nm.result);
}

/* ---- layers that act in training ---- */

/* dropout(x, rate=0.5, seed=from the name):
 *   dropout {ratio=rate, seed}, a copy at inference */
int
kl_dropout(Lower *L, const Expr *call, Val *arg, Name nm)
{
	static const char fn[] = "dropout";
	int x = kl_tensor(&arg[0], fn, "x");
	double rate = kl_number(&arg[1], fn, "rate", 0.5);
	if (!(rate >= 0 && rate < 1))
		diag_error(arg[1].loc, "dropout: 'rate' must be at least 0 and below "
		           "1, got %g", rate);
	int n = ir_add_node(L->g, OP_DROPOUT, call->loc, &x, 1);
	ir_set_float(L->g, n, AT_DROPOUT_RATIO, rate);
	ir_set_int(L->g, n, AT_DROPOUT_SEED, seed_arg(L, &arg[2], fn, nm.result));
	return kl_result(L, n, nm.result);
}

/* gaussian_noise(x, stddev, seed=from the name):
 *   y = dropout {ratio=0} of x (a copy, in training too), and the entry
 *   noise = gaussian(%y, stddev, seed=S): training adds N(0, stddev^2)
 *   noise to y, inference leaves it a copy */
int
kl_gaussian_noise(Lower *L, const Expr *call, Val *arg, Name nm)
{
	static const char fn[] = "gaussian_noise";
	int x = kl_tensor(&arg[0], fn, "x");
	double sd = kl_number(&arg[1], fn, "stddev", 0);
	if (!(sd >= 0 && sd < INFINITY))
		diag_error(arg[1].loc, "gaussian_noise: 'stddev' must be a "
		           "non-negative number, got %g", sd);
	int64_t seed = seed_arg(L, &arg[2], fn, nm.result);
	int n = ir_add_node(L->g, OP_DROPOUT, call->loc, &x, 1);
	ir_set_float(L->g, n, AT_DROPOUT_RATIO, 0);
	int y = kl_result(L, n, nm.result);
	Cfg *c = cfg_call(L, "gaussian", y, sd, call->loc);
	Cfg *s = cfg_new(L->a, CFG_INT, call->loc);
	s->i = seed;
	cfg_add(L->a, c, "seed", s);
	record(L, "noise", c);
	return y;
}

/* mean and logvar, which must have one type, f32. */
static void
gaussian_args(Lower *L, const char *fn, Val *arg, int *mean, int *logvar)
{
	*mean = kl_tensor(&arg[0], fn, "mean");
	*logvar = kl_tensor(&arg[1], fn, "logvar");
	const Type *m = &L->g->val[*mean].type;
	if (m->dtype != DT_F32)
		diag_error(arg[0].loc, "%s: 'mean' must be an f32 tensor, got %s", fn,
		           tstr(L, *mean));
	if (!type_eq(m, &L->g->val[*logvar].type))
		diag_error(arg[1].loc, "%s: 'logvar' must have the type of 'mean', "
		           "%s, got %s", fn, tstr(L, *mean), tstr(L, *logvar));
}

/* sample(mean, logvar, seed=from the name), the reparameterization trick:
 *   ns.std = exp(logvar * 0.5), ns.eps = random_normal {shape of mean,
 *   seed}, result = mean + ns.std * ns.eps */
int
kl_sample(Lower *L, const Expr *call, Val *arg, Name nm)
{
	static const char fn[] = "sample";
	int mean, lv;
	gaussian_args(L, fn, arg, &mean, &lv);
	Type t = L->g->val[mean].type;
	int64_t seed = seed_arg(L, &arg[2], fn, nm.result);
	int half = scalar(L, nm.ns, "half", 0.5, call->loc);
	int h = op2(L, call, OP_MUL, lv, half, kl_fresh(L, nm.ns, "half_logvar"));
	int sd = op1(L, call, OP_EXP, h, kl_fresh(L, nm.ns, "std"));
	int none = -1;
	int rn = ir_add_node(L->g, OP_RANDOM_NORMAL, call->loc, &none, 0);
	ir_set_ints(L->g, rn, AT_RANDOM_NORMAL_SHAPE, t.dim, t.rank);
	ir_set_int(L->g, rn, AT_RANDOM_NORMAL_SEED, seed);
	int eps = kl_result(L, rn, kl_fresh(L, nm.ns, "eps"));
	int z = op2(L, call, OP_MUL, sd, eps, kl_fresh(L, nm.ns, "noise"));
	return op2(L, call, OP_ADD, mean, z, nm.result);
}

/* kl_divergence(mean, logvar): KL(N(mean, exp(logvar)) || N(0, 1)) per
 * sample, [batch]:
 *   -0.5 * sum(1 + logvar - mean^2 - exp(logvar)) over all axes but 0 */
int
kl_kl_divergence(Lower *L, const Expr *call, Val *arg, Name nm)
{
	static const char fn[] = "kl_divergence";
	int mean, lv;
	gaussian_args(L, fn, arg, &mean, &lv);
	int r = L->g->val[mean].type.rank;
	if (r < 2)
		diag_error(arg[0].loc, "kl_divergence: 'mean' must have rank 2 or "
		           "more [batch, ...], got %s", tstr(L, mean));
	const char *ns = nm.ns;
	int one = scalar(L, ns, "one", 1, call->loc);
	int a = op2(L, call, OP_ADD, lv, one, kl_fresh(L, ns, "add"));
	int sq = op2(L, call, OP_MUL, mean, mean, kl_fresh(L, ns, "sq"));
	int b = op2(L, call, OP_SUB, a, sq, kl_fresh(L, ns, "sub"));
	int var = op1(L, call, OP_EXP, lv, kl_fresh(L, ns, "var"));
	int c = op2(L, call, OP_SUB, b, var, kl_fresh(L, ns, "terms"));
	int64_t axes[IR_MAXRANK];
	for (int d = 1; d < r; d++)
		axes[d - 1] = d;
	int n = ir_add_node(L->g, OP_REDUCE_SUM, call->loc, &c, 1);
	ir_set_ints(L->g, n, AT_REDUCE_SUM_AXES, axes, r - 1);
	ir_set_int(L->g, n, AT_REDUCE_SUM_KEEPDIMS, 0);
	int s = kl_result(L, n, kl_fresh(L, ns, "sum"));
	int k = scalar(L, ns, "neg_half", -0.5, call->loc);
	return op2(L, call, OP_MUL, s, k, nm.result);
}
