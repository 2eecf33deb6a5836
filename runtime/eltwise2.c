/* eltwise2.c: elementwise kernels over every dtype: the arithmetic,
 * max/min/mod/pow and comparison families (one kernel per dtype, named
 * kiln_<op>_<dtype> as ops.def's kernel families expect), the bool logic
 * ops, where, cast, f32 unary math and the isnan/isinf predicates.
 *
 * Broadcasting ops share one walker (walk()): like eltwise.c's binary(),
 * it drops size-1 dims and merges dims that every operand walks
 * contiguously, then calls a row function per innermost run, so equal
 * shapes are one flat loop.  It handles up to three operands (where).
 *
 * Integer arithmetic wraps around (two's complement, as numpy), computed
 * in unsigned types so that it is never undefined behaviour (products in
 * uint64_t, as a 16-bit type would promote to int); an integer
 * division or modulo by zero gives 0.  Float-to-integer casts saturate.
 */
#include <math.h>
#include <stdbool.h>

#include "kiln.h"
#include "kiln_scalar.h"

/* One innermost run: y[j] = f(x[0][j*st[0]], x[1][j*st[1]], ...) for
 * j < n; arg is the op's integer attribute, if any. */
typedef void RowFn(void *y, const void *const *x, const int64_t *st,
                   int64_t n, int arg);

/* Drops size-1 dimensions and merges dimension i into the previous one
 * when every operand steps across it exactly as it would inside it.
 * Returns the new rank; d and s[k] receive dims and strides. */
static int
coalesce(int nx, int rank, const int64_t *ydim, const int64_t *const *st,
         int64_t *d, int64_t s[][KILN_MAXRANK])
{
	int r = 0;

	for (int i = 0; i < rank; i++) {
		if (ydim[i] == 1)
			continue;
		bool merge = r > 0;
		for (int k = 0; k < nx && merge; k++)
			merge = s[k][r - 1] == st[k][i] * ydim[i];
		if (merge)
			d[r - 1] *= ydim[i];
		else
			d[r++] = ydim[i];
		for (int k = 0; k < nx; k++)
			s[k][r - 1] = st[k][i];
	}
	return r;
}

/* Runs row over y (dense, ysize-byte elements, rank dims ydim) and the nx
 * operands x[k] (xsize[k]-byte elements, element strides st[k], 0 along
 * broadcast dims), the outer index vector counting like an odometer. */
static void
walk(RowFn *row, int arg, void *y, size_t ysize, int nx,
     const void *const *x, const size_t *xsize, const int64_t *const *st,
     int rank, const int64_t *ydim)
{
	int64_t d[KILN_MAXRANK], s[3][KILN_MAXRANK], idx[KILN_MAXRANK] = {0};
	int64_t off[3] = {0}, inner[3] = {0};
	const void *p[3];
	int r, k;

	for (int i = 0; i < rank; i++)
		if (ydim[i] == 0)
			return;
	r = coalesce(nx, rank, ydim, st, d, s);
	if (r == 0) {
		row(y, x, inner, 1, arg);
		return;
	}
	for (k = 0; k < nx; k++)
		inner[k] = s[k][r - 1];
	for (;;) {
		for (k = 0; k < nx; k++)
			p[k] = (const char *)x[k] + off[k] * (int64_t)xsize[k];
		row(y, p, inner, d[r - 1], arg);
		y = (char *)y + d[r - 1] * (int64_t)ysize;
		for (k = r - 2; k >= 0; k--) {
			for (int j = 0; j < nx; j++)
				off[j] += s[j][k];
			if (++idx[k] < d[k])
				break;
			for (int j = 0; j < nx; j++)
				off[j] -= s[j][k] * d[k];
			idx[k] = 0;
		}
		if (k < 0)
			return;
	}
}

/* A binary kernel over broadcast operands of one size. */
static void
binary(RowFn *row, int arg, void *y, size_t ysize, const void *a,
       const void *b, size_t xsize, int rank, const int64_t *ydim,
       const int64_t *as, const int64_t *bs)
{
	const void *x[2] = {a, b};
	const size_t xs[2] = {xsize, xsize};
	const int64_t *st[2] = {as, bs};

	walk(row, arg, y, ysize, 2, x, xs, st, rank, ydim);
}

