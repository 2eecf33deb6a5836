/* gemm_x86.c: the matrix product's micro-kernels for x86-64 with AVX-512
 * and with AVX2 and FMA (gemm_kern.h says what each computes).
 *
 * The functions carry target attributes, so they are built for those
 * instruction sets while the rest of the runtime stays portable, and
 * runtime/gemm.c calls them only on a CPU that has them.  One body per
 * set, body512() and body256(), is instantiated for each row count with
 * the rows and vectors as constants: after unrolling, the accumulators
 * are registers.  A tile of r rows and v vectors holds r*v accumulators
 * and v vectors of b, and broadcasts a(i,p) from memory:
 *   AVX-512 (32 registers of 16 floats): tiles of 12 x 32, 24
 *   accumulators, enough independent sums to keep both FMA units busy
 *   through the FMA latency; few-row products 2 x 128.
 *   AVX2 (16 registers of 8 floats): tiles of 6 x 16, few-row 2 x 32.
 * The last columns are masked (loads and stores), so b and y may be
 * operands in place, read and written only for j < nr. */
#include "gemm_kern.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

#define T512 __attribute__((target("avx512f,fma")))
#define T256 __attribute__((target("avx2,fma")))
#define INLINE __attribute__((always_inline)) static inline

/* The loops over rows and vectors unroll fully once the body is inlined
 * with constant counts, so the accumulator array becomes registers.
 * clang needs unroll(full): a plain unroll pragma makes it unroll the
 * not yet inlined body by a run-time count, after which the loops no
 * longer unroll; and it keeps arrays of more than NACC vectors in
 * memory. */
enum { NACC = 24 };

#ifdef __clang__
#define UNROLL _Pragma("clang loop unroll(full)")
#else
#define UNROLL _Pragma("GCC unroll 16")
#endif

/* How far ahead, in steps of p, the tile kernels prefetch the panel of
 * a and the rows of b they are about to read.  The late layers of a
 * CNN stream megabytes of weights from L3 or memory, once each, faster
 * than the hardware prefetchers fetch them: on ResNet-18's 7x7 layers
 * the products ran at 40% of the kernel's speed from L1 without these
 * and at 60% with them, and the whole network 8% faster (2026-12-06).
 * The addresses are computed as integers: they may lie past the
 * operands, which a prefetch may touch but C pointer arithmetic may
 * not. */
enum { PF_A = 64, PF_B = 32 };

INLINE void
prefetch(const float *p, int64_t ahead)
{
	__builtin_prefetch((const void *)((uintptr_t)p +
	                                  (uintptr_t)ahead * sizeof *p));
}

/* Where segment sg of tile t reads a and b from (gemm_kern.h). */
INLINE void
segment(const struct kiln_tile *t, int sg, const float **a, const float **b)
{
	*a = t->a + (t->aseg ? t->aseg[sg] : 0);
	*b = t->b + (t->aseg ? t->bseg[sg] : 0);
}

/* ---- AVX-512 -------------------------------------------------------- */

T512 INLINE void
body512(const struct kiln_tile *t, const int R, const int V, const int packed)
{
	__m512 c[NACC], bv[8];
	__mmask16 mk[8];
	const float *c0 = t->c;
	float *y = t->y;
	int64_t ais = t->ais, aps = t->aps, bps = t->bps, ldy = t->ldy;
	int64_t kc = t->kc, c_rs = t->c_rs;
	int nr = t->nr, add = t->add, c_cs = t->c_cs, clamp = t->clamp;
	int nseg = t->aseg ? t->nseg : 1;
	const float *res = t->r;
	__m512 al = _mm512_set1_ps(t->alpha), be = _mm512_set1_ps(t->beta);
	__m512 lo = _mm512_set1_ps(t->lo), hi = _mm512_set1_ps(t->hi);

UNROLL
	for (int v = 0; v < V; v++) {
		int left = nr - 16 * v;
		mk[v] = left >= 16 ? 0xffff :
		        left <= 0 ? 0 : (__mmask16)((1u << left) - 1);
	}
UNROLL
	for (int i = 0; i < R; i++)
UNROLL
		for (int v = 0; v < V; v++)
			c[i * V + v] = _mm512_setzero_ps();
	for (int sg = 0; sg < nseg; sg++) {
		const float *a, *b;
		segment(t, sg, &a, &b);
		for (int64_t p = 0; p < kc; p++, a += aps, b += bps) {
			if (packed) {
				prefetch(a, PF_A * aps);
UNROLL
				for (int v = 0; v < V; v++)
					prefetch(b + 16 * v, PF_B * bps);
			}
UNROLL
			for (int v = 0; v < V; v++)
				bv[v] = _mm512_maskz_loadu_ps(mk[v], b + 16 * v);
UNROLL
			for (int i = 0; i < R; i++) {
				__m512 av = _mm512_set1_ps(a[packed ? i : i * ais]);
UNROLL
				for (int v = 0; v < V; v++)
					c[i * V + v] = _mm512_fmadd_ps(av, bv[v],
					                               c[i * V + v]);
			}
		}
	}
UNROLL
	for (int i = 0; i < R; i++) {
		float *yr = y + i * ldy;
		const float *cr = c0 ? c0 + i * c_rs : NULL;
UNROLL
		for (int v = 0; v < V; v++) {
			__m512 s = _mm512_setzero_ps();
			if (add)
				s = _mm512_maskz_loadu_ps(mk[v], yr + 16 * v);
			else if (cr)
				s = _mm512_mul_ps(be, c_cs ?
				    _mm512_maskz_loadu_ps(mk[v], cr + 16 * v) :
				    _mm512_set1_ps(*cr));
			__m512 r = _mm512_add_ps(s, _mm512_mul_ps(al, c[i * V + v]));
			if (res)
				r = _mm512_add_ps(r, _mm512_maskz_loadu_ps(mk[v],
				    res + i * ldy + 16 * v));
			if (clamp) {
				r = _mm512_mask_mov_ps(r, _mm512_cmp_ps_mask(r, lo,
				    _CMP_LT_OQ), lo);
				r = _mm512_mask_mov_ps(r, _mm512_cmp_ps_mask(r, hi,
				    _CMP_GT_OQ), hi);
			}
			_mm512_mask_storeu_ps(yr + 16 * v, mk[v], r);
		}
	}
}

