/* conv.c: 2-D and 3-D convolution and transposed convolution, NCHW and
 * NCDHW, with strides, padding, dilation, groups.
 *
 * The 2-D kernels are matrix products (runtime/gemm.c).  Per image and
 * group, conv2d is y[og, oh*ow] = w[og, K] @ col[K, oh*ow], K = cg*kh*kw,
 * where column (i,j) of the im2col matrix col holds the input window of
 * output position (i,j), zeros in the padding.  col is built a piece at
 * a time in a KILN_CONV_COLBUF-float stack buffer (the kernels get no
 * scratch memory), whole columns when they fit; a 1x1 kernel of stride 1
 * without padding uses x itself.  The transposed convolution runs it the
 * other way: col = w^T @ x, then col2im adds each column into the output
 * windows; with unit strides it is a conv2d with the weights flipped.
 * Asymmetric padding needs no parameter: the bottom/right pads
 * are whatever oh and ow imply.  Large convolutions are split over the
 * threads of runtime/threads.c, each with its own col buffer: conv2d by
 * pieces of columns of an image and group (each output element belongs
 * to one), the transposed one by image and group (col2im's windows
 * overlap across pieces).  A piece's arithmetic does not depend on who
 * runs it, so neither do the results.
 *
 * Two kinds of conv2d skip the im2col matrix: those with one input
 * channel per group (depthwise and the like) are computed directly, a
 * plane at a time (dw_block()), and those of stride 1 with enough
 * output positions multiply a padded copy of the input rows in place
 * (shift_block()).  With packed weights, convs with few output
 * positions and many channels run their product along the channels
 * (cv_unit()).  Each section below says when it applies.  The path is
 * chosen from the shapes alone.  The stack holds at most about 520
 * KB: the stride-1 path's SHIFT_BUF floats and the product's panels,
 * under a transposed conv's flipped weights (CONVT_FLIP floats).
 *
 * The 3-D kernels work tap by tap: each tap (q,u,v) adds w[o,q,u,v] times
 * a strided window of an input plane to an output plane (add_tap()), or
 * scatters the other way (scatter_tap()), with the rows and columns in
 * the padding cut off beforehand (kiln_span()), so the inner loop has no
 * bounds tests.  They loop over the depth taps and hand each (output
 * plane, input plane) pair to that 2-D plane code.
 */
#include <math.h>
#include <string.h>

#include "gemm_kern.h"
#include "kiln.h"
#include "kiln_scalar.h"
#include "phase.h"

static void
fill(float *y, int64_t n, float v)
{
	for (int64_t i = 0; i < n; i++)
		y[i] = v;
}

/* ---- 2-D: im2col and matrix products -------------------------------- */

#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))

/* The narrowest piece of col worth a matrix product; wider im2col
 * matrices are cut into rows as well. */
enum { MINCOL = 64 };

/* A 1x1 kernel of stride 1 without padding: the im2col matrix is x. */
static int
pointwise(const struct kiln_conv2d *p)
{
	return p->kh == 1 && p->kw == 1 && p->sh == 1 && p->sw == 1 &&
	       p->pt == 0 && p->pl == 0 && p->oh == p->h && p->ow == p->w;
}

/* The size of the ceil(n/max) nearly equal parts n is cut into: equal
 * parts avoid a last sliver the matrix product does badly on. */
static int64_t
part(int64_t n, int64_t max)
{
	int64_t k = (n + max - 1) / max;

	return n <= max ? n : (n + k - 1) / k;
}

void
kiln_conv2d_chunks(const struct kiln_conv2d *p, int64_t rows, int64_t cols,
                   int64_t *nr, int64_t *nc)
{
	if (pointwise(p)) {
		*nr = rows;
		*nc = cols;
		return;
	}
	*nc = part(cols, MAX(KILN_CONV_COLBUF / MAX(rows, 1), MINCOL));
	*nr = part(rows, KILN_CONV_COLBUF / MAX(*nc, 1));
}

/* cr[t] for t < jn: input plane xp seen through tap (u,v) at output
 * position j0 + t (row-major over oh x ow), 0 in the padding.  The
 * positions go by output row, each cut into padding and the inside
 * [c0, c1) that kiln_span() finds once for all rows. */
KILN_CLONES static void
im2col_row(float *restrict cr, const float *restrict xp, int64_t u, int64_t v,
           int64_t j0, int64_t jn, const struct kiln_conv2d *p)
{
	int64_t du = u * p->dh - p->pt, dv = v * p->dw - p->pl, c0, c1;

	kiln_span(dv, p->sw, p->w, p->ow, &c0, &c1);
	/* output row i from column a: one division for the first, then
	 * whole rows (divisions cost more than a short row's copy) */
	int64_t i = j0 / p->ow, a = j0 % p->ow;
	for (int64_t t = 0; t < jn; i++, a = 0) {
		int64_t b = MIN(p->ow, a + jn - t);
		int64_t ih = i * p->sh + du, xr = ih * p->w + dv;
		int64_t lo = MIN(MAX(c0, a), b), hi = MAX(MIN(c1, b), lo);
		float *d = cr + t - a;  /* d[j] is output column j */

		if (ih < 0 || ih >= p->h)
			lo = hi = b;
		for (int64_t j = a; j < lo; j++)
			d[j] = 0.0f;
		if (p->sw == 1)
			for (int64_t j = lo; j < hi; j++)
				d[j] = xp[xr + j];
		else if (p->sw == 2)    /* a constant stride vectorizes */
			for (int64_t j = lo; j < hi; j++)
				d[j] = xp[xr + 2 * j];
		else
			for (int64_t j = lo; j < hi; j++)
				d[j] = xp[xr + j * p->sw];
		for (int64_t j = hi; j < b; j++)
			d[j] = 0.0f;
		t += b - a;
	}
}

const float *
kiln_conv2d_im2col(float *col, int64_t *ld, const float *xg, int64_t k0,
                   int64_t kn, int64_t j0, int64_t jn,
                   const struct kiln_conv2d *p)
{
	int64_t taps = p->kh * p->kw, plane = p->h * p->w;

	if (pointwise(p)) {
		*ld = plane;
		return xg + k0 * plane + j0;
	}
	for (int64_t r = 0; r < kn; r++) {
		int64_t q = (k0 + r) / taps, t = (k0 + r) % taps;
		im2col_row(col + r * jn, xg + q * plane, t / p->kw, t % p->kw, j0,
		           jn, p);
	}
	*ld = jn;
	return col;
}

