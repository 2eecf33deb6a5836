/* gemm_kern.h: the matrix product's micro-kernels, KILN_CLONES and
 * kiln_span, internal to the runtime.  runtime/gemm.c blocks and packs the operands and calls them;
 * runtime/gemm_x86.c holds the AVX-512 and AVX2 sets, compiled for those
 * instruction sets whatever the rest of the runtime is compiled for, and
 * gemm.c picks one at run time from what the CPU has.
 *
 * Every kernel computes each element of its tile the same way, which is
 * what makes the products' results independent of how they are cut into
 * tiles, pieces and threads: t = the products a(i,p) * b(p,j) for p < kc
 * summed from 0 with p ascending (one fused multiply-add each in the
 * x86 sets), segment after segment when the tile has several (struct
 * kiln_tile), then y = s + alpha * t, where s is y's old value when add,
 * else beta * c(i,j) (0 when c is NULL), each product and sum rounded
 * once; then, when r is not NULL, y += r(i,j) (one more rounding), and
 * when clamp, y = y < lo ? lo : y, then y = y > hi ? hi : y (kiln_s_clip;
 * kiln_s_relu is lo = 0, hi = inf): the fused epilogue of the last k
 * block. */
#ifndef KILN_GEMM_KERN_H
#define KILN_GEMM_KERN_H

#include <stdint.h>

/* A plain C kernel built for AVX-512, AVX2 and the baseline, the best
 * the CPU has picked when the program loads (GCC's and clang's function
 * multiversioning, through an ifunc): the compiler vectorizes each
 * version for its instruction set.  Without FMA contraction (ISO C
 * mode) the versions give the same bits. */
#if defined(__x86_64__) && defined(__GNUC__) && defined(__linux__)
#define KILN_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define KILN_CLONES
#endif

/* One tile: rows i < mr, columns j < nr of y.  With aseg not NULL the
 * sum runs over nseg >= 1 segments of kc steps, segment s reading a and
 * b from aseg[s] and bseg[s] floats further on: a conv's taps, each a
 * shift of the same operands, summed in registers. */
struct kiln_tile {
	float *y;
	int64_t ldy;            /* y(i,j) is y[i*ldy + j] */
	const float *a;
	int64_t ais, aps;       /* a(i,p) is a[i*ais + p*aps] */
	const float *b;
	int64_t bps;            /* b(p,j) is b[p*bps + j]: rows contiguous */
	const float *c;         /* y's start when !add, or NULL */
	int64_t c_rs;           /* c(i,j) is c[i*c_rs + j*c_cs], */
	int c_cs;               /* c_cs 0 or 1 */
	int64_t kc;
	int mr, nr;
	float alpha, beta;
	int add;
	const float *r;         /* r(i,j) is r[i*ldy + j], or NULL */
	int clamp;
	float lo, hi;
	int nseg;
	const int64_t *aseg, *bseg;     /* or NULL: one segment */
};

typedef void kiln_tile_fn(const struct kiln_tile *t);

/* The output positions i in [*lo, *hi) of [0, n) whose input position
 * i*s + off lies in [0, len), s >= 1: where a window tap falls inside
 * the input, for the convolutions and pools. */
static inline void
kiln_span(int64_t off, int64_t s, int64_t len, int64_t n, int64_t *lo,
          int64_t *hi)
{
	int64_t a = off >= 0 ? 0 : (-off + s - 1) / s;
	int64_t b = len - off <= 0 ? 0 : (len - off - 1) / s + 1;

	*hi = b < n ? b : n;
	*lo = a < *hi ? a : *hi;
}

/* KILN_GEMM_MAXMR bounds every set's mr; KILN_GEMM_MAXSEG a tile's
 * segments. */
enum { KILN_GEMM_MAXMR = 12, KILN_GEMM_MAXSEG = 64 };

/* A set of kernels: tile[r] takes tiles of r rows (1 <= r <= mr) and at
 * most nr columns, a packed (ais 1); tile_u[r] the same with a read in
 * place, any ais; wide[r] takes r rows (1 <= r <= wide_mr) and at most
 * wide_nr columns, for products with few rows; pack_t transposes.
 * Kernels read b(p,j) only for j < nr, so b may be an operand in place;
 * y likewise. */
