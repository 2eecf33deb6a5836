/* recurrent.c: the sequence layers of .kiln: simple_rnn, lstm and gru
 * (Keras semantics, batch-first), multihead_attention, and
 * transformer_encoder, a post-norm block around it.
 *
 * Shapes are static, so a recurrence is unrolled over time when the model
 * is lowered: x W + b is one gemm for all steps, then each step is a gemm
 * with U and the cell's elementwise ops on that step's rows: 3
 * (simple_rnn) or 15 (lstm, gru) nodes per step and direction.  All
 * of it is registry ops, so the backends (and, later, autodiff) need
 * nothing new.  docs/language.md, "Sequence layers", gives the formulas
 * and the names of everything made here.
 *
 * Legend: N batch, T time, F input features, U units, G gates (1, 4, 3),
 * H heads, D key_dim, E features.  Inside a recurrence tensors are
 * time-major: row t*N + n of x W + b is sample n at time t.
 */
#include <math.h>
#include "kiln.h"

enum { CELL_SIMPLE, CELL_LSTM, CELL_GRU };
static const int64_t gates[] = {[CELL_SIMPLE] = 1, [CELL_LSTM] = 4,
                                [CELL_GRU] = 3};

/* Where nodes go and how they are named: ns.what, or ns.tK.what in the
 * step that reads x at time K. */
typedef struct {
	Lower *L;
	Loc loc;                    /* the call, for every node */
	const char *ns;
	int t;                      /* the step, or -1 outside the steps */
} Emit;

static const char *
name(const Emit *e, const char *what)
{
	if (e->t >= 0)
		what = arena_printf(e->L->a, "t%d.%s", e->t, what);
	return kl_fresh(e->L, e->ns, what);
}

/* The node of op on in[0..nin-1]; its result is named by finish(). */
static int
node(const Emit *e, int op, const int *in, int nin)
{
	return ir_add_node(e->L->g, op, e->loc, in, nin);
}

static int
finish(const Emit *e, int n, const char *nm)
{
	return kl_result(e->L, n, nm);
}

static int
op1(const Emit *e, int op, int a, const char *nm)
{
	return finish(e, node(e, op, &a, 1), nm);
}

static int
op2(const Emit *e, int op, int a, int b, const char *nm)
{
	return finish(e, node(e, op, (int[]){a, b}, 2), nm);
}

/* a @ b + c, or a @ b when c < 0 */
static int
gemm(const Emit *e, int a, int b, int c, const char *nm)
{
	return finish(e, node(e, OP_GEMM, (int[]){a, b, c}, c < 0 ? 2 : 3), nm);
}

/* x[lo[i]:hi[i]] along axis[i], for k axes */
static int
slice(const Emit *e, int x, int k, const int64_t *axis, const int64_t *lo,
      const int64_t *hi, const char *nm)
{
	int n = node(e, OP_SLICE, &x, 1);
	Graph *g = e->L->g;
	ir_set_ints(g, n, AT_SLICE_STARTS, lo, k);
	ir_set_ints(g, n, AT_SLICE_ENDS, hi, k);
	ir_set_ints(g, n, AT_SLICE_AXES, axis, k);
	return finish(e, n, nm);
}

/* Columns lo..hi-1 of a rank-2 x. */
static int
cols(const Emit *e, int x, int64_t lo, int64_t hi, const char *nm)
{
	return slice(e, x, 1, (int64_t[]){1}, &lo, &hi, nm);
}

static int
reshape(const Emit *e, int x, int rank, const int64_t *dim, const char *nm)
{
	int n = node(e, OP_RESHAPE, &x, 1);
	ir_set_ints(e->L->g, n, AT_RESHAPE_SHAPE, dim, rank);
	return finish(e, n, nm);
}

static int
transpose(const Emit *e, int x, int rank, const int64_t *perm,
          const char *nm)
{
	int n = node(e, OP_TRANSPOSE, &x, 1);
	ir_set_ints(e->L->g, n, AT_TRANSPOSE_PERM, perm, rank);
	return finish(e, n, nm);
}

/* Any number of tensors joined along axis; a node takes at most IR_MAXIN
 * operands, so a longer list is joined in parts first. */