/* The adjoint of im2col_row() for the transposed convolution: cr[t] for
 * t < jn, input position j0 + t (row-major over h x w), is added to
 * output plane yp at (i*sh - pt + u*dh, j*sw - pl + v*dw) when inside. */
KILN_CLONES static void
col2im_row(float *restrict yp, const float *restrict cr, int64_t u,
           int64_t v, int64_t j0, int64_t jn, const struct kiln_conv2d *p)
{
	int64_t du = u * p->dh - p->pt, dv = v * p->dw - p->pl, c0, c1;

	kiln_span(dv, p->sw, p->ow, p->w, &c0, &c1);
	for (int64_t t = 0; t < jn;) {
		int64_t a = (j0 + t) % p->w, b = MIN(p->w, a + jn - t);
		int64_t oi = (j0 + t) / p->w * p->sh + du, yr = oi * p->ow + dv;
		int64_t lo = MIN(MAX(c0, a), b), hi = MAX(MIN(c1, b), lo);
		const float *s = cr + t;        /* s[j - a] is input column j */

		if (oi < 0 || oi >= p->oh)
			;
		else if (p->sw == 1)    /* unit and constant strides vectorize */
			for (int64_t j = lo; j < hi; j++)
				yp[yr + j] += s[j - a];
		else if (p->sw == 2)
			for (int64_t j = lo; j < hi; j++)
				yp[yr + 2 * j] += s[j - a];
		else
			for (int64_t j = lo; j < hi; j++)
				yp[yr + j * p->sw] += s[j - a];
		t += b - a;
	}
}

/* Rows m0..m0+mn of a col piece, row (o*kh + u)*kw + v, into output
 * channel o of the group at yg. */
static void
col2im(float *yg, const float *col, int64_t m0, int64_t mn, int64_t j0,
       int64_t jn, const struct kiln_conv2d *p)
{
	int64_t taps = p->kh * p->kw, oplane = p->oh * p->ow;

	for (int64_t r = 0; r < mn; r++) {
		int64_t o = (m0 + r) / taps, t = (m0 + r) % taps;
		col2im_row(yg + o * oplane, col + r * jn, t / p->kw, t % p->kw, j0,
		           jn, p);
	}
}

/* A 2-D convolution and its im2col pieces, nr rows by nc columns (from
 * kiln_conv2d_chunks), npiece of them across an image's columns. */
struct conv_job {
	float *y;
	const float *x, *w, *b;
	const struct kiln_conv2d *p;
	int64_t nr, nc, npiece;
	const struct kiln_epilogue *e;  /* or NULL */
	int packed;                     /* w in panels */
};

/* Columns j0..j0+jn of one group of one image: yg[og, j0:j0+jn] = bg +
 * wg[og, K] @ col[K, j0:j0+jn], a piece of rows of col at a time, the
 * pieces adding up in y, the bias in the first one's stores and the
 * epilogue in the last one's. */
static void
conv_piece(float *yg, const float *xg, const float *wg, const float *bg,
           float *col, int64_t j0, int64_t jn, const struct conv_job *s)
{
	const struct kiln_conv2d *p = s->p;
	int64_t og = p->oc / p->group, k = p->c / p->group * p->kh * p->kw;
	int64_t oplane = p->oh * p->ow, ld;

	for (int64_t k0 = 0; k0 < k; k0 += s->nr) {
		int64_t kn = MIN(s->nr, k - k0);
		const float *m = kiln_conv2d_im2col(col, &ld, xg, k0, kn, j0, jn, p);
		struct kiln_gemm_a a = {wg, k, k0, s->packed ? KILN_CONV_PANEL : 0,
		                        1};
		kiln_gemm_conv_f32(yg + j0, oplane, &a, m, ld, 1, og, jn, kn,
		                   k0 ? NULL : bg, k0 > 0,
		                   k0 + kn == k ? s->e : NULL, s->y, NULL);
	}
}

/* Column pieces lo..hi-1, counted over images, groups, then pieces. */
static void
conv_part(void *ctx, int64_t lo, int64_t hi)
{
	const struct conv_job *s = ctx;
	const struct kiln_conv2d *p = s->p;
	float col[KILN_CONV_COLBUF];
	int64_t cg = p->c / p->group, og = p->oc / p->group;
	int64_t plane = p->h * p->w, oplane = p->oh * p->ow;

	for (int64_t u = lo; u < hi; u++) {
		int64_t ng = u / s->npiece, g = ng % p->group;   /* n*group + g */
		int64_t j0 = u % s->npiece * s->nc;
		conv_piece(s->y + ng * og * oplane, s->x + ng * cg * plane,
		           s->w + g * og * cg * p->kh * p->kw,
		           s->b ? s->b + g * og : NULL, col, j0,
		           MIN(s->nc, oplane - j0), s);
	}
}

void
kiln_conv2d_f32(float *y, const float *x, const float *w, const float *b,
                const struct kiln_conv2d *p)
{
	kiln_conv2d_ep_f32(y, x, w, b, p, NULL);
}

/* ---- stride 1: products over a padded copy of the input rows --------- */

/* With unit strides, tap (u,v) of every output of a block of rows reads
 * one contiguous run of a copy of the input rows the block needs, the
 * padding filled in, at the copy's row pitch q = ow + (kw-1)*dw:
 * output (i,j) at column i*q + j of the block reads copy element
 * (i + u*dh)*q + j + v*dw.  The block is computed at that pitch (the
 * last kw-1 columns of each row are thrown away), then its rows are
 * copied into y and given the epilogue.  Two ways:
 *
 * - by taps, with at least SHIFT_MINC input channels a group: the conv
 *   is a sum over the taps of products w[:, :, u, v] @ the copy shifted
 *   by the tap, the copy read in place with a channel's rows as the
 *   product's rows, and the weights in place too, a tap's column of
 *   every input channel (kstep = kh*kw), plain or in panels.  The taps
 *   are the segments of one product (struct kiln_gemm_seg), summed in
 *   the kernels' registers, not one product each added into the block
 *   (SqueezeNet's 3x3 layers of 16 to 64 channels: 10% to 35% faster).
 *   No im2col matrix, kh*kw times the input, is ever built;
 * - flat, with fewer channels (too short a product per tap): the
 *   im2col matrix at pitch q, each of its rows one copy of a run of the
 *   padded copy (where im2col proper copies a piece per output row, a
 *   call per few floats on small images), then one product.
 *
 * Either pays with enough output positions (SHIFT_MINPOS): with few
 * positions and many channels, the weights are the larger operand, and
 * reading a tap's column of them nine times over costs more than
 * im2col saves (measured on ResNet-18's 7x7 layers: 82 against 104
 * GFLOP/s; its 56x56 to 14x14 layers gain 20% to 30%).  The others go
 * through im2col.  The buffers share SHIFT_BUF floats on the stack. */
