/* fold.c: evaluating ONNX nodes at build time.
 *
 * kiln's shapes are static, so the shape-computing parts of a model
 * (Shape -> Gather -> Unsqueeze -> Concat -> Reshape, ConstantOfShape,
 * Range, ...) are computed here while importing, and the ops that consume
 * them (Reshape, Expand, Slice, ...) see constants.  A node is folded
 * when every operand is a constant with data and its op is one of those
 * below; Shape and Size need only the operand's type.  Tensors here are
 * small, so elements go through int64 or double.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "onnx.h"

typedef struct {
	Type t;
	void *data;
} Tensor;

static bool
is_float(int dt)
{
	return dt == DT_F32 || dt == DT_F64;
}

static double
get(const Tensor *x, int64_t i)
{
	switch (x->t.dtype) {
	case DT_F32: return ((float *)x->data)[i];
	case DT_F64: return ((double *)x->data)[i];
	case DT_I64: return (double)((int64_t *)x->data)[i];
	case DT_I32: return ((int32_t *)x->data)[i];
	case DT_I8: return ((int8_t *)x->data)[i];
	default: return ((uint8_t *)x->data)[i];
	}
}

static int64_t
geti(const Tensor *x, int64_t i)
{
	if (x->t.dtype == DT_I64)
		return ((int64_t *)x->data)[i];
	double v = get(x, i);
	if (!(v > -9.2e18 && v < 9.2e18))
		return v > 0 ? INT64_MAX : INT64_MIN;
	return (int64_t)v;
}

/* Stores v as element i of x, with ONNX Cast's conversions. */
static void
set(Tensor *x, int64_t i, double v, int64_t iv, bool exact)
{
	if (!exact && !is_float(x->t.dtype) && x->t.dtype != DT_BOOL)
		iv = !(v > -9.2e18 && v < 9.2e18) ? 0 : (int64_t)v;
	switch (x->t.dtype) {
	case DT_F32: ((float *)x->data)[i] = exact ? (float)iv : (float)v; break;
	case DT_F64: ((double *)x->data)[i] = exact ? (double)iv : v; break;
	case DT_I64: ((int64_t *)x->data)[i] = iv; break;
	case DT_I32: ((int32_t *)x->data)[i] = (int32_t)iv; break;
	case DT_I8: ((int8_t *)x->data)[i] = (int8_t)iv; break;
	case DT_U8: ((uint8_t *)x->data)[i] = (uint8_t)iv; break;
	case DT_BOOL: ((uint8_t *)x->data)[i] = exact ? iv != 0 : v != 0; break;
	}
}

static void
put(Tensor *x, int64_t i, const Tensor *from, int64_t j)
{
	if (is_float(from->t.dtype))
		set(x, i, get(from, j), 0, false);
	else
		set(x, i, 0, geti(from, j), true);
}

/* Whether a tensor of type t may be made here: at most ONNX_MAXFOLD
 * elements, checked before its size is computed or memory taken. */
static bool
small(const Type *t)
{
	return type_fits(t) && type_numel(t) <= ONNX_MAXFOLD;
}

/* Space for a result that must be made at build time. */
static Tensor
alloc(ONode *o, Type t)
{
	if (!small(&t))
		diag_error(o->loc, "the result %s has more than the %d elements "
		           "kiln computes at build time", type_str(o->m->a, &t),
		           ONNX_MAXFOLD);
	int64_t n = type_bytes(&t);
	return (Tensor){t, arena_alloc(o->m->a, n ? n : 1)};
}

/* Space for a result that may instead be left to the kernels (a MAY
 * fold): data is NULL when it is too large to make here. */
static Tensor
try_alloc(ONode *o, Type t)
{
	return small(&t) ? alloc(o, t) : (Tensor){t, NULL};
}

static Tensor
operand(ONode *o, int i)
{
	Value *v = &o->m->g->val[o->in[i]];
	return (Tensor){v->type, v->data};
}

