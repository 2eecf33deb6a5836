/* layers.c: the built-in functions of .kiln that are not plain registry
 * ops: the layers that make parameters (dense, conv2d), the pools with
 * Keras-style arguments, and range(), which makes a list at compile time.
 * Each layer lowers to registry ops (docs/language.md, "Built-in layers");
 * every other callable is looked up in ops.def.
 *
 * Legend: x is NCHW for conv2d and the pools, [batch, features] for dense;
 * pads are [top, left, bottom, right] as in the conv2d op.
 */
#include <string.h>
#include "kiln.h"

static int lower_dense(Lower *L, const Expr *call, Val *arg, Name nm);
static int lower_conv2d(Lower *L, const Expr *call, Val *arg, Name nm);
static int lower_pool(Lower *L, const Expr *call, Val *arg, Name nm);
static Val range_value(Lower *L, const Expr *call, Val *arg);

/* The argument order of each row is its positional order; lower() reads
 * arg[] by these positions. */
static const Builtin builtins[] = {
	{"dense", lower_dense, NULL, true,
	 {{"x", 1}, {"units", 1}, {"activation", 0}, {"bias", 0}}},
	{"conv2d", lower_conv2d, NULL, true,
	 {{"x", 1}, {"filters", 1}, {"kernel", 0}, {"stride", 0}, {"padding", 0},
	  {"dilation", 0}, {"groups", 0}, {"activation", 0}, {"bias", 0}}},
	{"maxpool2d", lower_pool, NULL, false,
	 {{"x", 1}, {"size", 0}, {"stride", 0}, {"padding", 0}}},
	{"avgpool2d", lower_pool, NULL, false,
	 {{"x", 1}, {"size", 0}, {"stride", 0}, {"padding", 0}}},
	{"range", NULL, range_value, false,
	 {{"start", 1}, {"stop", 0}, {"step", 0}}},
};

const Builtin *
kl_builtin(const char *name)
{
	for (int i = 0; i < countof(builtins); i++)
		if (strcmp(builtins[i].name, name) == 0)
			return &builtins[i];
	return NULL;
}

const Builtin *
kl_builtin_at(int i)
{
	return i < countof(builtins) ? &builtins[i] : NULL;
}

/* ---- arguments ---- */

static const char *
tstr(Lower *L, const Type *t)
{
	return type_str(L->a, t);
}

/* The input tensor, which must have the given rank. */
static Type
input(Lower *L, const Val *v, const char *fn, int rank, const char *dims,
      const char *hint)
{
	Type t = L->g->val[kl_tensor(v, fn, "x")].type;
	if (t.rank != rank)
		diag_error(v->loc, "%s: the input must have rank %d %s, got %s%s", fn,
		           rank, dims, tstr(L, &t), hint);
	return t;
}

static int64_t
positive(const Val *v, const char *fn, const char *what, int64_t def)
{
	int64_t n = kl_int(v, fn, what, def);
	if (n < 1)
		diag_error(v->loc, "%s: '%s' must be positive, got %lld", fn, what,
		           (long long)n);
	return n;
}

/* An integer n (meaning [n, n]) or a list [h, w], each at least lo. */
static void
pair(const Val *v, const char *fn, const char *what, int64_t def, int64_t lo,
     int64_t out[2])
{
	out[0] = out[1] = def;
	if (v->kind == VAL_NONE)
		return;
	int n = kl_ints(v, fn, what, out, 2);
	if (n == 1)
		out[1] = out[0];
	if (n == 0)
		diag_error(v->loc, "%s: '%s' must be an integer or a list of 2 "
		           "integers", fn, what);
	for (int i = 0; i < 2; i++)
		if (out[i] < lo)
			diag_error(v->loc, "%s: '%s' values must be at least %lld, got "
			           "%lld", fn, what, (long long)lo, (long long)out[i]);
}

enum { PAD_VALID, PAD_SAME };
static const char *const pad_name[] = {"valid", "same"};

/* "same": the output has ceil(in / stride) rows and columns; the total
 * padding is split with the odd one at the bottom and right (ONNX
 * SAME_UPPER, TensorFlow and Keras "same"). */
static void
pad_same(const Type *x, const int64_t k[2], const int64_t s[2],
         const int64_t d[2], int64_t pads[4])
{
	for (int i = 0; i < 2; i++) {
		int64_t in = x->dim[2 + i], out = (in + s[i] - 1) / s[i];
		int64_t total = MAX((out - 1) * s[i] + (k[i] - 1) * d[i] + 1 - in, 0);
		pads[i] = total / 2;
		pads[i + 2] = total - total / 2;
	}
}