enum { SHIFT_BUF = 57344, SHIFT_OB = 24576, SHIFT_MINC = 16,
       SHIFT_MINPOS = 100, SHIFT_FLATK = 1024 };

/* The blocks: the copy's pitch, rows of output per block, output
 * channels per part (a multiple of KILN_CONV_PANEL, so parts start on a
 * panel), input channels per chunk (all of them when flat); how many of
 * each there are; and where the buffers start in SHIFT_BUF. */
struct shift_geom {
	int64_t q, rows, nblock, op, npart, cc;
	int flat;
	int64_t col, ob;        /* offsets of the im2col rows, the block */
};

/* The rows of output a block, at most max: the products' columns come
 * in tiles of up to 32 (the widest set's), and a block of r rows has
 * (r-1)*q + ow of them, so the count that wastes least of the last
 * tiles, each block counted a tile more for reading the weights again. */
static int64_t
shift_rows(const struct kiln_conv2d *p, int64_t q, int64_t max)
{
	int64_t best = 1, bestcost = INT64_MAX;

	for (int64_t r = max; r >= 1; r--) {
		int64_t nb = (p->oh + r - 1) / r, last = p->oh - (nb - 1) * r;
		int64_t cost = (nb - 1) * (((r - 1) * q + p->ow + 31) / 32 + 1) +
		               ((last - 1) * q + p->ow + 31) / 32 + 1;
		if (cost < bestcost)
			best = r, bestcost = cost;
	}
	return best;
}

/* Whether conv p goes by these products, and their blocks: from the
 * shapes alone, so the arithmetic does not depend on the threads. */
static int
shift_geometry(struct shift_geom *gm, const struct kiln_conv2d *p)
{
	int64_t cg = p->c / p->group, og = p->oc / p->group;
	int64_t q = p->ow + (p->kw - 1) * p->dw, span = (p->kh - 1) * p->dh;
	int64_t taps = p->kh * p->kw, op = og, rows, units, max;
	int flat = cg < SHIFT_MINC;

	if (p->sh != 1 || p->sw != 1 || taps == 1 ||
	    p->oh * p->ow < SHIFT_MINPOS || p->ow < 1 ||
	    (flat && cg * taps > SHIFT_FLATK) ||
	    MIN(og, KILN_CONV_PANEL) * q > SHIFT_OB)
		return 0;
	if (op * q > SHIFT_OB)
		op = SHIFT_OB / q / KILN_CONV_PANEL * KILN_CONV_PANEL;
	if (flat) {
		/* cg*(r + span)*q copied, cg*taps*((r-1)*q + ow) of im2col
		 * and op*r*q of output in SHIFT_BUF */
		int64_t fixed = cg * span * q + cg * taps * (p->ow - q);
		max = (SHIFT_BUF - fixed) / ((cg + cg * taps + op) * q);
	} else
		max = MIN(SHIFT_OB / (op * q), (SHIFT_BUF - SHIFT_OB) / q - span);
	if (max < 1)
		return 0;
	rows = shift_rows(p, q, MIN(p->oh, max));
	/* at least 4 parts for the threads where the channels allow */
	units = p->n * p->group * ((p->oh + rows - 1) / rows);
	while (units * ((og + op - 1) / op) < 4 && op > KILN_CONV_PANEL)
		op = ((op + 1) / 2 + KILN_CONV_PANEL - 1) / KILN_CONV_PANEL *
		     KILN_CONV_PANEL;
	*gm = (struct shift_geom){
		q, rows, (p->oh + rows - 1) / rows, op, (og + op - 1) / op,
		flat ? cg : part(cg, (SHIFT_BUF - SHIFT_OB) / ((rows + span) * q)),
		flat, 0, SHIFT_BUF - SHIFT_OB,
	};
	if (flat) {
		gm->col = cg * (rows + span) * q;
		gm->ob = gm->col + cg * taps * ((rows - 1) * q + p->ow);
	}
	return 1;
}

/* Output rows i0..i0+rows-1, channels o0..o0+on-1 of group g of image
 * n (ng = n*group + g), buffers in buf: per chunk of input channels,
 * the padded copy, then a product per tap (or flat, the im2col rows and
 * one product) into the block, the bias in the first one's stores; then
 * the block's rows into y, and the epilogue. */