static void
bind(ONode *o, int k, Tensor y)
{
	const char *name = o->p->output[k];
	onnx_bind(o->m, name, onnx_const(o->m, name, y.t, y.data, o->loc));
}

/* Row-major index of the element of x that element i of y (shape yt)
 * reads when x broadcasts to yt. */
static int64_t
bcast_index(const Type *xt, const Type *yt, int64_t i)
{
	int64_t idx = 0, stride = 1;
	for (int d = yt->rank - 1; d >= 0; d--) {
		int64_t c = i % yt->dim[d];
		i /= yt->dim[d];
		int k = d - (yt->rank - xt->rank);
		if (k >= 0) {
			idx += (xt->dim[k] == 1 ? 0 : c) * stride;
			stride *= xt->dim[k];
		}
	}
	return idx;
}

static bool
fold_shape(ONode *o)
{
	Type xt = o->m->g->val[o->in[0]].type;
	int64_t start = onnx_attr_int(o, "start", 0);
	int64_t end = onnx_attr_int(o, "end", xt.rank);
	start = start < 0 ? MAX(start + xt.rank, 0) : MIN(start, xt.rank);
	end = end < 0 ? MAX(end + xt.rank, 0) : MIN(end, xt.rank);
	if (end <= start)
		diag_error(o->loc, "the shape slice is empty");
	Tensor y = alloc(o, (Type){.dtype = DT_I64, .rank = 1,
	                           .dim = {end - start}});
	memcpy(y.data, xt.dim + start, (end - start) * sizeof(int64_t));
	bind(o, 0, y);
	return true;
}

static bool
fold_size(ONode *o)
{
	Type xt = o->m->g->val[o->in[0]].type;
	Tensor y = alloc(o, (Type){.dtype = DT_I64});
	*(int64_t *)y.data = type_numel(&xt);
	bind(o, 0, y);
	return true;
}

static bool
fold_constant_of_shape(ONode *o)
{
	Tensor s = operand(o, 0);
	if (s.t.rank != 1 || s.t.dim[0] > IR_MAXRANK)
		diag_error(o->loc, "the shape must be a list of at most %d "
		           "dimensions", IR_MAXRANK);
	Type t = {.dtype = DT_F32, .rank = (int)s.t.dim[0]};
	for (int i = 0; i < t.rank; i++)
		if ((t.dim[i] = geti(&s, i)) <= 0)
			diag_error(o->loc, "dimension %d is %lld; kiln needs "
			           "dimensions of at least 1", i, (long long)t.dim[i]);
	Tensor v = {.t = {.dtype = DT_F32}, .data = &(float){0}};
	const Onnx__AttributeProto *a = onnx_attr(o, "value");
	if (a && a->t) {
		const char *err = onnx_tensor(o->m->a, a->t, NULL, &v.t, &v.data);
		if (err)
			diag_error(o->loc, "%s", err);
		t.dtype = v.t.dtype;
	}
	Tensor y = alloc(o, t);
	for (int64_t i = 0; i < type_numel(&t); i++)
		put(&y, i, &v, 0);
	bind(o, 0, y);
	return true;
}

static bool
fold_cast(ONode *o)
{
	Tensor x = operand(o, 0);
	int to = onnx_dtype((int)onnx_attr_int(o, "to", 0));
	if (to < 0 || to > DT_BOOL)     /* get/set know the first seven */
		return false;
	Type t = x.t;
	t.dtype = to;
	Tensor y = try_alloc(o, t);
	if (!y.data)
		return false;
	for (int64_t i = 0; i < type_numel(&t); i++)
		put(&y, i, &x, i);
	bind(o, 0, y);
	return true;
}

