/* fold.c: constant folding.
 *
 * An op whose operands are all constants (VK_CONST with data) is computed
 * now, by the runtime's own kernels (runtime/kiln.h), so the folded value
 * has the bits the generated code would have computed.  Its result value
 * becomes a constant in place: it keeps its index and its name, so users,
 * graph outputs, updates and the train section need no rewriting.  The
 * schedule is topological, so one walk folds whole constant chains.
 * Parameters are never folded: they are weights the user may replace or
 * train.  Results above FOLD_MAXBYTES stay ops (they would grow the
 * weights blob).  Ops whose kernels take marshalled structs (conv, pools,
 * norms, gemm, ...) are left to the backend, which owns that logic.
 */
#include <string.h>
#include "passes.h"
#include "kiln.h"

enum { FOLD_MAXBYTES = 1 << 20 };

typedef struct {
	Graph *g;
	const Node *n;
	Arena *a;                   /* scratch for promoted operands */
	const Type *yt;
	void *y;
	const Type *xt[IR_MAXIN];
	const void *x[IR_MAXIN];
} Fold;

/* Kernel tables, one per C signature, indexed by op.  Integer dtypes are
 * computed in i64 (see compute_dtype), so only f32, f64, i64 and bool
 * kernels appear. */
typedef void UnF32(float *, const float *, int64_t);
typedef void BinF32(float *, const float *, const float *, int,
                    const int64_t *, const int64_t *, const int64_t *);
typedef void BinF64(double *, const double *, const double *, int,
                    const int64_t *, const int64_t *, const int64_t *);
typedef void BinI64(int64_t *, const int64_t *, const int64_t *, int,
                    const int64_t *, const int64_t *, const int64_t *);
typedef void CmpF32(uint8_t *, const float *, const float *, int,
                    const int64_t *, const int64_t *, const int64_t *);
typedef void CmpF64(uint8_t *, const double *, const double *, int,
                    const int64_t *, const int64_t *, const int64_t *);
typedef void CmpI64(uint8_t *, const int64_t *, const int64_t *, int,
                    const int64_t *, const int64_t *, const int64_t *);
typedef void BinBool(uint8_t *, const uint8_t *, const uint8_t *, int,
                     const int64_t *, const int64_t *, const int64_t *);
typedef void Reduce(float *, const float *, int, const int64_t *, unsigned);

