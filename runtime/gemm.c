/* gemm.c: matrix products, the kernels behind matmul, gemm, dense layers
 * and (through kiln_gemm_ld_f32) the convolutions of conv.c.
 *
 * The blocked scheme of GotoBLAS and BLIS: op(b) is cut into KC x NC
 * blocks and op(a) into MC x KC blocks, and each block is packed into
 * panels (MR rows of op(a), or NR columns of op(b), interleaved along k)
 * so that the micro-kernel reads both with unit stride while an MR x NR
 * tile of y stays in registers for a whole KC step.  An MC x KC block of
 * a stays in L2 and a KC x NR panel of b in L1.  The packing buffers are
 * on the stack (about 224 KB): nothing is allocated and the kernel is
 * reentrant.  Edge tiles run the same micro-kernel on zero-padded panels
 * into a scratch tile, so every element of y is summed the same way:
 * p ascending within a KC block, one block after the other, and the block
 * sizes depend only on k.  Products too small to repay the packing, or of
 * a single row, take row loops that sum each element the same way, in
 * the same k blocks.  So an element's value depends on k and its own
 * operands alone, not on m, n, the path or where the element lies: a
 * product may be cut into pieces of rows or columns anywhere, and the
 * pieces computed apart give the same bits.  The convolutions rely on
 * it, and so does the split of large products over the threads of
 * runtime/threads.c: by panels of NR columns or tiles of MR rows, each
 * thread with its own packing buffers on its own stack.
 */
#include <string.h>

#include "kiln.h"

/* MC is a multiple of MR and NC of NR, for the zero-padded last panels
 * fill the packing buffers; see the stack budget above. */
enum { MR = 6, MC = 96, KC = 256, NC = 128 };

/* Products of at most this many multiply-adds skip the packing, as do
 * those with one row (a depthwise convolution's, a batch of one), which
 * the row loops stream through at least as fast: 5 of the 6 rows of a
 * tile would be padding. */
enum { SMALL = 4096 };

/* The width of the row loops' partial sums, kept on the stack. */
enum { RW = 256 };

#if defined(__GNUC__)
/* GCC and clang vector extensions: a row of the tile is two vectors, so
 * the 6 x 2 accumulators, two b vectors and one broadcast fit the 16
 * vector registers of SSE2 and AVX. */
#ifdef __AVX__
#define VL 8
#else
#define VL 4
#endif
#define NR (2 * VL)
typedef float vf __attribute__((vector_size(VL * sizeof(float))));
#else
#define NR 8
#endif

#define MIN(a, b) ((a) < (b) ? (a) : (b))

/* An operand in place: element (r,c) of op(x) is p[r*rs + c*cs]. */
struct mat {
	const float *p;
	int64_t rs, cs;
};

/* ---- packing ------------------------------------------------------- */

/* A panel d[kc][w] of an operand whose element (p,t) is s[p*ps + t*ts],
 * for t < nt; columns nt..w-1 are zero.  The operand is read along its
 * unit stride: line by line of t when that runs along p, else row by
 * row of d, a full row of an untransposed b in one copy.  With few rows
 * of a (a convolution's m is a channel count) packing is a good part of
 * the work. */
static void
pack(float *d, int64_t w, const float *s, int64_t ps, int64_t ts,
     int64_t nt, int64_t kc)
{
	if (ps == 1 && ts != 1) {
		for (int64_t t = 0; t < nt; t++)
			for (int64_t p = 0; p < kc; p++)
				d[p * w + t] = s[t * ts + p];
		for (int64_t t = nt; t < w; t++)
			for (int64_t p = 0; p < kc; p++)
				d[p * w + t] = 0.0f;
		return;
	}
	for (int64_t p = 0; p < kc; p++, d += w) {
		if (w == NR && nt == NR && ts == 1) {
			memcpy(d, s + p * ps, NR * sizeof *d);
			continue;
		}
		for (int64_t t = 0; t < w; t++)
			d[t] = t < nt ? s[p * ps + t * ts] : 0.0f;
	}
}