static int
concat(const Emit *e, const int *v, int nv, int axis, const char *nm)
{
	if (nv > IR_MAXIN) {
		int np = (nv + IR_MAXIN - 1) / IR_MAXIN;
		int *part = arena_alloc(e->L->a, np * sizeof *part);
		for (int i = 0; i < np; i++)
			part[i] = concat(e, v + i * IR_MAXIN,
			                 MIN(IR_MAXIN, nv - i * IR_MAXIN), axis,
			                 name(e, "part"));
		return concat(e, part, np, axis, nm);
	}
	int n = node(e, OP_CONCAT, v, nv);
	ir_set_int(e->L->g, n, AT_CONCAT_AXIS, axis);
	return finish(e, n, nm);
}

/* A scalar f32 constant. */
static int
scalar(const Emit *e, const char *what, double x)
{
	Graph *g = e->L->g;
	int c = ir_add_value(g, name(e, what), VK_CONST, (Type){.dtype = DT_F32},
	                     e->loc);
	float *p = arena_alloc(e->L->a, sizeof *p);
	*p = (float)x;
	g->val[c].data = p;
	return c;
}

static int
param(const Emit *e, const char *what, int64_t d0, int64_t d1, int init)
{
	Type t = {.dtype = DT_F32, .rank = d1 ? 2 : 1, .dim = {d0, d1}};
	return kl_param(e->L, e->ns, what, t, e->loc, init, d1 ? d0 : 0, d1);
}

/* A bias ns.what [d0] or [d0, d1]; a fan-based init sees fan_in = fan_out
 * = its size, as the kernel layers' biases do. */
static int
bias_param(const Emit *e, const char *what, int64_t d0, int64_t d1, int init)
{
	Type t = {.dtype = DT_F32, .rank = d1 ? 2 : 1, .dim = {d0, d1}};
	int64_t n = d1 ? d0 * d1 : d0;
	return kl_param(e->L, e->ns, what, t, e->loc, init, n, n);
}

/* The initializer and regularizer arguments of a layer: of its kernels
 * (w), recurrent kernels (u) and biases (b).  Regularizers are VAL_NONE
 * when not given; binit is -1 when not given (lstm's forget-gate ones). */
typedef struct {
	const char *fn;
	int kinit, rinit, binit;    /* INIT_ */
	const Val *kreg, *rreg, *breg;
} Inits;

/* p (when >= 0), with the regularizer r of its argument what. */
static int
regularized(const Emit *e, const Inits *in, int p, const Val *r,
            const char *what)
{
	kl_regularize(e->L, r, p, in->fn, what);
	return p;
}

/* use_bias=, or its older name bias= (as kernel_args() in layers.c). */
static bool
use_bias(const char *fn, const Val *ub, const Val *b)
{
	if (ub->kind != VAL_NONE && b->kind != VAL_NONE)
		diag_error(b->loc, "%s: 'bias' is another name for 'use_bias'; "
		           "give only one of them", fn);
	return kl_bool(ub, fn, "use_bias", kl_bool(b, fn, "bias", true));
}

/* ---- recurrent layers ---- */

/* One direction of a recurrent layer. */
typedef struct {
	int cell;                   /* CELL_ */
	int act;                    /* simple_rnn's activation op, or -1 */
	int64_t n, t, u;            /* batch, time, units */
	int xw;                     /* x W + b, [T*N, G*U] time-major */
	int w_u;                    /* U, [U, G*U] */
	int rb;                     /* gru: the recurrent bias [1, 3U], or -1 */
	const Inits *in;            /* initializers and regularizers */
} Rnn;

/* Rows t*N .. t*N+N-1 of x W + b, and columns lo..hi-1 of them. */
static int
step_x(const Emit *e, const Rnn *r, int64_t lo, int64_t hi, const char *nm)
{
	int64_t t0 = e->t * r->n;
	return slice(e, r->xw, 2, (int64_t[]){0, 1}, (int64_t[]){t0, lo},
	             (int64_t[]){t0 + r->n, hi}, nm);
}

