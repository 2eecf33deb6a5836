/* pool2.c: 2-D max pooling over the integer dtypes u8, i8, i32 and i64
 * (kiln_maxpool2d_<dt>, the rest of ops.def's maxpool2d family; f32 is in
 * pool.c).  The same window walk as pool.c, on exact integers: the
 * padding never wins, and a window wholly in the padding gives the type's
 * minimum (where f32 gives -inf).
 */
#include <stdint.h>

#include "kiln.h"

#define MAXPOOL2D(dt, T, LOWEST)                                             \
static T                                                                     \
max_window_##dt(const T *xp, int64_t i, int64_t j,                           \
                const struct kiln_pool2d *p)                                 \
{                                                                            \
	T m = LOWEST;                                                            \
	for (int64_t u = 0; u < p->kh; u++) {                                    \
		int64_t ih = i * p->sh - p->pt + u * p->dh;                          \
		if (ih < 0 || ih >= p->h)                                            \
			continue;                                                        \
		for (int64_t v = 0; v < p->kw; v++) {                                \
			int64_t iw = j * p->sw - p->pl + v * p->dw;                      \
			if (iw >= 0 && iw < p->w && xp[ih * p->w + iw] > m)              \
				m = xp[ih * p->w + iw];                                      \
		}                                                                    \
	}                                                                        \
	return m;                                                                \
}                                                                            \
void                                                                         \
kiln_maxpool2d_##dt(T *y, const T *x, const struct kiln_pool2d *p)           \
{                                                                            \
	for (int64_t nc = 0; nc < p->n * p->c; nc++) {                           \
		const T *xp = x + nc * p->h * p->w;                                  \
		for (int64_t i = 0; i < p->oh; i++)                                  \
			for (int64_t j = 0; j < p->ow; j++)                              \
				*y++ = max_window_##dt(xp, i, j, p);                         \
	}                                                                        \
}

MAXPOOL2D(u8, uint8_t, 0)
MAXPOOL2D(i8, int8_t, INT8_MIN)
MAXPOOL2D(i32, int32_t, INT32_MIN)
MAXPOOL2D(i64, int64_t, INT64_MIN)
