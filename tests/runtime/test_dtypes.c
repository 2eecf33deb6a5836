/* test_dtypes.c: tests of the kernels for the later dtypes (f16 bf16 i16
 * u16 u32 u64) and of the integer forms of clip, pad and max pooling,
 * against naive references written here.
 *
 * The integer references compute in uint64_t / int64_t and wrap to the
 * type's width by masking and sign extension, never through the kernels'
 * own scalar functions; max pooling and pad walk every output index and
 * find its source index from the definitions in ir/ops.def.  The f16
 * conversion is checked bit for bit against NumPy by npy_f16.test, which
 * uses the `cast` mode here:
 *
 *   test_dtypes                        run everything, print a summary
 *   test_dtypes cast IN.npy DT OUT.npy [XDT]
 *                                      kiln_cast IN (its dtype, or XDT)
 *                                      to DT
 */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kiln.h"
#include "testutil.h"

#define countof(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* ---- the integer types as uint64_t bit patterns ---------------------- */

struct ity {
	kiln_dtype t;
	int bits;
	bool sign;
};
static const struct ity itys[] = {
	{KILN_I16, 16, true}, {KILN_U16, 16, false},
	{KILN_U32, 32, false}, {KILN_U64, 64, false},
};

static uint64_t
mask(const struct ity *ty)
{
	return ty->bits == 64 ? ~(uint64_t)0 : ((uint64_t)1 << ty->bits) - 1;
}

/* The value of pattern v as a signed number (only for signed types). */
static int64_t
sext(const struct ity *ty, uint64_t v)
{
	v &= mask(ty);
	if (ty->sign && ty->bits < 64 && v >> (ty->bits - 1))
		return (int64_t)(v | ~mask(ty));
	return (int64_t)v;
}

static uint64_t
load(const struct ity *ty, const void *p, int64_t i)
{
	switch (ty->bits) {
	case 16: return ((const uint16_t *)p)[i];
	case 32: return ((const uint32_t *)p)[i];
	default: return ((const uint64_t *)p)[i];
	}
}

static void
store(const struct ity *ty, void *p, int64_t i, uint64_t v)
{
	switch (ty->bits) {
	case 16: ((uint16_t *)p)[i] = (uint16_t)v; break;
	case 32: ((uint32_t *)p)[i] = (uint32_t)v; break;
	default: ((uint64_t *)p)[i] = v; break;
	}
}

/* a < b in the type's order */
static bool
lt(const struct ity *ty, uint64_t a, uint64_t b)
{
	return ty->sign ? sext(ty, a) < sext(ty, b) : (a & mask(ty)) < (b & mask(ty));
}

enum { ADD, SUB, MUL, DIV, MAX, MIN, MOD, FMOD, EQ, LT, NOP };
static const char *const opname[] = {"add", "sub", "mul", "div", "max",
                                     "min", "mod", "fmod", "equal", "less"};

/* The reference: x0 op x1 on patterns, wrapped to the type. */
static uint64_t
ref_binary(const struct ity *ty, int op, uint64_t a, uint64_t b)
{
	int64_t sa = sext(ty, a), sb = sext(ty, b);
	a &= mask(ty), b &= mask(ty);
	switch (op) {
	case ADD: return (a + b) & mask(ty);
	case SUB: return (a - b) & mask(ty);
	case MUL: return (a * b) & mask(ty);
	case MAX: return lt(ty, a, b) ? b : a;
	case MIN: return lt(ty, a, b) ? a : b;
	case EQ: return a == b;
	case LT: return lt(ty, a, b);
	}
	if (b == 0)
		return 0;
	if (!ty->sign)
		return op == DIV ? a / b : a % b;
	if (op == DIV)     /* i16 only here: no overflow in int64_t */
		return (uint64_t)(sa / sb) & mask(ty);
	int64_t r = sa % sb;
	if (op == MOD && r != 0 && (r < 0) != (sb < 0))
		r += sb;
	return (uint64_t)r & mask(ty);
}