/* h = act(x_t W + b + h U); hp < 0 is the zero state before x_0. */
static int
simple_step(const Emit *e, const Rnn *r, int hp, const char *hn)
{
	const char *zn = r->act >= 0 ? name(e, "z") : hn;
	int z = step_x(e, r, 0, r->u, hp < 0 ? zn : name(e, "x"));
	if (hp >= 0)
		z = gemm(e, hp, r->w_u, z, zn);
	return r->act >= 0 ? op1(e, r->act, z, hn) : z;
}

/* z = x_t W + b + h U, columns [i | f | g | o];
 * c = sigmoid(z_f) c + sigmoid(z_i) tanh(z_g), h = sigmoid(z_o) tanh(c).
 * *c is the cell state in and out; -1 in is the zero state, which needs
 * neither h U nor the forget gate. */
static int
lstm_step(const Emit *e, const Rnn *r, int hp, int *c, const char *hn)
{
	int64_t u = r->u;
	int z = step_x(e, r, 0, 4 * u, name(e, hp < 0 ? "z" : "x"));
	if (hp >= 0)
		z = gemm(e, hp, r->w_u, z, name(e, "z"));
	int i = op1(e, OP_SIGMOID, cols(e, z, 0, u, name(e, "zi")), name(e, "i"));
	int f = *c < 0 ? -1 : op1(e, OP_SIGMOID, cols(e, z, u, 2 * u,
	                          name(e, "zf")), name(e, "f"));
	int g = op1(e, OP_TANH, cols(e, z, 2 * u, 3 * u, name(e, "zg")),
	            name(e, "g"));
	int o = op1(e, OP_SIGMOID, cols(e, z, 3 * u, 4 * u, name(e, "zo")),
	            name(e, "o"));
	if (*c < 0) {
		*c = op2(e, OP_MUL, i, g, name(e, "c"));
	} else {
		int fc = op2(e, OP_MUL, f, *c, name(e, "fc"));
		int ig = op2(e, OP_MUL, i, g, name(e, "ig"));
		*c = op2(e, OP_ADD, fc, ig, name(e, "c"));
	}
	return op2(e, OP_MUL, o, op1(e, OP_TANH, *c, name(e, "tc")), hn);
}

/* Keras's reset_after form, columns [z | r | h]: a = x_t W + b_in and
 * q = h U + b_rec; z, r = sigmoid(a + q) in their columns,
 * hh = tanh(a_h + r q_h), h = hh + z (h_prev - hh).  From the zero state,
 * q is b_rec (or nothing) and h = hh - z hh. */
static int
gru_step(const Emit *e, const Rnn *r, int hp, const char *hn)
{
	int64_t u = r->u;
	int zr = step_x(e, r, 0, 2 * u, name(e, "xzr"));
	int a = step_x(e, r, 2 * u, 3 * u, name(e, "xh"));
	int q = hp >= 0 ? gemm(e, hp, r->w_u, r->rb, name(e, "q")) : r->rb;
	if (q >= 0)
		zr = op2(e, OP_ADD, zr, cols(e, q, 0, 2 * u, name(e, "qzr")),
		         name(e, "zr_in"));
	zr = op1(e, OP_SIGMOID, zr, name(e, "zr"));
	int z = cols(e, zr, 0, u, name(e, "z"));
	if (q >= 0) {
		int rr = cols(e, zr, u, 2 * u, name(e, "r"));
		int rq = op2(e, OP_MUL, rr, cols(e, q, 2 * u, 3 * u, name(e, "qh")),
		             name(e, "rq"));
		a = op2(e, OP_ADD, a, rq, name(e, "hh_in"));
	}
	int hh = op1(e, OP_TANH, a, name(e, "hh"));
	if (hp < 0)
		return op2(e, OP_SUB, hh, op2(e, OP_MUL, z, hh, name(e, "zhh")), hn);
	int d = op2(e, OP_SUB, hp, hh, name(e, "d"));
	return op2(e, OP_ADD, hh, op2(e, OP_MUL, z, d, name(e, "zd")), hn);
}

/* The parameters ns.w [F, G*U], ns.u [U, G*U] and, with bias, ns.b, and
 * x W + b for all steps from the time-major xs [T*N, F].  lstm's b starts
 * with ones in its forget-gate columns (Keras's unit_forget_bias); gru's
 * is [2, 3U], the input bias and the recurrent one. */