#define TILE512(r)                                                       \
	T512 static void tile512_##r(const struct kiln_tile *t)          \
	{ body512(t, r, 2, 1); }                                         \
	T512 static void tile512u_##r(const struct kiln_tile *t)         \
	{ body512(t, r, 2, 0); }
TILE512(1) TILE512(2) TILE512(3) TILE512(4) TILE512(5) TILE512(6)
TILE512(7) TILE512(8) TILE512(9) TILE512(10) TILE512(11) TILE512(12)

T512 static void wide512_1(const struct kiln_tile *t) { body512(t, 1, 8, 0); }
T512 static void wide512_2(const struct kiln_tile *t) { body512(t, 2, 8, 0); }

/* r[j] lane i = r[i] lane j: 16 x 16 in registers, pairs of floats,
 * then of doubles, then of 128-bit lanes twice. */
T512 INLINE void
transpose16(__m512 r[16])
{
	__m512 t[16];

UNROLL
	for (int i = 0; i < 16; i += 2) {
		t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
		t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
	}
UNROLL
	for (int i = 0; i < 16; i += 4)
		for (int h = 0; h < 2; h++) {
			__m512d a = _mm512_castps_pd(t[i + h]);
			__m512d b = _mm512_castps_pd(t[i + h + 2]);
			r[i + 2 * h] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, b));
			r[i + 2 * h + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, b));
		}
UNROLL
	for (int i = 0; i < 16; i += 8)
		for (int j = 0; j < 4; j++) {
			t[i + j] = _mm512_shuffle_f32x4(r[i + j], r[i + j + 4], 0x88);
			t[i + j + 4] = _mm512_shuffle_f32x4(r[i + j], r[i + j + 4],
			                                    0xdd);
		}
UNROLL
	for (int j = 0; j < 8; j++) {
		r[j] = _mm512_shuffle_f32x4(t[j], t[j + 8], 0x88);
		r[j + 8] = _mm512_shuffle_f32x4(t[j], t[j + 8], 0xdd);
	}
}

/* gemm_kern.h's pack_t by blocks of 16 x 16, masked at the edges. */
T512 static void
pack_t512(float *d, int64_t w, const float *s, int64_t ts, int64_t nt,
          int64_t kc)
{
	for (int64_t t0 = 0; t0 < w; t0 += 16) {
		int64_t tn = nt - t0 < 0 ? 0 : nt - t0 > 16 ? 16 : nt - t0;
		int64_t wn = w - t0 > 16 ? 16 : w - t0;
		__mmask16 sm = (__mmask16)((1u << wn) - 1);
		for (int64_t p0 = 0; p0 < kc; p0 += 16) {
			int64_t pn = kc - p0 > 16 ? 16 : kc - p0;
			__mmask16 lm = (__mmask16)((1u << pn) - 1);
			__m512 r[16];
UNROLL
			for (int i = 0; i < 16; i++)
				r[i] = i < tn ? _mm512_maskz_loadu_ps(lm, s + (t0 + i) *
				                                      ts + p0) :
				       _mm512_setzero_ps();
			transpose16(r);
			for (int j = 0; j < pn; j++)
				_mm512_mask_storeu_ps(d + (p0 + j) * w + t0, sm, r[j]);
		}
	}
}