#define YD 3, 4
/* Calls kiln_<op>_<dt> on a[3,4] and b[4] (broadcast along dim 0). */
#define CALL(dt, T)                                                          \
	static void                                                              \
	call_##dt(int op, void *y, const void *a, const void *b)                 \
	{                                                                        \
		static const int64_t yd[] = {YD}, as[] = {4, 1}, bs[] = {0, 1};      \
		switch (op) {                                                        \
		case ADD: kiln_add_##dt(y, a, b, 2, yd, as, bs); break;              \
		case SUB: kiln_sub_##dt(y, a, b, 2, yd, as, bs); break;              \
		case MUL: kiln_mul_##dt(y, a, b, 2, yd, as, bs); break;              \
		case DIV: kiln_div_##dt(y, a, b, 2, yd, as, bs); break;              \
		case MAX: kiln_max_##dt(y, a, b, 2, yd, as, bs); break;              \
		case MIN: kiln_min_##dt(y, a, b, 2, yd, as, bs); break;              \
		case MOD: kiln_mod_##dt(y, a, b, 2, yd, as, bs, 0); break;           \
		case FMOD: kiln_mod_##dt(y, a, b, 2, yd, as, bs, 1); break;          \
		case EQ: kiln_equal_##dt(y, a, b, 2, yd, as, bs); break;             \
		case LT: kiln_less_##dt(y, a, b, 2, yd, as, bs); break;              \
		}                                                                    \
	}
CALL(i16, int16_t)
CALL(u16, uint16_t)
CALL(u32, uint32_t)
CALL(u64, uint64_t)

/* Operand values: the edges of each type and random patterns. */
static uint64_t
operand(const struct ity *ty, int i)
{
	static const uint64_t edge[] = {0, 1, 2, 3, 7, ~(uint64_t)0,
	                                ~(uint64_t)1, 0x8000, 0x7fff, 0x80000000,
	                                0x8000000000000000, 100};
	uint64_t v = i < countof(edge) ? edge[i] : t_rand_u64();
	if (i % 3 == 2)
		v >>= t_rand_u64() % 60;   /* small values too */
	return v & mask(ty);
}

static void
test_binary(void)
{
	uint64_t a[12 * 8], b[4 * 8], y[12 * 8];

	for (int k = 0; k < countof(itys); k++) {
		const struct ity *ty = &itys[k];
		for (int rep = 0; rep < 50; rep++) {
			for (int i = 0; i < 12; i++)
				store(ty, a, i, operand(ty, rep ? 12 + i : i));
			for (int i = 0; i < 4; i++)
				store(ty, b, i, operand(ty, (rep * 4 + i) % 40));
			for (int op = 0; op < NOP; op++) {
				switch (ty->t) {
				case KILN_I16: call_i16(op, y, a, b); break;
				case KILN_U16: call_u16(op, y, a, b); break;
				case KILN_U32: call_u32(op, y, a, b); break;
				default: call_u64(op, y, a, b); break;
				}
				for (int i = 0; i < 12; i++) {
					uint64_t want = ref_binary(ty, op, load(ty, a, i),
					                           load(ty, b, i % 4));
					uint64_t got = op >= EQ ? ((uint8_t *)y)[i] : load(ty, y, i);
					char what[64];
					snprintf(what, sizeof what, "%s_%s", opname[op],
					         kiln_dtype_name(ty->t));
					t_eq(what, (long long)got,
					     (long long)want);
				}
			}
		}
	}
}

/* ---- bitshift ------------------------------------------------------- */