static void
rnn_params(const Emit *e, Rnn *r, int xs, int64_t f, bool bias)
{
	int64_t u = r->u, gu = gates[r->cell] * u;
	const Inits *in = r->in;
	int binit = in->binit < 0 ? INIT_ZEROS : in->binit;
	int w = regularized(e, in, param(e, "w", f, gu, in->kinit), in->kreg,
	                    "kernel_regularizer");
	r->w_u = regularized(e, in, param(e, "u", u, gu, in->rinit), in->rreg,
	                     "recurrent_regularizer");
	int b = -1;
	r->rb = -1;
	if (bias && r->cell == CELL_GRU) {
		int b2 = regularized(e, in, bias_param(e, "b", 2, gu, binit),
		                     in->breg, "bias_regularizer");
		b = slice(e, b2, 1, (int64_t[]){0}, (int64_t[]){0}, (int64_t[]){1},
		          name(e, "b_in"));
		r->rb = slice(e, b2, 1, (int64_t[]){0}, (int64_t[]){1},
		              (int64_t[]){2}, name(e, "b_rec"));
	} else if (bias) {
		b = regularized(e, in, bias_param(e, "b", gu, 0, binit), in->breg,
		                "bias_regularizer");
		if (r->cell == CELL_LSTM && in->binit < 0) {
			Value *v = &e->L->g->val[b];
			float *p = arena_alloc(e->L->a, gu * sizeof *p);
			for (int64_t i = u; i < 2 * u; i++)
				p[i] = 1;
			v->init = INIT_DATA;
			v->data = p;
		}
	}
	r->xw = gemm(e, xs, w, b, name(e, "xw"));
}

/* One direction: the steps, backward in time when reverse.  h[t] is the
 * state after the step that read x_t; the last step's is named last, or
 * a name of its own when last is NULL. */
static void
direction(Emit *e, Rnn *r, bool reverse, int *h, const char *last)
{
	int hp = -1, c = -1;
	for (int k = 0; k < r->t; k++) {
		e->t = reverse ? r->t - 1 - k : k;
		const char *hn = k == r->t - 1 && last ? last : name(e, "h");
		switch (r->cell) {
		case CELL_SIMPLE: hp = simple_step(e, r, hp, hn); break;
		case CELL_LSTM: hp = lstm_step(e, r, hp, &c, hn); break;
		case CELL_GRU: hp = gru_step(e, r, hp, hn); break;
		}
		h[e->t] = hp;
	}
	e->t = -1;
}

/* The states h[0..T-1], each [N, K], as one time-major [T*N, K]. */
static int
join_steps(const Emit *e, const int *h, int64_t t)
{
	return concat(e, h, (int)t, 0, name(e, "seq"));
}

/* Time-major [T*N, K] to the layer's result [N, T, K]. */
static int
batch_first(const Emit *e, int s, int64_t n, int64_t t, const char *nm)
{
	int64_t k = e->L->g->val[s].type.dim[1];
	s = reshape(e, s, 3, (int64_t[]){t, n, k}, name(e, "seq_t"));
	return transpose(e, s, 3, (int64_t[]){1, 0, 2}, nm);
}

/* The three layers after their arguments: x, units, then opt[] =
 * return_sequences, use_bias, bidirectional, kernel_initializer,
 * recurrent_initializer, bias_initializer, kernel_regularizer,
 * recurrent_regularizer, bias_regularizer, bias (RNN_ARGS in layers.c). */
