/* gemm.c: matrix products, the kernels behind matmul, gemm, dense layers
 * and (through kiln_gemm_ld_f32 and kiln_gemm_conv_f32) the convolutions
 * of conv.c.
 *
 * The blocked scheme of GotoBLAS and BLIS: op(b) is cut into KC x NC
 * blocks and op(a) into MC x KC blocks, and each block is packed into
 * panels (MR rows of op(a), or NR columns of op(b), interleaved along k)
 * so that the micro-kernel reads both with unit stride while an MR x NR
 * tile of y stays in registers for a whole KC step.  An MC x KC block of
 * a stays in L2 and a KC x NR panel of b in L1.  The micro-kernels, and
 * MR and NR, come from one set of gemm_kern.h, chosen once per process
 * by what the CPU has (AVX-512, else AVX2 with FMA, else the portable
 * set below); KILN_ISA=avx2 or KILN_ISA=generic picks a lesser set, for
 * tests and comparisons.  The packing buffers are on the stack (about
 * 224 KB): nothing is allocated and the kernel is reentrant.
 *
 * Products with few rows and b's rows contiguous (a dense layer of batch
 * 1) skip the packing: the wide kernels read a and b in place, several
 * vectors of columns at a time.  Every path and every tile computes
 * each element the same way (gemm_kern.h), in the same k blocks (sizes
 * from k alone, kblock()), so an element's value depends on its
 * operands, k and the kernel set alone, not on m, n, the path or where
 * the element lies: a product may be cut into pieces of rows or columns
 * anywhere and the pieces give the same bits.  The convolutions rely on
 * it, and so does the split of large products over the threads of
 * runtime/threads.c, by panels of NR columns or tiles of MR rows, each
 * thread with its own packing buffers on its own stack.
 *
 * A conv's product may come in segments (gemm_kern.h): the same k
 * steps over shifted operands, one product per tap, which the tiles sum
 * in their registers.  Segments read a in place, in panels or plain
 * (tile_u), since a packed block of every segment would not fit.
 *
 * The start value (beta * c, a bias per row or per column) enters in the
 * first k block's stores and the epilogue (kiln.h) runs on each tile
 * right after its last, while the tile is in L1: no extra pass over y.
 */
#include <math.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "gemm_kern.h"
#include "kiln.h"
#include "kiln_scalar.h"

enum { KC = 256, MC = 96, NC = 128 };   /* MC, NC: multiples of MR, NR */

#define MIN(a, b) ((a) < (b) ? (a) : (b))

/* ---- the portable kernel set ----------------------------------------- */

enum { GMR = 6, GNR = 8 };

/* Plain C that the compiler vectorises as it can: the sums of
 * gemm_kern.h, without fused multiply-adds. */
static void
tile_generic(const struct kiln_tile *t)
{
	float acc[GMR][GNR] = {{0}};
	int nseg = t->aseg ? t->nseg : 1;

	for (int sg = 0; sg < nseg; sg++) {
		const float *a = t->a + (t->aseg ? t->aseg[sg] : 0);
		const float *b = t->b + (t->aseg ? t->bseg[sg] : 0);
		for (int64_t p = 0; p < t->kc; p++, a += t->aps, b += t->bps)
			for (int i = 0; i < t->mr; i++) {
				float ai = a[i * t->ais];
				for (int j = 0; j < t->nr; j++)
					acc[i][j] += ai * b[j];
			}
	}
	for (int i = 0; i < t->mr; i++) {
		float *yr = t->y + i * t->ldy;
		const float *cr = t->c ? t->c + i * t->c_rs : NULL;
		for (int j = 0; j < t->nr; j++) {
			float s = 0.0f, u = t->alpha * acc[i][j];
			if (t->add)
				s = yr[j];
			else if (cr)
				s = t->beta * cr[j * t->c_cs];
			s = s + u;
			if (t->r)
				s = s + t->r[i * t->ldy + j];
			yr[j] = t->clamp ? kiln_s_clip(s, t->lo, t->hi) : s;
		}
	}
}