/* ---- scalar semantics per dtype class --------------------------------
 * F: floats, S: signed integers (UT is the unsigned type of the same
 * width), U: unsigned integers.  MIN/-1 and x/0 are defined (see above). */

#define F_ARITH(dt, T)                                                       \
static inline T add_##dt(T a, T b) { return a + b; }                         \
static inline T sub_##dt(T a, T b) { return a - b; }                         \
static inline T mul_##dt(T a, T b) { return a * b; }                         \
static inline T div_##dt(T a, T b) { return a / b; }
#define F_SCALARS(dt, T)                                                     \
static inline T max_##dt(T a, T b) { return a > b || a != a ? a : b; }       \
static inline T min_##dt(T a, T b) { return a < b || a != a ? a : b; }       \
static inline T                                                              \
mod_##dt(T a, T b, int fm)                                                   \
{                                                                            \
	T r = (T)fmod(a, b);                                                     \
	/* Python's %: move a remainder of the wrong sign to b's side */         \
	if (!fm && r != 0 && (r < 0) != (b < 0))                                 \
		r += b;                                                              \
	else if (!fm && r == 0)                                                  \
		r = (T)copysign(0.0, b);                                             \
	return r;                                                                \
}

#define S_SCALARS(dt, T, UT)                                                 \
static inline T add_##dt(T a, T b) { return (T)((UT)a + (UT)b); }            \
static inline T sub_##dt(T a, T b) { return (T)((UT)a - (UT)b); }            \
static inline T mul_##dt(T a, T b) { return (T)((uint64_t)(UT)a * (UT)b); }  \
static inline T                                                              \
div_##dt(T a, T b)                                                           \
{                                                                            \
	if (b == 0)                                                              \
		return 0;                                                            \
	return b == -1 ? (T)(0 - (UT)a) : (T)(a / b);                            \
}                                                                            \
static inline T max_##dt(T a, T b) { return a > b ? a : b; }                 \
static inline T min_##dt(T a, T b) { return a < b ? a : b; }                 \
static inline T                                                              \
mod_##dt(T a, T b, int fm)                                                   \
{                                                                            \
	if (b == 0 || b == -1)  /* MIN % -1 overflows in C; it is 0 */           \
		return 0;                                                            \
	T r = (T)(a % b);                                                        \
	if (!fm && r != 0 && (r < 0) != (b < 0))                                 \
		r = (T)(r + b);                                                      \
	return r;                                                                \
}

#define U_SCALARS(dt, T)                                                     \
static inline T add_##dt(T a, T b) { return (T)(a + b); }                    \
static inline T sub_##dt(T a, T b) { return (T)(a - b); }                    \
static inline T mul_##dt(T a, T b) { return (T)((uint64_t)a * b); }          \
static inline T div_##dt(T a, T b) { return b ? (T)(a / b) : 0; }            \
static inline T max_##dt(T a, T b) { return a > b ? a : b; }                 \
static inline T min_##dt(T a, T b) { return a < b ? a : b; }                 \
static inline T                                                              \
mod_##dt(T a, T b, int fm)                                                   \
{                                                                            \
	(void)fm;               /* no signs, so both modes agree */              \
	return b ? (T)(a % b) : 0;                                               \
}

F_SCALARS(f32, float)
F_SCALARS(f64, double)
F_ARITH(f64, double)    /* f32 add/sub/mul/div are in eltwise.c */
S_SCALARS(i64, int64_t, uint64_t)
S_SCALARS(i32, int32_t, uint32_t)
S_SCALARS(i8, int8_t, uint8_t)
U_SCALARS(u8, uint8_t)
S_SCALARS(i16, int16_t, uint16_t)
U_SCALARS(u16, uint16_t)
U_SCALARS(u32, uint32_t)
U_SCALARS(u64, uint64_t)

/* ---- broadcasting kernels ---------------------------------------------
 * BINARY defines kiln_<op>_<dt>(U *y, const T *a, const T *b, rank, ydim,
 * as, bs) computing y = expr of p (from a) and q (from b); BINARY_ARG
 * adds an int attribute, arg in expr. */

