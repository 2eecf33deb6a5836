/* test_eltwise2.c: tests of the kernels in runtime/eltwise2.c (binary
 * ops over every dtype, comparisons, logic, where, cast, f32 unary math).
 *
 * The references here share no code with the kernels: every element is
 * read into an int64 or a double, its operand index found by unravelling
 * the flat output index against the operand's own dims (not strides), and
 * the result computed in wide arithmetic and then wrapped to the dtype's
 * width by masking (integers), in double (floats), or from a table of
 * exact answers (ONNX's Mod test vectors, cast edge cases).  Shapes include
 * scalars, size-1 dims, rank-4 three-way broadcasts and an empty tensor.
 * A mismatch prints the op, dtype, shapes and first differing element.
 *
 *   test_eltwise2     run everything; the last line is the summary
 */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kiln.h"
#include "testutil.h"

#define countof(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* ---- typed buffers as int64/double ----------------------------------- */

static bool
is_float(kiln_dtype t)
{
	return t == KILN_F32 || t == KILN_F64;
}

static double
getf(kiln_dtype t, const void *p, int64_t i)
{
	switch (t) {
	case KILN_F32: return ((const float *)p)[i];
	case KILN_F64: return ((const double *)p)[i];
	case KILN_I64: return (double)((const int64_t *)p)[i];
	case KILN_I32: return ((const int32_t *)p)[i];
	case KILN_I8: return ((const int8_t *)p)[i];
	default: return ((const uint8_t *)p)[i];
	}
}

static int64_t
geti(kiln_dtype t, const void *p, int64_t i)
{
	switch (t) {
	case KILN_I64: return ((const int64_t *)p)[i];
	case KILN_I32: return ((const int32_t *)p)[i];
	case KILN_I8: return ((const int8_t *)p)[i];
	case KILN_U8:
	case KILN_BOOL: return ((const uint8_t *)p)[i];
	default: return 0;      /* floats are read with getf */
	}
}

/* v reduced to t's width: the low bits, sign-extended for signed types,
 * by arithmetic on the unsigned value. */
static int64_t
wrap(kiln_dtype t, uint64_t v)
{
	int bits = t == KILN_I64 ? 64 : t == KILN_I32 ? 32 : 8;
	if (bits == 64)
		return v >> 63 ? -(int64_t)(~v) - 1 : (int64_t)v;
	uint64_t m = v & ((1ull << bits) - 1);
	if (t == KILN_U8 || t == KILN_BOOL || !(m >> (bits - 1)))
		return (int64_t)m;
	return (int64_t)m - (int64_t)(1ull << bits);
}

static void
set(kiln_dtype t, void *p, int64_t i, int64_t iv, double fv)
{
	switch (t) {
	case KILN_F32: ((float *)p)[i] = (float)fv; break;
	case KILN_F64: ((double *)p)[i] = fv; break;
	case KILN_I64: ((int64_t *)p)[i] = iv; break;
	case KILN_I32: ((int32_t *)p)[i] = (int32_t)iv; break;
	case KILN_I8: ((int8_t *)p)[i] = (int8_t)iv; break;
	default: ((uint8_t *)p)[i] = (uint8_t)iv; break;
	}
}

static int64_t
tmin(kiln_dtype t)
{
	return t == KILN_I64 ? INT64_MIN : t == KILN_I32 ? INT32_MIN :
	       t == KILN_I8 ? INT8_MIN : 0;
}

static int64_t
tmax(kiln_dtype t)
{
	return t == KILN_I64 ? INT64_MAX : t == KILN_I32 ? INT32_MAX :
	       t == KILN_I8 ? INT8_MAX : t == KILN_BOOL ? 1 : UINT8_MAX;
}

/* A random element: often a special value (0, +-1, the extremes, NaN,
 * infinities, halves), else uniform. */
