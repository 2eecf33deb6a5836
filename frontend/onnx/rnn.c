/* rnn.c: the ONNX recurrent ops LSTM, GRU and RNN, unrolled over time.
 *
 * kiln's shapes are static, so every step of every direction becomes a
 * few registry ops: X W^T + Wb for all steps is one gemm ahead of the
 * steps, then each step is a gemm with R (two for GRU with
 * linear_before_reset=0) and the cell's elementwise ops on that step's
 * rows.  Y, Y_h and Y_c are joined from the per-step states at the end.
 * An absent initial_h or initial_c is a zero constant, so every step has
 * the same form.  frontend/kiln/recurrent.c unrolls the .kiln layers the
 * same way with Keras's conventions; here the ONNX operator docs rule:
 * gate orders iofc (LSTM) and zrh (GRU), B = [Wb, Rb] per direction,
 * P = [Pi, Po, Pf], and the reverse direction reads x from the end.
 *
 * Legend: T seq_length, N batch, F input_size, H hidden_size, G gates
 * (1, 3, 4), D num_directions.  Inside, tensors are time-major and 2-D:
 * row t*N + n of X W^T is sample n at time t.
 */
#include <string.h>
#include "onnx.h"

enum { CELL_RNN, CELL_GRU, CELL_LSTM };
static const int64_t ngates[] = {[CELL_RNN] = 1, [CELL_GRU] = 3,
                                 [CELL_LSTM] = 4};
static const int nacts[] = {[CELL_RNN] = 1, [CELL_GRU] = 2, [CELL_LSTM] = 3};
static const char *const default_acts[][3] = {
	[CELL_RNN] = {"Tanh"},
	[CELL_GRU] = {"Sigmoid", "Tanh"},
	[CELL_LSTM] = {"Sigmoid", "Tanh", "Tanh"},
};

/* The activation functions of the ONNX docs that are one IR op, with the
 * ids of the IR attributes alpha and beta go to (-1: none) and the
 * defaults of the ONNX ops of the same name.  Affine and ScaledTanh are
 * not here: kiln has no op for them. */
static const struct {
	const char *name;
	int op, ida, idb;
	float alpha, beta;
} act_table[] = {
	{"Sigmoid", OP_SIGMOID, -1, -1, 0, 0},
	{"Tanh", OP_TANH, -1, -1, 0, 0},
	{"Relu", OP_RELU, -1, -1, 0, 0},
	{"LeakyRelu", OP_LEAKY_RELU, AT_LEAKY_RELU_ALPHA, -1, 0.01f, 0},
	{"ThresholdedRelu", OP_THRESHOLDED_RELU, AT_THRESHOLDED_RELU_ALPHA, -1,
	 1, 0},
	{"HardSigmoid", OP_HARDSIGMOID, AT_HARDSIGMOID_ALPHA,
	 AT_HARDSIGMOID_BETA, 0.2f, 0.5f},
	{"Elu", OP_ELU, AT_ELU_ALPHA, -1, 1, 0},
	{"Softsign", OP_SOFTSIGN, -1, -1, 0, 0},
	{"Softplus", OP_SOFTPLUS, -1, -1, 0, 0},
};

/* One activation function of the node. */
typedef struct {
	int op, ida, idb;           /* IR op and attribute ids (-1: none) */
	float alpha, beta;
} Act;

/* One direction being unrolled. */
typedef struct {
	ONode *o;
	int cell;                   /* CELL_ */
	int64_t t, n, h;            /* T, N, H */
	bool lbr;                   /* GRU: linear_before_reset */
	bool clip;                  /* clip the inputs of f and g to +-cl */
	float cl;
	const Act *act;             /* f (, g (, h)) of this direction */
	int xw;                     /* X W^T + Wb (+ Rb but for GRU) [T*N, GH] */
	int r;                      /* R [GH, H] */
	int rzr, rh;                /* GRU: R's rows [Rz; Rr] and Rh */
	int bzr, bh;                /* GRU: [Rbz, Rbr] and Rbh, or -1 */
	int p[3];                   /* LSTM: Pi, Po, Pf [1, H], or -1 */
} Dir;