static bool
fold_range(ONode *o)
{
	Tensor s = operand(o, 0), l = operand(o, 1), d = operand(o, 2);
	double start = get(&s, 0), limit = get(&l, 0), delta = get(&d, 0);
	if (delta == 0)
		diag_error(o->loc, "delta is 0");
	double n = ceil((limit - start) / delta);
	if (!(n >= 1))
		diag_error(o->loc, "the range has %g elements; kiln needs at "
		           "least 1", n);
	if (n > ONNX_MAXFOLD)
		diag_error(o->loc, "the range has %g elements, more than the %d "
		           "kiln computes at build time", n, ONNX_MAXFOLD);
	Tensor y = alloc(o, (Type){.dtype = s.t.dtype, .rank = 1,
	                           .dim = {(int64_t)n}});
	for (int64_t i = 0; i < (int64_t)n; i++)
		if (is_float(s.t.dtype))
			set(&y, i, start + i * delta, 0, false);
		else
			set(&y, i, 0, geti(&s, 0) + i * geti(&d, 0), true);
	bind(o, 0, y);
	return true;
}

/* Elementwise ops with numpy broadcasting. */
static double
arith(const char *op, double a, double b)
{
	switch (op[0]) {
	case 'A': return op[1] == 'd' ? a + b : (double)(a && b);
	case 'S': return a - b;
	case 'M': return strcmp(op, "Mul") == 0 ? a * b :
	                 strcmp(op, "Max") == 0 ? fmax(a, b) : fmin(a, b);
	case 'D': return a / b;
	case 'E': return a == b;
	case 'L': return a < b;
	case 'G': return a > b;
	case 'O': return a || b;
	default: return 0;
	}
}

static int64_t
iarith(const char *op, int64_t a, int64_t b, bool *ok)
{
	switch (op[0]) {
	case 'A': return op[1] == 'd' ? (int64_t)((uint64_t)a + (uint64_t)b) :
	                 (a && b);
	case 'S': return (int64_t)((uint64_t)a - (uint64_t)b);
	case 'M': return strcmp(op, "Mul") == 0 ?
	                 (int64_t)((uint64_t)a * (uint64_t)b) :
	                 strcmp(op, "Max") == 0 ? MAX(a, b) : MIN(a, b);
	case 'D':
		if (b == 0 || (a == INT64_MIN && b == -1))
			return *ok = false, 0;
		return a / b;
	case 'E': return a == b;
	case 'L': return a < b;
	case 'G': return a > b;
	case 'O': return a || b;
	default: return 0;
	}
}

static bool
fold_binary(ONode *o)
{
	const char *op = o->p->op_type;
	Tensor a = operand(o, 0), b = operand(o, 1);
	Type t;
	if (!shape_broadcast(&a.t, &b.t, &t) || a.t.dtype != b.t.dtype)
		return false;       /* the translation reports it */
	bool cmp = strchr("ELGO", op[0]) || strcmp(op, "And") == 0;
	t.dtype = cmp ? DT_BOOL : a.t.dtype;
	Tensor y = try_alloc(o, t);
	if (!y.data)
		return false;
	bool ok = true;
	for (int64_t i = 0; i < type_numel(&t); i++) {
		int64_t ia = bcast_index(&a.t, &t, i), ib = bcast_index(&b.t, &t, i);
		if (is_float(a.t.dtype))
			set(&y, i, arith(op, get(&a, ia), get(&b, ib)), 0, false);
		else
			set(&y, i, 0, iarith(op, geti(&a, ia), geti(&b, ib), &ok),
			    true);
	}
	if (!ok)
		diag_error(o->loc, "integer division by zero at build time");
	bind(o, 0, y);
	return true;
}

static bool
fold_unary(ONode *o)
{
	const char *op = o->p->op_type;
	Tensor x = operand(o, 0);
	Tensor y = try_alloc(o, x.t);
	if (!y.data)
		return false;
	for (int64_t i = 0; i < type_numel(&x.t); i++) {
		if (strcmp(op, "Not") == 0)
			set(&y, i, 0, !geti(&x, i), true);
		else if (is_float(x.t.dtype))
			set(&y, i, strcmp(op, "Neg") == 0 ? -get(&x, i) :
			    fabs(get(&x, i)), 0, false);
		else
			set(&y, i, 0, strcmp(op, "Neg") == 0 ? -geti(&x, i) :
			    llabs(geti(&x, i)), true);
	}
	bind(o, 0, y);
	return true;
}