static const struct kiln_gemm_isa generic = {
	"generic", GMR, GNR, GMR, GNR,
	{NULL, tile_generic, tile_generic, tile_generic, tile_generic,
	 tile_generic, tile_generic},
	{NULL, tile_generic, tile_generic, tile_generic, tile_generic,
	 tile_generic, tile_generic},
	{NULL, tile_generic, tile_generic, tile_generic, tile_generic,
	 tile_generic, tile_generic},
	NULL,
};

/* ---- choosing the set -------------------------------------------------- */

static int
supports(const struct kiln_gemm_isa *s)
{
#if defined(__x86_64__) && defined(__GNUC__)
	__builtin_cpu_init();
	if (s == &kiln_gemm_avx512)
		return s->name && __builtin_cpu_supports("avx512f");
	if (s == &kiln_gemm_avx2)
		return s->name && __builtin_cpu_supports("avx2") &&
		       __builtin_cpu_supports("fma");
#endif
	return s == &generic;
}

static const struct kiln_gemm_isa *
choose(void)
{
	const struct kiln_gemm_isa *all[] = {&kiln_gemm_avx512, &kiln_gemm_avx2,
	                                     &generic};
	const char *want = getenv("KILN_ISA");
	int n = sizeof all / sizeof *all, i = 0;

	/* KILN_ISA names a set to use if the CPU has it, else the best. */
	for (int j = 0; want && j < n; j++)
		if (all[j]->name && strcmp(all[j]->name, want) == 0 &&
		    supports(all[j]))
			return all[j];
	while (!supports(all[i]))
		i++;
	return all[i];
}

/* The set in use: chosen on the first call; threads racing to choose
 * choose the same. */
static const struct kiln_gemm_isa *
isa(void)
{
	static _Atomic(const struct kiln_gemm_isa *) chosen;
	const struct kiln_gemm_isa *s = atomic_load_explicit(&chosen,
	                                                     memory_order_relaxed);

	if (!s) {
		s = choose();
		atomic_store_explicit(&chosen, s, memory_order_relaxed);
	}
	return s;
}

const char *
kiln_gemm_isa_name(void)
{
	return isa()->name;
}

/* ---- one product --------------------------------------------------- */

/* An operand in place: element (r,c) of op(x) is p[r*rs + c*cs]; or,
 * with panel > 0 (a only), the panels of kiln_conv2d_pack_weights() of
 * a matrix of kfull columns, column c being its k0 + c*cs (rs unused). */
struct mat {
	const float *p;
	int64_t rs, cs;
	int panel;
	int64_t kfull, k0;
};

/* A product y[m,n] (row stride ldy) = epilogue(start + alpha * a @ b),
 * start = y when add, else beta * c(i,j) (0 without c); the epilogue's
 * residual element is at y's offset from ybase. */
struct prod {
	const struct kiln_gemm_isa *k;
	float *y;
	int64_t ldy;
	struct mat a, b;
	int64_t m, n, kk;
	float alpha, beta;
	int add;
	const float *c;
	int64_t c_rs;
	int c_cs;
	const struct kiln_epilogue *e;
	const float *ybase;
	int cols;               /* threads split columns, else rows */
	int b_inplace;          /* the kernels read b's rows in place */
	const struct kiln_gemm_seg *seg;        /* or NULL */
};

/* The size of the k blocks of every path: k cut into ceil(k/KC) nearly
 * equal blocks, so no thin last block.  k >= 1. */
static int64_t
kblock(int64_t k)
{
	int64_t nk = (k + KC - 1) / KC;

	return (k + nk - 1) / nk;
}

/* A panel d[kc][w] of an operand whose element (p,t) is s[p*ps + t*ts],
 * for t < nt; columns nt..w-1 are zero.  The operand is read along its
 * unit stride: line by line of t when that runs along p, else row by
 * row of d, a full row of an untransposed b in one copy; the set's
 * pack_t does the first where it has one. */