static void
shift_block(const struct conv_job *s, const struct shift_geom *gm,
            float *buf, int64_t ng, int64_t i0, int64_t rows, int64_t o0,
            int64_t on)
{
	const struct kiln_conv2d *p = s->p;
	int64_t cg = p->c / p->group, og = p->oc / p->group, g = ng % p->group;
	int64_t taps = p->kh * p->kw, k = cg * taps, q = gm->q;
	int64_t prow = rows + (p->kh - 1) * p->dh, n = (rows - 1) * q + p->ow;
	int64_t plane = p->h * p->w, oplane = p->oh * p->ow, c0, c1;
	const float *xg = s->x + ng * cg * plane;
	const float *bg = s->b ? s->b + g * og + o0 : NULL;
	const float *wg = s->w + (g * og + o0) * k;
	float *yg = s->y + ng * og * oplane, *xb = buf, *ob = buf + gm->ob;
	int panel = s->packed ? KILN_CONV_PANEL : 0;

	kiln_span(-p->pl, 1, p->w, q, &c0, &c1);
	for (int64_t ch = 0; ch < cg; ch += gm->cc) {
		int64_t cn = MIN(gm->cc, cg - ch);
		memset(xb, 0, (size_t)(cn * prow * q) * sizeof *xb);
		for (int64_t c = 0; c < cn; c++)
			for (int64_t r = 0; r < prow; r++) {
				int64_t ih = i0 - p->pt + r;
				if (ih >= 0 && ih < p->h && c1 > c0)
					memcpy(xb + (c * prow + r) * q + c0,
					       xg + (ch + c) * plane + ih * p->w + c0 - p->pl,
					       (size_t)(c1 - c0) * sizeof *xb);
			}
		if (gm->flat) {
			float *col = buf + gm->col;
			for (int64_t c = 0; c < cn; c++)
				for (int64_t t = 0; t < taps; t++)
					memcpy(col + (c * taps + t) * n,
					       xb + c * prow * q +
					       t / p->kw * p->dh * q + t % p->kw * p->dw,
					       (size_t)n * sizeof *col);
			struct kiln_gemm_a a = {wg, k, 0, panel, 1};
			kiln_gemm_conv_f32(ob, rows * q, &a, col, n, 1, on, n, k, bg,
			                   0, NULL, ob, NULL);
			continue;
		}
		/* the taps as segments of one product, KILN_GEMM_MAXSEG at a
		 * time: tap t reads the weights' column t of each channel and
		 * the copy shifted by (u*dh, v*dw) */
		for (int64_t t0 = 0; t0 < taps; t0 += KILN_GEMM_MAXSEG) {
			int64_t nt = MIN(KILN_GEMM_MAXSEG, taps - t0);
			int64_t ao[KILN_GEMM_MAXSEG], bo[KILN_GEMM_MAXSEG];
			int first = ch == 0 && t0 == 0;
			for (int64_t t = 0; t < nt; t++) {
				ao[t] = t;
				bo[t] = (t0 + t) / p->kw * p->dh * q +
				        (t0 + t) % p->kw * p->dw;
			}
			struct kiln_gemm_a a = {wg, k, ch * taps + t0, panel, taps};
			struct kiln_gemm_seg sg = {(int)nt, ao, bo};
			kiln_gemm_conv_f32(ob, rows * q, &a, xb, prow * q, 1, on, n,
			                   cn, first ? bg : NULL, !first, NULL, ob, &sg);
		}
	}
	for (int64_t o = 0; o < on; o++) {
		float *yb = yg + (o0 + o) * oplane + i0 * p->ow;
		for (int64_t i = 0; i < rows; i++)
			memcpy(yb + i * p->ow, ob + (o * rows + i) * q,
			       (size_t)p->ow * sizeof *yb);
		if (s->e)
			kiln_epilogue_f32(yb, rows * p->ow, yb - s->y, s->e);
	}
}

struct shift_job {
	const struct conv_job *s;
	struct shift_geom gm;
};

/* Units lo..hi-1, counted over images and groups, row blocks, then
 * parts of the output channels. */
static void
shift_part(void *ctx, int64_t lo, int64_t hi)
{
	const struct shift_job *j = ctx;
	const struct shift_geom *gm = &j->gm;
	const struct kiln_conv2d *p = j->s->p;
	int64_t og = p->oc / p->group;
	float buf[SHIFT_BUF];

	for (int64_t u = lo; u < hi; u++) {
		int64_t o0 = u % gm->npart * gm->op, b = u / gm->npart;
		int64_t i0 = b % gm->nblock * gm->rows, ng = b / gm->nblock;
		shift_block(j->s, gm, buf, ng, i0, MIN(gm->rows, p->oh - i0),
		            o0, MIN(gm->op, og - o0));
	}
}

/* ---- one input channel per group: depthwise, and the like ------------ */

/* Rows i0..i1 of output plane yp += weight wv times input plane xp seen
 * through tap (u,v): one tap over a block of rows, the columns inside
 * the input found once (kiln_span()).  The path of planes too wide for
 * the padded buffer below. */
KILN_CLONES static void
tap_rows(float *restrict yp, const float *restrict xp, float wv, int64_t u,
         int64_t v, int64_t i0, int64_t i1, const struct kiln_conv2d *p)
{
	int64_t off = v * p->dw - p->pl, lo, hi;

	kiln_span(off, p->sw, p->w, p->ow, &lo, &hi);
	for (int64_t i = i0; i < i1; i++) {
		int64_t ih = i * p->sh - p->pt + u * p->dh;
		if (ih < 0 || ih >= p->h)
			continue;
		float *yr = yp + i * p->ow;
		const float *xr = xp + ih * p->w + off;
		if (p->sw == 1)
			for (int64_t j = lo; j < hi; j++)
				yr[j] += wv * xr[j];
		else
			for (int64_t j = lo; j < hi; j++)
				yr[j] += wv * xr[j * p->sw];
	}
}

/* Floats of the depthwise conv's buffers: a block of outputs (DWBLOCK,
 * so it stays in L1 while every tap passes over it) and the input it
 * reads with its padding (DWIN); both have VPAD more so that every pass
 * runs over whole vectors. */
enum { DWBLOCK = 2048, DWIN = 8192, VPAD = KILN_PHASE_VPAD };

/* ob[t] += the next three, two or one taps' w * xs[t] for t < n, added
 * in the order given: one pass over ob instead of one a tap. */
static inline void
acc_taps(float *restrict ob, int64_t n, const float *const *xs,
         const float *ws, int cnt)
{
	const float *restrict x0 = xs[0], *restrict x1 = xs[cnt > 1],
	            *restrict x2 = xs[cnt > 2 ? 2 : 0];
	float w0 = ws[0], w1 = ws[cnt > 1], w2 = ws[cnt > 2 ? 2 : 0];

	if (cnt == 3)
		for (int64_t t = 0; t < n; t++)
			ob[t] = ob[t] + w0 * x0[t] + w1 * x1[t] + w2 * x2[t];
	else if (cnt == 2)
		for (int64_t t = 0; t < n; t++)
			ob[t] = ob[t] + w0 * x0[t] + w1 * x1[t];
	else
		for (int64_t t = 0; t < n; t++)
			ob[t] += w0 * x0[t];
}

/* Where dw_block() reads (phase.h), and the clamp of its stores. */
struct dw_geom {
	struct kiln_phase ph;
	float lo, hi;
};

/* A block of a depthwise conv's output, rows i0..i0+rows-1 of plane yp,
 * computed from phase.h's copy of the input rows it reads, zero in the
 * padding:
 *   ob[i*q + j] = bias + sum over taps (u,v) in window order of
 *                 w(u,v) * xb[off(u,v) + i*q + j],
 * one run of rows*q outputs (rounded up to whole vectors) for each
 * tap, whatever the strides.  Padding taps add zeros, so an output does
 * not depend on where its block starts.  The rows are stored clamped to
 * [lo, hi] (relu and clip epilogues; -inf, inf for none). */