static int
rnn(Lower *L, const Expr *call, const Val *arg, const Val *opt, Name nm,
    int cell, int act)
{
	const char *fn = call->s;
	Type x = kl_input(L, &arg[0], fn, 3, "[batch, time, features]", "");
	int64_t u = kl_positive(&arg[1], fn, "units", 1);
	bool seq = kl_bool(&opt[0], fn, "return_sequences", false);
	bool bias = use_bias(fn, &opt[1], &opt[9]);
	bool bi = kl_bool(&opt[2], fn, "bidirectional", false);
	Inits in = {fn,
		kl_initializer(L, &opt[3], fn, "kernel_initializer",
		               INIT_GLOROT_UNIFORM),
		kl_initializer(L, &opt[4], fn, "recurrent_initializer",
		               INIT_GLOROT_UNIFORM),
		kl_initializer(L, &opt[5], fn, "bias_initializer", -1),
		&opt[6], &opt[7], &opt[8]};
	kl_regularize(L, in.kreg, -1, fn, "kernel_regularizer");
	kl_regularize(L, in.rreg, -1, fn, "recurrent_regularizer");
	kl_regularize(L, in.breg, -1, fn, "bias_regularizer");
	int64_t n = x.dim[0], t = x.dim[1], f = x.dim[2];
	Emit e = {L, call->loc, nm.ns, -1};
	if (t > KL_MAXLOOP)
		diag_error(arg[0].loc, "%s: %lld time steps are more than the %d "
		           "a recurrence is unrolled to", fn, (long long)t,
		           KL_MAXLOOP);
	int64_t g = gates[cell];
	kl_fits(e.loc, fn, 3, (int64_t[]){n, t, f});
	kl_fits(e.loc, fn, 4, (int64_t[]){n, t, 2 * g, u});
	kl_fits(e.loc, fn, 3, (int64_t[]){MAX(f, u), g, u});
	int xs = transpose(&e, arg[0].v, 3, (int64_t[]){1, 0, 2}, name(&e, "xt"));
	xs = reshape(&e, xs, 2, (int64_t[]){t * n, f}, name(&e, "xs"));
	int *h = arena_alloc(L->a, 2 * t * sizeof *h);
	Rnn r = {.cell = cell, .act = act, .n = n, .t = t, .u = u, .in = &in};
	if (!bi) {
		rnn_params(&e, &r, xs, f, bias);
		direction(&e, &r, false, h, seq ? NULL : nm.result);
		return seq ? batch_first(&e, join_steps(&e, h, t), n, t, nm.result) :
		             h[t - 1];
	}
	Emit fw = e, bw = e;
	fw.ns = kl_fresh(L, nm.ns, "fw");
	bw.ns = kl_fresh(L, nm.ns, "bw");
	Rnn back = r;
	rnn_params(&fw, &r, xs, f, bias);
	direction(&fw, &r, false, h, NULL);
	rnn_params(&bw, &back, xs, f, bias);
	direction(&bw, &back, true, h + t, NULL);
	if (!seq)
		return concat(&e, (int[]){h[t - 1], h[t]}, 2, 1, nm.result);
	int s[2];                   /* one at a time: the nodes' order */
	s[0] = join_steps(&fw, h, t);
	s[1] = join_steps(&bw, h + t, t);
	return batch_first(&e, concat(&e, s, 2, 1, name(&e, "seq")), n, t,
	                   nm.result);
}

/* simple_rnn(x, units, activation="tanh", return_sequences=false,
 *            use_bias=true, bidirectional=false, initializers and
 *            regularizers) */
int
kl_simple_rnn(Lower *L, const Expr *call, Val *arg, Name nm)
{
	int act = arg[2].kind == VAL_NONE ? OP_TANH :
	          kl_activation(L, &arg[2], "simple_rnn");
	return rnn(L, call, arg, arg + 3, nm, CELL_SIMPLE, act);
}

/* lstm(x, units, return_sequences=false, use_bias=true,
 *      bidirectional=false, initializers and regularizers) */
int
kl_lstm(Lower *L, const Expr *call, Val *arg, Name nm)
{
	return rnn(L, call, arg, arg + 2, nm, CELL_LSTM, -1);
}

/* gru(x, units, return_sequences=false, use_bias=true,
 *     bidirectional=false, initializers and regularizers) */
int
kl_gru(Lower *L, const Expr *call, Val *arg, Name nm)
{
	return rnn(L, call, arg, arg + 2, nm, CELL_GRU, -1);
}

/* ---- attention ---- */

/* A [batch, time, features] argument. */
static Type
seq_arg(Lower *L, const Val *v, const char *fn, const char *what)
{
	Type t = L->g->val[kl_tensor(v, fn, what)].type;
	if (t.rank != 3)
		diag_error(v->loc, "%s: '%s' must have rank 3 [batch, time, "
		           "features], got %s", fn, what, type_str(L->a, &t));
	return t;
}