static UnF32 *const un_f32[NOP] = {
	[OP_RELU] = kiln_relu_f32, [OP_SIGMOID] = kiln_sigmoid_f32,
	[OP_TANH] = kiln_tanh_f32, [OP_EXP] = kiln_exp_f32,
	[OP_LOG] = kiln_log_f32, [OP_SQRT] = kiln_sqrt_f32,
	[OP_NEG] = kiln_neg_f32, [OP_ABS] = kiln_abs_f32,
	[OP_SILU] = kiln_silu_f32, [OP_HARDSWISH] = kiln_hardswish_f32,
	[OP_SIN] = kiln_sin_f32, [OP_COS] = kiln_cos_f32,
	[OP_TAN] = kiln_tan_f32, [OP_ASIN] = kiln_asin_f32,
	[OP_ACOS] = kiln_acos_f32, [OP_ATAN] = kiln_atan_f32,
	[OP_SINH] = kiln_sinh_f32, [OP_COSH] = kiln_cosh_f32,
	[OP_ASINH] = kiln_asinh_f32, [OP_ACOSH] = kiln_acosh_f32,
	[OP_ATANH] = kiln_atanh_f32, [OP_CEIL] = kiln_ceil_f32,
	[OP_FLOOR] = kiln_floor_f32, [OP_ROUND] = kiln_round_f32,
	[OP_SIGN] = kiln_sign_f32, [OP_ERF] = kiln_erf_f32,
	[OP_RECIPROCAL] = kiln_reciprocal_f32,
	[OP_SOFTPLUS] = kiln_softplus_f32, [OP_SOFTSIGN] = kiln_softsign_f32,
};
static BinF32 *const bin_f32[NOP] = {
	[OP_ADD] = kiln_add_f32, [OP_SUB] = kiln_sub_f32,
	[OP_MUL] = kiln_mul_f32, [OP_DIV] = kiln_div_f32,
	[OP_MAX] = kiln_max_f32, [OP_MIN] = kiln_min_f32,
	[OP_POW] = kiln_pow_f32,
};
static BinF64 *const bin_f64[NOP] = {
	[OP_ADD] = kiln_add_f64, [OP_SUB] = kiln_sub_f64,
	[OP_MUL] = kiln_mul_f64, [OP_DIV] = kiln_div_f64,
	[OP_MAX] = kiln_max_f64, [OP_MIN] = kiln_min_f64,
	[OP_POW] = kiln_pow_f64,
};
static BinI64 *const bin_i64[NOP] = {
	[OP_ADD] = kiln_add_i64, [OP_SUB] = kiln_sub_i64,
	[OP_MUL] = kiln_mul_i64, [OP_DIV] = kiln_div_i64,
	[OP_MAX] = kiln_max_i64, [OP_MIN] = kiln_min_i64,
};
static CmpF32 *const cmp_f32[NOP] = {
	[OP_EQUAL] = kiln_equal_f32, [OP_LESS] = kiln_less_f32,
	[OP_LESS_EQUAL] = kiln_less_equal_f32, [OP_GREATER] = kiln_greater_f32,
	[OP_GREATER_EQUAL] = kiln_greater_equal_f32,
};
static CmpF64 *const cmp_f64[NOP] = {
	[OP_EQUAL] = kiln_equal_f64, [OP_LESS] = kiln_less_f64,
	[OP_LESS_EQUAL] = kiln_less_equal_f64, [OP_GREATER] = kiln_greater_f64,
	[OP_GREATER_EQUAL] = kiln_greater_equal_f64,
};
static CmpI64 *const cmp_i64[NOP] = {
	[OP_EQUAL] = kiln_equal_i64, [OP_LESS] = kiln_less_i64,
	[OP_LESS_EQUAL] = kiln_less_equal_i64, [OP_GREATER] = kiln_greater_i64,
	[OP_GREATER_EQUAL] = kiln_greater_equal_i64,
};
static BinBool *const bin_bool[NOP] = {
	[OP_EQUAL] = kiln_equal_bool, [OP_AND] = kiln_and_bool,
	[OP_OR] = kiln_or_bool, [OP_XOR] = kiln_xor_bool,
};
static Reduce *const reduce_f32[NOP] = {
	[OP_REDUCE_SUM] = kiln_reduce_sum_f32,
	[OP_REDUCE_MEAN] = kiln_reduce_mean_f32,
	[OP_REDUCE_MAX] = kiln_reduce_max_f32,
	[OP_REDUCE_MIN] = kiln_reduce_min_f32,
	[OP_REDUCE_PROD] = kiln_reduce_prod_f32,
};

/* The dtype an arithmetic op is computed in, or -1.  The integers of up
 * to 32 bits are computed in i64 and cast back: add, sub and mul wrap
 * the same way, and every other result fits (MIN / -1 wraps back to MIN
 * in the cast, as the runtime's own kernels give).  u64 values above
 * INT64_MAX would not, so u64 is not folded; f16 and bf16 have no
 * arithmetic. */
static int
compute_dtype(int dt)
{
	switch (dt) {
	case DT_F32: case DT_F64: case DT_I64: case DT_BOOL:
		return dt;
	case DT_I32: case DT_I8: case DT_U8: case DT_I16: case DT_U16:
	case DT_U32:
		return DT_I64;
	default:
		return -1;
	}
}

/* Operand k converted to dtype dt (itself when it already is). */
static const void *
promoted(Fold *f, int k, int dt)
{
	const Type *t = f->xt[k];
	if (t->dtype == dt)
		return f->x[k];
	int64_t n = type_numel(t);
	void *p = arena_alloc(f->a, (size_t)(n * dt_size[dt]));
	kiln_cast(p, (kiln_dtype)dt, f->x[k], (kiln_dtype)t->dtype, n);
	return p;
}

static int64_t
ival(Fold *f, int id)
{
	return ir_attr(f->g, f->n, id)->i;
}

static double
fval(Fold *f, int id)
{
	return ir_attr(f->g, f->n, id)->f;
}