KILN_CLONES static void
dw_block(float *restrict yp, const float *restrict xp, const float *wc,
         float bias, int64_t i0, int64_t rows, const struct dw_geom *gm,
         const struct kiln_conv2d *p)
{
	int64_t q = gm->ph.q;
	_Alignas(64) float xb[DWIN + VPAD], ob[DWBLOCK + VPAD];
	int64_t m = (rows * q + VPAD - 1) / VPAD * VPAD;

	kiln_phase_copy(xb, xp, 0.0f, i0, &gm->ph, p);
	for (int64_t t = 0; t < m; t++)
		ob[t] = bias;
	int64_t ntap = p->kh * p->kw;
	for (int64_t s = 0; s < ntap; s += 3) {
		const float *xs[3] = {xb, xb, xb};
		int cnt = (int)MIN(3, ntap - s);
		for (int c = 0; c < cnt; c++)
			xs[c] = xb + gm->ph.off[s + c];
		acc_taps(ob, m, xs, wc + s, cnt);
	}
	if (gm->lo != -INFINITY || gm->hi != INFINITY)
		for (int64_t t = 0; t < m; t++)
			ob[t] = kiln_s_clip(ob[t], gm->lo, gm->hi);
	for (int64_t i = 0; i < rows; i++) {
		float *yr = yp + (i0 + i) * p->ow;
		const float *orow = ob + i * q;
		if (p->ow >= 32)
			memcpy(yr, orow, (size_t)p->ow * sizeof *yr);
		else
			for (int64_t j = 0; j < p->ow; j++)
				yr[j] = orow[j];
	}
}

/* dw_block()'s geometry for conv p with epilogue e: *gm, and whether
 * the conv fits its buffers; *e is cleared when the stores do it. */
static int
dw_geometry(struct dw_geom *gm, const struct kiln_conv2d *p,
            const struct kiln_epilogue **e)
{
	const struct kiln_epilogue *ep = *e;

	if (!kiln_phase_geometry(&gm->ph, p, DWBLOCK, DWIN))
		return 0;
	gm->lo = -INFINITY;
	gm->hi = INFINITY;
	if (ep && !ep->res && (ep->act == KILN_ACT_NONE ||
	    ep->act == KILN_ACT_RELU || ep->act == KILN_ACT_CLIP)) {
		if (ep->act != KILN_ACT_NONE)
			gm->lo = ep->act == KILN_ACT_CLIP ? ep->alpha : 0.0f;
		if (ep->act == KILN_ACT_CLIP)
			gm->hi = ep->beta;
		*e = NULL;
	}
	return 1;
}

/* Output plane yp of a depthwise conv from input plane xp and the
 * channel's kh*kw weights wc, a block of rows at a time: dw_block()
 * when gm is not NULL, else the bias, then each tap in window order
 * over the block (the taps outside the input skipped); then the
 * epilogue e, if dw_geometry() left one. */
static void
dw_plane(float *yp, const float *xp, const float *wc, float bias,
         const struct kiln_conv2d *p, const struct dw_geom *gm,
         const struct kiln_epilogue *e, const float *y0)
{
	int64_t rows = gm ? gm->ph.rows : MAX(1, DWBLOCK / p->ow);

	for (int64_t i0 = 0; i0 < p->oh; i0 += rows) {
		int64_t i1 = MIN(p->oh, i0 + rows);
		float *yb = yp + i0 * p->ow;
		if (gm)
			dw_block(yp, xp, wc, bias, i0, i1 - i0, gm, p);
		else {
			fill(yb, (i1 - i0) * p->ow, bias);
			for (int64_t u = 0; u < p->kh; u++)
				for (int64_t v = 0; v < p->kw; v++)
					tap_rows(yp, xp, wc[u * p->kw + v], u, v,
					         i0, i1, p);
		}
		if (e)
			kiln_epilogue_f32(yb, (i1 - i0) * p->ow, yb - y0, e);
	}
}

/* The most taps of a conv with one input channel per group whose
 * weights, in panels, dw_part() gathers for a plane. */
enum { DWPACKED = 256 };

/* Output planes lo..hi-1 (n*oc + channel) of a conv with one input
 * channel per group (depthwise, with or without a depth multiplier),
 * for the threads: output channel o reads input channel o / (oc/c). */
static void
dw_part(void *ctx, int64_t lo, int64_t hi)
{
	const struct conv_job *s = ctx;
	const struct kiln_conv2d *p = s->p;
	const struct kiln_epilogue *e = s->e;
	struct dw_geom gm;
	int padded = dw_geometry(&gm, p, &e);
	int64_t og = p->oc / p->group, taps = p->kh * p->kw;
	float wl[DWPACKED];

	for (int64_t no = lo; no < hi; no++) {
		int64_t o = no % p->oc, xc = no / p->oc * p->c + o / og;
		const float *wo = s->w + o * taps;
		if (s->packed) {
			/* o's taps from its panel: row i of a panel of r rows,
			 * tap t at t*r + i (kiln_conv2d_pack_weights) */
			int64_t g = o / og, i = o % og, q0 = i / KILN_CONV_PANEL;
			int64_t r = MIN(KILN_CONV_PANEL, og - q0 * KILN_CONV_PANEL);
			const float *pn = s->w + (g * og + q0 * KILN_CONV_PANEL) *
			                  taps + i % KILN_CONV_PANEL;
			for (int64_t t = 0; t < taps; t++)
				wl[t] = pn[t * r];
			wo = wl;
		}
		dw_plane(s->y + no * p->oh * p->ow, s->x + xc * p->h * p->w, wo,
		         s->b ? s->b[o] : 0.0f, p, padded ? &gm : NULL, e, s->y);
	}
}

/* ---- few positions, many channels: the channels as the vectors ------- */

/* The product y[oc, positions] = w @ col runs its vectors along the
 * positions, in tiles of 32 columns: with 49 positions (a 7x7 plane) a
 * quarter of every tile's lanes are padding, with 196 an eighth.  When
 * the output channels fill the tiles better, the product runs the other
 * way, yt[positions, oc] = col^T @ w^T: the row tiles take the
 * positions in nearly equal heights, the vectors the channels, the
 * weights come in panels of KILN_CONV_CPANEL channels (pack_weights),
 * and the im2col matrix (or x, for a 1x1 kernel of stride 1) is read in
 * place.  yt is then transposed into y (16 x 16 blocks in registers
 * with AVX-512), and the epilogue run on it.
 * ResNet-18's 7x7 layers and MobileNetV2's 1x1 convs over 7x7 and 14x14
 * planes take this path.  It needs the weights in those panels, so only
 * the packed form takes it; which convs do is decided from the shapes
 * (cv_conv()), the same at compile time and at run time.  Its pieces of
 * k, and the product's blocks in them, are the im2col path's, and a
 * product's terms the same with its operands swapped, so the results
 * are the plain weights' bits (where the im2col path cuts the columns
 * into pieces, too small a piece of rows to hold whole columns, this
 * path is not taken).  yt holds
 * CV_YT floats, so the output channels come in chunks, each its own
 * unit for the threads (which repeat the im2col matrix per chunk; the
 * sums are the same whatever the chunks). */