/* ---- the micro-kernel ---------------------------------------------- */

#if defined(__GNUC__)
/* y[0:NR] = (add ? y : 0) + alpha * (c0, c1).  memcpy: y is unaligned and
 * a float lvalue, which a vf pointer may not alias. */
static void
store_row(float *y, vf c0, vf c1, float alpha, int add)
{
	vf y0 = {0}, y1 = {0};

	if (add) {
		memcpy(&y0, y, sizeof y0);
		memcpy(&y1, y + VL, sizeof y1);
	}
	y0 += alpha * c0;
	y1 += alpha * c1;
	memcpy(y, &y0, sizeof y0);
	memcpy(y + VL, &y1, sizeof y1);
}

/* The MR x NR tile y (row stride ldy) = (add ? y : 0) + alpha * the sum
 * over p < kc of the outer product of ap[p][:] and bp[p][:]. */
static void
kernel(float *y, int64_t ldy, const float *ap, const float *bp, int64_t kc,
       float alpha, int add)
{
	vf c00 = {0}, c01 = {0}, c10 = {0}, c11 = {0}, c20 = {0}, c21 = {0};
	vf c30 = {0}, c31 = {0}, c40 = {0}, c41 = {0}, c50 = {0}, c51 = {0};

	for (int64_t p = 0; p < kc; p++, ap += MR, bp += NR) {
		vf b0, b1;
		memcpy(&b0, bp, sizeof b0);
		memcpy(&b1, bp + VL, sizeof b1);
		c00 += ap[0] * b0;
		c01 += ap[0] * b1;
		c10 += ap[1] * b0;
		c11 += ap[1] * b1;
		c20 += ap[2] * b0;
		c21 += ap[2] * b1;
		c30 += ap[3] * b0;
		c31 += ap[3] * b1;
		c40 += ap[4] * b0;
		c41 += ap[4] * b1;
		c50 += ap[5] * b0;
		c51 += ap[5] * b1;
	}
	store_row(y, c00, c01, alpha, add);
	store_row(y + ldy, c10, c11, alpha, add);
	store_row(y + 2 * ldy, c20, c21, alpha, add);
	store_row(y + 3 * ldy, c30, c31, alpha, add);
	store_row(y + 4 * ldy, c40, c41, alpha, add);
	store_row(y + 5 * ldy, c50, c51, alpha, add);
}
#else
/* Portable C: the same sums in the same order, left to the optimiser. */
static void
kernel(float *y, int64_t ldy, const float *ap, const float *bp, int64_t kc,
       float alpha, int add)
{
	float t[MR][NR] = {{0}};

	for (int64_t p = 0; p < kc; p++, ap += MR, bp += NR)
		for (int i = 0; i < MR; i++)
			for (int j = 0; j < NR; j++)
				t[i][j] += ap[i] * bp[j];
	for (int i = 0; i < MR; i++)
		for (int j = 0; j < NR; j++)
			y[i * ldy + j] = (add ? y[i * ldy + j] : 0.0f) + alpha * t[i][j];
}
#endif

/* An edge tile, mr x nr of it inside y: the kernel's exact sums land in
 * a scratch tile first (0 + 1*t is t), then merge as kernel() would. */
static void
edge(float *y, int64_t ldy, const float *ap, const float *bp, int64_t kc,
     float alpha, int add, int64_t mr, int64_t nr)
{
	float t[MR * NR];

	kernel(t, NR, ap, bp, kc, 1.0f, 0);
	for (int64_t i = 0; i < mr; i++)
		for (int64_t j = 0; j < nr; j++)
			y[i * ldy + j] = (add ? y[i * ldy + j] : 0.0f) +
			                 alpha * t[i * NR + j];
}

/* ---- blocking ------------------------------------------------------ */

/* The size of the k blocks of both paths: k cut into ceil(k/KC) nearly
 * equal blocks, so no thin last block.  k >= 1. */