static bool
fold_where(ONode *o)
{
	Tensor c = operand(o, 0), a = operand(o, 1), b = operand(o, 2);
	Type t, ab;
	if (!shape_broadcast(&a.t, &b.t, &ab) || !shape_broadcast(&c.t, &ab, &t) ||
	    a.t.dtype != b.t.dtype)
		return false;
	t.dtype = a.t.dtype;
	Tensor y = try_alloc(o, t);
	if (!y.data)
		return false;
	for (int64_t i = 0; i < type_numel(&t); i++) {
		bool pick = geti(&c, bcast_index(&c.t, &t, i)) != 0;
		const Tensor *src = pick ? &a : &b;
		put(&y, i, src, bcast_index(&src->t, &t, i));
	}
	bind(o, 0, y);
	return true;
}

/* Gather along axis with constant data and indices. */
static bool
fold_gather(ONode *o)
{
	Tensor x = operand(o, 0), idx = operand(o, 1);
	int r = x.t.rank;
	int64_t axis = onnx_attr_int(o, "axis", 0);
	if (r == 0 || axis < -r || axis >= r || r - 1 + idx.t.rank > IR_MAXRANK ||
	    is_float(idx.t.dtype))
		return false;
	if (axis < 0)
		axis += r;
	Type t = {.dtype = x.t.dtype, .rank = r - 1 + idx.t.rank};
	int64_t outer = 1, inner = 1, n = x.t.dim[axis];
	int k = 0;
	for (int d = 0; d < axis; d++)
		outer *= t.dim[k++] = x.t.dim[d];
	for (int d = 0; d < idx.t.rank; d++)
		t.dim[k++] = idx.t.dim[d];
	for (int d = axis + 1; d < r; d++)
		inner *= t.dim[k++] = x.t.dim[d];
	int64_t ni = type_numel(&idx.t);
	Tensor y = try_alloc(o, t);
	if (!y.data)
		return false;
	for (int64_t a = 0; a < outer; a++)
		for (int64_t j = 0; j < ni; j++) {
			int64_t q = geti(&idx, j);
			if (q < -n || q >= n)
				diag_error(o->loc, "index %lld is out of range for a "
				           "dimension of %lld", (long long)q, (long long)n);
			q = q < 0 ? q + n : q;
			for (int64_t b = 0; b < inner; b++)
				put(&y, (a * ni + j) * inner + b, &x,
				    (a * n + q) * inner + b);
		}
	bind(o, 0, y);
	return true;
}

static bool
fold_concat(ONode *o)
{
	Tensor x0 = operand(o, 0);
	int r = x0.t.rank;
	int64_t axis = onnx_attr_int(o, "axis", 0);
	if (r == 0 || axis < -r || axis >= r)
		return false;
	if (axis < 0)
		axis += r;
	Type t = x0.t;
	t.dim[axis] = 0;
	for (int i = 0; i < o->nin; i++) {
		Tensor x = operand(o, i);
		if (x.t.rank != r || x.t.dtype != t.dtype)
			return false;
		for (int d = 0; d < r; d++)
			if (d != axis && x.t.dim[d] != t.dim[d])
				return false;
		t.dim[axis] += x.t.dim[axis];
	}
	int64_t outer = 1, inner = 1;
	for (int d = 0; d < axis; d++)
		outer *= t.dim[d];
	for (int d = axis + 1; d < r; d++)
		inner *= t.dim[d];
	Tensor y = try_alloc(o, t);
	if (!y.data)
		return false;
	int64_t at = 0;
	for (int i = 0; i < o->nin; i++) {
		Tensor x = operand(o, i);
		int64_t w = x.t.dim[axis] * inner;
		for (int64_t a = 0; a < outer; a++)
			for (int64_t j = 0; j < w; j++)
				put(&y, a * t.dim[axis] * inner + at + j, &x, a * w + j);
		at += w;
	}
	bind(o, 0, y);
	return true;
}

