/* phase.h: a window op's input rows copied with their padding and split
 * by stride phase, so that each tap of the window reads one contiguous
 * run over a whole block of output rows; internal to the runtime.  The
 * depthwise conv (conv.c, dw_block) and max pooling (pool.c) compute
 * their blocks from it: one long vector loop per tap where the rows are
 * short, whatever the strides.
 *
 * For a block of output rows from i0, plane (a,b) of the copy, a < sh
 * and b < sw, holds qr rows of q columns:
 *   xb[((a*sw + b)*qr + k)*q + t] = x(i0*sh - pt + k*sh + a,
 *                                     t*sw + b - pl),
 * and fill outside the input.  Output (i,j) of the block then reads tap
 * (u,v) at xb[off[u*kw + v] + i*q + j], and the block is computed at
 * pitch q: the last q - ow columns of each row are thrown away.  The
 * planes are qr rows apart even in a last block of fewer rows, and
 * (np*qr + 1)*q + KILN_PHASE_VPAD floats of xb are written, so that
 * runs of whole vectors past the last plane read the fill. */
#ifndef KILN_PHASE_H
#define KILN_PHASE_H

#include <stdint.h>
#include <string.h>

#include "gemm_kern.h"
#include "kiln.h"

/* The most taps; the floats past the copy that are filled too (a
 * vector's worth). */
enum { KILN_PHASE_MAXTAP = 64, KILN_PHASE_VPAD = 16 };

struct kiln_phase {
	int64_t q, qr, rows, off[KILN_PHASE_MAXTAP];
};

/* The geometry for window p (a conv's fields; pools fill in theirs):
 * blocks of at most out floats of output (rows of q) from a copy of at
 * most in floats, plus KILN_PHASE_VPAD; 0 when not even one row fits or
 * the window has more than KILN_PHASE_MAXTAP taps. */
static inline int
kiln_phase_geometry(struct kiln_phase *gm, const struct kiln_conv2d *p,
                    int64_t out, int64_t in)
{
	int64_t q = p->ow + (p->kw - 1) * p->dw / p->sw;
	int64_t extra = (p->kh - 1) * p->dh / p->sh;       /* qr - rows */
	int64_t np = p->sh * p->sw, fit = (in / q - 1) / np - extra;
	int64_t rows = out / q < fit ? out / q : fit;

	if (rows < 1 || p->kh * p->kw > KILN_PHASE_MAXTAP)
		return 0;
	rows = rows < p->oh ? rows : p->oh;
	gm->q = q;
	gm->qr = rows + extra;
	gm->rows = rows;
	for (int64_t u = 0; u < p->kh; u++)
		for (int64_t v = 0; v < p->kw; v++) {
			int64_t ru = u * p->dh, cv = v * p->dw;
			gm->off[u * p->kw + v] =
				((ru % p->sh * p->sw + cv % p->sw) * gm->qr +
				 ru / p->sh) * q + cv / p->sw;
		}
	return 1;
}

/* The copy of plane xp for the block from output row i0 into xb, fill
 * outside the input. */
static inline void
kiln_phase_copy(float *restrict xb, const float *restrict xp, float fill,
                int64_t i0, const struct kiln_phase *gm,
                const struct kiln_conv2d *p)
{
	int64_t q = gm->q, qr = gm->qr;
	int64_t n = (p->sh * p->sw * qr + 1) * q + KILN_PHASE_VPAD;

	if (fill == 0.0f)
		memset(xb, 0, (size_t)n * sizeof *xb);
	else
		for (int64_t t = 0; t < n; t++)
			xb[t] = fill;
	for (int64_t a = 0; a < p->sh; a++)
		for (int64_t b = 0; b < p->sw; b++) {
			int64_t c0, c1, off = b - p->pl;
			float *d = xb + (a * p->sw + b) * qr * q;
			kiln_span(off, p->sw, p->w, q, &c0, &c1);
			for (int64_t k = 0; k < qr; k++, d += q) {
				int64_t ih = i0 * p->sh - p->pt + k * p->sh + a;
				if (ih < 0 || ih >= p->h)
					continue;
				const float *xr = xp + ih * p->w + off;
				if (p->sw == 1)
					for (int64_t t = c0; t < c1; t++)
						d[t] = xr[t];
				else if (p->sw == 2)    /* a constant stride vectorizes */
					for (int64_t t = c0; t < c1; t++)
						d[t] = xr[2 * t];
				else
					for (int64_t t = c0; t < c1; t++)
						d[t] = xr[t * p->sw];
			}
		}
}

#endif