/* x [N, T, Ex] as rows [N*T, Ex]. */
static int
rows_of(const Emit *e, int x, const char *what)
{
	const Type *t = &e->L->g->val[x].type;
	return reshape(e, x, 2, (int64_t[]){t->dim[0] * t->dim[1], t->dim[2]},
	               name(e, what));
}

/* ns.p = xr @ ns.wp + ns.bp, [N*T, H*D], split into heads [N, T, H, D]
 * and transposed by perm. */
static int
project(const Emit *e, int xr, const Type *x, char p, int64_t h, int64_t d,
        const Inits *in, const int64_t *perm)
{
	Arena *a = e->L->a;
	int64_t ex = x->dim[2];
	int w = regularized(e, in, param(e, arena_printf(a, "w%c", p), ex, h * d,
	                                 in->kinit), in->kreg,
	                    "kernel_regularizer");
	int b = in->binit < 0 ? -1 :
	        regularized(e, in, bias_param(e, arena_printf(a, "b%c", p),
	                                      h * d, 0, in->binit), in->breg,
	                    "bias_regularizer");
	int y = gemm(e, xr, w, b, name(e, (char[]){p, 0}));
	y = reshape(e, y, 4, (int64_t[]){x->dim[0], x->dim[1], h, d},
	            name(e, arena_printf(a, "%c_split", p)));
	return transpose(e, y, 4, perm, name(e, arena_printf(a, "%ch", p)));
}

/* scores + (mask - 1) * 1e9: where mask is 0 a score drops out of the
 * softmax, as Keras's attention_mask does.  mask is f32 [Tq, Tk] or
 * [N or 1, Tq, Tk]. */
static int
apply_mask(const Emit *e, int scores, const Val *mv, const Type *q,
           const Type *k)
{
	static const char fn[] = "multihead_attention";
	Lower *L = e->L;
	int m = kl_tensor(mv, fn, "mask");
	const Type *t = &L->g->val[m].type;
	int r = t->rank;
	bool ok = t->dtype == DT_F32 && (r == 2 || r == 3) &&
	          t->dim[r - 2] == q->dim[1] && t->dim[r - 1] == k->dim[1] &&
	          (r == 2 || t->dim[0] == q->dim[0] || t->dim[0] == 1);
	if (!ok)
		diag_error(mv->loc, "%s: 'mask' must be f32[%lld,%lld] or "
		           "f32[%lld,%lld,%lld] (query time by key time; 1 "
		           "attends, 0 does not), got %s", fn, (long long)q->dim[1],
		           (long long)k->dim[1], (long long)q->dim[0],
		           (long long)q->dim[1], (long long)k->dim[1],
		           type_str(L->a, t));
	m = op2(e, OP_SUB, m, scalar(e, "one", 1), name(e, "mask_off"));
	m = op2(e, OP_MUL, m, scalar(e, "big", 1e9), name(e, "mask_add"));
	if (r == 3)
		m = reshape(e, m, 4, (int64_t[]){t->dim[0], 1, t->dim[1],
		            t->dim[2]}, name(e, "mask_heads"));
	return op2(e, OP_ADD, scores, m, name(e, "masked"));
}

/* softmax(Q K^T / sqrt(D)) V per head, with Q = q Wq + bq (and K, V
 * alike) split into H heads of D, then the heads joined and projected
 * back to Eq by Wo, bo: batched matmuls over [N, H].  Checks what the
 * shape rules would not say plainly; mv is the mask or VAL_NONE; in's
 * binit is -1 for no biases. */
