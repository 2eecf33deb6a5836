/* random.c: kiln_random_normal_f32, a reproducible stream of normal
 * samples (the random_normal op).
 *
 * The generator is splitmix64 (Steele, Lea and Flood), counter-based:
 * its j-th output from state s is w(j) = mix(s + (j + 1) * GOLDEN), so
 * element i depends only on the seed and i, never on n.  Pair k = i / 2
 * turns w(2k) and w(2k+1) into u1 in (0, 1] and u2 in [0, 1) (53 bits
 * each) and applies Box-Muller in double: r = sqrt(-2 ln u1),
 * z(2k) = r cos(2 pi u2), z(2k+1) = r sin(2 pi u2); then
 * y[i] = (float)(mean + scale * z(i)).  Runs are bit-identical, and so
 * is the integer stream on every platform; z goes through libm's log, cos
 * and sin in double, whose last bit may differ between C libraries, which
 * changes an f32 result only when z lies that close to a rounding tie.
 */
#include <math.h>

#include "kiln.h"

#define GOLDEN 0x9e3779b97f4a7c15u

static uint64_t
mix(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
	return z ^ (z >> 31);
}

/* w(j) for state seed; dropout_train (runtime/train_ops.c) draws its
 * masks from it too. */
uint64_t
kiln_splitmix64(uint64_t seed, uint64_t j)
{
	return mix(seed + (j + 1) * GOLDEN);
}

/* Normal samples k*2 and k*2 + 1 of the stream for seed. */
static void
pair(uint64_t seed, int64_t k, double *z0, double *z1)
{
	const double twopi = 6.283185307179586476925;
	uint64_t j = 2 * (uint64_t)k;
	uint64_t a = kiln_splitmix64(seed, j);
	uint64_t b = kiln_splitmix64(seed, j + 1);
	double u1 = (double)((a >> 11) + 1) * 0x1p-53;
	double u2 = (double)(b >> 11) * 0x1p-53;
	double r = sqrt(-2.0 * log(u1));

	*z0 = r * cos(twopi * u2);
	*z1 = r * sin(twopi * u2);
}

void
kiln_random_normal_f32(float *y, int64_t n, float mean, float scale,
                       uint64_t seed)
{
	for (int64_t i = 0; i < n; i += 2) {
		double z0, z1;
		pair(seed, i / 2, &z0, &z1);
		y[i] = (float)(mean + (double)scale * z0);
		if (i + 1 < n)
			y[i + 1] = (float)(mean + (double)scale * z1);
	}
}