/* ---- building blocks ---- */

/* x[lo:hi] along axis */
static int
part(ONode *o, int x, int64_t axis, int64_t lo, int64_t hi)
{
	int n = onnx_node(o, OP_SLICE, &x, 1);
	ir_set_ints(o->m->g, n, AT_SLICE_STARTS, &lo, 1);
	ir_set_ints(o->m->g, n, AT_SLICE_ENDS, &hi, 1);
	ir_set_ints(o->m->g, n, AT_SLICE_AXES, &axis, 1);
	return onnx_result(o, n, -1);
}

/* Gate k (columns k*H .. k*H+H-1) of a rank-2 x. */
static int
gate(const Dir *r, int x, int k)
{
	return part(r->o, x, 1, k * r->h, (k + 1) * r->h);
}

/* a @ b^T + c, or a @ b^T when c < 0 */
static int
gemm_bt(ONode *o, int a, int b, int c)
{
	int n = onnx_node(o, OP_GEMM, (int[]){a, b, c}, c < 0 ? 2 : 3);
	ir_set_int(o->m->g, n, AT_GEMM_TRANS_B, 1);
	return onnx_result(o, n, -1);
}

/* a + b, where b < 0 is nothing */
static int
add(ONode *o, int a, int b)
{
	return b < 0 ? a : onnx_binary(o, OP_ADD, a, b, -1);
}

/* Activation k of the direction on x, whose elements are clipped first
 * when clip is set.  Only the inputs of f and g are clipped (never c
 * before h), as onnxruntime does. */
static int
activate(const Dir *r, int k, int x)
{
	ONode *o = r->o;
	const Act *a = &r->act[k];
	if (r->clip && k < 2) {
		int n = onnx_node(o, OP_CLIP, &x, 1);
		ir_set_float(o->m->g, n, AT_CLIP_MIN, -r->cl);
		ir_set_float(o->m->g, n, AT_CLIP_MAX, r->cl);
		x = onnx_result(o, n, -1);
	}
	int n = onnx_node(o, a->op, &x, 1);
	if (a->ida >= 0)
		ir_set_float(o->m->g, n, a->ida, a->alpha);
	if (a->idb >= 0)
		ir_set_float(o->m->g, n, a->idb, a->beta);
	return onnx_result(o, n, -1);
}

/* Any number of tensors joined along axis; a node takes at most IR_MAXIN
 * operands, so a longer list is joined in parts first. */
static int
join(ONode *o, const int *v, int nv, int axis)
{
	if (nv == 1)
		return v[0];
	if (nv > IR_MAXIN) {
		int np = (nv + IR_MAXIN - 1) / IR_MAXIN;
		int *pv = arena_alloc(o->m->a, np * sizeof *pv);
		for (int i = 0; i < np; i++)
			pv[i] = join(o, v + i * IR_MAXIN, MIN(IR_MAXIN,
			             nv - i * IR_MAXIN), axis);
		return join(o, pv, np, axis);
	}
	int n = onnx_node(o, OP_CONCAT, v, nv);
	ir_set_int(o->m->g, n, AT_CONCAT_AXIS, axis);
	return onnx_result(o, n, -1);
}

static int
zeros(ONode *o, int64_t d0, int64_t d1)
{
	Type t = {.dtype = DT_F32, .rank = 2, .dim = {d0, d1}};
	size_t bytes = (size_t)type_bytes(&t);
	void *p = arena_alloc(o->m->a, bytes);
	memset(p, 0, bytes);
	return onnx_const(o->m, "zeros", t, p, o->loc);
}

/* ---- the cells: one step each, from the state hp (and *c) ---- */

/* Ht = f(Xt W^T + Wb + Rb + Ht-1 R^T) */
static int
rnn_step(const Dir *r, int xt, int hp)
{
	return activate(r, 0, gemm_bt(r->o, hp, r->r, xt));
}