static bool
fold_eye_like(ONode *o)
{
	Type t = o->m->g->val[o->in[0]].type;
	const Onnx__AttributeProto *a = onnx_attr(o, "dtype");
	if (a && (t.dtype = onnx_dtype((int)a->i)) < 0)
		diag_error(o->loc, "dtype %s is not supported",
		           onnx_dtype_name((int)a->i));
	if (t.rank != 2)
		diag_error(o->loc, "the input must have rank 2");
	int64_t k = onnx_attr_int(o, "k", 0);
	Tensor y = alloc(o, t);
	for (int64_t i = 0; i < t.dim[0]; i++)
		for (int64_t j = 0; j < t.dim[1]; j++)
			set(&y, i * t.dim[1] + j, j - i == k, j - i == k, true);
	bind(o, 0, y);
	return true;
}

/* HannWindow, HammingWindow, BlackmanWindow of a known size n:
 * w[i] = a0 - a1 cos(2 pi i / N) + a2 cos(4 pi i / N), N = n when
 * periodic, else n - 1. */
static bool
fold_window(ONode *o)
{
	Tensor s = operand(o, 0);
	int64_t n = geti(&s, 0);
	const char *op = o->p->op_type;
	double a0 = 0.5, a1 = 0.5, a2 = 0;
	if (op[1] == 'a' && op[2] == 'm')       /* Hamming */
		a0 = 25.0 / 46, a1 = 21.0 / 46;
	else if (op[0] == 'B')
		a0 = 0.42, a2 = 0.08;
	if (n < 1 || n > ONNX_MAXFOLD)
		diag_error(o->loc, "window size %lld is not between 1 and %d",
		           (long long)n, ONNX_MAXFOLD);
	int dt = onnx_dtype((int)onnx_attr_int(o, "output_datatype", 1));
	if (dt < 0)
		diag_error(o->loc, "output_datatype is not supported");
	double big_n = onnx_attr_int(o, "periodic", 1) ? n : n - 1;
	Tensor y = alloc(o, (Type){.dtype = dt, .rank = 1, .dim = {n}});
	for (int64_t i = 0; i < n; i++) {
		double x = 2 * 3.14159265358979323846 * i / big_n;
		set(&y, i, a0 - a1 * cos(x) + a2 * cos(2 * x), 0, false);
	}
	bind(o, 0, y);
	return true;
}

/* Slice of a constant (shape arithmetic): may come out empty, which only
 * a later fold (Concat) can use. */
static bool
fold_slice(ONode *o)
{
	if (o->m->opset < 10 || o->nin < 3)
		return false;
	Tensor x = operand(o, 0), st = operand(o, 1), en = operand(o, 2);
	int r = x.t.rank;
	int64_t n = type_numel(&st.t);
	if (r == 0 || n > r || type_numel(&en.t) != n)
		return false;
	int64_t start[IR_MAXRANK] = {0}, step[IR_MAXRANK], count[IR_MAXRANK];
	for (int d = 0; d < r; d++)
		step[d] = 1, count[d] = x.t.dim[d];
	Tensor axes = o->nin > 3 ? operand(o, 3) : (Tensor){0};
	Tensor steps = o->nin > 4 ? operand(o, 4) : (Tensor){0};
	for (int64_t k = 0; k < n; k++) {
		int64_t a = axes.data ? geti(&axes, k) : k;
		int64_t sp = steps.data ? geti(&steps, k) : 1;
		if (a < 0)
			a += r;
		if (a < 0 || a >= r || sp == 0)
			return false;
		int64_t dim = x.t.dim[a], b = geti(&st, k), e = geti(&en, k);
		b = b < 0 ? b + dim : b;
		e = e < 0 ? e + dim : e;
		if (sp > 0) {
			b = MAX(0, MIN(b, dim));
			e = MAX(0, MIN(e, dim));
			count[a] = e > b ? (e - b + sp - 1) / sp : 0;
		} else {
			b = MAX(-1, MIN(b, dim - 1));
			e = MAX(-1, MIN(e, dim - 1));
			count[a] = b > e ? (b - e - sp - 1) / -sp : 0;
		}
		start[a] = b, step[a] = sp;
	}
	Type t = x.t;
	memcpy(t.dim, count, sizeof count);
	Tensor y = try_alloc(o, t);
	if (!y.data)
		return false;
	for (int64_t i = 0; i < type_numel(&t); i++) {
		int64_t rest = i, src = 0, stride = 1;
		for (int d = r - 1; d >= 0; d--) {
			int64_t c = rest % t.dim[d];
			rest /= t.dim[d];
			src += (start[d] + c * step[d]) * stride;
			stride *= x.t.dim[d];
		}
		put(&y, i, &x, src);
	}
	bind(o, 0, y);
	return true;
}