static bool
fold_binary(Fold *f)
{
	int op = f->n->op, cdt = compute_dtype(f->xt[0]->dtype);
	const Type *yt = f->yt;
	int64_t as[IR_MAXRANK], bs[IR_MAXRANK];
	const int64_t *yd = yt->dim;
	int r = yt->rank;
	if (cdt < 0)
		return false;
	type_bcast_strides(f->xt[0], yt, as);
	type_bcast_strides(f->xt[1], yt, bs);
	const void *a = promoted(f, 0, cdt), *b = promoted(f, 1, cdt);
	bool fmod = op == OP_MOD && ival(f, AT_MOD_FMOD);
	void *y = yt->dtype == cdt || yt->dtype == DT_BOOL ? f->y :
	          arena_alloc(f->a, (size_t)(type_numel(yt) * dt_size[cdt]));
	switch (cdt) {
	case DT_F32:
		if (op == OP_MOD)
			kiln_mod_f32(y, a, b, r, yd, as, bs, fmod);
		else if (bin_f32[op])
			bin_f32[op](y, a, b, r, yd, as, bs);
		else if (cmp_f32[op])
			cmp_f32[op](y, a, b, r, yd, as, bs);
		else
			return false;
		break;
	case DT_F64:
		if (op == OP_MOD)
			kiln_mod_f64(y, a, b, r, yd, as, bs, fmod);
		else if (bin_f64[op])
			bin_f64[op](y, a, b, r, yd, as, bs);
		else if (cmp_f64[op])
			cmp_f64[op](y, a, b, r, yd, as, bs);
		else
			return false;
		break;
	case DT_I64:
		if (op == OP_MOD)
			kiln_mod_i64(y, a, b, r, yd, as, bs, fmod);
		else if (bin_i64[op])
			bin_i64[op](y, a, b, r, yd, as, bs);
		else if (cmp_i64[op])
			cmp_i64[op](y, a, b, r, yd, as, bs);
		else
			return false;
		break;
	default:
		if (!bin_bool[op])
			return false;
		bin_bool[op](y, a, b, r, yd, as, bs);
	}
	if (y != f->y)
		kiln_cast(f->y, (kiln_dtype)yt->dtype, y, (kiln_dtype)cdt,
		          type_numel(yt));
	return true;
}

/* The f32 unary ops that take attributes, in registry order as the C
 * backend passes them. */
static bool
fold_unary_f32(Fold *f)
{
	float *y = f->y;
	const float *x = f->x[0];
	int64_t n = type_numel(f->yt);
	switch (f->n->op) {
	case OP_LEAKY_RELU:
		kiln_leaky_relu_f32(y, x, n, (float)fval(f, AT_LEAKY_RELU_ALPHA));
		break;
	case OP_ELU: kiln_elu_f32(y, x, n, (float)fval(f, AT_ELU_ALPHA)); break;
	case OP_SELU:
		kiln_selu_f32(y, x, n, (float)fval(f, AT_SELU_ALPHA),
		              (float)fval(f, AT_SELU_GAMMA));
		break;
	case OP_GELU:
		kiln_gelu_f32(y, x, n, (int)ival(f, AT_GELU_APPROXIMATE));
		break;
	case OP_HARDSIGMOID:
		kiln_hardsigmoid_f32(y, x, n, (float)fval(f, AT_HARDSIGMOID_ALPHA),
		                     (float)fval(f, AT_HARDSIGMOID_BETA));
		break;
	case OP_CLIP:
		kiln_clip_f32(y, x, n, (float)fval(f, AT_CLIP_MIN),
		              (float)fval(f, AT_CLIP_MAX));
		break;
	case OP_CELU: kiln_celu_f32(y, x, n, (float)fval(f, AT_CELU_ALPHA)); break;
	case OP_THRESHOLDED_RELU:
		kiln_thresholded_relu_f32(y, x, n,
		                          (float)fval(f, AT_THRESHOLDED_RELU_ALPHA));
		break;
	case OP_SHRINK:
		kiln_shrink_f32(y, x, n, (float)fval(f, AT_SHRINK_BIAS),
		                (float)fval(f, AT_SHRINK_LAMBD));
		break;
	case OP_ISNAN: kiln_isnan_f32(f->y, x, n); break;
	case OP_ISINF:
		kiln_isinf_f32(f->y, x, n, (int)ival(f, AT_ISINF_DETECT_NEGATIVE),
		               (int)ival(f, AT_ISINF_DETECT_POSITIVE));
		break;
	default:
		if (!un_f32[f->n->op])
			return false;
		un_f32[f->n->op](y, x, n);
	}
	return true;
}

/* Unary ops of the other dtypes: neg and abs (integers in i64), clip of
 * f64 and i64 (narrower integers clip to their own range first), the
 * predicates of f64, not. */