#define ROW2(fn, T, U, expr)                                                 \
static void                                                                  \
fn(void *yv, const void *const *x, const int64_t *st, int64_t n, int arg)    \
{                                                                            \
	U *y = yv;                                                               \
	const T *a = x[0], *b = x[1];                                            \
	(void)arg;                                                               \
	for (int64_t j = 0; j < n; j++) {                                        \
		T p = a[j * st[0]], q = b[j * st[1]];                                \
		y[j] = (U)(expr);                                                    \
	}                                                                        \
}

#define BINARY(op, dt, T, U, expr)                                           \
ROW2(row_##op##_##dt, T, U, expr)                                            \
void                                                                         \
kiln_##op##_##dt(U *y, const T *a, const T *b, int rank,                     \
                 const int64_t *ydim, const int64_t *as, const int64_t *bs)  \
{                                                                            \
	binary(row_##op##_##dt, 0, y, sizeof(U), a, b, sizeof(T), rank, ydim,    \
	       as, bs);                                                          \
}

#define BINARY_ARG(op, dt, T, U, expr)                                       \
ROW2(row_##op##_##dt, T, U, expr)                                            \
void                                                                         \
kiln_##op##_##dt(U *y, const T *a, const T *b, int rank,                     \
                 const int64_t *ydim, const int64_t *as, const int64_t *bs,  \
                 int arg)                                                    \
{                                                                            \
	binary(row_##op##_##dt, arg, y, sizeof(U), a, b, sizeof(T), rank, ydim,  \
	       as, bs);                                                          \
}