struct kiln_gemm_isa {
	const char *name;
	int mr, nr;
	int wide_mr, wide_nr;
	kiln_tile_fn *tile[KILN_GEMM_MAXMR + 1];
	kiln_tile_fn *tile_u[KILN_GEMM_MAXMR + 1];
	kiln_tile_fn *wide[KILN_GEMM_MAXMR + 1];
	/* A panel from an operand read across its rows: d[p*w + t] =
	 * s[t*ts + p] for t < nt, p < kc, and 0 for nt <= t < w; or NULL
	 * for gemm.c's plain loop. */
	void (*pack_t)(float *d, int64_t w, const float *s, int64_t ts,
	               int64_t nt, int64_t kc);
};

/* runtime/gemm_x86.c: NULL names where the compiler cannot build them
 * (not x86-64, or not GCC or clang). */
extern const struct kiln_gemm_isa kiln_gemm_avx512, kiln_gemm_avx2;

struct kiln_epilogue;

/* The left operand of kiln_gemm_conv_f32, m x k of a larger matrix of
 * kfull columns, its columns k0, k0 + kstep, k0 + 2*kstep, ...: plain,
 * row r at p + r*kfull; or, panel > 0, in panels as
 * kiln_conv2d_pack_weights() lays them out.  kstep > 1 picks one tap
 * of a conv's window across the input channels. */
struct kiln_gemm_a {
	const float *p;
	int64_t kfull, k0;
	int panel;
	int64_t kstep;
};

/* The segments of a conv product: the sum of n products over the same
 * k steps, product s reading a's columns a[s] further on (columns of
 * the whole matrix) and b from b[s] floats further on: the taps of a
 * conv over a padded copy of its input, 1 <= n <= KILN_GEMM_MAXSEG. */
struct kiln_gemm_seg {
	int n;
	const int64_t *a, *b;
};

/* runtime/gemm.c: for the convolutions, y (row stride ldy) = a @ b[k,n]
 * (row stride ldb), summed over the segments seg when not NULL, plus y
 * when add, else plus bias[i] per row (or nothing when bias is NULL),
 * then the epilogue e (or NULL) with residual offsets counted from
 * ybase.  b_inplace: the kernels read b in place, unpacked (the
 * convolutions' im2col buffer, or x itself for a 1x1 kernel: measured
 * faster than packing either); segments need it. */
void kiln_gemm_conv_f32(float *y, int64_t ldy, const struct kiln_gemm_a *a,
                        const float *b, int64_t ldb, int b_inplace,
                        int64_t m, int64_t n, int64_t k, const float *bias,
                        int add, const struct kiln_epilogue *e,
                        const float *ybase, const struct kiln_gemm_seg *seg);

/* runtime/gemm.c: for the convs whose product runs along the output
 * channels (conv.c): yt[n, on] (row stride ldyt) = c^T @ w^T over k
 * steps k0..k0+kn-1, plus yt when add, else plus bias[o0 + j] per
 * column (or nothing when bias is NULL).  c[kn, n] holds those k steps'
 * rows (the im2col matrix of n output positions, or x itself), and w is
 * the whole of the weights in panels of KILN_CONV_CPANEL output
 * channels (kiln_conv2d_pack_weights, kfull steps, oc channels);
 * columns j < on of yt are channels o0 + j, o0 a multiple of
 * KILN_CONV_CPANEL. */
/* runtime/gemm.c: d[p*w + t] = s[t*ts + p] for t < nt, p < kc, and 0
 * for nt <= t < w: a transpose, by the set's pack_t where it has one. */
void kiln_gemm_transpose(float *d, int64_t w, const float *s, int64_t ts,
                         int64_t nt, int64_t kc);

void kiln_gemm_cv_f32(float *yt, int64_t ldyt, const float *c, int64_t n,
                      const float *w, int64_t kfull, int64_t k0, int64_t kn,
                      int64_t oc, int64_t o0, int64_t on, const float *bias,
                      int add);

#endif