static int64_t
kblock(int64_t k)
{
	int64_t nk = (k + KC - 1) / KC;

	return (k + nk - 1) / nk;
}

/* y[mc,nc] (+)= alpha * (packed block pa) @ (packed block pb): the
 * micro-kernel over every tile, a panel of b held while a's go by. */
static void
macro(float *y, int64_t ldy, const float *pa, const float *pb, int64_t mc,
      int64_t nc, int64_t kc, float alpha, int add)
{
	for (int64_t j = 0; j < nc; j += NR)
		for (int64_t i = 0; i < mc; i += MR) {
			float *yt = y + i * ldy + j;
			const float *ap = pa + i * kc, *bp = pb + j * kc;
			if (mc - i >= MR && nc - j >= NR)
				kernel(yt, ldy, ap, bp, kc, alpha, add);
			else
				edge(yt, ldy, ap, bp, kc, alpha, add, MIN(MR, mc - i),
				     MIN(NR, nc - j));
		}
}

/* Columns jc.. of y (nc wide) for the rows of k from pc (kc of them);
 * pb holds the packed block of op(b). */
static void
block_row(float *y, int64_t ldy, const struct mat *a, const float *pb,
          float *pa, int64_t m, int64_t nc, int64_t pc, int64_t kc,
          float alpha, int add)
{
	for (int64_t ic = 0; ic < m; ic += MC) {
		int64_t mc = MIN(MC, m - ic);
		for (int64_t i = 0; i < mc; i += MR)
			pack(pa + i * kc, MR, a->p + (ic + i) * a->rs + pc * a->cs,
			     a->cs, a->rs, MIN(MR, mc - i), kc);
		macro(y + ic * ldy, ldy, pa, pb, mc, nc, kc, alpha, add);
	}
}

/* The blocked product; y is scaled by beta already unless beta is 0 or
 * 1, which the first block's stores take care of. */
static void
gemm_blocked(float *y, int64_t ldy, const struct mat *a, const struct mat *b,
             int64_t m, int64_t n, int64_t k, float alpha, float beta)
{
	_Alignas(64) float pa[MC * KC], pb[KC * NC];
	int64_t kb = kblock(k);

	for (int64_t jc = 0; jc < n; jc += NC) {
		int64_t nc = MIN(NC, n - jc);
		for (int64_t pc = 0; pc < k; pc += kb) {
			int64_t kc = MIN(kb, k - pc);
			for (int64_t j = 0; j < nc; j += NR)
				pack(pb + j * kc, NR, b->p + pc * b->rs + (jc + j) * b->cs,
				     b->rs, b->cs, MIN(NR, nc - j), kc);
			block_row(y + jc, ldy, a, pb, pa, m, nc, pc, kc, alpha,
			          pc > 0 || beta != 0.0f);
		}
	}
}

/* t[0:NR] = the sums over p < kc of ar[p] * the row p of a panel of NR
 * columns (row stride brs), each from 0 with p ascending: one row of the
 * micro-kernel's tile, the same operations. */
#if defined(__GNUC__)
static void
row_panel(float *t, const float *ar, int64_t acs, const float *bp,
          int64_t brs, int64_t kc)
{
	vf c0 = {0}, c1 = {0};

	for (int64_t p = 0; p < kc; p++, bp += brs) {
		vf b0, b1;
		memcpy(&b0, bp, sizeof b0);
		memcpy(&b1, bp + VL, sizeof b1);
		c0 += ar[p * acs] * b0;
		c1 += ar[p * acs] * b1;
	}
	memcpy(t, &c0, sizeof c0);
	memcpy(t + VL, &c1, sizeof c1);
}
#else
static void
row_panel(float *t, const float *ar, int64_t acs, const float *bp,
          int64_t brs, int64_t kc)
{
	for (int j = 0; j < NR; j++)
		t[j] = 0.0f;
	for (int64_t p = 0; p < kc; p++, bp += brs)
		for (int j = 0; j < NR; j++)
			t[j] += ar[p * acs] * bp[j];
}
#endif