/* Everything but add/sub/mul/div for f32, which eltwise.c has. */
#define ARITH(dt, T)                                                         \
	BINARY(max, dt, T, T, max_##dt(p, q))                                    \
	BINARY(min, dt, T, T, min_##dt(p, q))                                    \
	BINARY_ARG(mod, dt, T, T, mod_##dt(p, q, arg))                           \
	BINARY(equal, dt, T, uint8_t, p == q)                                    \
	BINARY(less, dt, T, uint8_t, p < q)                                      \
	BINARY(less_equal, dt, T, uint8_t, p <= q)                               \
	BINARY(greater, dt, T, uint8_t, p > q)                                   \
	BINARY(greater_equal, dt, T, uint8_t, p >= q)
#define ARITH4(dt, T)                                                        \
	BINARY(add, dt, T, T, add_##dt(p, q))                                    \
	BINARY(sub, dt, T, T, sub_##dt(p, q))                                    \
	BINARY(mul, dt, T, T, mul_##dt(p, q))                                    \
	BINARY(div, dt, T, T, div_##dt(p, q))

ARITH(f32, float)
ARITH(f64, double)  ARITH4(f64, double)
ARITH(i64, int64_t) ARITH4(i64, int64_t)
ARITH(i32, int32_t) ARITH4(i32, int32_t)
ARITH(i8, int8_t)   ARITH4(i8, int8_t)
ARITH(u8, uint8_t)  ARITH4(u8, uint8_t)
ARITH(i16, int16_t) ARITH4(i16, int16_t)
ARITH(u16, uint16_t) ARITH4(u16, uint16_t)
ARITH(u32, uint32_t) ARITH4(u32, uint32_t)
ARITH(u64, uint64_t) ARITH4(u64, uint64_t)

/* bitshift: x << s or x >> s (direction 0 left, 1 right); a shift by the
 * width or more gives 0 (C leaves it undefined) */
#define SHIFT(dt, T, W)                                                      \
	BINARY_ARG(bitshift, dt, T, T,                                           \
	           q >= (W) ? 0 : arg ? p >> q : (T)((uint64_t)p << q))
SHIFT(u8, uint8_t, 8)
SHIFT(u16, uint16_t, 16)
SHIFT(u32, uint32_t, 32)
SHIFT(u64, uint64_t, 64)

BINARY(pow, f32, float, float, powf(p, q))
BINARY(pow, f64, double, double, pow(p, q))

/* Bools are 0 or 1, but any nonzero byte reads as true. */
BINARY(equal, bool, uint8_t, uint8_t, !p == !q)
BINARY(and, bool, uint8_t, uint8_t, p && q)
BINARY(or, bool, uint8_t, uint8_t, p || q)
BINARY(xor, bool, uint8_t, uint8_t, !p != !q)

/* ---- where ------------------------------------------------------------ */

#define WHERE_ROW(fn, T)                                                     \
static void                                                                  \
fn(void *yv, const void *const *x, const int64_t *st, int64_t n, int arg)    \
{                                                                            \
	T *y = yv;                                                               \
	const uint8_t *c = x[0];                                                 \
	const T *a = x[1], *b = x[2];                                            \
	(void)arg;                                                               \
	for (int64_t j = 0; j < n; j++)                                          \
		y[j] = c[j * st[0]] ? a[j * st[1]] : b[j * st[2]];                   \
}
WHERE_ROW(where1, uint8_t)
WHERE_ROW(where4, uint32_t)
WHERE_ROW(where8, uint64_t)

void
kiln_where(void *y, const uint8_t *cond, const void *a, const void *b,
           size_t esize, int rank, const int64_t *ydim, const int64_t *cs,
           const int64_t *as, const int64_t *bs)
{
	const void *x[3] = {cond, a, b};
	const size_t xs[3] = {1, esize, esize};
	const int64_t *st[3] = {cs, as, bs};
	RowFn *row = esize == 1 ? where1 : esize == 4 ? where4 : where8;

	walk(row, 0, y, esize, 3, x, xs, st, rank, ydim);
}

/* ---- cast ---------------------------------------------------------------
 * Each source element is read as a double (float sources) or an int64
 * (integer and bool sources), then converted by the destination's
 * from-double or from-int64 function.  u64 sources go through fu_, so
 * that values above INT64_MAX convert to floats as themselves. */

/* The 16-bit floats, held as raw bits: f16 (IEEE binary16: 5 exponent
 * bits, 10 fraction bits) and bf16 (8 and 7, the top half of an f32).
 * Written with frexp/ldexp rather than bit tricks on float, so they are
 * portable C and independent of the FPU's rounding mode.  The compiler
 * has the same two functions in ir/ir.c (it does not link the runtime). */
static double
half_to_double(uint16_t h, int ebits, int mbits)
{
	int emask = (1 << ebits) - 1, bias = emask >> 1;
	int e = h >> mbits & emask, m = h & ((1 << mbits) - 1);
	double v;

	if (e == emask)
		v = m ? NAN : INFINITY;
	else if (e == 0)    /* subnormal: no implicit bit */
		v = ldexp(m, 1 - bias - mbits);
	else
		v = ldexp(m + (1 << mbits), e - bias - mbits);
	return h >> 15 ? -v : v;
}

/* v rounded to nearest, ties to even; beyond the largest finite value
 * it rounds to infinity, NaN stays a (quiet) NaN. */
static uint16_t
half_from_double(double v, int ebits, int mbits)
{
	int emask = (1 << ebits) - 1, bias = emask >> 1, emin = 1 - bias, e;
	uint16_t sign = signbit(v) ? 0x8000 : 0;
	double a = fabs(v), q, r, d;

	if (isnan(v))
		return (uint16_t)(sign | emask << mbits | 1 << (mbits - 1));
	if (a == 0)
		return sign;
	if (isinf(a))     /* frexp leaves its exponent unspecified */
		return (uint16_t)(sign | emask << mbits);
	frexp(a, &e);
	e = e - 1 < emin ? emin : e - 1;        /* a = 1.f * 2^e, or subnormal */
	if (e > bias)
		return (uint16_t)(sign | emask << mbits);
	q = ldexp(a, mbits - e);                /* a in units of the last place */
	r = floor(q);
	d = q - r;
	if (d > 0.5 || (d == 0.5 && fmod(r, 2) != 0))
		r += 1;
	/* r includes the implicit bit, so it carries into the exponent
	 * field by itself; a subnormal (r < 2^mbits at emin) gets field 0 */
	uint32_t bits = ((uint32_t)(e + bias - 1) << mbits) + (uint32_t)r;
	if (bits >= (uint32_t)emask << mbits)
		bits = (uint32_t)emask << mbits;
	return (uint16_t)(sign | bits);
}

static inline double f16_get(uint16_t h) { return half_to_double(h, 5, 10); }
static inline double bf16_get(uint16_t h) { return half_to_double(h, 8, 7); }

/* Truncation toward zero, saturated at [lo, hi]; NaN gives 0.  lo and hi
 * are exact doubles (-2^63 and 2^63 for i64), so the final conversion is
 * always in range. */
#define SAT(dt, T, lo, hi)                                                   \
static inline T                                                              \
fd_##dt(double v)                                                            \
{                                                                            \
	if (isnan(v))                                                            \
		return 0;                                                            \
	if (v <= (double)(lo))                                                   \
		return lo;                                                           \
	if (v >= (double)(hi))                                                   \
		return hi;                                                           \
	return (T)v;                                                             \
}                                                                            \
static inline T fi_##dt(int64_t v) { return (T)v; }
SAT(i64, int64_t, INT64_MIN, INT64_MAX)
SAT(i32, int32_t, INT32_MIN, INT32_MAX)
SAT(i8, int8_t, INT8_MIN, INT8_MAX)
SAT(u8, uint8_t, 0, UINT8_MAX)
SAT(i16, int16_t, INT16_MIN, INT16_MAX)
SAT(u16, uint16_t, 0, UINT16_MAX)
SAT(u32, uint32_t, 0, UINT32_MAX)
SAT(u64, uint64_t, 0, UINT64_MAX)

static inline float fd_f32(double v) { return (float)v; }
static inline float fi_f32(int64_t v) { return (float)v; }
static inline double fd_f64(double v) { return v; }
static inline double fi_f64(int64_t v) { return (double)v; }
static inline uint8_t fd_bool(double v) { return v != 0; }
static inline uint8_t fi_bool(int64_t v) { return v != 0; }
static inline uint16_t fd_f16(double v) { return half_from_double(v, 5, 10); }
static inline uint16_t fi_f16(int64_t v) { return fd_f16((double)v); }
static inline uint16_t fd_bf16(double v) { return half_from_double(v, 8, 7); }
static inline uint16_t fi_bf16(int64_t v) { return fd_bf16((double)v); }

/* From u64: floats take the value, integers its low bits (wrapping). */
#define FU_FLOAT(dt, T)                                                      static inline T fu_##dt(uint64_t v) { return fd_##dt((double)v); }
#define FU_INT(dt, T)                                                        static inline T fu_##dt(uint64_t v) { return fi_##dt((int64_t)v); }
FU_FLOAT(f32, float)
FU_FLOAT(f64, double)
FU_FLOAT(f16, uint16_t)
FU_FLOAT(bf16, uint16_t)
FU_INT(i64, int64_t)
FU_INT(i32, int32_t)
FU_INT(i8, int8_t)
FU_INT(u8, uint8_t)
FU_INT(i16, int16_t)
FU_INT(u16, uint16_t)
FU_INT(u32, uint32_t)
FU_INT(u64, uint64_t)
static inline uint8_t fu_bool(uint64_t v) { return v != 0; }

#define CAST_FROM(S, expr)                                                   \
	{                                                                        \
		const S *s = x;                                                      \
		for (int64_t i = 0; i < n; i++) {                                    \
			S v = s[i];                                                      \
			y[i] = expr;                                                     \
		}                                                                    \
		break;                                                               \
	}

#define CAST_TO(dt, D)                                                       \
static void                                                                  \
cast_to_##dt(D *y, const void *x, kiln_dtype xt, int64_t n)                  \
{                                                                            \
	switch (xt) {                                                            \
	case KILN_F32: CAST_FROM(float, fd_##dt(v))                              \
	case KILN_F64: CAST_FROM(double, fd_##dt(v))                             \
	case KILN_I64: CAST_FROM(int64_t, fi_##dt(v))                            \
	case KILN_I32: CAST_FROM(int32_t, fi_##dt(v))                            \
	case KILN_I8: CAST_FROM(int8_t, fi_##dt(v))                              \
	case KILN_U8: CAST_FROM(uint8_t, fi_##dt(v))                             \
	case KILN_BOOL: CAST_FROM(uint8_t, fi_##dt(v != 0))                      \
	case KILN_F16: CAST_FROM(uint16_t, fd_##dt(f16_get(v)))                  \
	case KILN_BF16: CAST_FROM(uint16_t, fd_##dt(bf16_get(v)))                \
	case KILN_I16: CAST_FROM(int16_t, fi_##dt(v))                            \
	case KILN_U16: CAST_FROM(uint16_t, fi_##dt(v))                           \
	case KILN_U32: CAST_FROM(uint32_t, fi_##dt(v))                           \
	case KILN_U64: CAST_FROM(uint64_t, fu_##dt(v))                           \
	default: break;                                                          \
	}                                                                        \
}
CAST_TO(f32, float)
CAST_TO(f64, double)
CAST_TO(i64, int64_t)
CAST_TO(i32, int32_t)
CAST_TO(i8, int8_t)
CAST_TO(u8, uint8_t)
CAST_TO(bool, uint8_t)
CAST_TO(f16, uint16_t)
CAST_TO(bf16, uint16_t)
CAST_TO(i16, int16_t)
CAST_TO(u16, uint16_t)
CAST_TO(u32, uint32_t)
CAST_TO(u64, uint64_t)

void
kiln_cast(void *y, kiln_dtype ytype, const void *x, kiln_dtype xtype,
          int64_t n)
{
	switch (ytype) {
	case KILN_F32: cast_to_f32(y, x, xtype, n); break;
	case KILN_F64: cast_to_f64(y, x, xtype, n); break;
	case KILN_I64: cast_to_i64(y, x, xtype, n); break;
	case KILN_I32: cast_to_i32(y, x, xtype, n); break;
	case KILN_I8: cast_to_i8(y, x, xtype, n); break;
	case KILN_U8: cast_to_u8(y, x, xtype, n); break;
	case KILN_BOOL: cast_to_bool(y, x, xtype, n); break;
	case KILN_F16: cast_to_f16(y, x, xtype, n); break;
	case KILN_BF16: cast_to_bf16(y, x, xtype, n); break;
	case KILN_I16: cast_to_i16(y, x, xtype, n); break;
	case KILN_U16: cast_to_u16(y, x, xtype, n); break;
	case KILN_U32: cast_to_u32(y, x, xtype, n); break;
	case KILN_U64: cast_to_u64(y, x, xtype, n); break;
	default: break;
	}
}

/* ---- unary ops ---------------------------------------------------------
 * UNARY defines kiln_<op>_<dt>(U *y, const T *x, int64_t n) computing
 * y = expr of v. */

#define UNARY(op, dt, T, U, expr)                                            \
void                                                                         \
kiln_##op##_##dt(U *y, const T *x, int64_t n)                                \
{                                                                            \
	for (int64_t i = 0; i < n; i++) {                                        \
		T v = x[i];                                                          \
		y[i] = (U)(expr);                                                    \
	}                                                                        \
}

/* neg and abs beyond f32 (act.c has those): integers wrap, -MIN = MIN */
#define NEG_ABS(dt, T, UT)                                                   \
	UNARY(neg, dt, T, T, (T)(0 - (UT)v))                                     \
	UNARY(abs, dt, T, T, v < 0 ? (T)(0 - (UT)v) : v)
UNARY(neg, f64, double, double, -v)
UNARY(abs, f64, double, double, fabs(v))
NEG_ABS(i64, int64_t, uint64_t)
NEG_ABS(i32, int32_t, uint32_t)
NEG_ABS(i8, int8_t, uint8_t)

UNARY(not, bool, uint8_t, uint8_t, !v)

UNARY(sin, f32, float, float, sinf(v))
UNARY(cos, f32, float, float, cosf(v))
UNARY(tan, f32, float, float, tanf(v))
UNARY(asin, f32, float, float, asinf(v))
UNARY(acos, f32, float, float, acosf(v))
UNARY(atan, f32, float, float, atanf(v))
UNARY(sinh, f32, float, float, sinhf(v))
UNARY(cosh, f32, float, float, coshf(v))
UNARY(asinh, f32, float, float, asinhf(v))
UNARY(acosh, f32, float, float, acoshf(v))
UNARY(atanh, f32, float, float, atanhf(v))
UNARY(ceil, f32, float, float, ceilf(v))
UNARY(floor, f32, float, float, floorf(v))
UNARY(sign, f32, float, float, kiln_s_sign(v))
UNARY(erf, f32, float, float, erff(v))
UNARY(reciprocal, f32, float, float, 1.0f / v)
UNARY(softsign, f32, float, float, kiln_s_softsign(v))
UNARY(isnan, f32, float, uint8_t, isnan(v))
UNARY(isnan, f64, double, uint8_t, isnan(v))

/* Halves to even, whatever the FPU's rounding mode; copysignf keeps the
 * sign of a zero result (-0.4 -> -0, as numpy). */
static float
round_even(float v)
{
	float r = floorf(v), d = v - r;

	if (d > 0.5f || (d == 0.5f && fmodf(r, 2.0f) != 0.0f))
		r += 1.0f;
	return copysignf(r, v);
}
UNARY(round, f32, float, float, round_even(v))

UNARY(softplus, f32, float, float, kiln_s_softplus(v))

void
kiln_celu_f32(float *y, const float *x, int64_t n, float alpha)
{
	for (int64_t i = 0; i < n; i++)
		y[i] = kiln_s_celu(x[i], alpha);
}

void
kiln_thresholded_relu_f32(float *y, const float *x, int64_t n, float alpha)
{
	for (int64_t i = 0; i < n; i++)
		y[i] = kiln_s_thresholded_relu(x[i], alpha);
}

void
kiln_shrink_f32(float *y, const float *x, int64_t n, float bias,
                float lambd)
{
	for (int64_t i = 0; i < n; i++)
		y[i] = kiln_s_shrink(x[i], bias, lambd);
}

/* clip: integer bounds from double ones (see kiln.h).  The bound is
 * compared as a double first, so that an out-of-range one (or an
 * infinite one) never reaches the conversion to T. */
#define CLIP_INT(dt, T, LO, HI)                                              \
void                                                                         \
kiln_clip_##dt(T *y, const T *x, int64_t n, double lo, double hi)            \
{                                                                            \
	T a = lo > (double)(LO) ? (lo >= (double)(HI) ? HI : (T)ceil(lo)) : LO;  \
	T b = hi < (double)(HI) ? (hi <= (double)(LO) ? LO : (T)floor(hi)) : HI; \
	for (int64_t i = 0; i < n; i++) {   /* b wins when a > b */             \
		T v = x[i] < a ? a : x[i];                                           \
		y[i] = v > b ? b : v;                                                \
	}                                                                        \
}
CLIP_INT(i64, int64_t, INT64_MIN, INT64_MAX)
CLIP_INT(i32, int32_t, INT32_MIN, INT32_MAX)
CLIP_INT(i8, int8_t, INT8_MIN, INT8_MAX)
CLIP_INT(u8, uint8_t, 0, UINT8_MAX)
CLIP_INT(i16, int16_t, INT16_MIN, INT16_MAX)
CLIP_INT(u16, uint16_t, 0, UINT16_MAX)
CLIP_INT(u32, uint32_t, 0, UINT32_MAX)
CLIP_INT(u64, uint64_t, 0, UINT64_MAX)

void
kiln_clip_f64(double *y, const double *x, int64_t n, double lo, double hi)
{
	for (int64_t i = 0; i < n; i++) {
		double v = x[i] < lo ? lo : x[i];
		y[i] = v > hi ? hi : v;
	}
}

#define ISINF(dt, T)                                                         \
void                                                                         \
kiln_isinf_##dt(uint8_t *y, const T *x, int64_t n, int detect_negative,      \
                int detect_positive)                                         \
{                                                                            \
	for (int64_t i = 0; i < n; i++)                                          \
		y[i] = isinf(x[i]) && (x[i] < 0 ? detect_negative : detect_positive); \
}
ISINF(f32, float)
ISINF(f64, double)