/* zt, rt = f(Xt Wzr^T + Wbzr + Ht-1 Rzr^T + Rbzr);
 * linear_before_reset=0: ht = g(Xt Wh^T + Wbh + (rt . Ht-1) Rh^T + Rbh),
 * else ht = g(Xt Wh^T + Wbh + rt . (Ht-1 Rh^T + Rbh));
 * Ht = ht + zt . (Ht-1 - ht), which is (1 - zt) . ht + zt . Ht-1. */
static int
gru_step(const Dir *r, int xt, int hp)
{
	ONode *o = r->o;
	int64_t h = r->h;
	int xzr = add(o, part(o, xt, 1, 0, 2 * h), r->bzr);
	int zr = activate(r, 0, gemm_bt(o, hp, r->rzr, xzr));
	int z = gate(r, zr, 0), rt = gate(r, zr, 1);
	int q;
	if (r->lbr)
		q = onnx_binary(o, OP_MUL, rt, gemm_bt(o, hp, r->rh, r->bh), -1);
	else
		q = gemm_bt(o, onnx_binary(o, OP_MUL, rt, hp, -1), r->rh, r->bh);
	int hh = activate(r, 1, add(o, gate(r, xt, 2), q));
	int d = onnx_binary(o, OP_SUB, hp, hh, -1);
	return add(o, hh, onnx_binary(o, OP_MUL, z, d, -1));
}

/* z = Xt W^T + Wb + Rb + Ht-1 R^T, gates [i | o | f | c];
 * it = f(zi + Pi . Ct-1), ft = f(zf + Pf . Ct-1), ct = g(zc),
 * Ct = ft . Ct-1 + it . ct, ot = f(zo + Po . Ct), Ht = ot . h(Ct).
 * *c is the cell state in and out. */
static int
lstm_step(const Dir *r, int xt, int hp, int *c)
{
	ONode *o = r->o;
	int z = gemm_bt(o, hp, r->r, xt);
	int zi = gate(r, z, 0), zo = gate(r, z, 1), zf = gate(r, z, 2);
	if (r->p[0] >= 0) {
		zi = add(o, zi, onnx_binary(o, OP_MUL, r->p[0], *c, -1));
		zf = add(o, zf, onnx_binary(o, OP_MUL, r->p[2], *c, -1));
	}
	int i = activate(r, 0, zi), f = activate(r, 0, zf);
	int g = activate(r, 1, gate(r, z, 3));
	/* one node per statement: argument order is unspecified, and the
	 * printed IR must not depend on the compiler */
	int ig = onnx_binary(o, OP_MUL, i, g, -1);
	int fc = onnx_binary(o, OP_MUL, f, *c, -1);
	*c = add(o, fc, ig);
	int hc = activate(r, 2, *c);
	if (r->p[1] >= 0)
		zo = add(o, zo, onnx_binary(o, OP_MUL, r->p[1], *c, -1));
	return onnx_binary(o, OP_MUL, activate(r, 0, zo), hc, -1);
}

/* The steps of one direction, backward in time when reverse, from the
 * states h0 (and c0).  h[t] (and c[t]) is the state after the step that
 * read x_t. */
static void
unroll(const Dir *r, bool reverse, int h0, int c0, int *h, int *c)
{
	int hp = h0, cp = c0;
	for (int64_t k = 0; k < r->t; k++) {
		int64_t t = reverse ? r->t - 1 - k : k;
		int xt = part(r->o, r->xw, 0, t * r->n, (t + 1) * r->n);
		switch (r->cell) {
		case CELL_RNN: hp = rnn_step(r, xt, hp); break;
		case CELL_GRU: hp = gru_step(r, xt, hp); break;
		case CELL_LSTM: hp = lstm_step(r, xt, hp, &cp); break;
		}
		h[t] = hp;
		c[t] = cp;
	}
}

/* ---- operands and attributes ---- */

static bool
has(const ONode *o, int i)
{
	return i < o->nin && o->in[i] >= 0;
}