static void
test_bitshift(void)
{
	static const struct ity u8 = {KILN_U8, 8, false};
	const struct ity *tys[] = {&u8, &itys[1], &itys[2], &itys[3]};
	static const int64_t yd[] = {16}, st[] = {1};
	uint64_t a[16], b[16], y[16];

	for (int k = 0; k < 4; k++) {
		const struct ity *ty = tys[k];
		for (int right = 0; right < 2; right++) {
			for (int i = 0; i < 16; i++) {
				uint64_t v = t_rand_u64() & mask(ty);
				uint64_t s = (uint64_t)(i * ty->bits / 12);  /* past the width */
				if (ty->bits == 8)
					((uint8_t *)a)[i] = (uint8_t)v, ((uint8_t *)b)[i] = (uint8_t)s;
				else
					store(ty, a, i, v), store(ty, b, i, s);
			}
			switch (ty->bits) {
			case 8: kiln_bitshift_u8((void *)y, (void *)a, (void *)b, 1, yd, st, st, right); break;
			case 16: kiln_bitshift_u16((void *)y, (void *)a, (void *)b, 1, yd, st, st, right); break;
			case 32: kiln_bitshift_u32((void *)y, (void *)a, (void *)b, 1, yd, st, st, right); break;
			default: kiln_bitshift_u64(y, a, b, 1, yd, st, st, right); break;
			}
			for (int i = 0; i < 16; i++) {
				uint64_t v = ty->bits == 8 ? ((uint8_t *)a)[i] : load(ty, a, i);
				uint64_t s = ty->bits == 8 ? ((uint8_t *)b)[i] : load(ty, b, i);
				uint64_t g = ty->bits == 8 ? ((uint8_t *)y)[i] : load(ty, y, i);
				/* shifting bit by bit never overshifts */
				for (uint64_t j = 0; j < s; j++)
					v = right ? v >> 1 : (v << 1) & mask(ty);
				t_eq(right ? "bitshift right" : "bitshift left",
				     (long long)g, (long long)v);
			}
		}
	}
}

/* ---- clip ----------------------------------------------------------- */

static void
test_clip(void)
{
	int8_t x8[256], y8[256];
	uint64_t xu[6] = {0, 1, 5, 1ull << 40, ~0ull, 1ull << 63}, yu[6];
	/* lo, hi, then the bounds the kernel must use for i8 */
	static const double b[][4] = {
		{-INFINITY, INFINITY, -128, 127}, {-3.5, 2.5, -3, 2},
		{-1000, 1000, -128, 127}, {5, -5, 5, -5}, {NAN, 0, -128, 0},
		{-2, NAN, -2, 127}, {200, 300, 127, 127}, {-300, -200, -128, -128},
	};

	for (int i = 0; i < 256; i++)
		x8[i] = (int8_t)(i - 128);
	for (int k = 0; k < countof(b); k++) {
		kiln_clip_i8(y8, x8, 256, b[k][0], b[k][1]);
		for (int i = 0; i < 256; i++) {
			int v = x8[i] < b[k][2] ? (int)b[k][2] : x8[i];
			v = v > b[k][3] ? (int)b[k][3] : v;   /* hi wins over lo */
			t_eq("clip_i8", y8[i], v);
		}
	}
	kiln_clip_u64(yu, xu, 6, 2, 1e19);
	static const uint64_t want[] = {2, 2, 5, 1ull << 40, 10000000000000000000ull,
	                                1ull << 63};
	for (int i = 0; i < 6; i++)
		t_eq("clip_u64", (long long)yu[i], (long long)want[i]);
	int16_t x16[3] = {-32768, 0, 32767}, y16[3];
	kiln_clip_i16(y16, x16, 3, -INFINITY, 100.9);
	t_expectf(y16[0] == -32768 && y16[1] == 0 && y16[2] == 100,
	          "clip_i16: got %d %d %d want -32768 0 100", y16[0], y16[1],
	          y16[2]);
	double xd[3] = {-2, NAN, 2}, yd[3];
	kiln_clip_f64(yd, xd, 3, -1, 1);
	t_expectf(yd[0] == -1 && isnan(yd[1]) && yd[2] == 1,
	          "clip_f64: got %g %g %g want -1 nan 1", yd[0], yd[1], yd[2]);
}