static void
pack(const struct kiln_gemm_isa *k, float *d, int64_t w, const float *s,
     int64_t ps, int64_t ts, int64_t nt, int64_t kc)
{
	if (ps == 1 && ts != 1) {
		if (k->pack_t) {
			k->pack_t(d, w, s, ts, nt, kc);
			return;
		}
		for (int64_t t = 0; t < nt; t++)
			for (int64_t p = 0; p < kc; p++)
				d[p * w + t] = s[t * ts + p];
		for (int64_t t = nt; t < w; t++)
			for (int64_t p = 0; p < kc; p++)
				d[p * w + t] = 0.0f;
		return;
	}
	for (int64_t p = 0; p < kc; p++, d += w) {
		if (nt == w && ts == 1) {
			memcpy(d, s + p * ps, (size_t)w * sizeof *d);
			continue;
		}
		for (int64_t t = 0; t < w; t++)
			d[t] = t < nt ? s[p * ps + t * ts] : 0.0f;
	}
}

/* The tile at (i, j) of y for the k block from pc (kc long), its
 * operands at a (ais, aps) and b (bps); then the epilogue on its rows
 * when this is the last block. */
static void
tile(const struct prod *s, kiln_tile_fn *fn, int64_t i, int64_t j,
     int64_t mr, int64_t nr, const float *a, int64_t ais, int64_t aps,
     const float *b, int64_t bps, int64_t pc, int64_t kc, int64_t acol)
{
	struct kiln_tile t = {
		s->y + i * s->ldy + j, s->ldy, a, ais, aps, b, bps,
		s->c ? s->c + i * s->c_rs + j * s->c_cs : NULL, s->c_rs, s->c_cs,
		kc, (int)mr, (int)nr, s->alpha, s->beta, s->add || pc > 0, NULL, 0,
		0.0f, 0.0f, 0, NULL, NULL,
	};
	const struct kiln_epilogue *e = s->e;
	bool last = pc + kc == s->kk;
	int64_t aseg[KILN_GEMM_MAXSEG];

	/* segments: a's column offsets in floats, acol a column */
	if (s->seg) {
		for (int g = 0; g < s->seg->n; g++)
			aseg[g] = s->seg->a[g] * acol;
		t.nseg = s->seg->n;
		t.aseg = aseg;
		t.bseg = s->seg->b;
	}

	/* The kernels' stores do the residual add, relu and clip themselves;
	 * other activations run on the tile while it is in L1. */
	if (e && last && (e->act == KILN_ACT_NONE || e->act == KILN_ACT_RELU ||
	                  e->act == KILN_ACT_CLIP)) {
		t.r = e->res ? e->res + (t.y - s->ybase) : NULL;
		t.clamp = e->act != KILN_ACT_NONE;
		t.lo = e->act == KILN_ACT_CLIP ? e->alpha : 0.0f;
		t.hi = e->act == KILN_ACT_CLIP ? e->beta : INFINITY;
		e = NULL;
	}
	fn(&t);
	if (e && last)
		for (int64_t r = 0; r < mr; r++) {
			float *yr = t.y + r * s->ldy;
			kiln_epilogue_f32(yr, nr, yr - s->ybase, e);
		}
}

/* Where row i of a packed a starts for the k block from pc, its panel's
 * width (*aps), and *tm cut so the tile stays inside that panel.  The
 * panel width divides by every set's mr, so the cut only shortens the
 * last panel's tiles. */
static const float *
panel_at(const struct prod *s, int64_t i, int64_t pc, int64_t *tm,
         int64_t *aps)
{
	const struct mat *a = &s->a;
	int64_t q = i / a->panel, r = i % a->panel;
	int64_t w = MIN(a->panel, s->m - q * a->panel);

	*tm = MIN(*tm, w - r);
	*aps = w * a->cs;
	return a->p + q * a->panel * a->kfull + (a->k0 + pc * a->cs) * w + r;
}