static int
pad_kind(const Val *v, const char *fn)
{
	for (int i = 0; i < countof(pad_name); i++)
		if (strcmp(v->s, pad_name[i]) == 0)
			return i;
	diag_error(v->loc, "%s: invalid padding \"%s\" (expected \"valid\", "
	           "\"same\", an integer or a list)", fn, v->s);
}

/* padding = "valid" | "same" | p | [ph, pw] | [top, left, bottom, right] */
static void
padding(const Val *v, const char *fn, const Type *x, const int64_t k[2],
        const int64_t s[2], const int64_t d[2], int64_t pads[4])
{
	memset(pads, 0, 4 * sizeof *pads);
	if (v->kind == VAL_NONE)
		return;
	if (v->kind == VAL_STR) {
		if (pad_kind(v, fn) == PAD_SAME)
			pad_same(x, k, s, d, pads);
		return;
	}
	int n = kl_ints(v, fn, "padding", pads, 4);
	if (n == 3 || n == 0)
		diag_error(v->loc, "%s: 'padding' takes 1, 2 or 4 values, got %d", fn,
		           n);
	for (int i = n; i < 4; i++)
		pads[i] = pads[i % n];
	for (int i = 0; i < 4; i++)
		if (pads[i] < 0)
			diag_error(v->loc, "%s: padding must not be negative", fn);
}

/* Activations are the registry ops with one operand that keep its shape
 * and need no attribute. */
static bool
is_activation(int op)
{
	const OpInfo *o = op_get(op);
	if (o->minin != 1 || o->maxin != 1)
		return false;
	if (o->shape != shape_same && o->shape != shape_softmax)
		return false;
	for (int i = 0; i < o->nattr; i++)
		if (!attr_info[o->attr0 + i].def)
			return false;
	return true;
}

/* The activation's op, or -1 for none ("linear", or not given). */
static int
activation(Lower *L, const Val *v, const char *fn)
{
	if (v->kind == VAL_NONE)
		return -1;
	if (v->kind != VAL_STR)
		diag_error(v->loc, "%s: 'activation' must be a string, got %s", fn,
		           kl_kind(v));
	if (strcmp(v->s, "linear") == 0)
		return -1;
	int op = op_lookup(v->s);
	if (op >= 0 && is_activation(op))
		return op;
	const char *list = "\"linear\"";
	for (int i = 0; i < NOP; i++)
		if (is_activation(i))
			list = arena_printf(L->a, "%s, \"%s\"", list,
			                    op_get(i)->name);
	diag_error(v->loc, "%s: unknown activation \"%s\" (expected one of %s)",
	           fn, v->s, list);
}

/* The layer's op node, then its activation: the op's result is ns.<op>
 * and the activation's takes the layer's name. */
static int
finish(Lower *L, const Expr *call, int node, int act, Name nm)
{
	if (act < 0)
		return kl_result(L, node, nm.result);
	const char *op = op_get(L->g->node[node].op)->name;
	int pre = kl_result(L, node, kl_fresh(L, nm.ns, op));
	return kl_result(L, ir_add_node(L->g, act, call->loc, &pre, 1), nm.result);
}

/* He for weights feeding a relu, Glorot otherwise (Keras's default). */
static int
weight_init(int act)
{
	return act == OP_RELU ? INIT_HE_UNIFORM : INIT_GLOROT_UNIFORM;
}

/* ---- the layers ---- */

/* dense(x, units, activation=, bias=true):
 *   gemm(x, ns.w [in, units], ns.b [units]), then the activation */
static int
lower_dense(Lower *L, const Expr *call, Val *arg, Name nm)
{
	Type x = input(L, &arg[0], "dense", 2, "[batch, features]",
	               "; flatten it first, e.g. dense(flatten(x), ...)");
	int64_t units = positive(&arg[1], "dense", "units", 1);
	int act = activation(L, &arg[2], "dense");
	int64_t in = x.dim[1];
	Type wt = {.dtype = DT_F32, .rank = 2, .dim = {in, units}};
	int op[3] = {arg[0].v, kl_param(L, nm.ns, "w", wt, call->loc,
	                                weight_init(act), in, units)};
	int nin = 2;
	if (kl_bool(&arg[3], "dense", "bias", true))
		op[nin++] = kl_param(L, nm.ns, "b", (Type){DT_F32, 1, {units}},
		                     call->loc, INIT_ZEROS, 0, 0);
	int n = ir_add_node(L->g, OP_GEMM, call->loc, op, nin);
	return finish(L, call, n, act, nm);
}

/* conv2d(x, filters, kernel=3, stride=1, padding="valid", dilation=1,
 *        groups=1, activation=, bias=true):
 *   conv2d(x, ns.w [filters, c/groups, kh, kw], ns.b [filters]) */