/* Input i (what) must be f32 with the given dims. */
static void
expect(ONode *o, int i, const char *what, int rank, const int64_t *dim)
{
	const Type *t = onnx_type(o, o->in[i]);
	bool ok = t->dtype == DT_F32 && t->rank == rank;
	for (int k = 0; ok && k < rank; k++)
		ok = t->dim[k] == dim[k];
	if (ok)
		return;
	Type want = {.dtype = DT_F32, .rank = rank};
	memcpy(want.dim, dim, rank * sizeof *dim);
	diag_error(o->loc, "%s (input %d) must be %s, not %s", what, i,
	           type_str(o->m->a, &want), type_str(o->m->a, t));
}

/* Direction d of input i, the slice [d] of axis, as [d0, d1]. */
static int
dir_of(ONode *o, int i, int d, int axis, int64_t d0, int64_t d1)
{
	int v = part(o, o->in[i], axis, d, d + 1);
	return onnx_reshape(o, v, (int64_t[]){d0, d1}, 2, -1);
}

/* sequence_lens, when given, must be known and say every sequence is
 * full length: the unrolled steps cannot stop early per sample. */
static void
check_lens(ONode *o, int64_t t, int64_t n)
{
	if (!has(o, 4))
		return;
	/* known at build time, so in memory already: its count is checked
	 * before memory is taken for a copy */
	onnx_const_data(o, 4, "sequence_lens");
	int64_t k = type_numel(onnx_type(o, o->in[4]));
	if (k != n)
		diag_error(o->loc, "sequence_lens has %lld values for a batch of "
		           "%lld", (long long)k, (long long)n);
	int64_t *len = arena_alloc(o->m->a, n * sizeof *len);
	onnx_const_ints(o, 4, "sequence_lens", len, (int)n);
	for (int64_t i = 0; i < k; i++)
		if (len[i] != t)
			diag_error(o->loc, "sequence_lens[%lld] is %lld: only sequences "
			           "of the full length %lld are supported",
			           (long long)i, (long long)len[i], (long long)t);
}

static int
directions(const ONode *o)
{
	const char *s = onnx_attr_str(o, "direction", "forward");
	if (strcmp(s, "forward") == 0 || strcmp(s, "reverse") == 0)
		return 1;
	if (strcmp(s, "bidirectional") == 0)
		return 2;
	diag_error(o->loc, "direction '%s' is not forward, reverse or "
	           "bidirectional", s);
}

/* The activations attribute (or the defaults) into act[0..D*A-1], with
 * activation_alpha and activation_beta consumed in order by the functions
 * that take them; a function past the end of a list keeps its op's
 * default.  One direction's list serves both when bidirectional. */
static void
read_acts(ONode *o, int cell, int ndir, Act *act)
{
	const Onnx__AttributeProto *a = onnx_attr(o, "activations");
	const Onnx__AttributeProto *al = onnx_attr(o, "activation_alpha");
	const Onnx__AttributeProto *be = onnx_attr(o, "activation_beta");
	int na = nacts[cell];
	if (a && (int)a->n_strings != na && (int)a->n_strings != na * ndir)
		diag_error(o->loc, "activations has %zu functions, %s needs %d",
		           a->n_strings, o->p->op_type, na * ndir);
	size_t ka = 0, kb = 0;
	for (int i = 0; i < na * ndir; i++) {
		int j = a ? i % (int)a->n_strings : i % na;
		const char *name = a ? arena_strndup(o->m->a, (const char *)
		                   a->strings[j].data, a->strings[j].len) :
		                   default_acts[cell][j];
		int k = 0;
		while (k < countof(act_table) && strcmp(act_table[k].name, name))
			k++;
		if (k == countof(act_table))
			onnx_unsupported(o, arena_printf(o->m->a, "activation '%s'",
			                 name));
		act[i] = (Act){act_table[k].op, act_table[k].ida, act_table[k].idb,
		               act_table[k].alpha, act_table[k].beta};
		if (act[i].ida >= 0 && al && ka < al->n_floats)
			act[i].alpha = al->floats[ka++];
		if (act[i].idb >= 0 && be && kb < be->n_floats)
			act[i].beta = be->floats[kb++];
	}
}