/* Rows i0..i1 and columns j0..j1 of the product, blocked and packed. */
static void
blocked(const struct prod *s, int64_t i0, int64_t i1, int64_t j0, int64_t j1)
{
	const struct kiln_gemm_isa *k = s->k;
	_Alignas(64) float pa[MC * KC], pb[KC * NC];
	int64_t kb = kblock(s->kk), mr = k->mr, nr = k->nr;
	const struct mat *a = &s->a, *b = &s->b;
	/* a plain a is packed a block at a time, except with segments: the
	 * block of every segment would not fit, and tile_u reads it */
	bool a_packs = !a->panel && !s->seg;

	for (int64_t jc = j0; jc < j1; jc += NC) {
		int64_t nc = MIN(NC, j1 - jc);
		for (int64_t pc = 0; pc < s->kk; pc += kb) {
			int64_t kc = MIN(kb, s->kk - pc);
			for (int64_t j = 0; !s->b_inplace && j < nc; j += nr)
				pack(k, pb + j * kc, nr, b->p + pc * b->rs + (jc + j) * b->cs,
				     b->rs, b->cs, MIN(nr, nc - j), kc);
			for (int64_t ic = i0; ic < i1; ic += MC) {
				int64_t mc = MIN(MC, i1 - ic);
				for (int64_t i = 0; a_packs && i < mc; i += mr)
					pack(k, pa + i * kc, mr,
					     a->p + (ic + i) * a->rs + pc * a->cs, a->cs, a->rs,
					     MIN(mr, mc - i), kc);
				for (int64_t j = 0; j < nc; j += nr)
					for (int64_t i = 0, tm; i < mc; i += tm) {
						int64_t tn = MIN(nr, nc - j), ais = 1, aps = mr;
						int64_t bps = nr, acol = 1;
						const float *ap = pa + i * kc, *bp = pb + j * kc;
						kiln_tile_fn *fn;
						tm = MIN(mr, mc - i);
						fn = k->tile[tm];
						if (a->panel) {
							ap = panel_at(s, ic + i, pc, &tm, &aps);
							fn = k->tile[tm];
							acol = aps / a->cs;
						} else if (!a_packs) {
							/* segments of a plain a: in place */
							ap = a->p + (ic + i) * a->rs + pc * a->cs;
							ais = a->rs;
							aps = a->cs;
							fn = k->tile_u[tm];
						}
						if (s->b_inplace) {
							bp = b->p + pc * b->rs + jc + j;
							bps = b->rs;
						}
						tile(s, fn, ic + i, jc + j, tm, tn, ap, ais, aps, bp,
						     bps, pc, kc, acol);
					}
			}
		}
	}
}

/* Rows i0..i1 and columns j0..j1 of a product whose b has contiguous
 * rows, by the wide kernels, reading a and b in place. */
static void
wide(const struct prod *s, int64_t i0, int64_t i1, int64_t j0, int64_t j1)
{
	const struct kiln_gemm_isa *k = s->k;
	int64_t kb = kblock(s->kk);

	for (int64_t i = i0; i < i1; i += k->wide_mr)
		for (int64_t j = j0; j < j1; j += k->wide_nr) {
			int64_t tm = MIN(k->wide_mr, i1 - i), tn = MIN(k->wide_nr, j1 - j);
			for (int64_t pc = 0; pc < s->kk; pc += kb)
				tile(s, k->wide[tm], i, j, tm, tn,
				     s->a.p + i * s->a.rs + pc * s->a.cs, s->a.rs, s->a.cs,
				     s->b.p + pc * s->b.rs + j, s->b.rs, pc,
				     MIN(kb, s->kk - pc), 1);
		}
}

static int
is_wide(const struct prod *s)
{
	return !s->a.panel && !s->seg && s->b.cs == 1 &&
	       s->m <= 2 * s->k->wide_mr;
}

/* Parts lo..hi of the product for the threads: panels of NR columns or
 * tiles of MR rows. */
static void
part(void *ctx, int64_t lo, int64_t hi)
{
	const struct prod *s = ctx;
	int64_t i0 = 0, i1 = s->m, j0 = 0, j1 = s->n;

	if (s->cols) {
		j0 = lo * s->k->nr;
		j1 = MIN(hi * s->k->nr, s->n);
	} else {
		i0 = lo * s->k->mr;
		i1 = MIN(hi * s->k->mr, s->m);
	}
	if (is_wide(s))
		wide(s, i0, i1, j0, j1);
	else
		blocked(s, i0, i1, j0, j1);
}