/* ---- max pooling ---------------------------------------------------- */

static int64_t
ref_pool(const int64_t *x, const struct kiln_pool2d *p, int64_t nc, int64_t i,
         int64_t j, int64_t lowest)
{
	int64_t m = lowest;
	for (int64_t ih = 0; ih < p->h; ih++)
		for (int64_t iw = 0; iw < p->w; iw++) {
			int64_t u = ih - (i * p->sh - p->pt), v = iw - (j * p->sw - p->pl);
			bool tap = u >= 0 && v >= 0 && u % p->dh == 0 && v % p->dw == 0 &&
			           u / p->dh < p->kh && v / p->dw < p->kw;
			if (tap && x[(nc * p->h + ih) * p->w + iw] > m)
				m = x[(nc * p->h + ih) * p->w + iw];
		}
	return m;
}

static void
test_maxpool(void)
{
	/* 2x3 planes of 5x6, kernel 3x2, stride 2x1, pads 1, 2 (top, left:
	 * so windows wholly in the padding exist), dilation 2x1 */
	struct kiln_pool2d p = {2, 3, 5, 6, 3, 6, 3, 2, 2, 1, 1, 2, 2, 1, 0};
	int64_t n = 2 * 3 * 5 * 6, ny = 2 * 3 * 3 * 6;
	int64_t x[180], y64[108];
	int32_t x32[180], y32[108];
	int8_t xs[180], ys[108];
	uint8_t xu[180], yu[108];

	for (int64_t i = 0; i < n; i++) {
		x[i] = (int64_t)t_rand_u64();
		x32[i] = (int32_t)x[i], xs[i] = (int8_t)x[i], xu[i] = (uint8_t)x[i];
	}
	kiln_maxpool2d_i64(y64, x, &p);
	kiln_maxpool2d_i32(y32, x32, &p);
	kiln_maxpool2d_i8(ys, xs, &p);
	kiln_maxpool2d_u8(yu, xu, &p);
	int64_t c32[180], cs[180], cu[180];
	for (int64_t i = 0; i < n; i++)
		c32[i] = x32[i], cs[i] = xs[i], cu[i] = xu[i];
	for (int64_t k = 0; k < ny; k++) {
		int64_t nc = k / 18, i = k / 6 % 3, j = k % 6;
		int64_t w = ref_pool(x, &p, nc, i, j, INT64_MIN);
		t_eq("maxpool2d_i64", y64[k], w);
		w = ref_pool(c32, &p, nc, i, j, INT32_MIN);
		t_eq("maxpool2d_i32", y32[k], w);
		w = ref_pool(cs, &p, nc, i, j, INT8_MIN);
		t_eq("maxpool2d_i8", ys[k], w);
		w = ref_pool(cu, &p, nc, i, j, 0);
		t_eq("maxpool2d_u8", yu[k], w);
	}
}

/* ---- pad ------------------------------------------------------------ */

/* The source index along one dim of output index o, or -1 for the fill. */
static int64_t
ref_pad_src(int64_t o, int64_t n, int64_t before, int64_t after, int mode)
{
	int64_t lo = before < 0 ? -before : 0;          /* cropped input */
	int64_t len = n - lo - (after < 0 ? -after : 0);
	int64_t i = o - (before > 0 ? before : 0);
	while (i < 0 || i >= len) {
		if (mode == KILN_PAD_CONSTANT)
			return -1;
		if (mode == KILN_PAD_EDGE)
			i = i < 0 ? 0 : len - 1;
		else
			i = i < 0 ? -i : 2 * (len - 1) - i;
	}
	return lo + i;
}