static int
attend(const Emit *e, const Val *qv, const Val *kv, const Val *vv,
       int64_t h, int64_t d, const Val *mv, const Inits *in,
       const char *result)
{
	static const char fn[] = "multihead_attention";
	Lower *L = e->L;
	Type q = seq_arg(L, qv, fn, "q"), k = seq_arg(L, kv, fn, "k");
	Type v = seq_arg(L, vv, fn, "v");
	if (k.dim[0] != q.dim[0])
		diag_error(kv->loc, "%s: 'k' %s and 'q' %s have different batch "
		           "sizes", fn, type_str(L->a, &k), type_str(L->a, &q));
	if (v.dim[0] != k.dim[0] || v.dim[1] != k.dim[1])
		diag_error(vv->loc, "%s: 'v' %s must have the batch size and "
		           "length of 'k' %s", fn, type_str(L->a, &v),
		           type_str(L->a, &k));
	int64_t n = q.dim[0], tq = q.dim[1], tk = k.dim[1], eq = q.dim[2];
	int64_t ex = MAX(eq, MAX(k.dim[2], v.dim[2]));
	kl_fits(e->loc, fn, 4, (int64_t[]){n, MAX(tq, tk), h, d});
	kl_fits(e->loc, fn, 4, (int64_t[]){n, h, tq, tk});
	kl_fits(e->loc, fn, 3, (int64_t[]){ex, h, d});
	kl_fits(e->loc, fn, 3, (int64_t[]){n, MAX(tq, tk), ex});
	int xq = rows_of(e, qv->v, "xq");
	int xk = kv->v == qv->v ? xq : rows_of(e, kv->v, "xk");
	int xv = vv->v == kv->v ? xk : vv->v == qv->v ? xq :
	         rows_of(e, vv->v, "xv");
	static const int64_t heads[] = {0, 2, 1, 3}, keys_t[] = {0, 2, 3, 1};
	int qh = project(e, xq, &q, 'q', h, d, in, heads);
	int kt = project(e, xk, &k, 'k', h, d, in, keys_t);
	int vh = project(e, xv, &v, 'v', h, d, in, heads);
	qh = op2(e, OP_MUL, qh, scalar(e, "scale", 1 / sqrt((double)d)),
	         name(e, "qs"));
	int s = op2(e, OP_MATMUL, qh, kt, name(e, "scores"));
	if (mv->kind != VAL_NONE)
		s = apply_mask(e, s, mv, &q, &k);
	s = op1(e, OP_SOFTMAX, s, name(e, "weights"));
	int c = op2(e, OP_MATMUL, s, vh, name(e, "ctx"));
	c = transpose(e, c, 4, heads, name(e, "ctx_t"));
	c = reshape(e, c, 2, (int64_t[]){n * tq, h * d}, name(e, "ctx_rows"));
	int wo = regularized(e, in, param(e, "wo", h * d, eq, in->kinit),
	                     in->kreg, "kernel_regularizer");
	int bo = in->binit < 0 ? -1 :
	         regularized(e, in, bias_param(e, "bo", eq, 0, in->binit),
	                     in->breg, "bias_regularizer");
	c = gemm(e, c, wo, bo, name(e, "out"));
	return reshape(e, c, 3, (int64_t[]){n, tq, eq}, result);
}

/* multihead_attention(q, k=q, v=k, heads, key_dim, mask=none,
 *                     use_bias=true, kernel_initializer="glorot_uniform",
 *                     bias_initializer="zeros", kernel_regularizer=none,
 *                     bias_regularizer=none) */
int
kl_attention(Lower *L, const Expr *call, Val *arg, Name nm)
{
	static const char fn[] = "multihead_attention";
	const Val *kv = arg[1].kind == VAL_NONE ? &arg[0] : &arg[1];
	const Val *vv = arg[2].kind == VAL_NONE ? kv : &arg[2];
	int64_t h = kl_positive(&arg[3], fn, "heads", 1);
	int64_t d = kl_positive(&arg[4], fn, "key_dim", 1);
	bool bias = use_bias(fn, &arg[6], &arg[11]);
	Inits in = {fn,
		kl_initializer(L, &arg[7], fn, "kernel_initializer",
		               INIT_GLOROT_UNIFORM), -1,
		kl_initializer(L, &arg[8], fn, "bias_initializer", INIT_ZEROS),
		&arg[9], NULL, &arg[10]};
	kl_regularize(L, in.kreg, -1, fn, "kernel_regularizer");
	kl_regularize(L, in.breg, -1, fn, "bias_regularizer");
	if (!bias)
		in.binit = -1;
	Emit e = {L, call->loc, nm.ns, -1};
	return attend(&e, &arg[0], kv, vv, h, d, &arg[5], &in, nm.result);
}