/* y *= beta over m x n, or y = 0 when beta is 0 (y not read). */
static void
scale(float *y, int64_t ldy, int64_t m, int64_t n, float beta)
{
	for (int64_t i = 0; i < m; i++)
		for (int64_t j = 0; j < n; j++)
			y[i * ldy + j] = beta == 0.0f ? 0.0f : beta * y[i * ldy + j];
}

static void
run(struct prod *s)
{
	if (s->m <= 0 || s->n <= 0)
		return;
	if (s->kk <= 0) {
		/* No products: the start, and the epilogue. */
		for (int64_t i = 0; i < s->m; i++)
			for (int64_t j = 0; j < s->n; j++) {
				float *v = s->y + i * s->ldy + j;
				if (!s->add)
					*v = s->c ? s->beta * s->c[i * s->c_rs + j * s->c_cs] : 0.0f;
			}
		for (int64_t i = 0; s->e && i < s->m; i++) {
			float *yr = s->y + i * s->ldy;
			kiln_epilogue_f32(yr, s->n, yr - s->ybase, s->e);
		}
		return;
	}
	s->cols = s->n >= s->m;
	int64_t parts = s->cols ? (s->n + s->k->nr - 1) / s->k->nr :
	                (s->m + s->k->mr - 1) / s->k->mr;
	if (s->m * s->n * s->kk > KILN_PARALLEL_MIN)
		kiln_parallel_for(parts, part, s);
	else
		part(s, 0, parts);
}

static struct mat
operand(const float *p, int64_t ld, int trans)
{
	return trans ? (struct mat){p, 1, ld, 0, 0, 0} :
	               (struct mat){p, ld, 1, 0, 0, 0};
}

void
kiln_gemm_ld_f32(float *y, int64_t ldy, const float *a, int64_t lda,
                 const float *b, int64_t ldb, int64_t m, int64_t n,
                 int64_t k, int trans_a, int trans_b, float alpha,
                 float beta)
{
	struct prod s = {isa(), y, ldy, operand(a, lda, trans_a),
	                 operand(b, ldb, trans_b), m, n, k, alpha, 1.0f,
	                 beta != 0.0f, NULL, 0, 0, NULL, y, 0, 0, NULL};

	if (beta != 0.0f && beta != 1.0f)
		scale(y, ldy, m, n, beta);
	run(&s);
}

void
kiln_gemm_conv_f32(float *y, int64_t ldy, const struct kiln_gemm_a *a,
                   const float *b, int64_t ldb, int b_inplace, int64_t m,
                   int64_t n, int64_t k, const float *bias, int add,
                   const struct kiln_epilogue *e, const float *ybase,
                   const struct kiln_gemm_seg *seg)
{
	struct mat am = {a->p + (a->panel ? 0 : a->k0), a->kfull, a->kstep,
	                 a->panel, a->kfull, a->k0};
	/* b in place is right for any b here (rows contiguous), and
	 * segments need it */
	struct prod s = {isa(), y, ldy, am, operand(b, ldb, 0), m, n, k, 1.0f,
	                 1.0f, add, bias, 1, 0, e, ybase, 0, b_inplace || seg,
	                 seg};

	run(&s);
}

void
kiln_gemm_transpose(float *d, int64_t w, const float *s, int64_t ts,
                    int64_t nt, int64_t kc)
{
	pack(isa(), d, w, s, 1, ts, nt, kc);
}

void
kiln_gemm_cv_f32(float *yt, int64_t ldyt, const float *c, int64_t n,
                 const float *w, int64_t kfull, int64_t k0, int64_t kn,
                 int64_t oc, int64_t o0, int64_t on, const float *bias,
                 int add)
{
	const struct kiln_gemm_isa *k = isa();
	struct prod s = {k, yt, ldyt, {0}, {0}, n, on, kn, 1.0f, 1.0f, add,
	                 bias ? bias + o0 : NULL, 0, 1, NULL, yt, 0, 1, NULL};
	int64_t kb = kblock(kn), nt = (n + k->mr - 1) / k->mr;

	if (n <= 0 || on <= 0 || kn <= 0)
		return;
	/* b, a panel's kc x tn block, stays in L1 while the row tiles, as
	 * many as mr rows allow and of nearly equal heights, pass over it */
	for (int64_t pc = 0; pc < kn; pc += kb) {
		int64_t kc = MIN(kb, kn - pc);
		for (int64_t j = 0, tn; j < on; j += tn) {
			int64_t o = o0 + j, q = o / KILN_CONV_CPANEL;
			int64_t pw = MIN(KILN_CONV_CPANEL, oc - q * KILN_CONV_CPANEL);
			int64_t jj = o % KILN_CONV_CPANEL;
			const float *b = w + q * KILN_CONV_CPANEL * kfull +
			                 (k0 + pc) * pw + jj;
			tn = MIN(MIN(k->nr, pw - jj), on - j);
			for (int64_t t = 0, i = 0, tm; t < nt; t++, i += tm) {
				tm = (n - i + nt - t - 1) / (nt - t);
				tile(&s, k->tile[tm], i, j, tm, tn, c + pc * n + i, 1, n, b,
				     pw, pc, kc, 1);
			}
		}
	}
}