static void
test_pad(void)
{
	struct kiln_pad p = {3, {2, 3, 4}, {1, -1, 2}, {0, 1, 3}, 0, 0};
	int32_t x[24], y[4 * 3 * 9], fill = -7;
	uint16_t xh[24], yh[4 * 3 * 9], fillh = 0xbeef;

	for (int i = 0; i < 24; i++)
		x[i] = (int32_t)t_rand_u64(), xh[i] = (uint16_t)x[i];
	for (int mode = 0; mode < 3; mode++) {
		p.mode = mode;
		p.before[0] = mode == KILN_PAD_REFLECT ? 1 : 2;  /* reflect: pad < dim */
		int64_t yd[3], ny = 1;
		for (int d = 0; d < 3; d++)
			ny *= yd[d] = p.before[d] + p.xdim[d] + p.after[d];
		kiln_pad(y, x, sizeof *x, &fill, &p);
		kiln_pad(yh, xh, sizeof *xh, &fillh, &p);
		for (int64_t k = 0; k < ny; k++) {
			int64_t o[3] = {k / (yd[1] * yd[2]), k / yd[2] % yd[1], k % yd[2]};
			int64_t s[3], off = 0;
			bool in = true;
			for (int d = 0; d < 3; d++) {
				s[d] = ref_pad_src(o[d], p.xdim[d], p.before[d], p.after[d], mode);
				in = in && s[d] >= 0;
				off = off * p.xdim[d] + (s[d] < 0 ? 0 : s[d]);
			}
			t_eq("pad i32", y[k], in ? x[off] : fill);
			t_eq("pad u16", yh[k], in ? xh[off] : fillh);
		}
	}
}

/* ---- cast ----------------------------------------------------------- */

static void
test_cast(void)
{
	/* exact answers: f16 and bf16 bit patterns of some doubles */
	static const struct { double v; uint16_t f16, bf16; } h[] = {
		{1, 0x3c00, 0x3f80}, {-2, 0xc000, 0xc000}, {65504, 0x7bff, 0x4780},
		{65520, 0x7c00, 0x4780}, {1e10, 0x7c00, 0x5015}, {0x1p-24, 0x0001, 0x3380},
		{0x1p-25, 0x0000, 0x3300}, {0x1.8p-25, 0x0001, 0x3340},
		{1 + 0x1p-11, 0x3c00, 0x3f80}, {1 + 0x3p-11, 0x3c02, 0x3f80},
		{-0.0, 0x8000, 0x8000}, {INFINITY, 0x7c00, 0x7f80},
		{1 + 0x1p-8, 0x3c04, 0x3f80}, {1 + 0x3p-8, 0x3c0c, 0x3f82},
	};
	for (int i = 0; i < countof(h); i++) {
		uint16_t a, b;
		kiln_cast(&a, KILN_F16, &h[i].v, KILN_F64, 1);
		kiln_cast(&b, KILN_BF16, &h[i].v, KILN_F64, 1);
		t_eq("f64 -> f16", a, h[i].f16);
		t_eq("f64 -> bf16", b, h[i].bf16);
	}
	static const struct { uint16_t f16; double v; } w[] = {
		{0x3c00, 1}, {0x0001, 0x1p-24}, {0x7bff, 65504}, {0xc000, -2},
		{0x7c00, INFINITY}, {0x03ff, 0x3ffp-24}, {0x3555, 0x1.554p-2},
	};
	for (int i = 0; i < countof(w); i++) {
		double back;
		kiln_cast(&back, KILN_F64, &w[i].f16, KILN_F16, 1);
		t_expectf(back == w[i].v, "f16 -> f64: %#06x gave %.17g want "
		          "%.17g", w[i].f16, back, w[i].v);
	}
	uint16_t nan16, in16 = 0x7e00;
	float nanf = NAN, f;
	kiln_cast(&nan16, KILN_BF16, &nanf, KILN_F32, 1);
	t_expectf((nan16 & 0x7f80) == 0x7f80 && (nan16 & 0x7f),
	          "NaN -> bf16: got %#06x want a NaN (0x7fc0)", nan16);
	kiln_cast(&f, KILN_F32, &in16, KILN_F16, 1);
	t_expectf(isnan(f), "f16 NaN -> f32: got %g", f);

	/* the integer types: wrap between integers, saturate from floats */
	uint64_t big = 18446744073709551615ull, u64;
	double d = 0;
	kiln_cast(&d, KILN_F64, &big, KILN_U64, 1);
	t_expectf(d == 0x1p64, "u64 max -> f64: got %.17g want 2^64", d);
	int64_t m1 = -1;
	uint32_t u32;
	kiln_cast(&u32, KILN_U32, &m1, KILN_I64, 1);
	t_eq("-1 -> u32", u32, 0xffffffffu);
	double neg = -5, huge = 1e30;
	kiln_cast(&u64, KILN_U64, &neg, KILN_F64, 1);
	t_eq("-5.0 -> u64", (long long)u64, 0);
	kiln_cast(&u64, KILN_U64, &huge, KILN_F64, 1);
	t_eq("1e30 -> u64", (long long)u64, (long long)big);
	int16_t i16;
	kiln_cast(&i16, KILN_I16, &huge, KILN_F64, 1);
	t_eq("1e30 -> i16", i16, INT16_MAX);
	int32_t i32 = 70000;
	uint16_t u16;
	kiln_cast(&u16, KILN_U16, &i32, KILN_I32, 1);
	t_eq("70000 -> u16", u16, 70000 - 65536);
	kiln_cast(&i32, KILN_I32, &u16, KILN_U16, 1);
	t_eq("u16 -> i32", i32, 70000 - 65536);
	uint8_t bo;
	uint16_t h1 = 0x3c00;
	kiln_cast(&bo, KILN_BOOL, &h1, KILN_F16, 1);
	t_eq("f16 1 -> bool", bo, 1);
}