enum { CV_YT = 32768, CV_MAXPOS = CV_YT / KILN_CONV_CPANEL,
       CV_TRANSPOSE = 8 };

static int
cv_conv(const struct kiln_conv2d *p)
{
	int64_t np = p->oh * p->ow, r = KILN_CONV_CPANEL, nr, nc;
	struct shift_geom gm;

	if (p->group != 1 || p->c < 2 || np < 1 || np > CV_MAXPOS ||
	    p->oc < r || shift_geometry(&gm, p))
		return 0;
	/* the im2col path's pieces of k, whole columns: the same sums */
	kiln_conv2d_chunks(p, p->c * p->kh * p->kw, np, &nr, &nc);
	if (nc != np)
		return 0;
	/* the lanes each way, padding included, times the steps of k;
	 * along the channels, plus the transpose of the output, which
	 * costs about CV_TRANSPOSE steps an element (measured on
	 * MobileNetV2's 1x1 convs); 5% less to pay */
	int64_t k = p->c * p->kh * p->kw;
	int64_t along_pos = (np + r - 1) / r * r * p->oc * k;
	int64_t along_oc = (p->oc + r - 1) / r * r * np * k +
	                   np * p->oc * CV_TRANSPOSE;
	return 20 * along_oc < 19 * along_pos;
}

int
kiln_conv2d_wpanel(const struct kiln_conv2d *p)
{
	return cv_conv(p) ? KILN_CONV_CPANEL : KILN_CONV_PANEL;
}

struct cv_job {
	const struct conv_job *s;
	int64_t chunk, nchunk;  /* output channels a unit, units an image */
};

/* Output channels o0..o0+on-1 of image i. */
static void
cv_unit(const struct conv_job *s, int64_t i, int64_t o0, int64_t on)
{
	const struct kiln_conv2d *p = s->p;
	int64_t np = p->oh * p->ow, k = p->c * p->kh * p->kw, ld, kn, nc;
	const float *xg = s->x + i * p->c * p->h * p->w;
	float col[KILN_CONV_COLBUF], yt[CV_YT];

	kiln_conv2d_chunks(p, k, np, &kn, &nc);
	for (int64_t k0 = 0; k0 < k; k0 += kn) {
		int64_t n = MIN(kn, k - k0);
		const float *c = kiln_conv2d_im2col(col, &ld, xg, k0, n, 0, np, p);
		kiln_gemm_cv_f32(yt, on, c, np, s->w, k, k0, n, p->oc, o0, on,
		                 k0 ? NULL : s->b, k0 > 0);
	}
	float *yi = s->y + (i * p->oc + o0) * np;
	kiln_gemm_transpose(yi, np, yt, on, np, on);
	for (int64_t o = 0; s->e && o < on; o++)
		kiln_epilogue_f32(yi + o * np, np, yi + o * np - s->y, s->e);
}

static void
cv_part(void *ctx, int64_t lo, int64_t hi)
{
	const struct cv_job *j = ctx;
	const struct kiln_conv2d *p = j->s->p;

	for (int64_t u = lo; u < hi; u++) {
		int64_t o0 = u % j->nchunk * j->chunk;
		cv_unit(j->s, u / j->nchunk, o0, MIN(j->chunk, p->oc - o0));
	}
}

/* ---- conv2d ------------------------------------------------------------ */

static void
conv2d(float *y, const float *x, const float *w, const float *b,
       const struct kiln_conv2d *p, const struct kiln_epilogue *e, int packed)
{
	struct conv_job s = {y, x, w, b, p, 0, 0, 0, e, packed};
	int64_t k = p->c / p->group * p->kh * p->kw, oplane = p->oh * p->ow;
	int64_t units;

	if (p->c == p->group && (!packed || p->kh * p->kw <= DWPACKED)) {
		/* one input channel per group: a product would have a row per
		 * tap, too short to pay.  A multiply-add costs several times
		 * what it does in a product, so smaller convs are worth the
		 * threads (MobileNetV2's 7x7 and 14x14 layers) */
		if (p->n * p->oc * oplane * k > KILN_PARALLEL_MIN / 8)
			kiln_parallel_for(p->n * p->oc, dw_part, &s);
		else
			dw_part(&s, 0, p->n * p->oc);
		return;
	}
	if (packed && cv_conv(p)) {
		int64_t r = KILN_CONV_CPANEL, np = oplane;
		int64_t chunk = MIN((p->oc + r - 1) / r, CV_YT / np / r) * r;
		struct cv_job cj = {&s, chunk, 0};
		int big = p->n * p->oc * oplane * k > KILN_PARALLEL_MIN;
		int nt = big ? kiln_threads() : 1;
		/* with threads, units enough for them where channels allow */
		while (nt > 1 && cj.chunk > r &&
		       p->n * ((p->oc + cj.chunk - 1) / cj.chunk) < nt)
			cj.chunk = ((cj.chunk + 1) / 2 + r - 1) / r * r;
		cj.nchunk = (p->oc + cj.chunk - 1) / cj.chunk;
		if (big)
			kiln_parallel_for(p->n * cj.nchunk, cv_part, &cj);
		else
			cv_part(&cj, 0, p->n * cj.nchunk);
		return;
	}
	struct shift_job sj = {&s, {0}};
	if (shift_geometry(&sj.gm, p)) {
		struct shift_geom *gm = &sj.gm;
		int64_t og = p->oc / p->group, r = KILN_CONV_PANEL;
		int big = p->n * p->oc * oplane * k > KILN_PARALLEL_MIN;
		int nt = big ? kiln_threads() : 1;
		units = p->n * p->group * gm->nblock * gm->npart;
		/* units a multiple of the threads, where the channels allow
		 * (5 blocks on 2 threads leave one idle a fifth of the time);
		 * the parts of the channels do not change the sums */
		while (nt > 1 && gm->op > r && (units % nt || units < 2 * nt)) {
			gm->op = ((gm->op + 1) / 2 + r - 1) / r * r;
			gm->npart = (og + gm->op - 1) / gm->op;
			units = p->n * p->group * gm->nblock * gm->npart;
		}
		if (big)
			kiln_parallel_for(units, shift_part, &sj);
		else
			shift_part(&sj, 0, units);
		return;
	}
	kiln_conv2d_chunks(p, k, oplane, &s.nr, &s.nc);
	if (s.nc < 1)
		return;         /* no output columns */
	s.npiece = (oplane + s.nc - 1) / s.nc;
	units = p->n * p->group * s.npiece;
	if (p->n * p->oc * oplane * k > KILN_PARALLEL_MIN)
		kiln_parallel_for(units, conv_part, &s);
	else
		conv_part(&s, 0, units);
}