/* t[0:w] = the sums of row_panel() for the w columns of op(b) from bp,
 * which it reads in place when its rows are contiguous, else from a
 * packed panel (zero-padded at the end). */
static void
row_sums(float *t, const float *ar, int64_t acs, const float *bp,
         const struct mat *b, int64_t w, int64_t kc)
{
	_Alignas(64) float pb[KC * NR];
	float tt[NR];

	for (int64_t j = 0; j < w; j += NR) {
		int64_t nt = MIN(NR, w - j);
		if (b->cs == 1 && nt == NR) {
			row_panel(t + j, ar, acs, bp + j, b->rs, kc);
			continue;
		}
		pack(pb, NR, bp + j * b->cs, b->rs, b->cs, nt, kc);
		row_panel(tt, ar, acs, pb, NR, kc);
		memcpy(t + j, tt, (size_t)nt * sizeof *t);
	}
}

/* Row i of y, yr, without packing: per k block, the block's sums merged
 * as kernel() merges them, y = (add ? y : 0) + alpha * sum. */
static void
gemm_row(float *yr, const struct mat *a, const struct mat *b, int64_t i,
         int64_t n, int64_t k, float alpha, int add)
{
	float t[RW];
	int64_t kb = kblock(k);

	for (int64_t pc = 0; pc < k; pc += kb, add = 1) {
		int64_t kc = MIN(kb, k - pc);
		for (int64_t j0 = 0; j0 < n; j0 += RW) {
			int64_t w = MIN(RW, n - j0);
			row_sums(t, a->p + i * a->rs + pc * a->cs, a->cs,
			         b->p + pc * b->rs + j0 * b->cs, b, w, kc);
			for (int64_t j = 0; j < w; j++)
				yr[j0 + j] = (add ? yr[j0 + j] : 0.0f) + alpha * t[j];
		}
	}
}

/* A blocked product split over the threads: part u is panel u of NR
 * columns of y, or tile row u of MR rows. */
struct split {
	float *y;
	int64_t ldy;
	struct mat a, b;
	int64_t m, n, k;
	float alpha, beta;
	int cols;               /* parts are column panels, else tile rows */
};

static void
split_part(void *ctx, int64_t lo, int64_t hi)
{
	const struct split *s = ctx;
	struct mat a = s->a, b = s->b;
	int64_t step = s->cols ? NR : MR, end = s->cols ? s->n : s->m;
	int64_t i0 = lo * step, i1 = MIN(hi * step, end);

	if (s->cols) {
		b.p += i0 * b.cs;
		gemm_blocked(s->y + i0, s->ldy, &a, &b, s->m, i1 - i0, s->k,
		             s->alpha, s->beta);
	} else {
		a.p += i0 * a.rs;
		gemm_blocked(s->y + i0 * s->ldy, s->ldy, &a, &b, i1 - i0, s->n,
		             s->k, s->alpha, s->beta);
	}
}

/* y *= beta over m x n, or y = 0 when beta is 0 (y not read). */
static void
scale(float *y, int64_t ldy, int64_t m, int64_t n, float beta)
{
	for (int64_t i = 0; i < m; i++)
		for (int64_t j = 0; j < n; j++)
			y[i * ldy + j] = beta == 0.0f ? 0.0f : beta * y[i * ldy + j];
}

