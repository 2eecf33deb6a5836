/* layers.c: the built-in functions of .kiln that are not plain registry
 * ops, and the table of all of them.  This file holds the layers with a
 * kernel (dense and the convolutions conv1d, conv2d, conv2d_transpose,
 * depthwise_conv2d and separable_conv2d, which share their arguments for
 * the activation, bias, initializers and regularizers), the pools with
 * Keras-style arguments, the global pools, upsample2d, and range(), which
 * makes a list at compile time.  layers2.c has the normalizations,
 * embedding, reductions and the layers that act in training; recurrent.c
 * the sequence layers.  Each layer lowers to registry ops
 * (docs/language.md, "Built-in layers"); every other callable is looked
 * up in ops.def.
 *
 * Legend: x is NCHW for the 2-D layers, [batch, channels, length] for
 * conv1d, [batch, features] for dense; pads are [top, left, bottom,
 * right] as in the conv2d op; a window's k, s, d are [height, width].
 */
#include <string.h>
#include "kiln.h"

static int lower_dense(Lower *L, const Expr *call, Val *arg, Name nm);
static int lower_conv1d(Lower *L, const Expr *call, Val *arg, Name nm);
static int lower_conv2d(Lower *L, const Expr *call, Val *arg, Name nm);
static int lower_conv2d_transpose(Lower *L, const Expr *call, Val *arg,
                                  Name nm);
static int lower_depthwise(Lower *L, const Expr *call, Val *arg, Name nm);
static int lower_separable(Lower *L, const Expr *call, Val *arg, Name nm);
static int lower_pool(Lower *L, const Expr *call, Val *arg, Name nm);
static int lower_global_avg(Lower *L, const Expr *call, Val *arg, Name nm);
static int lower_global_max(Lower *L, const Expr *call, Val *arg, Name nm);
static int lower_upsample(Lower *L, const Expr *call, Val *arg, Name nm);
static Val range_value(Lower *L, const Expr *call, Val *arg);

/* The last arguments of every layer with a kernel, read by kernel_args()
 * in this order; bias is the older name of use_bias. */
#define KERNEL_ARGS \
	{"activation", 0}, {"use_bias", 0}, {"kernel_initializer", 0}, \
	{"bias_initializer", 0}, {"kernel_regularizer", 0}, \
	{"bias_regularizer", 0}, {"bias", 0}

/* The last arguments of simple_rnn, lstm and gru, read by rnn() in
 * recurrent.c in this order. */
#define RNN_ARGS \
	{"return_sequences", 0}, {"use_bias", 0}, {"bidirectional", 0}, \
	{"kernel_initializer", 0}, {"recurrent_initializer", 0}, \
	{"bias_initializer", 0}, {"kernel_regularizer", 0}, \
	{"recurrent_regularizer", 0}, {"bias_regularizer", 0}, {"bias", 0}

/* The argument order of each row is its positional order; lower() reads
 * arg[] by these positions. */