/* As in BLAS, c is not read when beta is 0, so NaNs in an unused c do
 * not leak into y. */
void
kiln_gemm_ep_f32(float *y, const float *a, const float *b, const float *c,
                 int64_t m, int64_t n, int64_t k, int trans_a, int trans_b,
                 float alpha, float beta, int64_t c_rs, int64_t c_cs,
                 const struct kiln_epilogue *e)
{
	int use_c = c && beta != 0.0f;
	struct prod s = {isa(), y, n, operand(a, trans_a ? m : k, trans_a),
	                 operand(b, trans_b ? k : n, trans_b), m, n, k, alpha,
	                 beta, 0, use_c ? c : NULL, c_rs, (int)c_cs, e, y, 0, 0, NULL};

	if (use_c && c_cs > 1) {
		/* A c that is neither broadcast nor contiguous along n: y
		 * starts as beta * c, as the kernels' start would. */
		for (int64_t i = 0; i < m; i++)
			for (int64_t j = 0; j < n; j++)
				y[i * n + j] = beta * c[i * c_rs + j * c_cs];
		s.add = 1;
		s.c = NULL;
	}
	run(&s);
}

void
kiln_gemm_f32(float *y, const float *a, const float *b, const float *c,
              int64_t m, int64_t n, int64_t k, int trans_a, int trans_b,
              float alpha, float beta, int64_t c_rs, int64_t c_cs)
{
	kiln_gemm_ep_f32(y, a, b, c, m, n, k, trans_a, trans_b, alpha, beta,
	                 c_rs, c_cs, NULL);
}

/* A batched product split over the threads by matrices. */
struct batch {
	float *y;
	const float *a, *b;
	int64_t m, n, k, a_bs, b_bs;
	const struct kiln_epilogue *e;
};

static void
batch_part(void *ctx, int64_t lo, int64_t hi)
{
	const struct batch *s = ctx;

	for (int64_t p = lo; p < hi; p++) {
		float *y = s->y + p * s->m * s->n;
		struct prod q = {isa(), y, s->n, operand(s->a + p * s->a_bs, s->k, 0),
		                 operand(s->b + p * s->b_bs, s->n, 0), s->m, s->n,
		                 s->k, 1.0f, 1.0f, 0, NULL, 0, 0, s->e, s->y, 0, 0, NULL};
		run(&q);
	}
}

/* Many matrices share the threads out among them; a single one splits
 * itself. */
void
kiln_matmul_ep_f32(float *y, const float *a, const float *b, int64_t batch,
                   int64_t m, int64_t n, int64_t k, int64_t a_bs,
                   int64_t b_bs, const struct kiln_epilogue *e)
{
	struct batch s = {y, a, b, m, n, k, a_bs, b_bs, e};

	if (batch > 1 && batch * m * n * k > KILN_PARALLEL_MIN)
		kiln_parallel_for(batch, batch_part, &s);
	else
		batch_part(&s, 0, batch);
}

void
kiln_matmul_f32(float *y, const float *a, const float *b, int64_t batch,
                int64_t m, int64_t n, int64_t k, int64_t a_bs, int64_t b_bs)
{
	kiln_matmul_ep_f32(y, a, b, batch, m, n, k, a_bs, b_bs, NULL);
}