void
kiln_conv2d_ep_f32(float *y, const float *x, const float *w, const float *b,
                   const struct kiln_conv2d *p, const struct kiln_epilogue *e)
{
	conv2d(y, x, w, b, p, e, 0);
}

void
kiln_conv2d_pk_ep_f32(float *y, const float *x, const float *wp,
                      const float *b, const struct kiln_conv2d *p,
                      const struct kiln_epilogue *e)
{
	conv2d(y, x, wp, b, p, e, 1);
}

void
kiln_conv2d_pk_f32(float *y, const float *x, const float *wp, const float *b,
                   const struct kiln_conv2d *p)
{
	conv2d(y, x, wp, b, p, NULL, 1);
}

void
kiln_conv2d_pack_weights(float *wp, const float *w, const struct kiln_conv2d *p)
{
	int64_t og = p->oc / p->group, k = p->c / p->group * p->kh * p->kw;
	int64_t pn = kiln_conv2d_wpanel(p);

	for (int64_t g = 0; g < p->group; g++)
		for (int64_t o = 0; o < og; o++) {
			int64_t q = o / pn, i = o % pn, r = MIN(pn, og - q * pn);
			float *d = wp + g * og * k + q * pn * k + i;
			const float *sr = w + (g * og + o) * k;
			for (int64_t t = 0; t < k; t++)
				d[t * r] = sr[t];
		}
}

/* One group of one image, transposed: col[og*kh*kw, h*w] = wg^T @ xg,
 * wg[cg, og*kh*kw], a piece at a time, each piece added into yg by
 * col2im(); pointwise, the product lands in yg directly. */
static void
convt_group(float *yg, const float *xg, const float *wg, const float *bg,
            float *col, const struct kiln_conv2d *p)
{
	int64_t cg = p->c / p->group, og = p->oc / p->group;
	int64_t rows = og * p->kh * p->kw, plane = p->h * p->w;
	int64_t oplane = p->oh * p->ow, nr, nc;
	int pw = pointwise(p);

	for (int64_t o = 0; (bg || !pw) && o < og; o++)
		fill(yg + o * oplane, oplane, bg ? bg[o] : 0.0f);
	if (pw) {
		kiln_gemm_ld_f32(yg, oplane, wg, rows, xg, plane, og, plane, cg,
		                 1, 0, 1.0f, bg ? 1.0f : 0.0f);
		return;
	}
	kiln_conv2d_chunks(p, rows, plane, &nr, &nc);
	for (int64_t j0 = 0; j0 < plane; j0 += nc)
		for (int64_t m0 = 0; m0 < rows; m0 += nr) {
			int64_t jn = MIN(nc, plane - j0), mn = MIN(nr, rows - m0);
			kiln_gemm_ld_f32(col, jn, wg + m0, rows, xg + j0, plane, mn, jn,
			                 cg, 1, 0, 1.0f, 0.0f);
			col2im(yg, col, m0, mn, j0, jn, p);
		}
}

/* The groups lo..hi-1 of all images (n*group + g), for the threads. */
static void
convt_part(void *ctx, int64_t lo, int64_t hi)
{
	const struct conv_job *s = ctx;
	const struct kiln_conv2d *p = s->p;
	float col[KILN_CONV_COLBUF];
	int64_t cg = p->c / p->group, og = p->oc / p->group;
	int64_t plane = p->h * p->w, oplane = p->oh * p->ow;

	for (int64_t ng = lo; ng < hi; ng++) {
		int64_t g = ng % p->group;
		convt_group(s->y + ng * og * oplane, s->x + ng * cg * plane,
		            s->w + g * cg * og * p->kh * p->kw,
		            s->b ? s->b + g * og : NULL, col, p);
	}
}

/* The floats of weights a transposed conv of stride 1 may flip on the
 * stack to run as a conv2d. */
enum { CONVT_FLIP = 16384 };

void
kiln_conv2d_transpose_f32(float *y, const float *x, const float *w,
                          const float *b, const struct kiln_conv2d *p)
{
	struct conv_job s = {y, x, w, b, p, 0, 0, 0, NULL, 0};
	int64_t units = p->n * p->group;
	int64_t cg = p->c / p->group, og = p->oc / p->group;
	int64_t taps = p->kh * p->kw;
	int64_t pt = (p->kh - 1) * p->dh - p->pt, pl = (p->kw - 1) * p->dw - p->pl;

	/* With unit strides the transposed conv is a conv2d of x with the
	 * weights flipped and their channels swapped, w2[o][c][u][v] =
	 * w[c][o][kh-1-u][kw-1-v] (per group), padded by (k-1)*d - pad:
	 * y[o][a][b] takes x[c][a + pt - u*dh][b + pl - v*dw] * w[c][o][u][v]
	 * over the taps.  That conv takes the fast paths above, where the
	 * product and col2im (its rows as short as the input's) cost more
	 * (LeNet's input gradient).  The pads must not be negative. */
	if (p->sh == 1 && p->sw == 1 && p->oc * cg * taps <= CONVT_FLIP &&
	    pt >= 0 && pl >= 0 && p->oh - p->h + p->pt >= 0 &&
	    p->ow - p->w + p->pl >= 0) {
		float w2[CONVT_FLIP];
		struct kiln_conv2d q = *p;
		for (int64_t g = 0; g < p->group; g++)
			for (int64_t o = 0; o < og; o++)
				for (int64_t c = 0; c < cg; c++)
					for (int64_t t = 0; t < taps; t++)
						w2[((g * og + o) * cg + c) * taps + t] =
							w[((g * cg + c) * og + o) * taps +
							  taps - 1 - t];
		q.pt = pt;
		q.pl = pl;
		conv2d(y, x, w2, b, &q, NULL, 0);
		return;
	}

	if (p->n * p->c * p->h * p->w * (p->oc / p->group) * p->kh * p->kw >
	    KILN_PARALLEL_MIN)
		kiln_parallel_for(units, convt_part, &s);
	else
		convt_part(&s, 0, units);
}