/* ---- the cast mode, for npy_f16.test -------------------------------- */

static int
dtype_of(const char *name)
{
	for (int t = 0; t < KILN_NDTYPE; t++)
		if (!strcmp(kiln_dtype_name((kiln_dtype)t), name))
			return t;
	fprintf(stderr, "test_dtypes: unknown dtype %s\n", name);
	exit(1);
}

/* xdt, when given, overrides the file's dtype (bf16 files say u16). */
static int
cast_file(const char *in, const char *dt, const char *out, const char *xdt)
{
	struct kiln_npy_info info;
	char msg[1024];
	int t = dtype_of(dt);

	if (kiln_npy_info(in, &info, msg, sizeof msg)) {
		fprintf(stderr, "test_dtypes: %s\n", msg);
		return 1;
	}
	if (xdt)
		info.dtype = (kiln_dtype)dtype_of(xdt);
	int64_t n = 1;
	for (int i = 0; i < info.rank; i++)
		n *= info.dim[i];
	void *x = t_alloc((size_t)n * 8 + 1), *y = t_alloc((size_t)n * 8 + 1);
	if (kiln_npy_load(in, "x", info.dtype, info.rank, info.dim, x, msg,
	                  sizeof msg) ||
	    (kiln_cast(y, (kiln_dtype)t, x, info.dtype, n),
	     kiln_npy_save(out, (kiln_dtype)t, info.rank, info.dim, y, msg,
	                   sizeof msg))) {
		fprintf(stderr, "test_dtypes: %s\n", msg);
		return 1;
	}
	free(x);
	free(y);
	return 0;
}

int
main(int argc, char **argv)
{
	if ((argc == 5 || argc == 6) && !strcmp(argv[1], "cast"))
		return cast_file(argv[2], argv[3], argv[4], argc == 6 ? argv[5] : NULL);
	t_seed(20240611);
	test_binary();
	test_bitshift();
	test_clip();
	test_maxpool();
	test_pad();
	test_cast();
	return t_report("dtypes");
}