static int
lower_conv2d(Lower *L, const Expr *call, Val *arg, Name nm)
{
	static const char fn[] = "conv2d";
	Type x = input(L, &arg[0], fn, 4, "[batch, channels, height, width]", "");
	int64_t filters = positive(&arg[1], fn, "filters", 1);
	int64_t k[2], s[2], d[2], pads[4];
	pair(&arg[2], fn, "kernel", 3, 1, k);
	pair(&arg[3], fn, "stride", 1, 1, s);
	pair(&arg[5], fn, "dilation", 1, 1, d);
	padding(&arg[4], fn, &x, k, s, d, pads);
	int64_t groups = positive(&arg[6], fn, "groups", 1);
	if (x.dim[1] % groups || filters % groups)
		diag_error(arg[6].loc, "conv2d: groups (%lld) must divide the input "
		           "channels (%lld) and the filters (%lld)", (long long)groups,
		           (long long)x.dim[1], (long long)filters);
	int act = activation(L, &arg[7], fn);
	int64_t c = x.dim[1] / groups;
	Type wt = {.dtype = DT_F32, .rank = 4, .dim = {filters, c, k[0], k[1]}};
	int op[3] = {arg[0].v, kl_param(L, nm.ns, "w", wt, call->loc,
	    weight_init(act), c * k[0] * k[1], filters * k[0] * k[1])};
	int nin = 2;
	if (kl_bool(&arg[8], fn, "bias", true))
		op[nin++] = kl_param(L, nm.ns, "b", (Type){DT_F32, 1, {filters}},
		                     call->loc, INIT_ZEROS, 0, 0);
	int n = ir_add_node(L->g, OP_CONV2D, call->loc, op, nin);
	Graph *g = L->g;
	ir_set_ints(g, n, AT_CONV2D_STRIDES, s, 2);
	ir_set_ints(g, n, AT_CONV2D_PADS, pads, 4);
	ir_set_ints(g, n, AT_CONV2D_DILATIONS, d, 2);
	ir_set_int(g, n, AT_CONV2D_GROUP, groups);
	return finish(L, call, n, act, nm);
}

/* maxpool2d(x, size=2, stride=size, padding="valid"), and avgpool2d:
 *   the registry op of the same name, with kernel, strides and pads */
static int
lower_pool(Lower *L, const Expr *call, Val *arg, Name nm)
{
	const char *fn = call->s;
	int op = op_lookup(fn);
	Type x = input(L, &arg[0], fn, 4, "[batch, channels, height, width]", "");
	int64_t k[2], s[2], d[2] = {1, 1}, pads[4];
	pair(&arg[1], fn, "size", 2, 1, k);
	pair(&arg[2], fn, "stride", 1, 1, s);
	if (arg[2].kind == VAL_NONE)
		memcpy(s, k, sizeof s);
	padding(&arg[3], fn, &x, k, s, d, pads);
	int n = ir_add_node(L->g, op, call->loc, &arg[0].v, 1);
	Graph *g = L->g;
	ir_set_ints(g, n, op_attr_lookup(op, "kernel"), k, 2);
	ir_set_ints(g, n, op_attr_lookup(op, "strides"), s, 2);
	ir_set_ints(g, n, op_attr_lookup(op, "pads"), pads, 4);
	return kl_result(L, n, nm.result);
}

/* ---- compile-time functions ---- */

/* range(stop), range(start, stop), range(start, stop, step): the list of
 * integers Python's range gives. */
static Val
range_value(Lower *L, const Expr *call, Val *arg)
{
	int64_t a = kl_int(&arg[0], "range", "start", 0), b = a;
	if (arg[1].kind == VAL_NONE)
		a = 0;
	else
		b = kl_int(&arg[1], "range", "stop", 0);
	int64_t step = kl_int(&arg[2], "range", "step", 1);
	if (step == 0)
		diag_error(arg[2].loc, "range: 'step' must not be zero");
	Val v = {.kind = VAL_LIST, .loc = call->loc};
	int cap = 0;
	/* Stops when x would pass the int64_t range: it has passed b then. */
	for (int64_t x = a; step > 0 ? x < b : x > b;) {
		if (v.n == KL_MAXLOOP)
			diag_error(call->loc, "range: more than the %d values allowed",
			           KL_MAXLOOP);
		APUSH(L->a, v.elem, v.n, cap,
		      ((Val){.kind = VAL_INT, .loc = call->loc, .i = x}));
		if (__builtin_add_overflow(x, step, &x))
			break;
	}
	return v;
}