/* ---- 3-D: tap by tap ------------------------------------------------- */

/* yp[oh,ow] += wv * (input plane xp[h,w] seen through tap (u,v)). */
static void
add_tap(float *yp, const float *xp, float wv, int64_t u, int64_t v,
        const struct kiln_conv2d *p)
{
	int64_t i0, i1, j0, j1;
	int64_t du = u * p->dh - p->pt, dv = v * p->dw - p->pl;

	kiln_span(du, p->sh, p->h, p->oh, &i0, &i1);
	kiln_span(dv, p->sw, p->w, p->ow, &j0, &j1);
	for (int64_t i = i0; i < i1; i++) {
		float *yr = yp + i * p->ow;
		int64_t xr = (i * p->sh + du) * p->w + dv;
		for (int64_t j = j0; j < j1; j++)
			yr[j] += wv * xp[xr + j * p->sw];
	}
}

/* The adjoint of add_tap(): the sum over output plane dyp of dy times
 * input plane xp seen through tap (u,v), a term of conv3d's weight
 * gradient (runtime/grad_ops.c). */
float
kiln_conv2d_tap_dot(const float *dyp, const float *xp, int64_t u, int64_t v,
                    const struct kiln_conv2d *p)
{
	int64_t r0, r1, c0, c1;
	int64_t top = u * p->dh - p->pt, left = v * p->dw - p->pl;
	float s = 0.0f;

	kiln_span(top, p->sh, p->h, p->oh, &r0, &r1);
	kiln_span(left, p->sw, p->w, p->ow, &c0, &c1);
	for (int64_t i = r0; i < r1; i++) {
		const float *dyr = dyp + i * p->ow;
		const float *xr = xp + (i * p->sh + top) * p->w + left;
		for (int64_t j = c0; j < c1; j++)
			s += dyr[j] * xr[j * p->sw];
	}
	return s;
}

/* yp += input plane xq correlated with the kh x kw kernel slice wq. */
static void
add_plane(float *yp, const float *xq, const float *wq,
          const struct kiln_conv2d *p)
{
	for (int64_t u = 0; u < p->kh; u++)
		for (int64_t v = 0; v < p->kw; v++)
			add_tap(yp, xq, wq[u * p->kw + v], u, v, p);
}

/* 3-D: output plane (n,o,i) adds, for every input channel q of the group
 * and depth tap a that lands inside the input (depth i*sd - pf + a*dd),
 * that input plane correlated with the kernel slice w[o,q,a]. */
void
kiln_conv3d_f32(float *y, const float *x, const float *w, const float *b,
                const struct kiln_conv3d *p)
{
	const struct kiln_conv2d *q = &p->hw;
	int64_t cg = q->c / q->group, og = q->oc / q->group;
	int64_t plane = q->h * q->w, oplane = q->oh * q->ow, taps = q->kh * q->kw;

	for (int64_t n = 0; n < q->n; n++)
	for (int64_t o = 0; o < q->oc; o++)
	for (int64_t i = 0; i < p->od; i++) {
		float *yp = y + ((n * q->oc + o) * p->od + i) * oplane;
		const float *xg = x + (n * q->c + o / og * cg) * p->d * plane;
		fill(yp, oplane, b ? b[o] : 0.0f);
		for (int64_t c = 0; c < cg; c++)
			for (int64_t a = 0; a < p->kd; a++) {
				int64_t id = i * p->sd - p->pf + a * p->dd;
				if (id >= 0 && id < p->d)
					add_plane(yp, xg + (c * p->d + id) * plane,
					          w + ((o * cg + c) * p->kd + a) * taps, q);
			}
	}
}

/* Transposed convolution, tap by tap: yp[oh,ow] += wv * xp[h,w] scattered
 * through tap (u,v), input (i,j) landing on output (i*sh - pt + u*dh,
 * j*sw - pl + v*dw).  kiln_span() keeps the inputs that land inside. */
static void
scatter_tap(float *yp, const float *xp, float wv, int64_t u, int64_t v,
            const struct kiln_conv2d *p)
{
	int64_t i0, i1, j0, j1;
	int64_t du = u * p->dh - p->pt, dv = v * p->dw - p->pl;

	kiln_span(du, p->sh, p->oh, p->h, &i0, &i1);
	kiln_span(dv, p->sw, p->ow, p->w, &j0, &j1);
	for (int64_t i = i0; i < i1; i++) {
		const float *xr = xp + i * p->w;
		int64_t yr = (i * p->sh + du) * p->ow + dv;
		for (int64_t j = j0; j < j1; j++)
			yp[yr + j * p->sw] += wv * xr[j];
	}
}

/* yp += input plane xp scattered through the kh x kw kernel slice wc. */
static void
scatter_plane(float *yp, const float *xp, const float *wc,
              const struct kiln_conv2d *p)
{
	for (int64_t u = 0; u < p->kh; u++)
		for (int64_t v = 0; v < p->kw; v++)
			scatter_tap(yp, xp, wc[u * p->kw + v], u, v, p);
}

/* 3-D transposed: input plane (n,c,i) scatters through depth tap a onto
 * output plane i*sd - pf + a*dd, when that lies inside the output. */
void
kiln_conv3d_transpose_f32(float *y, const float *x, const float *w,
                          const float *b, const struct kiln_conv3d *p)
{
	const struct kiln_conv2d *q = &p->hw;
	int64_t cg = q->c / q->group, og = q->oc / q->group;
	int64_t plane = q->h * q->w, oplane = q->oh * q->ow, taps = q->kh * q->kw;

	for (int64_t n = 0; n < q->n; n++) {
		for (int64_t o = 0; o < q->oc; o++) {
			float *yv = y + (n * q->oc + o) * p->od * oplane;
			fill(yv, p->od * oplane, b ? b[o] : 0.0f);
			for (int64_t c = o / og * cg; c < (o / og + 1) * cg; c++)
			for (int64_t i = 0; i < p->d; i++)
			for (int64_t a = 0; a < p->kd; a++) {
				int64_t id = i * p->sd - p->pf + a * p->dd;
				if (id >= 0 && id < p->od)
					scatter_plane(yv + id * oplane,
					              x + ((n * q->c + c) * p->d + i) * plane,
					              w + ((c * og + o % og) * p->kd + a) * taps,
					              q);
			}
		}
	}
}