static bool
fold_unary_other(Fold *f)
{
	int op = f->n->op, dt = f->xt[0]->dtype;
	int64_t n = type_numel(f->yt);
	if (op == OP_CLIP && (dt == DT_F64 || dt == DT_I64)) {
		double lo = fval(f, AT_CLIP_MIN), hi = fval(f, AT_CLIP_MAX);
		if (dt == DT_F64)
			kiln_clip_f64(f->y, f->x[0], n, lo, hi);
		else
			kiln_clip_i64(f->y, f->x[0], n, lo, hi);
		return true;
	}
	if (dt == DT_F64 && op == OP_ISNAN) {
		kiln_isnan_f64(f->y, f->x[0], n);
		return true;
	}
	if (dt == DT_F64 && op == OP_ISINF) {
		kiln_isinf_f64(f->y, f->x[0], n,
		               (int)ival(f, AT_ISINF_DETECT_NEGATIVE),
		               (int)ival(f, AT_ISINF_DETECT_POSITIVE));
		return true;
	}
	if (dt == DT_BOOL && op == OP_NOT) {
		kiln_not_bool(f->y, f->x[0], n);
		return true;
	}
	if (op != OP_NEG && op != OP_ABS)
		return false;
	if (dt == DT_F64) {
		(op == OP_NEG ? kiln_neg_f64 : kiln_abs_f64)(f->y, f->x[0], n);
		return true;
	}
	if (compute_dtype(dt) != DT_I64)
		return false;
	int64_t *y = arena_alloc(f->a, (size_t)n * sizeof *y);
	(op == OP_NEG ? kiln_neg_i64 : kiln_abs_i64)(y, promoted(f, 0, DT_I64), n);
	kiln_cast(f->y, (kiln_dtype)dt, y, KILN_I64, n);
	return true;
}

static void
strided(Fold *f, const int64_t *st, int64_t off)
{
	kiln_strided_copy(f->y, f->x[0], (size_t)dt_size[f->yt->dtype],
	                  f->yt->rank, f->yt->dim, st, off);
}

static bool
fold_transpose(Fold *f)
{
	int64_t xs[IR_MAXRANK], st[IR_MAXRANK];
	const int64_t *perm = ir_attr(f->g, f->n, AT_TRANSPOSE_PERM)->ints;
	type_strides(f->xt[0], xs);
	for (int d = 0; d < f->xt[0]->rank; d++)
		st[d] = xs[perm[d]];
	strided(f, st, 0);
	return true;
}

static bool
fold_slice(Fold *f)
{
	int64_t start[IR_MAXRANK], step[IR_MAXRANK], count[IR_MAXRANK];
	int64_t xs[IR_MAXRANK], off = 0;
	if (shape_slice_params(f->g, f->n, start, step, count))
		return false;
	type_strides(f->xt[0], xs);
	for (int d = 0; d < f->xt[0]->rank; d++) {
		off += start[d] * xs[d];
		xs[d] *= step[d];
	}
	strided(f, xs, off);
	return true;
}

static bool
fold_concat(Fold *f)
{
	const Node *n = f->n;
	int64_t axis = ival(f, AT_CONCAT_AXIS), outer, inner, len[IR_MAXIN];
	if (axis < 0)
		axis += f->yt->rank;
	type_outer_inner(f->yt, (int)axis, &outer, &inner);
	for (int k = 0; k < n->nin; k++)
		len[k] = f->xt[k]->dim[axis];
	kiln_concat(f->y, f->x, n->nin, len, outer, inner,
	            (size_t)dt_size[f->yt->dtype]);
	return true;
}

/* An index out of range is the run's error to report: not folded. */
static bool
fold_gather(Fold *f)
{
	const Type *x = f->xt[0], *idx = f->xt[1];
	int64_t axis = ival(f, AT_GATHER_AXIS), outer, inner;
	if (axis < 0)
		axis += x->rank;
	type_outer_inner(x, (int)axis, &outer, &inner);
	return kiln_gather(f->y, f->x[0], f->x[1], (kiln_dtype)idx->dtype, outer,
	                   x->dim[axis], type_numel(idx), inner,
	                   (size_t)dt_size[x->dtype]) == KILN_OK;
}

static bool
fold_pad(Fold *f)
{
	const Type *x = f->xt[0];
	const int64_t *pads = ir_attr(f->g, f->n, AT_PAD_PADS)->ints;
	struct kiln_pad p = {.rank = x->rank};
	p.mode = shape_choice(ir_attr(f->g, f->n, AT_PAD_MODE)->s, shape_pad_mode);
	for (int d = 0; d < x->rank; d++) {
		p.xdim[d] = x->dim[d];
		p.before[d] = pads[d];
		p.after[d] = pads[x->rank + d];
	}
	double v = fval(f, AT_PAD_VALUE);
	uint64_t e = 0;             /* the fill value, cast to x's dtype */
	kiln_cast(&e, (kiln_dtype)x->dtype, &v, KILN_F64, 1);
	kiln_pad(f->y, f->x[0], (size_t)dt_size[x->dtype], &e, &p);
	return true;
}