const struct kiln_gemm_isa kiln_gemm_avx512 = {
	"avx512", 12, 32, 2, 128,
	{NULL, tile512_1, tile512_2, tile512_3, tile512_4, tile512_5,
	 tile512_6, tile512_7, tile512_8, tile512_9, tile512_10, tile512_11,
	 tile512_12},
	{NULL, tile512u_1, tile512u_2, tile512u_3, tile512u_4, tile512u_5,
	 tile512u_6, tile512u_7, tile512u_8, tile512u_9, tile512u_10,
	 tile512u_11, tile512u_12},
	{NULL, wide512_1, wide512_2},
	pack_t512,
};

/* ---- AVX2 ----------------------------------------------------------- */

T256 INLINE void
body256(const struct kiln_tile *t, const int R, const int V, const int packed)
{
	__m256 c[NACC], bv[8];
	__m256i mk[4];
	const float *c0 = t->c;
	float *y = t->y;
	int64_t ais = t->ais, aps = t->aps, bps = t->bps, ldy = t->ldy;
	int64_t kc = t->kc, c_rs = t->c_rs;
	int nr = t->nr, add = t->add, c_cs = t->c_cs, clamp = t->clamp;
	int nseg = t->aseg ? t->nseg : 1;
	const float *res = t->r;
	__m256 al = _mm256_set1_ps(t->alpha), be = _mm256_set1_ps(t->beta);
	__m256 lo = _mm256_set1_ps(t->lo), hi = _mm256_set1_ps(t->hi);
	const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);

UNROLL
	for (int v = 0; v < V; v++)
		mk[v] = _mm256_cmpgt_epi32(_mm256_set1_epi32(nr - 8 * v), lane);
UNROLL
	for (int i = 0; i < R; i++)
UNROLL
		for (int v = 0; v < V; v++)
			c[i * V + v] = _mm256_setzero_ps();
	for (int sg = 0; sg < nseg; sg++) {
		const float *a, *b;
		segment(t, sg, &a, &b);
		for (int64_t p = 0; p < kc; p++, a += aps, b += bps) {
			if (packed) {
				prefetch(a, PF_A * aps);
				prefetch(b, PF_B * bps);
			}
UNROLL
			for (int v = 0; v < V; v++)
				bv[v] = _mm256_maskload_ps(b + 8 * v, mk[v]);
UNROLL
			for (int i = 0; i < R; i++) {
				__m256 av = _mm256_broadcast_ss(a + (packed ? i :
				                                         i * ais));
UNROLL
				for (int v = 0; v < V; v++)
					c[i * V + v] = _mm256_fmadd_ps(av, bv[v],
					                               c[i * V + v]);
			}
		}
	}
UNROLL
	for (int i = 0; i < R; i++) {
		float *yr = y + i * ldy;
		const float *cr = c0 ? c0 + i * c_rs : NULL;
UNROLL
		for (int v = 0; v < V; v++) {
			__m256 s = _mm256_setzero_ps();
			if (add)
				s = _mm256_maskload_ps(yr + 8 * v, mk[v]);
			else if (cr)
				s = _mm256_mul_ps(be, c_cs ?
				    _mm256_maskload_ps(cr + 8 * v, mk[v]) :
				    _mm256_set1_ps(*cr));
			__m256 r = _mm256_add_ps(s, _mm256_mul_ps(al, c[i * V + v]));
			if (res)
				r = _mm256_add_ps(r, _mm256_maskload_ps(res + i * ldy +
				    8 * v, mk[v]));
			if (clamp) {
				r = _mm256_blendv_ps(r, lo, _mm256_cmp_ps(r, lo,
				    _CMP_LT_OQ));
				r = _mm256_blendv_ps(r, hi, _mm256_cmp_ps(r, hi,
				    _CMP_GT_OQ));
			}
			_mm256_maskstore_ps(yr + 8 * v, mk[v], r);
		}
	}
}

#define TILE256(r)                                                       \
	T256 static void tile256_##r(const struct kiln_tile *t)          \
	{ body256(t, r, 2, 1); }                                         \
	T256 static void tile256u_##r(const struct kiln_tile *t)         \
	{ body256(t, r, 2, 0); }
TILE256(1) TILE256(2) TILE256(3) TILE256(4) TILE256(5) TILE256(6)

T256 static void wide256_1(const struct kiln_tile *t) { body256(t, 1, 4, 0); }
T256 static void wide256_2(const struct kiln_tile *t) { body256(t, 2, 4, 0); }

const struct kiln_gemm_isa kiln_gemm_avx2 = {
	"avx2", 6, 16, 2, 32,
	{NULL, tile256_1, tile256_2, tile256_3, tile256_4, tile256_5,
	 tile256_6},
	{NULL, tile256u_1, tile256u_2, tile256u_3, tile256u_4, tile256u_5,
	 tile256u_6},
	{NULL, wide256_1, wide256_2},
	NULL,
};

#else
const struct kiln_gemm_isa kiln_gemm_avx512, kiln_gemm_avx2;
#endif