/* ---- the node ---- */

/* Direction d's weights: X W^T + biases for all steps from xs [T*N, F],
 * R, and the GRU's recurrent biases or the LSTM's peepholes. */
static void
dir_weights(Dir *r, int xs, int d, int64_t f)
{
	ONode *o = r->o;
	int64_t h = r->h, gh = ngates[r->cell] * h;
	int w = dir_of(o, 1, d, 0, gh, f), wb = -1;
	r->r = dir_of(o, 2, d, 0, gh, h);
	r->bzr = r->bh = -1;
	if (has(o, 3)) {
		int b = part(o, o->in[3], 0, d, d + 1);
		int rb = part(o, b, 1, gh, 2 * gh);
		wb = part(o, b, 1, 0, gh);
		if (r->cell == CELL_GRU) {
			r->bzr = part(o, rb, 1, 0, 2 * h);
			r->bh = gate(r, rb, 2);
		} else
			wb = add(o, wb, rb);
	}
	r->xw = gemm_bt(o, xs, w, wb);
	if (r->cell == CELL_GRU) {
		r->rzr = part(o, r->r, 0, 0, 2 * h);
		r->rh = part(o, r->r, 0, 2 * h, 3 * h);
	}
	r->p[0] = r->p[1] = r->p[2] = -1;
	if (r->cell == CELL_LSTM && has(o, 7)) {
		int p = part(o, o->in[7], 0, d, d + 1);
		for (int k = 0; k < 3; k++)
			r->p[k] = gate(r, p, k);
	}
}

/* Output k, when wanted, from the states s[d*T + t]: Y as
 * [T, D, N, H] (layout 0) or [N, T, D, H] (layout 1) when seq, else the
 * last state of each direction as [D, N, H] or [N, D, H]. */
static void
emit(ONode *o, int k, const int *s, int64_t t, int ndir, bool seq,
     bool bf, int64_t n, int64_t h)
{
	if (k >= (int)o->p->n_output || !*o->p->output[k])
		return;
	int64_t nt = seq ? t : 1;
	int *v = arena_alloc(o->m->a, nt * ndir * sizeof *v);
	bool reverse = ndir == 2 ||
	               strcmp(onnx_attr_str(o, "direction", ""), "reverse") == 0;
	for (int64_t i = 0; i < nt; i++)
		for (int d = 0; d < ndir; d++) {
			/* the last state is after x_{T-1}, or after x_0 backward */
			int64_t last = d == ndir - 1 && reverse ? 0 : t - 1;
			v[i * ndir + d] = s[d * t + (seq ? i : last)];
		}
	int y = join(o, v, (int)(nt * ndir), bf ? 1 : 0);
	if (seq)
		onnx_reshape(o, y, bf ? (int64_t[]){n, t, ndir, h} :
		             (int64_t[]){t, ndir, n, h}, 4, k);
	else
		onnx_reshape(o, y, bf ? (int64_t[]){n, ndir, h} :
		             (int64_t[]){ndir, n, h}, 3, k);
}

/* Checks the operands and attributes of the node against X's [T, N, F]
 * (or [N, T, F] for layout 1) and fills what every direction shares. */
