/* gemm.c: matrix products, the kernels behind matmul, gemm and dense layers.
 *
 * Reference implementations: each output row is first set to beta*c (or
 * zero), then accumulated.  Without trans_b the inner loop runs along a row
 * of b and of y (i-k-j order, unit stride); with trans_b a row of b is a
 * column of op(b), so the inner loop is a dot product along it instead.
 * No blocking and no intrinsics; the compiler vectorises the inner loops.
 */
#include "kiln.h"

/* yr[j] = beta * cr[j*c_cs], or 0 when there is no c.  As in BLAS, c is
 * not read when beta is 0, so NaNs in an unused c do not leak into y. */
static void
init_row(float *yr, const float *cr, int64_t c_cs, float beta, int64_t n)
{
	if (!cr || beta == 0.0f) {
		for (int64_t j = 0; j < n; j++)
			yr[j] = 0.0f;
		return;
	}
	for (int64_t j = 0; j < n; j++)
		yr[j] = beta * cr[j * c_cs];
}

/* op(a)[i,p]: a is a[m,k], or a[k,m] when transposed. */
static float
a_at(const float *a, int trans_a, int64_t i, int64_t p, int64_t m, int64_t k)
{
	return trans_a ? a[p * m + i] : a[i * k + p];
}

/* yr += alpha * op(a)[i,:] @ b, with b[k,n] walked row by row. */
static void
row_axpy(float *yr, const float *a, const float *b, int64_t i, int64_t m,
         int64_t n, int64_t k, int trans_a, float alpha)
{
	for (int64_t p = 0; p < k; p++) {
		float s = alpha * a_at(a, trans_a, i, p, m, k);
		const float *br = b + p * n;
		for (int64_t j = 0; j < n; j++)
			yr[j] += s * br[j];
	}
}

/* yr += alpha * op(a)[i,:] @ b^T, with b[n,k]: one dot product per j. */
static void
row_dot(float *yr, const float *a, const float *b, int64_t i, int64_t m,
        int64_t n, int64_t k, int trans_a, float alpha)
{
	for (int64_t j = 0; j < n; j++) {
		const float *br = b + j * k;
		float s = 0.0f;
		for (int64_t p = 0; p < k; p++)
			s += a_at(a, trans_a, i, p, m, k) * br[p];
		yr[j] += alpha * s;
	}
}

void
kiln_gemm_f32(float *y, const float *a, const float *b, const float *c,
              int64_t m, int64_t n, int64_t k, int trans_a, int trans_b,
              float alpha, float beta, int64_t c_rs, int64_t c_cs)
{
	for (int64_t i = 0; i < m; i++) {
		float *yr = y + i * n;
		init_row(yr, c ? c + i * c_rs : NULL, c_cs, beta, n);
		if (trans_b)
			row_dot(yr, a, b, i, m, n, k, trans_a, alpha);
		else
			row_axpy(yr, a, b, i, m, n, k, trans_a, alpha);
	}
}

void
kiln_matmul_f32(float *y, const float *a, const float *b, int64_t batch,
                int64_t m, int64_t n, int64_t k, int64_t a_bs, int64_t b_bs)
{
	for (int64_t p = 0; p < batch; p++)
		kiln_gemm_f32(y + p * m * n, a + p * a_bs, b + p * b_bs, NULL,
		              m, n, k, 0, 0, 1.0f, 0.0f, 0, 0);
}