/* layernorm over the last axis of x [N, T, E], with ns.gamma [E] (ones)
 * and ns.beta [E] (zeros), named result. */
static int
norm(const Emit *e, int x, double eps, const char *result)
{
	int64_t dim = e->L->g->val[x].type.dim[2];
	int gamma = param(e, "gamma", dim, 0, INIT_ONES);
	int beta = param(e, "beta", dim, 0, INIT_ZEROS);
	int n = node(e, OP_LAYERNORM, (int[]){x, gamma, beta}, 3);
	ir_set_float(e->L->g, n, AT_LAYERNORM_EPSILON, eps);
	return finish(e, n, result);
}

/* A sub-layer's namespace ns.what, claimed, for its names. */
static Emit
sub(const Emit *e, const char *what)
{
	Emit s = *e;
	s.ns = kl_fresh(e->L, e->ns, what);
	return s;
}

/* transformer_encoder(x, heads, key_dim, ff_dim, activation="gelu",
 *                     mask=none, epsilon=1e-5):
 *   a = x + multihead_attention(x, heads, key_dim, mask) [ns.attn],
 *   y = layernorm(a) [ns.norm1];
 *   f = act(y W1 + b1) W2 + b2 on rows [ns.ff1, ns.ff2],
 *   result = layernorm(y + f) [ns.norm2]  (post-norm) */
int
kl_transformer_encoder(Lower *L, const Expr *call, Val *arg, Name nm)
{
	static const char fn[] = "transformer_encoder";
	Type x = kl_input(L, &arg[0], fn, 3, "[batch, time, features]", "");
	int64_t h = kl_positive(&arg[1], fn, "heads", 1);
	int64_t d = kl_positive(&arg[2], fn, "key_dim", 1);
	int64_t ff = kl_positive(&arg[3], fn, "ff_dim", 1);
	int act = arg[4].kind == VAL_NONE ? OP_GELU :
	          kl_activation(L, &arg[4], fn);
	double eps = kl_number(&arg[6], fn, "epsilon", 1e-5);
	if (!(eps > 0 && eps < INFINITY))
		diag_error(arg[6].loc, "%s: 'epsilon' must be positive, got %g", fn,
		           eps);
	int64_t n = x.dim[0], t = x.dim[1], ex = x.dim[2];
	kl_fits(call->loc, fn, 3, (int64_t[]){n, t, ff});
	kl_fits(call->loc, fn, 2, (int64_t[]){ex, ff});
	Emit e = {L, call->loc, nm.ns, -1};
	Emit ea = sub(&e, "attn");
	static const Val none = {.kind = VAL_NONE};
	Inits in = {fn, INIT_GLOROT_UNIFORM, -1, INIT_ZEROS, &none, NULL, &none};
	int a = attend(&ea, &arg[0], &arg[0], &arg[0], h, d, &arg[5], &in, ea.ns);
	a = op2(&e, OP_ADD, arg[0].v, a, name(&e, "res1"));
	Emit e1 = sub(&e, "norm1");
	int y = norm(&e1, a, eps, e1.ns);
	Emit f1 = sub(&e, "ff1"), f2 = sub(&e, "ff2");
	int w1 = param(&f1, "w", ex, ff, act == OP_RELU ? INIT_HE_UNIFORM :
	               INIT_GLOROT_UNIFORM);
	int b1 = param(&f1, "b", ff, 0, INIT_ZEROS);
	int w2 = param(&f2, "w", ff, ex, INIT_GLOROT_UNIFORM);
	int b2 = param(&f2, "b", ex, 0, INIT_ZEROS);
	int r = gemm(&f1, rows_of(&e, y, "rows"), w1, b1, name(&f1, "gemm"));
	if (act >= 0)
		r = op1(&f1, act, r, name(&f1, op_get(act)->name));
	r = gemm(&f2, r, w2, b2, f2.ns);
	r = reshape(&e, r, 3, (int64_t[]){n, t, ex}, name(&e, "ff"));
	a = op2(&e, OP_ADD, y, r, name(&e, "res2"));
	Emit e2 = sub(&e, "norm2");
	return norm(&e2, a, eps, nm.result);
}