static const Builtin builtins[] = {
	{"dense", lower_dense, NULL, true, {{"x", 1}, {"units", 1}, KERNEL_ARGS}},
	{"conv1d", lower_conv1d, NULL, true,
	 {{"x", 1}, {"filters", 1}, {"kernel", 0}, {"stride", 0}, {"padding", 0},
	  {"dilation", 0}, {"groups", 0}, KERNEL_ARGS}},
	{"conv2d", lower_conv2d, NULL, true,
	 {{"x", 1}, {"filters", 1}, {"kernel", 0}, {"stride", 0}, {"padding", 0},
	  {"dilation", 0}, {"groups", 0}, KERNEL_ARGS}},
	{"conv2d_transpose", lower_conv2d_transpose, NULL, true,
	 {{"x", 1}, {"filters", 1}, {"kernel", 0}, {"stride", 0}, {"padding", 0},
	  {"output_padding", 0}, {"dilation", 0}, KERNEL_ARGS}},
	{"depthwise_conv2d", lower_depthwise, NULL, true,
	 {{"x", 1}, {"kernel", 0}, {"stride", 0}, {"padding", 0},
	  {"depth_multiplier", 0}, {"dilation", 0}, KERNEL_ARGS}},
	{"separable_conv2d", lower_separable, NULL, true,
	 {{"x", 1}, {"filters", 1}, {"kernel", 0}, {"stride", 0}, {"padding", 0},
	  {"depth_multiplier", 0}, {"dilation", 0}, KERNEL_ARGS}},
	{"maxpool2d", lower_pool, NULL, false,
	 {{"x", 1}, {"size", 0}, {"stride", 0}, {"padding", 0}}},
	{"avgpool2d", lower_pool, NULL, false,
	 {{"x", 1}, {"size", 0}, {"stride", 0}, {"padding", 0}}},
	{"global_avgpool2d", lower_global_avg, NULL, false,
	 {{"x", 1}, {"keepdims", 0}}},
	{"global_maxpool2d", lower_global_max, NULL, false,
	 {{"x", 1}, {"keepdims", 0}}},
	{"upsample2d", lower_upsample, NULL, false,
	 {{"x", 1}, {"size", 0}, {"mode", 0}}},
	{"batchnorm", kl_batchnorm, NULL, true,
	 {{"x", 1}, {"momentum", 0}, {"epsilon", 0}, {"axis", 0}}},
	{"layernorm", kl_layernorm, NULL, true,
	 {{"x", 1}, {"axis", 0}, {"epsilon", 0}}},
	{"embedding", kl_embedding, NULL, true,
	 {{"ids", 1}, {"vocab", 1}, {"dim", 1}}},
	{"dropout", kl_dropout, NULL, false,
	 {{"x", 1}, {"rate", 0}, {"seed", 0}}},
	{"gaussian_noise", kl_gaussian_noise, NULL, false,
	 {{"x", 1}, {"stddev", 1}, {"seed", 0}}},
	{"mean", kl_reduce, NULL, false, {{"x", 1}, {"axis", 0}, {"keepdims", 0}}},
	{"sum", kl_reduce, NULL, false, {{"x", 1}, {"axis", 0}, {"keepdims", 0}}},
	{"max", kl_reduce, NULL, false, {{"x", 1}, {"axis", 0}, {"keepdims", 0}}},
	{"swish", kl_swish, NULL, false, {{"x", 1}}},
	{"onnx", kl_onnx, NULL, true,
	 {{"path", 1}, {"x", 1}, {"output", 0}, {"trainable", 0}}},
	{"sample", kl_sample, NULL, true,
	 {{"mean", 1}, {"logvar", 1}, {"seed", 0}}},
	{"kl_divergence", kl_kl_divergence, NULL, true,
	 {{"mean", 1}, {"logvar", 1}}},
	{"simple_rnn", kl_simple_rnn, NULL, true,
	 {{"x", 1}, {"units", 1}, {"activation", 0}, RNN_ARGS}},
	{"lstm", kl_lstm, NULL, true, {{"x", 1}, {"units", 1}, RNN_ARGS}},
	{"gru", kl_gru, NULL, true, {{"x", 1}, {"units", 1}, RNN_ARGS}},
	{"multihead_attention", kl_attention, NULL, true,
	 {{"q", 1}, {"k", 0}, {"v", 0}, {"heads", 1}, {"key_dim", 1},
	  {"mask", 0}, {"use_bias", 0}, {"kernel_initializer", 0},
	  {"bias_initializer", 0}, {"kernel_regularizer", 0},
	  {"bias_regularizer", 0}, {"bias", 0}}},
	{"transformer_encoder", kl_transformer_encoder, NULL, true,
	 {{"x", 1}, {"heads", 1}, {"key_dim", 1}, {"ff_dim", 1},
	  {"activation", 0}, {"mask", 0}, {"epsilon", 0}}},
	{"range", NULL, range_value, false,
	 {{"start", 1}, {"stop", 0}, {"step", 0}}},
	{"l1", NULL, kl_regularizer, false, {{"l1", 0}}},
	{"l2", NULL, kl_regularizer, false, {{"l2", 0}}},
	{"l1_l2", NULL, kl_regularizer, false, {{"l1", 0}, {"l2", 0}}},
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

static const char NCHW[] = "[batch, channels, height, width]";

static const char *
tstr(Lower *L, const Type *t)
{
	return type_str(L->a, t);
}

/* The input tensor, which must have the given rank. */
Type
kl_input(Lower *L, const Val *v, const char *fn, int rank, const char *dims,
         const char *hint)
{
	Type t = L->g->val[kl_tensor(v, fn, "x")].type;
	if (t.rank != rank)
		diag_error(v->loc, "%s: the input must have rank %d %s, got %s%s", fn,
		           rank, dims, tstr(L, &t), hint);
	return t;
}

int64_t
kl_positive(const Val *v, const char *fn, const char *what, int64_t def)
{
	int64_t n = kl_int(v, fn, what, def);
	if (n < 1)
		diag_error(v->loc, "%s: '%s' must be positive, got %lld", fn, what,
		           (long long)n);
	return n;
}

double
kl_number(const Val *v, const char *fn, const char *what, double def)
{
	if (v->kind == VAL_NONE)
		return def;
	if (v->kind != VAL_INT && v->kind != VAL_FLOAT)
		diag_error(v->loc, "%s: '%s' must be a number, got %s", fn, what,
		           kl_kind(v));
	return v->kind == VAL_INT ? (double)v->i : v->f;
}

/* One of the strings names (NULL-terminated): its index, def if absent. */
int
kl_choice(Lower *L, const Val *v, const char *fn, const char *what,
          const char *const *names, int def)
{
	if (v->kind == VAL_NONE)
		return def;
	if (v->kind != VAL_STR)
		diag_error(v->loc, "%s: '%s' must be a string, got %s", fn, what,
		           kl_kind(v));
	int i = shape_choice(v->s, names);
	if (i >= 0)
		return i;
	const char *list = "";
	for (int k = 0; names[k]; k++)
		list = arena_printf(L->a, "%s%s\"%s\"", list, k ? ", " : "",
		                    names[k]);
	diag_error(v->loc, "%s: unknown %s \"%s\" (expected one of %s)", fn, what,
	           v->s, list);
}

/* Refuses sizes whose product (in bytes, f[0] * ... * f[k-1] * 8) would
 * overflow before ir_verify could say the tensors are too large. */
void
kl_fits(Loc loc, const char *fn, int k, const int64_t *f)
{
	int64_t n = 8;
	for (int i = 0; i < k; i++)
		if (__builtin_mul_overflow(n, f[i], &n))
			diag_error(loc, "%s: the layer's tensors would be too large for "
			           "these sizes", fn);
}

/* A size, stride or dilation, at most INT32_MAX as the window attributes
 * of the registry are (so that window arithmetic cannot overflow). */
static int64_t
bounded(const Val *v, const char *fn, const char *what, int64_t x)
{
	if (x > INT32_MAX)
		diag_error(v->loc, "%s: '%s' values must be at most %d, got %lld", fn,
		           what, INT32_MAX, (long long)x);
	return x;
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
	bounded(v, fn, what, MAX(out[0], out[1]));
}

enum { PAD_VALID, PAD_SAME, PAD_EXPLICIT };
static const char *const pad_name[] = {"valid", "same"};

/* A window: kernel size, strides, dilations, pads and group. */
typedef struct {
	int64_t k[2], s[2], d[2], pads[4], group;
} Window;

/* "same": the output has ceil(in / stride) rows and columns; the total
 * padding is split with the odd one at the bottom and right (ONNX
 * SAME_UPPER, TensorFlow and Keras "same"). */
static void
pad_same(const Type *x, Window *w)
{
	for (int i = 0; i < 2; i++) {
		int64_t in = x->dim[2 + i], s = w->s[i];
		int64_t out = (in + s - 1) / s;
		int64_t total = MAX((out - 1) * s + (w->k[i] - 1) * w->d[i] + 1 - in,
		                    0);
		w->pads[i] = total / 2;
		w->pads[i + 2] = total - total / 2;
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

/* padding = "valid" | "same" | p | [ph, pw] | [top, left, bottom, right]:
 * PAD_ of it, with the pads of an explicit one. */
static int
padding_arg(const Val *v, const char *fn, int64_t pads[4])
{
	memset(pads, 0, 4 * sizeof *pads);
	if (v->kind == VAL_NONE)
		return PAD_VALID;
	if (v->kind == VAL_STR)
		return pad_kind(v, fn);
	int n = kl_ints(v, fn, "padding", pads, 4);
	if (n == 3 || n == 0)
		diag_error(v->loc, "%s: 'padding' takes 1, 2 or 4 values, got %d", fn,
		           n);
	for (int i = n; i < 4; i++)
		pads[i] = pads[i % n];
	for (int i = 0; i < 4; i++)
		if (pads[i] < 0)
			diag_error(v->loc, "%s: padding must not be negative", fn);
	return PAD_EXPLICIT;
}

/* The window of a 2-D convolution from its arguments, for input x. */
static Window
window(const char *fn, const Type *x, const Val *kernel, const Val *stride,
       const Val *pad, const Val *dilation)
{
	Window w = {.group = 1};
	pair(kernel, fn, "kernel", 3, 1, w.k);
	pair(stride, fn, "stride", 1, 1, w.s);
	pair(dilation, fn, "dilation", 1, 1, w.d);
	if (padding_arg(pad, fn, w.pads) == PAD_SAME)
		pad_same(x, &w);
	return w;
}

static int64_t
groups_arg(const Val *v, const char *fn, int64_t c, int64_t filters)
{
	int64_t groups = kl_positive(v, fn, "groups", 1);
	if (c % groups || filters % groups)
		diag_error(v->loc, "%s: groups (%lld) must divide the input "
		           "channels (%lld) and the filters (%lld)", fn,
		           (long long)groups, (long long)c, (long long)filters);
	return groups;
}

/* ---- activations, initializers, regularizers ---- */

/* The names activation="..." takes and the op each makes, with the op's
 * default attributes; "linear" is none.  swish is Keras's name for silu. */
static const struct {
	const char *name;
	int op;
} activations[] = {
	{"relu", OP_RELU}, {"sigmoid", OP_SIGMOID}, {"tanh", OP_TANH},
	{"softmax", OP_SOFTMAX}, {"log_softmax", OP_LOG_SOFTMAX},
	{"leaky_relu", OP_LEAKY_RELU}, {"elu", OP_ELU}, {"selu", OP_SELU},
	{"gelu", OP_GELU}, {"silu", OP_SILU}, {"swish", OP_SILU},
	{"hardswish", OP_HARDSWISH}, {"hardsigmoid", OP_HARDSIGMOID},
};

/* The activation's op, or -1 for none ("linear", or not given). */
int
kl_activation(Lower *L, const Val *v, const char *fn)
{
	if (v->kind == VAL_NONE)
		return -1;
	if (v->kind != VAL_STR)
		diag_error(v->loc, "%s: 'activation' must be a string, got %s", fn,
		           kl_kind(v));
	if (strcmp(v->s, "linear") == 0)
		return -1;
	for (int i = 0; i < countof(activations); i++)
		if (strcmp(v->s, activations[i].name) == 0)
			return activations[i].op;
	const char *list = "\"linear\"";
	for (int i = 0; i < countof(activations); i++)
		list = arena_printf(L->a, "%s, \"%s\"", list, activations[i].name);
	diag_error(v->loc, "%s: unknown activation \"%s\" (expected one of %s)",
	           fn, v->s, list);
}

static const char *const init_name[] = {"zeros", "ones", "he_uniform",
	"glorot_uniform", NULL};
static const int init_kind[] = {INIT_ZEROS, INIT_ONES, INIT_HE_UNIFORM,
	INIT_GLOROT_UNIFORM};

/* An initializer argument: its INIT_, or def when absent. */
int
kl_initializer(Lower *L, const Val *v, const char *fn, const char *what,
               int def)
{
	if (v->kind == VAL_NONE)
		return def;
	return init_kind[kl_choice(L, v, fn, what, init_name, 0)];
}

/* What the KERNEL_ARGS of a layer say. */
typedef struct {
	const char *fn;
	int act;                    /* activation op, or -1 */
	bool bias;                  /* use_bias */
	int kinit, binit;           /* INIT_ of the kernels and of the bias */
	const Val *kreg, *breg;     /* regularizers; VAL_NONE: none */
} Kernel;

/* a[] is the layer's arguments from activation on.  Kernels default to He
 * uniform before a relu and Glorot uniform otherwise, biases to zeros. */
static Kernel
kernel_args(Lower *L, const char *fn, const Val *a)
{
	Kernel k = {.fn = fn, .act = kl_activation(L, &a[0], fn),
	            .kreg = &a[4], .breg = &a[5]};
	if (a[1].kind != VAL_NONE && a[6].kind != VAL_NONE)
		diag_error(a[6].loc, "%s: 'bias' is another name for 'use_bias'; "
		           "give only one of them", fn);
	k.bias = kl_bool(&a[1], fn, "use_bias", kl_bool(&a[6], fn, "bias", true));
	k.kinit = kl_initializer(L, &a[2], fn, "kernel_initializer",
	                         k.act == OP_RELU ? INIT_HE_UNIFORM :
	                         INIT_GLOROT_UNIFORM);
	k.binit = kl_initializer(L, &a[3], fn, "bias_initializer", INIT_ZEROS);
	kl_regularize(L, k.kreg, -1, fn, "kernel_regularizer");
	kl_regularize(L, k.breg, -1, fn, "bias_regularizer");
	return k;
}

/* The kernel ns.suffix, with the layer's initializer and regularizer. */
static int
kernel_param(Lower *L, const Expr *call, const Kernel *k, Name nm,
             const char *suffix, Type t, int64_t fan_in, int64_t fan_out)
{
	int p = kl_param(L, nm.ns, suffix, t, call->loc, k->kinit, fan_in,
	                 fan_out);
	kl_regularize(L, k->kreg, p, k->fn, "kernel_regularizer");
	return p;
}

/* The bias ns.b [n], or -1 when the layer has none. */
static int
bias_param(Lower *L, const Expr *call, const Kernel *k, Name nm, int64_t n)
{
	if (!k->bias)
		return -1;
	int p = kl_param(L, nm.ns, "b", (Type){DT_F32, 1, {n}}, call->loc,
	                 k->binit, n, n);
	kl_regularize(L, k->breg, p, k->fn, "bias_regularizer");
	return p;
}

/* The layer's last op node, then its activation: the op's result is
 * ns.base (ns.<op> when base is NULL) and the activation's takes the
 * layer's name. */
static int
finish(Lower *L, const Expr *call, int node, int act, Name nm,
       const char *base)
{
	if (act < 0)
		return kl_result(L, node, nm.result);
	if (!base)
		base = op_get(L->g->node[node].op)->name;
	int pre = kl_result(L, node, kl_fresh(L, nm.ns, base));
	return kl_result(L, ir_add_node(L->g, act, call->loc, &pre, 1), nm.result);
}

/* ---- the layers ---- */

/* dense(x, units, activation=, use_bias=true, ...):
 *   gemm(x, ns.w [in, units], ns.b [units]), then the activation */
static int
lower_dense(Lower *L, const Expr *call, Val *arg, Name nm)
{
	static const char fn[] = "dense";
	Type x = kl_input(L, &arg[0], fn, 2, "[batch, features]",
	                  "; flatten it first, e.g. dense(flatten(x), ...)");
	int64_t units = kl_positive(&arg[1], fn, "units", 1);
	Kernel k = kernel_args(L, fn, &arg[2]);
	int64_t in = x.dim[1];
	kl_fits(call->loc, fn, 2, (int64_t[]){in, units});
	Type wt = {.dtype = DT_F32, .rank = 2, .dim = {in, units}};
	int op[3] = {arg[0].v, kernel_param(L, call, &k, nm, "w", wt, in, units)};
	op[2] = bias_param(L, call, &k, nm, units);
	int n = ir_add_node(L->g, OP_GEMM, call->loc, op, op[2] < 0 ? 2 : 3);
	return finish(L, call, n, k.act, nm, NULL);
}

/* The node of a conv2d or conv2d_transpose op on x, w and b (-1: none). */
static int
conv_node(Lower *L, const Expr *call, int op, int x, int w, int b,
          const Window *win)
{
	Graph *g = L->g;
	int n = ir_add_node(g, op, call->loc, (int[]){x, w, b}, b < 0 ? 2 : 3);
	ir_set_ints(g, n, op_attr_lookup(op, "strides"), win->s, 2);
	ir_set_ints(g, n, op_attr_lookup(op, "pads"), win->pads, 4);
	ir_set_ints(g, n, op_attr_lookup(op, "dilations"), win->d, 2);
	ir_set_int(g, n, op_attr_lookup(op, "group"), win->group);
	return n;
}

/* conv2d of x [n, c, h, w] with ns.w [filters, c/group, kh, kw] and ns.b
 * [filters], then the activation.  fan_in = c/group * kh * kw and
 * fan_out = filters * kh * kw. */
static int
conv(Lower *L, const Expr *call, const Kernel *k, Name nm, int x,
     int64_t filters, const Window *w)
{
	int64_t c = L->g->val[x].type.dim[1] / w->group, kk = w->k[0] * w->k[1];
	Type wt = {.dtype = DT_F32, .rank = 4, .dim = {filters, c, w->k[0],
	                                               w->k[1]}};
	int wv = kernel_param(L, call, k, nm, "w", wt, c * kk, filters * kk);
	int b = bias_param(L, call, k, nm, filters);
	int n = conv_node(L, call, OP_CONV2D, x, wv, b, w);
	return finish(L, call, n, k->act, nm, NULL);
}

/* conv2d(x, filters, kernel=3, stride=1, padding="valid", dilation=1,
 *        groups=1, activation=, use_bias=true, ...):
 *   conv2d(x, ns.w [filters, c/groups, kh, kw], ns.b [filters]) */
static int
lower_conv2d(Lower *L, const Expr *call, Val *arg, Name nm)
{
	static const char fn[] = "conv2d";
	Type x = kl_input(L, &arg[0], fn, 4, NCHW, "");
	int64_t filters = kl_positive(&arg[1], fn, "filters", 1);
	Window w = window(fn, &x, &arg[2], &arg[3], &arg[4], &arg[5]);
	w.group = groups_arg(&arg[6], fn, x.dim[1], filters);
	Kernel k = kernel_args(L, fn, &arg[7]);
	kl_fits(call->loc, fn, 4, (int64_t[]){filters, x.dim[1], w.k[0], w.k[1]});
	return conv(L, call, &k, nm, arg[0].v, filters, &w);
}

/* depthwise_conv2d(x, kernel=3, stride=1, padding="valid",
 *                  depth_multiplier=1, dilation=1, activation=, ...):
 *   conv2d with group = c and ns.w [c * depth_multiplier, 1, kh, kw] */
static int
lower_depthwise(Lower *L, const Expr *call, Val *arg, Name nm)
{
	static const char fn[] = "depthwise_conv2d";
	Type x = kl_input(L, &arg[0], fn, 4, NCHW, "");
	Window w = window(fn, &x, &arg[1], &arg[2], &arg[3], &arg[5]);
	int64_t m = kl_positive(&arg[4], fn, "depth_multiplier", 1);
	Kernel k = kernel_args(L, fn, &arg[6]);
	kl_fits(call->loc, fn, 4, (int64_t[]){x.dim[1], m, w.k[0], w.k[1]});
	w.group = x.dim[1];
	return conv(L, call, &k, nm, arg[0].v, x.dim[1] * m, &w);
}

/* separable_conv2d(x, filters, kernel=3, stride=1, padding="valid",
 *                  depth_multiplier=1, dilation=1, activation=, ...):
 *   ns.depthwise = conv2d(x, ns.dw [c*m, 1, kh, kw]) with group = c, then
 *   a 1x1 conv2d(ns.depthwise, ns.pw [filters, c*m, 1, 1], ns.b) */
static int
lower_separable(Lower *L, const Expr *call, Val *arg, Name nm)
{
	static const char fn[] = "separable_conv2d";
	Type x = kl_input(L, &arg[0], fn, 4, NCHW, "");
	int64_t filters = kl_positive(&arg[1], fn, "filters", 1);
	Window w = window(fn, &x, &arg[2], &arg[3], &arg[4], &arg[6]);
	int64_t m = kl_positive(&arg[5], fn, "depth_multiplier", 1);
	Kernel k = kernel_args(L, fn, &arg[7]);
	kl_fits(call->loc, fn, 4, (int64_t[]){x.dim[1], m, w.k[0], w.k[1]});
	kl_fits(call->loc, fn, 3, (int64_t[]){x.dim[1], m, filters});
	int64_t c = x.dim[1], kk = w.k[0] * w.k[1];
	w.group = c;
	Type dt = {.dtype = DT_F32, .rank = 4, .dim = {c * m, 1, w.k[0], w.k[1]}};
	int dw = kernel_param(L, call, &k, nm, "dw", dt, kk, c * m * kk);
	Type pt = {.dtype = DT_F32, .rank = 4, .dim = {filters, c * m, 1, 1}};
	int pw = kernel_param(L, call, &k, nm, "pw", pt, c * m, filters);
	int b = bias_param(L, call, &k, nm, filters);
	int dn = conv_node(L, call, OP_CONV2D, arg[0].v, dw, -1, &w);
	int d = kl_result(L, dn, kl_fresh(L, nm.ns, "depthwise"));
	Window one = {.k = {1, 1}, .s = {1, 1}, .d = {1, 1}, .group = 1};
	int n = conv_node(L, call, OP_CONV2D, d, pw, b, &one);
	return finish(L, call, n, k.act, nm, NULL);
}

/* The node reshaping v to t. */
static int
reshape_node(Lower *L, const Expr *call, int v, const Type *t)
{
	int n = ir_add_node(L->g, OP_RESHAPE, call->loc, &v, 1);
	ir_set_ints(L->g, n, AT_RESHAPE_SHAPE, t->dim, t->rank);
	return n;
}

/* conv1d's padding: "valid", "same", p or [left, right], as the pads of
 * a 2-D window over [n, c, 1, length]. */
static void
padding1d(const Val *v, const char *fn, const Type *x4, Window *w)
{
	int64_t p[4] = {0};
	if (v->kind == VAL_STR) {
		if (pad_kind(v, fn) == PAD_SAME)
			pad_same(x4, w);
		return;
	}
	if (v->kind == VAL_NONE)
		return;
	int n = kl_ints(v, fn, "padding", p, 2);
	if (n == 0)
		diag_error(v->loc, "%s: 'padding' takes 1 or 2 values, got 0", fn);
	for (int i = 0; i < 2; i++)
		if (p[i % n] < 0)
			diag_error(v->loc, "%s: padding must not be negative", fn);
	w->pads[1] = p[0];
	w->pads[3] = p[n - 1];
}

/* conv1d(x, filters, kernel=3, stride=1, padding="valid", dilation=1,
 *        groups=1, activation=, use_bias=true, ...):
 *   x [n, c, l] reshaped to ns.x2d [n, c, 1, l], ns.w [filters, c/groups,
 *   k] to ns.w2d [filters, c/groups, 1, k]; conv2d ns.conv2d; reshaped
 *   back to [n, filters, l'] */
static int
lower_conv1d(Lower *L, const Expr *call, Val *arg, Name nm)
{
	static const char fn[] = "conv1d";
	Graph *g = L->g;
	Type x = kl_input(L, &arg[0], fn, 3, "[batch, channels, length]", "");
	int64_t filters = kl_positive(&arg[1], fn, "filters", 1);
	Window w = {.k = {1, 3}, .s = {1, 1}, .d = {1, 1}};
	w.k[1] = bounded(&arg[2], fn, "kernel", kl_positive(&arg[2], fn,
	                                                    "kernel", 3));
	w.s[1] = bounded(&arg[3], fn, "stride", kl_positive(&arg[3], fn,
	                                                    "stride", 1));
	w.d[1] = bounded(&arg[5], fn, "dilation", kl_positive(&arg[5], fn,
	                                                      "dilation", 1));
	Type x4 = {.dtype = x.dtype, .rank = 4, .dim = {x.dim[0], x.dim[1], 1,
	                                                x.dim[2]}};
	padding1d(&arg[4], fn, &x4, &w);
	w.group = groups_arg(&arg[6], fn, x.dim[1], filters);
	Kernel k = kernel_args(L, fn, &arg[7]);
	int64_t c = x.dim[1] / w.group, kl = w.k[1];
	kl_fits(call->loc, fn, 3, (int64_t[]){filters, c, kl});
	if ((kl - 1) * (double)w.d[1] + 1 > (double)x.dim[2] + w.pads[1] +
	    w.pads[3])
		diag_error(call->loc, "conv1d: kernel %lld (dilation %lld) does not "
		           "fit length %lld with its padding", (long long)kl,
		           (long long)w.d[1], (long long)x.dim[2]);
	int xv = kl_result(L, reshape_node(L, call, arg[0].v, &x4),
	                   kl_fresh(L, nm.ns, "x2d"));
	Type wt = {.dtype = DT_F32, .rank = 3, .dim = {filters, c, kl}};
	int wv = kernel_param(L, call, &k, nm, "w", wt, c * kl, filters * kl);
	Type w4 = {.dtype = DT_F32, .rank = 4, .dim = {filters, c, 1, kl}};
	int w2 = kl_result(L, reshape_node(L, call, wv, &w4),
	                   kl_fresh(L, nm.ns, "w2d"));
	int b = bias_param(L, call, &k, nm, filters);
	int y4 = kl_result(L, conv_node(L, call, OP_CONV2D, xv, w2, b, &w),
	                   kl_fresh(L, nm.ns, "conv2d"));
	const Type *yt = &g->val[y4].type;
	Type y3 = {.dtype = DT_F32, .rank = 3, .dim = {yt->dim[0], yt->dim[1],
	                                               yt->dim[3]}};
	return finish(L, call, reshape_node(L, call, y4, &y3), k.act, nm,
	              "conv1d");
}

/* "same" for a transposed convolution: the output is in * stride.  The
 * full output, s*(in-1) + (k-1)*d + 1 rows, is cropped by as many rows as
 * a "same" conv2d of the output would pad, split the same way; when that
 * is negative (kernel below the stride) rows are added at the end. */
static void
pad_same_transpose(Window *w, int64_t outpad[2])
{
	for (int i = 0; i < 2; i++) {
		int64_t total = (w->k[i] - 1) * w->d[i] + 1 - w->s[i];
		if (total < 0) {
			outpad[i] -= total;
			total = 0;
		}
		w->pads[i] = total / 2;
		w->pads[i + 2] = total - total / 2;
	}
}

/* conv2d_transpose(x, filters, kernel=3, stride=1, padding="valid",
 *                  output_padding=0, dilation=1, activation=, ...):
 *   conv2d_transpose(x, ns.w [c, filters, kh, kw], ns.b [filters]);
 *   fan_in = filters * kh * kw, fan_out = c * kh * kw (as Keras) */
static int
lower_conv2d_transpose(Lower *L, const Expr *call, Val *arg, Name nm)
{
	static const char fn[] = "conv2d_transpose";
	Type x = kl_input(L, &arg[0], fn, 4, NCHW, "");
	int64_t filters = kl_positive(&arg[1], fn, "filters", 1);
	Window w = {.group = 1};
	int64_t outpad[2];
	pair(&arg[2], fn, "kernel", 3, 1, w.k);
	pair(&arg[3], fn, "stride", 1, 1, w.s);
	pair(&arg[5], fn, "output_padding", 0, 0, outpad);
	pair(&arg[6], fn, "dilation", 1, 1, w.d);
	for (int i = 0; i < 2; i++)
		if (outpad[i] >= w.s[i])
			diag_error(arg[5].loc, "%s: 'output_padding' must be less than "
			           "the stride (%lld), got %lld", fn, (long long)w.s[i],
			           (long long)outpad[i]);
	if (padding_arg(&arg[4], fn, w.pads) == PAD_SAME)
		pad_same_transpose(&w, outpad);
	Kernel k = kernel_args(L, fn, &arg[7]);
	kl_fits(call->loc, fn, 4, (int64_t[]){x.dim[1], filters, w.k[0],
	                                       w.k[1]});
	int64_t c = x.dim[1], kk = w.k[0] * w.k[1];
	Type wt = {.dtype = DT_F32, .rank = 4, .dim = {c, filters, w.k[0],
	                                               w.k[1]}};
	int wv = kernel_param(L, call, &k, nm, "w", wt, filters * kk, c * kk);
	int b = bias_param(L, call, &k, nm, filters);
	int n = conv_node(L, call, OP_CONV2D_TRANSPOSE, arg[0].v, wv, b, &w);
	ir_set_ints(L->g, n, AT_CONV2D_TRANSPOSE_OUTPUT_PADDING, outpad, 2);
	return finish(L, call, n, k.act, nm, NULL);
}

/* maxpool2d(x, size=2, stride=size, padding="valid"), and avgpool2d:
 *   the registry op of the same name, with kernel, strides and pads */
static int
lower_pool(Lower *L, const Expr *call, Val *arg, Name nm)
{
	const char *fn = call->s;
	int op = op_lookup(fn);
	Type x = kl_input(L, &arg[0], fn, 4, NCHW, "");
	Window w = {.d = {1, 1}};
	pair(&arg[1], fn, "size", 2, 1, w.k);
	pair(&arg[2], fn, "stride", 1, 1, w.s);
	if (arg[2].kind == VAL_NONE)
		memcpy(w.s, w.k, sizeof w.s);
	if (padding_arg(&arg[3], fn, w.pads) == PAD_SAME)
		pad_same(&x, &w);
	int n = ir_add_node(L->g, op, call->loc, &arg[0].v, 1);
	Graph *g = L->g;
	ir_set_ints(g, n, op_attr_lookup(op, "kernel"), w.k, 2);
	ir_set_ints(g, n, op_attr_lookup(op, "strides"), w.s, 2);
	ir_set_ints(g, n, op_attr_lookup(op, "pads"), w.pads, 4);
	return kl_result(L, n, nm.result);
}

/* global_avgpool2d(x, keepdims=false), global_maxpool2d: reduce_mean or
 * reduce_max over axes [2, 3], [n, c] (or [n, c, 1, 1] with keepdims) */
static int
global_pool(Lower *L, const Expr *call, Val *arg, Name nm, int op)
{
	const char *fn = call->s;
	kl_input(L, &arg[0], fn, 4, NCHW, "");
	int n = ir_add_node(L->g, op, call->loc, &arg[0].v, 1);
	ir_set_ints(L->g, n, op_attr_lookup(op, "axes"), (int64_t[]){2, 3}, 2);
	ir_set_int(L->g, n, op_attr_lookup(op, "keepdims"),
	           kl_bool(&arg[1], fn, "keepdims", false));
	return kl_result(L, n, nm.result);
}

static int
lower_global_avg(Lower *L, const Expr *call, Val *arg, Name nm)
{
	return global_pool(L, call, arg, nm, OP_REDUCE_MEAN);
}

static int
lower_global_max(Lower *L, const Expr *call, Val *arg, Name nm)
{
	return global_pool(L, call, arg, nm, OP_REDUCE_MAX);
}

static void
set_string(Graph *g, int node, int id, const char *s)
{
	*ir_attr(g, &g->node[node], id) = (Attr){.kind = AK_STRING, .s = s};
}

/* upsample2d(x, size=2, mode="nearest"): resize to [n, c, h*sh, w*sw].
 * "nearest" repeats each pixel (asymmetric coordinates, floor: output o
 * reads input o / size, as Keras's UpSampling2D); "bilinear" is resize's
 * linear mode with half-pixel coordinates. */
static int
lower_upsample(Lower *L, const Expr *call, Val *arg, Name nm)
{
	static const char fn[] = "upsample2d";
	static const char *const modes[] = {"nearest", "bilinear", NULL};
	Type x = kl_input(L, &arg[0], fn, 4, NCHW, "");
	int64_t s[2];
	pair(&arg[1], fn, "size", 2, 1, s);
	int mode = kl_choice(L, &arg[2], fn, "mode", modes, 0);
	kl_fits(call->loc, fn, 6, (int64_t[]){x.dim[0], x.dim[1], x.dim[2], s[0],
	                                       x.dim[3], s[1]});
	int64_t sizes[4] = {x.dim[0], x.dim[1], x.dim[2] * s[0], x.dim[3] * s[1]};
	Graph *g = L->g;
	int n = ir_add_node(g, OP_RESIZE, call->loc, &arg[0].v, 1);
	ir_set_ints(g, n, AT_RESIZE_SIZES, sizes, 4);
	if (mode == 0) {
		set_string(g, n, AT_RESIZE_COORD, "asymmetric");
		set_string(g, n, AT_RESIZE_NEAREST_MODE, "floor");
	} else {
		set_string(g, n, AT_RESIZE_MODE, "linear");
	}
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