static bool
fold_where(Fold *f)
{
	const Type *yt = f->yt;
	int64_t cs[IR_MAXRANK], as[IR_MAXRANK], bs[IR_MAXRANK];
	int es = dt_size[yt->dtype];
	if (es != 1 && es != 4 && es != 8)
		return false;
	type_bcast_strides(f->xt[0], yt, cs);
	type_bcast_strides(f->xt[1], yt, as);
	type_bcast_strides(f->xt[2], yt, bs);
	kiln_where(f->y, f->x[0], f->x[1], f->x[2], (size_t)es, yt->rank,
	           yt->dim, cs, as, bs);
	return true;
}

static bool
fold_reduce(Fold *f)
{
	unsigned mask;
	if (shape_reduce_mask(f->g, f->n, &mask))
		return false;
	reduce_f32[f->n->op](f->y, f->x[0], f->xt[0]->rank, f->xt[0]->dim, mask);
	return true;
}

/* Computes node n's result into f->y; false when the op is not folded. */
static bool
eval(Fold *f)
{
	const Node *n = f->n;
	const OpInfo *o = op_get(n->op);
	int64_t st[IR_MAXRANK];
	switch (n->op) {
	case OP_RESHAPE:
	case OP_FLATTEN:
	case OP_DROPOUT:            /* the identity at inference */
		memcpy(f->y, f->x[0], (size_t)type_bytes(f->yt));
		return true;
	case OP_CAST:
		kiln_cast(f->y, (kiln_dtype)f->yt->dtype, f->x[0],
		          (kiln_dtype)f->xt[0]->dtype, type_numel(f->yt));
		return true;
	case OP_TRANSPOSE: return fold_transpose(f);
	case OP_SLICE: return fold_slice(f);
	case OP_EXPAND:
		type_bcast_strides(f->xt[0], f->yt, st);
		strided(f, st, 0);
		return true;
	case OP_TILE:
		kiln_tile(f->y, f->x[0], (size_t)dt_size[f->yt->dtype],
		          f->xt[0]->rank, f->xt[0]->dim,
		          ir_attr(f->g, n, AT_TILE_REPEATS)->ints);
		return true;
	case OP_CONCAT: return fold_concat(f);
	case OP_GATHER: return fold_gather(f);
	case OP_PAD: return fold_pad(f);
	case OP_WHERE: return fold_where(f);
	default:
		if (reduce_f32[n->op])
			return fold_reduce(f);
		if (o->cls != ELTWISE)
			return false;
		if (o->maxin == 2)
			return fold_binary(f);
		if (o->maxin != 1)
			return false;
		return f->xt[0]->dtype == DT_F32 ? fold_unary_f32(f) :
		       fold_unary_other(f);
	}
}

/* Whether every operand of n is a constant whose data is here (a const
 * declared `zeros` or `ones` gets its data now). */
static bool
all_const(Graph *g, const Node *n)
{
	if (n->nin == 0)
		return false;           /* random_normal: nothing to fold from */
	for (int k = 0; k < n->nin; k++) {
		if (n->in[k] < 0)
			continue;
		Value *v = &g->val[n->in[k]];
		if (v->kind != VK_CONST || v->elided)
			return false;
		if (!v->data && v->init != INIT_DATA && v->type.dtype == DT_F32)
			ir_materialize(g, n->in[k]);
		if (!v->data)
			return false;
	}
	return true;
}

/* Folds node i if it can; its result becomes a constant in place. */
static bool
fold_node(Graph *g, int i, Arena *scratch)
{
	Node *n = &g->node[i];
	Value *r = &g->val[n->out];
	int64_t bytes = type_bytes(&r->type);
	if (n->dead || bytes > FOLD_MAXBYTES || !all_const(g, n))
		return false;
	Fold f = {.g = g, .n = n, .a = scratch, .yt = &r->type};
	f.y = arena_alloc(g->mod->arena, (size_t)MAX(bytes, 1));
	for (int k = 0; k < n->nin; k++)
		if (n->in[k] >= 0) {
			f.xt[k] = &g->val[n->in[k]].type;
			f.x[k] = g->val[n->in[k]].data;
		}
	if (!eval(&f))
		return false;
	r->kind = VK_CONST;
	r->def = -1;
	r->data = f.y;
	r->init = INIT_DATA;
	r->loc = n->loc;
	r->offset = -1;
	n->dead = true;
	return true;
}

void
pass_fold(Graph *g)
{
	Arena *scratch = arena_new();
	bool changed = false;
	for (int i = 0; i < g->nnode; i++)
		changed |= fold_node(g, i, scratch);
	arena_free(scratch);
	if (changed)
		ir_compact(g);
}