static void
fill(kiln_dtype t, void *p, int64_t n)
{
	static const double fs[] = {0, -0.0, 1, -1, 0.5, -2.5, 3.5, INFINITY,
		-INFINITY, NAN, 7, -7};
	for (int64_t i = 0; i < n; i++) {
		uint64_t r = t_rand_u64();
		bool special = r % 4 == 0;
		if (t == KILN_BOOL) {
			set(t, p, i, (int64_t)(r >> 7 & 1), 0);
		} else if (is_float(t)) {
			set(t, p, i, 0, special ? fs[(r >> 8) % countof(fs)] :
			                t_frand() * 8);
		} else if (special) {
			int64_t is[] = {0, 1, -1, tmin(t), tmax(t), tmin(t) + 1, 2};
			set(t, p, i, wrap(t, (uint64_t)is[(r >> 8) % countof(is)]), 0);
		} else {
			int64_t v = wrap(t, t_rand_u64());
			/* small divisors make div/mod interesting */
			set(t, p, i, r >> 5 & 1 ? v % 13 : v, 0);
		}
	}
}

/* ---- shapes and unravelling --------------------------------------------- */

struct shape {
	int rank;
	int64_t dim[KILN_MAXRANK];
};

static int64_t
numel(const struct shape *s)
{
	int64_t n = 1;
	for (int i = 0; i < s->rank; i++)
		n *= s->dim[i];
	return n;
}

static struct shape
bcast(const struct shape *a, const struct shape *b)
{
	struct shape y = {a->rank > b->rank ? a->rank : b->rank, {0}};
	for (int i = 0; i < y.rank; i++) {
		int ka = i - (y.rank - a->rank), kb = i - (y.rank - b->rank);
		int64_t da = ka < 0 ? 1 : a->dim[ka], db = kb < 0 ? 1 : b->dim[kb];
		y.dim[i] = da == 1 ? db : da;
	}
	return y;
}

/* The flat index into x of output element flat of y, x broadcast. */
static int64_t
source(const struct shape *y, const struct shape *x, int64_t flat)
{
	int64_t idx[KILN_MAXRANK], off = 0;
	for (int i = y->rank - 1; i >= 0; i--) {
		idx[i] = flat % y->dim[i];
		flat /= y->dim[i];
	}
	for (int k = 0; k < x->rank; k++) {
		int i = k + y->rank - x->rank;
		off = off * x->dim[k] + (x->dim[k] == 1 ? 0 : idx[i]);
	}
	return off;
}

/* Element strides of x broadcast to y (0 along broadcast dims). */
static void
strides(const struct shape *x, const struct shape *y, int64_t *st)
{
	int64_t step = 1;
	for (int i = y->rank - 1; i >= 0; i--) {
		int k = i - (y->rank - x->rank);
		st[i] = k < 0 || x->dim[k] == 1 ? 0 : step;
		if (k >= 0)
			step *= x->dim[k];
	}
}

static const struct shape shapes[][2] = {
	{{0, {0}}, {0, {0}}},
	{{1, {7}}, {1, {7}}},
	{{1, {1}}, {2, {3, 5}}},
	{{3, {3, 1, 5}}, {2, {4, 5}}},
	{{2, {17, 33}}, {1, {33}}},
	{{3, {2, 3, 4}}, {0, {0}}},
	{{4, {2, 1, 3, 1}}, {4, {1, 4, 1, 5}}},
	{{3, {5, 1, 6}}, {3, {5, 4, 6}}},
	{{2, {3, 0}}, {1, {1}}},
};

/* ---- binary ops ---------------------------------------------------------- */

enum { ADD, SUB, MUL, DIV, MAX, MIN, MOD, POW, EQ, LT, LE, GT, GE, AND, OR,
	XOR };
static const char *const opname[] = {"add", "sub", "mul", "div", "max",
	"min", "mod", "pow", "equal", "less", "less_equal", "greater",
	"greater_equal", "and", "or", "xor"};

typedef void BinFn(void *y, const void *a, const void *b, int rank,
                   const int64_t *d, const int64_t *as, const int64_t *bs,
                   int arg);