/* The ops folded when all operands are constants: always when their
 * operand types suffice (TYPES), or when the op has no IR form, so that
 * its operands must be known at build time (MUST; an input whose value
 * was given before the build is frozen for it). */
enum { MAY, TYPES, MUST };
static const struct {
	const char *name;
	bool (*fn)(ONode *);
	int when;
} folds[] = {
	{"Shape", fold_shape, TYPES},
	{"Size", fold_size, TYPES},
	{"EyeLike", fold_eye_like, TYPES},
	{"ConstantOfShape", fold_constant_of_shape, MUST},
	{"Cast", fold_cast, MAY},
	{"Range", fold_range, MUST},
	{"HannWindow", fold_window, MUST},
	{"HammingWindow", fold_window, MUST},
	{"BlackmanWindow", fold_window, MUST},
	{"Slice", fold_slice, MAY},
	{"Add", fold_binary, MAY}, {"Sub", fold_binary, MAY},
	{"Mul", fold_binary, MAY}, {"Div", fold_binary, MAY},
	{"Equal", fold_binary, MAY}, {"Less", fold_binary, MAY},
	{"Greater", fold_binary, MAY}, {"And", fold_binary, MAY},
	{"Or", fold_binary, MAY}, {"Max", fold_binary, MAY},
	{"Min", fold_binary, MAY},
	{"Neg", fold_unary, MAY}, {"Abs", fold_unary, MAY},
	{"Not", fold_unary, MAY},
	{"Where", fold_where, MAY},
	{"Gather", fold_gather, MAY},
	{"Concat", fold_concat, MAY},
};

bool
onnx_fold(ONode *o)
{
	for (int k = 0; k < countof(folds); k++) {
		if (strcmp(folds[k].name, o->p->op_type) != 0)
			continue;
		if (o->nin == 0 || o->in[0] < 0)
			return false;
		for (int i = 0; i < o->nin; i++) {
			if (o->in[i] < 0)
				return false;
			Value *v = &o->m->g->val[o->in[i]];
			if (folds[k].when == MUST && !v->data && v->kind == VK_INPUT)
				onnx_freeze(o->m, o->in[i]);
			if (folds[k].when == MUST && !v->data)
				diag_error(o->loc, "input %d ('%s') must be known at build "
				           "time: kiln compiles for static shapes", i,
				           v->name);
			if (folds[k].when == MAY && !v->data)
				return false;
			/* get() and set() know the first seven dtypes; later ones
			 * are left to the kernels */
			if (folds[k].when == MAY && v->type.dtype > DT_BOOL)
				return false;
		}
		if ((strcmp(o->p->op_type, "Max") == 0 ||
		     strcmp(o->p->op_type, "Min") == 0) && o->nin != 2)
			return false;
		return folds[k].fn(o);
	}
	return false;
}