static void
check(ONode *o, Dir *r, int ndir, bool bf, int64_t f)
{
	int64_t g = ngates[r->cell], h = r->h, n = r->n;
	if (h <= 0)
		diag_error(o->loc, "hidden_size must be positive");
	expect(o, 1, "W", 3, (int64_t[]){ndir, g * h, f});
	expect(o, 2, "R", 3, (int64_t[]){ndir, g * h, h});
	if (has(o, 3))
		expect(o, 3, "B", 2, (int64_t[]){ndir, 2 * g * h});
	check_lens(o, r->t, n);
	const int64_t *sd = bf ? (int64_t[]){n, ndir, h} :
	                         (int64_t[]){ndir, n, h};
	if (has(o, 5))
		expect(o, 5, "initial_h", 3, sd);
	if (r->cell == CELL_LSTM && has(o, 6))
		expect(o, 6, "initial_c", 3, sd);
	if (r->cell == CELL_LSTM && has(o, 7))
		expect(o, 7, "P", 2, (int64_t[]){ndir, 3 * h});
	if (r->cell == CELL_LSTM && onnx_attr_int(o, "input_forget", 0))
		onnx_unsupported(o, "input_forget=1");
	r->lbr = r->cell == CELL_GRU &&
	         onnx_attr_int(o, "linear_before_reset", 0) != 0;
	r->clip = onnx_attr(o, "clip") != NULL;
	r->cl = onnx_attr_float(o, "clip", 0);
	if (r->clip && !(r->cl > 0))
		diag_error(o->loc, "clip must be positive");
}

static void
translate(ONode *o, int cell)
{
	int x = onnx_operand(o, 0);
	onnx_operand(o, 1);
	Type xt = *onnx_type(o, x), rt = *onnx_type(o, onnx_operand(o, 2));
	if (xt.dtype != DT_F32 || xt.rank != 3)
		diag_error(o->loc, "X must be f32 of rank 3, not %s",
		           type_str(o->m->a, &xt));
	bool bf = onnx_attr_int(o, "layout", 0) != 0;
	int64_t t = xt.dim[bf], n = xt.dim[!bf], f = xt.dim[2];
	if (t > ONNX_MAXSTEPS)      /* each step becomes nodes of its own */
		diag_error(o->loc, "%lld time steps are more than the %d a "
		           "recurrence is unrolled to", (long long)t, ONNX_MAXSTEPS);
	int ndir = directions(o);
	Dir r = {.o = o, .cell = cell, .t = t, .n = n,
	         .h = onnx_attr_int(o, "hidden_size", rt.rank == 3 ?
	                            rt.dim[2] : 0)};
	check(o, &r, ndir, bf, f);
	Act act[6];
	read_acts(o, cell, ndir, act);
	if (bf) {
		int tr = onnx_node(o, OP_TRANSPOSE, &x, 1);
		ir_set_ints(o->m->g, tr, AT_TRANSPOSE_PERM, (int64_t[]){1, 0, 2}, 3);
		x = onnx_result(o, tr, -1);
	}
	int xs = onnx_reshape(o, x, (int64_t[]){t * n, f}, 2, -1);
	int *hs = arena_alloc(o->m->a, ndir * t * sizeof *hs);
	int *cs = arena_alloc(o->m->a, ndir * t * sizeof *cs);
	int zero = has(o, 5) && (cell != CELL_LSTM || has(o, 6)) ? -1 :
	           zeros(o, n, r.h);
	bool rev = strcmp(onnx_attr_str(o, "direction", ""), "reverse") == 0;
	for (int d = 0; d < ndir; d++) {
		r.act = act + d * nacts[cell];
		dir_weights(&r, xs, d, f);
		int h0 = has(o, 5) ? dir_of(o, 5, d, bf, n, r.h) : zero;
		int c0 = has(o, 6) ? dir_of(o, 6, d, bf, n, r.h) : zero;
		unroll(&r, rev || d == 1, h0, c0, hs + d * t, cs + d * t);
	}
	emit(o, 0, hs, t, ndir, true, bf, n, r.h);
	emit(o, 1, hs, t, ndir, false, bf, n, r.h);
	if (cell == CELL_LSTM)
		emit(o, 2, cs, t, ndir, false, bf, n, r.h);
}

void
tr_rnn(ONode *o)
{
	translate(o, CELL_RNN);
}

void
tr_gru(ONode *o)
{
	translate(o, CELL_GRU);
}

void
tr_lstm(ONode *o)
{
	translate(o, CELL_LSTM);
}