#define W(op, dt)                                                            \
static void                                                                  \
w_##op##_##dt(void *y, const void *a, const void *b, int r,                  \
              const int64_t *d, const int64_t *as, const int64_t *bs,        \
              int arg)                                                       \
{                                                                            \
	(void)arg;                                                               \
	kiln_##op##_##dt(y, a, b, r, d, as, bs);                                 \
}
#define WMOD(dt)                                                             \
static void                                                                  \
w_mod_##dt(void *y, const void *a, const void *b, int r, const int64_t *d,   \
           const int64_t *as, const int64_t *bs, int arg)                    \
{                                                                            \
	kiln_mod_##dt(y, a, b, r, d, as, bs, arg);                               \
}
#define WNUM(dt) W(add, dt) W(sub, dt) W(mul, dt) W(div, dt) W(max, dt)      \
	W(min, dt) WMOD(dt) W(equal, dt) W(less, dt) W(less_equal, dt)           \
	W(greater, dt) W(greater_equal, dt)
WNUM(f32) WNUM(f64) WNUM(i64) WNUM(i32) WNUM(i8) WNUM(u8)
W(pow, f32) W(pow, f64)
W(equal, bool) W(and, bool) W(or, bool) W(xor, bool)

#define ENUM(dt, T)                                                          \
	{ADD, T, w_add_##dt}, {SUB, T, w_sub_##dt}, {MUL, T, w_mul_##dt},        \
	{DIV, T, w_div_##dt}, {MAX, T, w_max_##dt}, {MIN, T, w_min_##dt},        \
	{MOD, T, w_mod_##dt}, {EQ, T, w_equal_##dt}, {LT, T, w_less_##dt},       \
	{LE, T, w_less_equal_##dt}, {GT, T, w_greater_##dt},                     \
	{GE, T, w_greater_equal_##dt}
static const struct bcase {
	int op;
	kiln_dtype t;
	BinFn *fn;
} bcases[] = {
	ENUM(f32, KILN_F32), ENUM(f64, KILN_F64), ENUM(i64, KILN_I64),
	ENUM(i32, KILN_I32), ENUM(i8, KILN_I8), ENUM(u8, KILN_U8),
	{POW, KILN_F32, w_pow_f32}, {POW, KILN_F64, w_pow_f64},
	{EQ, KILN_BOOL, w_equal_bool}, {AND, KILN_BOOL, w_and_bool},
	{OR, KILN_BOOL, w_or_bool}, {XOR, KILN_BOOL, w_xor_bool},
};

/* Floor division and modulo of integers by their definitions. */
static int64_t
ref_imod(int64_t a, int64_t b, int fm)
{
	if (b == 0)
		return 0;
	if (b == -1)
		return 0;
	int64_t q = a / b, r = a - q * b;       /* truncated */
	if (!fm && r != 0 && (a < 0) != (b < 0))
		r += b;
	return r;
}

static double
ref_fmod(double a, double b, int fm)
{
	double r = fmod(a, b);
	if (fm)
		return r;
	if (r == 0)
		return copysign(0, b);
	return (r < 0) != (b < 0) ? r + b : r;
}

/* Result of op on elements p, q of dtype t: *iv for integer or bool
 * results, *fv for float ones. */
static void
ref_binary(int op, kiln_dtype t, int arg, const void *a, int64_t ia,
           const void *b, int64_t ib, int64_t *iv, double *fv)
{
	if (is_float(t)) {
		double p = getf(t, a, ia), q = getf(t, b, ib);
		switch (op) {
		case ADD: *fv = p + q; return;
		case SUB: *fv = p - q; return;
		case MUL: *fv = p * q; return;
		case DIV: *fv = p / q; return;
		case MAX: *fv = isnan(p) || isnan(q) ? NAN : fmax(p, q); return;
		case MIN: *fv = isnan(p) || isnan(q) ? NAN : fmin(p, q); return;
		case MOD: *fv = ref_fmod(p, q, arg); return;
		case POW: *fv = pow(p, q); return;
		case EQ: *iv = p == q; return;
		case LT: *iv = p < q; return;
		case LE: *iv = p <= q; return;
		case GT: *iv = p > q; return;
		case GE: *iv = p >= q; return;
		}
	}
	int64_t p = geti(t, a, ia), q = geti(t, b, ib);
	uint64_t up = (uint64_t)p, uq = (uint64_t)q;
	switch (op) {
	case ADD: *iv = wrap(t, up + uq); return;
	case SUB: *iv = wrap(t, up - uq); return;
	case MUL: *iv = wrap(t, up * uq); return;
	case DIV: *iv = q == 0 ? 0 : q == -1 ? wrap(t, 0 - up) : p / q; return;
	case MAX: *iv = p > q ? p : q; return;
	case MIN: *iv = p < q ? p : q; return;
	case MOD: *iv = ref_imod(p, q, arg); return;
	case EQ: *iv = t == KILN_BOOL ? (p != 0) == (q != 0) : p == q; return;
	case LT: *iv = p < q; return;
	case LE: *iv = p <= q; return;
	case GT: *iv = p > q; return;
	case GE: *iv = p >= q; return;
	case AND: *iv = p && q; return;
	case OR: *iv = p || q; return;
	case XOR: *iv = (p != 0) != (q != 0); return;
	}
}

/* got (float) matches want exactly, NaN only NaN; pow within 1e-6. */
static bool
fmatch(double got, double want, bool approx)
{
	if (isnan(got) || isnan(want))
		return isnan(got) && isnan(want);
	if (got == want)
		return true;
	return approx && fabs(got - want) <= 1e-6 * (1 + fabs(want));
}

static bool
yields_bool(int op)
{
	return op >= EQ;
}

static void
run_binary(const struct bcase *c, const struct shape *sa,
           const struct shape *sb, int arg)
{
	struct shape sy = bcast(sa, sb);
	int64_t na = numel(sa), nb = numel(sb), ny = numel(&sy);
	int64_t as[KILN_MAXRANK], bs[KILN_MAXRANK];
	kiln_dtype yt = yields_bool(c->op) ? KILN_BOOL : c->t;
	void *a = t_alloc((size_t)(na + 1) * 8), *b = t_alloc((size_t)(nb + 1) * 8);
	void *y = t_alloc((size_t)(ny + 1) * 8);

	fill(c->t, a, na);
	fill(c->t, b, nb);
	strides(sa, &sy, as);
	strides(sb, &sy, bs);
	c->fn(y, a, b, sy.rank, sy.dim, as, bs, arg);
	t_ncheck++;
	for (int64_t i = 0; i < ny; i++) {
		int64_t ia = source(&sy, sa, i), ib = source(&sy, sb, i), iv = 0;
		double fv = 0;
		ref_binary(c->op, c->t, arg, a, ia, b, ib, &iv, &fv);
		bool ok = is_float(yt) ?
		    fmatch(getf(yt, y, i), yt == KILN_F32 ? (float)fv : fv,
		           c->op == POW) :
		    geti(yt, y, i) == iv;
		if (!ok) {
			t_fail("%s_%s (rank %d vs %d, arg %d) at %lld: a %.17g "
			       "b %.17g got %.17g want %.17g", opname[c->op],
			       kiln_dtype_name(c->t), sa->rank, sb->rank, arg,
			       (long long)i, getf(c->t, a, ia), getf(c->t, b, ib),
			       getf(yt, y, i), is_float(yt) ? fv : (double)iv);
			break;
		}
	}
	free(a);
	free(b);
	free(y);
}

static void
test_binary(void)
{
	for (int k = 0; k < countof(bcases); k++)
		for (int s = 0; s < countof(shapes); s++)
			for (int arg = 0; arg <= (bcases[k].op == MOD); arg++) {
				run_binary(&bcases[k], &shapes[s][0], &shapes[s][1], arg);
				run_binary(&bcases[k], &shapes[s][1], &shapes[s][0], arg);
			}
}

/* ONNX's test_mod_* vectors, exact. */
static void
test_mod_onnx(void)
{
	static const int32_t a[] = {-4, 7, 5, 4, -7, 8}, b[] = {2, -3, 8, -2, 3, 5};
	static const int32_t want0[] = {0, -2, 5, 0, 2, 3};
	static const int64_t a64[] = {-4, 7, 5, 4, -7, 8}, b64[] = {2, -3, 8, -2, 3, 5};
	static const int64_t want1[] = {0, 1, 5, 0, -1, 3};
	static const float fa[] = {-4.3f, 7.2f, 5.0f, 4.3f, -7.2f, 8.0f};
	static const float fb[] = {2.1f, -3.4f, 8.0f, -2.1f, 3.4f, 5.0f};
	static const float fwant[] = {-0.10000038146972656f, 0.39999961853027344f,
		5.0f, 0.10000038146972656f, -0.39999961853027344f, 3.0f};
	static const int64_t d[] = {6}, st[] = {1};
	int32_t y[6];
	int64_t y64[6];
	float fy[6];

	kiln_mod_i32(y, a, b, 1, d, st, st, 0);
	kiln_mod_i64(y64, a64, b64, 1, d, st, st, 1);
	kiln_mod_f32(fy, fa, fb, 1, d, st, st, 1);
	t_expect(!memcmp(y, want0, sizeof y) &&
	         !memcmp(y64, want1, sizeof y64) &&
	         !memcmp(fy, fwant, sizeof fy), "mod: ONNX test vectors");
}

/* ---- where ----------------------------------------------------------- */

static void
run_where(kiln_dtype t, const struct shape *sc, const struct shape *sa,
          const struct shape *sb)
{
	struct shape ab = bcast(sa, sb), sy = bcast(sc, &ab);
	int64_t nc = numel(sc), na = numel(sa), nb = numel(sb), ny = numel(&sy);
	int64_t cs[KILN_MAXRANK], as[KILN_MAXRANK], bs[KILN_MAXRANK];
	size_t es = kiln_dtype_size(t);
	uint8_t *c = t_alloc((size_t)nc + 1);
	void *a = t_alloc((size_t)(na + 1) * es), *b = t_alloc((size_t)(nb + 1) * es);
	void *y = t_alloc((size_t)(ny + 1) * es);

	fill(KILN_BOOL, c, nc);
	fill(t, a, na);
	fill(t, b, nb);
	strides(sc, &sy, cs);
	strides(sa, &sy, as);
	strides(sb, &sy, bs);
	kiln_where(y, c, a, b, es, sy.rank, sy.dim, cs, as, bs);
	t_ncheck++;
	for (int64_t i = 0; i < ny; i++) {
		const void *src = c[source(&sy, sc, i)] ? a : b;
		int64_t j = source(&sy, src == a ? sa : sb, i);
		if (memcmp((char *)y + i * es, (const char *)src + j * es, es)) {
			t_fail("where_%s (ranks %d %d %d) at %lld",
			       kiln_dtype_name(t), sc->rank, sa->rank, sb->rank,
			       (long long)i);
			break;
		}
	}
	free(c);
	free(a);
	free(b);
	free(y);
}

static const struct shape three[] = {
	{3, {4, 1, 1}}, {2, {3, 1}}, {1, {5}},
};

static void
test_where(void)
{
	static const kiln_dtype ts[] = {KILN_F32, KILN_F64, KILN_I64, KILN_I32,
		KILN_I8, KILN_U8, KILN_BOOL};
	for (int k = 0; k < countof(ts); k++)
		for (int s = 0; s < countof(shapes); s++) {
			const struct shape *p = shapes[s];
			struct shape pq = bcast(&p[0], &p[1]);
			run_where(ts[k], &p[0], &p[1], &pq);
			run_where(ts[k], &pq, &p[0], &p[1]);
			run_where(ts[k], &p[1], &pq, &p[0]);
			/* each operand broadcast along a different dim */
			run_where(ts[k], &three[0], &three[1], &three[2]);
			run_where(ts[k], &three[2], &three[0], &three[1]);
		}
}

/* ---- cast ----------------------------------------------------------------- */

/* Float to integer: truncate, then saturate; NaN gives 0. */
static int64_t
ref_f2i(kiln_dtype t, double v)
{
	if (isnan(v))
		return 0;
	double tr = trunc(v);
	if (t == KILN_I64) {
		if (tr >= ldexp(1, 63))
			return INT64_MAX;
		if (tr < -ldexp(1, 63))
			return INT64_MIN;
		return (int64_t)tr;
	}
	if (tr > (double)tmax(t))
		return tmax(t);
	if (tr < (double)tmin(t))
		return tmin(t);
	return (int64_t)tr;
}

static void
ref_cast(kiln_dtype yt, kiln_dtype xt, const void *x, int64_t i,
         int64_t *iv, double *fv)
{
	if (yt == KILN_BOOL)
		*iv = is_float(xt) ? getf(xt, x, i) != 0 : geti(xt, x, i) != 0;
	else if (is_float(yt))
		*fv = xt == KILN_BOOL ? geti(xt, x, i) != 0 :
		      xt == KILN_I64 ? (double)geti(xt, x, i) : getf(xt, x, i);
	else if (is_float(xt))
		*iv = ref_f2i(yt, getf(xt, x, i));
	else if (xt == KILN_BOOL)
		*iv = geti(xt, x, i) != 0;
	else
		*iv = wrap(yt, (uint64_t)geti(xt, x, i));
}

static void
test_cast(void)
{
	static const double edge[] = {0, -0.0, 0.49, -0.99, 1.5, -1.5, 2.7,
		-2.7, 127.9, 128.5, -128.9, -129, 255.5, 256, -1, 3e9, -3e9, 1e10,
		9.2e18, -9.2e18, 1e19, -1e19, 1e300, NAN, INFINITY, -INFINITY};
	enum { N = 300 };
	/* the first seven dtypes; test_dtypes.c has the later ones */
	for (int xt = 0; xt <= KILN_BOOL; xt++)
		for (int yt = 0; yt <= KILN_BOOL; yt++) {
			void *x = t_alloc(N * 8), *y = t_alloc(N * 8);
			fill(xt, x, N);
			if (is_float(xt))
				for (int i = 0; i < countof(edge); i++)
					set(xt, x, i, 0, edge[i]);
			kiln_cast(y, yt, x, xt, N);
			t_ncheck++;
			for (int64_t i = 0; i < N; i++) {
				int64_t iv = 0;
				double fv = 0;
				/* i64 -> f32 rounds once, from the exact integer */
				ref_cast(yt, xt, x, i, &iv, &fv);
				if (yt == KILN_F32 && xt == KILN_I64)
					fv = (float)geti(xt, x, i);
				bool ok = is_float(yt) ?
				    fmatch(getf(yt, y, i), yt == KILN_F32 ? (float)fv : fv,
				           false) :
				    geti(yt, y, i) == iv;
				if (!ok) {
					t_fail("cast %s -> %s at %lld: x %.17g "
					       "got %.17g", kiln_dtype_name(xt),
					       kiln_dtype_name(yt),
					       (long long)i, getf(xt, x, i),
					       getf(yt, y, i));
					break;
				}
			}
			free(x);
			free(y);
		}
}

/* ---- unary ops --------------------------------------------------------- */

enum { SIN, COS, TAN, ASIN, ACOS, ATAN, SINH, COSH, ASINH, ACOSH, ATANH,
	CEIL, FLOOR, ROUND, SIGN, ERF, RECIP, SOFTPLUS, SOFTSIGN, CELU, THRELU,
	SHRINK, NUNARY };
static const char *const uname[] = {"sin", "cos", "tan", "asin", "acos",
	"atan", "sinh", "cosh", "asinh", "acosh", "atanh", "ceil", "floor",
	"round", "sign", "erf", "reciprocal", "softplus", "softsign", "celu",
	"thresholded_relu", "shrink"};

static void
run_unary(int op, float *y, const float *x, int64_t n)
{
	switch (op) {
	case SIN: kiln_sin_f32(y, x, n); break;
	case COS: kiln_cos_f32(y, x, n); break;
	case TAN: kiln_tan_f32(y, x, n); break;
	case ASIN: kiln_asin_f32(y, x, n); break;
	case ACOS: kiln_acos_f32(y, x, n); break;
	case ATAN: kiln_atan_f32(y, x, n); break;
	case SINH: kiln_sinh_f32(y, x, n); break;
	case COSH: kiln_cosh_f32(y, x, n); break;
	case ASINH: kiln_asinh_f32(y, x, n); break;
	case ACOSH: kiln_acosh_f32(y, x, n); break;
	case ATANH: kiln_atanh_f32(y, x, n); break;
	case CEIL: kiln_ceil_f32(y, x, n); break;
	case FLOOR: kiln_floor_f32(y, x, n); break;
	case ROUND: kiln_round_f32(y, x, n); break;
	case SIGN: kiln_sign_f32(y, x, n); break;
	case ERF: kiln_erf_f32(y, x, n); break;
	case RECIP: kiln_reciprocal_f32(y, x, n); break;
	case SOFTPLUS: kiln_softplus_f32(y, x, n); break;
	case SOFTSIGN: kiln_softsign_f32(y, x, n); break;
	case CELU: kiln_celu_f32(y, x, n, 0.7f); break;
	case THRELU: kiln_thresholded_relu_f32(y, x, n, 0.3f); break;
	case SHRINK: kiln_shrink_f32(y, x, n, 0.25f, 0.5f); break;
	}
}

static double
ref_unary(int op, double v)
{
	switch (op) {
	case SIN: return sin(v);
	case COS: return cos(v);
	case TAN: return tan(v);
	case ASIN: return asin(v);
	case ACOS: return acos(v);
	case ATAN: return atan(v);
	case SINH: return sinh(v);
	case COSH: return cosh(v);
	case ASINH: return asinh(v);
	case ACOSH: return acosh(v);
	case ATANH: return atanh(v);
	case CEIL: return ceil(v);
	case FLOOR: return floor(v);
	case ROUND: return rint(v);          /* the default mode: half even */
	case SIGN: return isnan(v) ? v : (v > 0) - (v < 0);   /* +0 at -0 */
	case ERF: return erf(v);
	case RECIP: return 1 / v;
	case SOFTPLUS: return log(1 + exp(v));
	case SOFTSIGN: return v / (1 + fabs(v));
	case CELU: return isnan(v) ? v : (v > 0 ? v : 0) +
	                  fmin(0, (double)0.7f * (exp(v / (double)0.7f) - 1));
	case THRELU: return v > (double)0.3f ? v : 0;
	case SHRINK: return v < -0.5 ? v + 0.25 : v > 0.5 ? v - 0.25 : 0;
	}
	return NAN;
}

static void
test_unary(void)
{
	static const float edge[] = {0, -0.0f, 0.5f, -0.5f, 1.5f, 2.5f, -2.5f,
		-3.5f, 1, -1, 0.49999997f, 8388609, -0.3f, 0.25f, NAN, INFINITY,
		-INFINITY};
	enum { N = 257 };
	float x[N], y[N];
	for (int op = 0; op < NUNARY; op++) {
		for (int i = 0; i < N; i++)
			x[i] = i < countof(edge) ? edge[i] : t_frand() * 6;
		run_unary(op, y, x, N);
		t_ncheck++;
		for (int i = 0; i < N; i++) {
			double want = ref_unary(op, x[i]);
			bool exact = op >= CEIL && op <= SIGN;
			bool ok = isnan(want) || isnan(y[i]) ?
			    isnan(want) && isnan(y[i]) :
			    exact ? y[i] == (float)want &&
			            !signbit(y[i]) == !signbit(want) :
			    fabs(y[i] - want) <= 2e-6 * (1 + fabs(want)) ||
			    (isinf(want) && y[i] == (float)want);
			if (!ok) {
				t_fail("%s at %d: x %.9g got %.9g want %.9g",
				       uname[op], i, x[i], y[i], want);
				break;
			}
		}
	}
}

/* neg/abs on integers and f64, not, isnan, isinf. */
static void
test_unary_types(void)
{
	enum { N = 200 };
	int64_t x64[N], y64[N];
	int32_t x32[N], y32[N];
	int8_t x8[N], y8[N];
	double xd[N], yd[N];
	uint8_t b[N], yb[N];
	fill(KILN_I64, x64, N);
	fill(KILN_I32, x32, N);
	fill(KILN_I8, x8, N);
	fill(KILN_F64, xd, N);
	fill(KILN_BOOL, b, N);
	for (int isabs = 0; isabs < 2; isabs++) {
		(isabs ? kiln_abs_i64 : kiln_neg_i64)(y64, x64, N);
		(isabs ? kiln_abs_i32 : kiln_neg_i32)(y32, x32, N);
		(isabs ? kiln_abs_i8 : kiln_neg_i8)(y8, x8, N);
		(isabs ? kiln_abs_f64 : kiln_neg_f64)(yd, xd, N);
		t_ncheck++;
		for (int i = 0; i < N; i++) {
			bool neg = !isabs || x64[i] < 0, neg32 = !isabs || x32[i] < 0;
			bool neg8 = !isabs || x8[i] < 0;
			double wd = isabs ? fabs(xd[i]) : -xd[i];
			if (y64[i] != (neg ? wrap(KILN_I64, 0 - (uint64_t)x64[i]) : x64[i]) ||
			    y32[i] != (neg32 ? wrap(KILN_I32, 0 - (uint64_t)(int64_t)x32[i]) : x32[i]) ||
			    y8[i] != (neg8 ? wrap(KILN_I8, 0 - (uint64_t)(int64_t)x8[i]) : x8[i]) ||
			    !(yd[i] == wd || (isnan(yd[i]) && isnan(wd))) ||
			    !signbit(yd[i]) != !signbit(wd)) {
				t_fail("%s at %d", isabs ? "abs" : "neg", i);
				break;
			}
		}
	}
	float xf[N];
	for (int i = 0; i < N; i++)
		xf[i] = (float)xd[i];
	kiln_not_bool(yb, b, N);
	for (int i = 0; i < N; i++)
		t_eq("not", yb[i], !b[i]);
	kiln_isnan_f32(yb, xf, N);
	for (int i = 0; i < N; i++)
		t_eq("isnan_f32", yb[i], isnan(xf[i]) != 0);
	kiln_isnan_f64(yb, xd, N);
	for (int i = 0; i < N; i++)
		t_eq("isnan_f64", yb[i], isnan(xd[i]) != 0);
	for (int neg = 0; neg < 2; neg++)
		for (int pos = 0; pos < 2; pos++) {
			kiln_isinf_f32(yb, xf, N, neg, pos);
			for (int i = 0; i < N; i++)
				t_eq("isinf_f32", yb[i],
				     (neg && xf[i] == -INFINITY) ||
				     (pos && xf[i] == INFINITY));
			kiln_isinf_f64(yb, xd, N, neg, pos);
			for (int i = 0; i < N; i++)
				t_eq("isinf_f64", yb[i],
				     (neg && xd[i] == -INFINITY) ||
				     (pos && xd[i] == INFINITY));
		}
}

int
main(void)
{
	t_seed(0x9e3779b97f4a7c15u);
	test_binary();
	test_mod_onnx();
	test_where();
	test_cast();
	test_unary();
	test_unary_types();
	return t_report("eltwise2");
}