void
kiln_gemm_ld_f32(float *y, int64_t ldy, const float *a, int64_t lda,
                 const float *b, int64_t ldb, int64_t m, int64_t n,
                 int64_t k, int trans_a, int trans_b, float alpha,
                 float beta)
{
	struct mat A = trans_a ? (struct mat){a, 1, lda} : (struct mat){a, lda, 1};
	struct mat B = trans_b ? (struct mat){b, 1, ldb} : (struct mat){b, ldb, 1};
	struct split s = {y, ldy, A, B, m, n, k, alpha, beta, n >= m};

	if (k <= 0) {
		if (beta != 1.0f)
			scale(y, ldy, m, n, beta);
		return;
	}
	if (beta != 0.0f && beta != 1.0f)
		scale(y, ldy, m, n, beta);
	if (m == 1 || m * n * k <= SMALL) {
		for (int64_t i = 0; i < m; i++)
			gemm_row(y + i * ldy, &A, &B, i, n, k, alpha, beta != 0.0f);
	} else if (m * n * k > KILN_PARALLEL_MIN) {
		kiln_parallel_for(s.cols ? (n + NR - 1) / NR : (m + MR - 1) / MR,
		                  split_part, &s);
	} else {
		gemm_blocked(y, ldy, &A, &B, m, n, k, alpha, beta);
	}
}

/* yr[j] = beta * cr[j*c_cs].  c is not read when beta is 0 (see below). */
static void
init_row(float *yr, const float *cr, int64_t c_cs, float beta, int64_t n)
{
	for (int64_t j = 0; j < n; j++)
		yr[j] = beta * cr[j * c_cs];
}

/* As in BLAS, c is not read when beta is 0, so NaNs in an unused c do
 * not leak into y. */
void
kiln_gemm_f32(float *y, const float *a, const float *b, const float *c,
              int64_t m, int64_t n, int64_t k, int trans_a, int trans_b,
              float alpha, float beta, int64_t c_rs, int64_t c_cs)
{
	int use_c = c && beta != 0.0f;

	for (int64_t i = 0; use_c && i < m; i++)
		init_row(y + i * n, c + i * c_rs, c_cs, beta, n);
	kiln_gemm_ld_f32(y, n, a, trans_a ? m : k, b, trans_b ? k : n, m, n, k,
	                 trans_a, trans_b, alpha, use_c ? 1.0f : 0.0f);
}

void
kiln_gemm_ep_f32(float *y, const float *a, const float *b, const float *c,
                 int64_t m, int64_t n, int64_t k, int trans_a, int trans_b,
                 float alpha, float beta, int64_t c_rs, int64_t c_cs,
                 const struct kiln_epilogue *e)
{
	kiln_gemm_f32(y, a, b, c, m, n, k, trans_a, trans_b, alpha, beta, c_rs,
	              c_cs);
	if (e)
		kiln_epilogue_f32(y, m * n, 0, e);
}

/* A batched product split over the threads by matrices. */
struct batch {
	float *y;
	const float *a, *b;
	int64_t m, n, k, a_bs, b_bs;
};

static void
batch_part(void *ctx, int64_t lo, int64_t hi)
{
	const struct batch *s = ctx;

	for (int64_t p = lo; p < hi; p++)
		kiln_gemm_f32(s->y + p * s->m * s->n, s->a + p * s->a_bs,
		              s->b + p * s->b_bs, NULL, s->m, s->n, s->k, 0, 0,
		              1.0f, 0.0f, 0, 0);
}

/* Many matrices share the threads out among them; a single one splits
 * itself. */
void
kiln_matmul_f32(float *y, const float *a, const float *b, int64_t batch,
                int64_t m, int64_t n, int64_t k, int64_t a_bs, int64_t b_bs)
{
	struct batch s = {y, a, b, m, n, k, a_bs, b_bs};

	if (batch > 1 && batch * m * n * k > KILN_PARALLEL_MIN)
		kiln_parallel_for(batch, batch_part, &s);
	else
		batch_part(&s, 0, batch);
}

void
kiln_matmul_ep_f32(float *y, const float *a, const float *b, int64_t batch,
                   int64_t m, int64_t n, int64_t k, int64_t a_bs,
                   int64_t b_bs, const struct kiln_epilogue *e)
{
	kiln_matmul_f32(y, a, b, batch, m, n, k, a_bs, b_bs);
	if (e)
		kiln_epilogue_f32(y, batch * m * n, 0, e);
}
