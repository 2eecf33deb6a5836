/* testutil.c: the shared helpers of the runtime's kernel tests. */
#include <stdio.h>
#include <stdlib.h>

#include "testutil.h"

static uint64_t state;

void *
t_alloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (!p) {
		fprintf(stderr, "out of memory\n");
		exit(1);
	}
	return p;
}

void
t_seed(uint64_t seed)
{
	state = seed;
}

uint64_t
t_rand_u64(void)
{
	uint64_t z = (state += 0x9e3779b97f4a7c15u);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
	return z ^ (z >> 31);
}

float
t_frand(void)
{
	return (float)((double)(t_rand_u64() >> 40) / (1 << 23) - 1.0);
}

int64_t
t_irand(int64_t n)
{
	return (int64_t)(t_rand_u64() % (uint64_t)n);
}

float *
t_randf(int64_t n)
{
	float *p = t_alloc((size_t)n * sizeof *p);
	for (int64_t i = 0; i < n; i++)
		p[i] = t_frand();
	return p;
}

unsigned char *
t_randb(int64_t n)
{
	unsigned char *p = t_alloc((size_t)n);
	for (int64_t i = 0; i < n; i++)
		p[i] = (unsigned char)t_rand_u64();
	return p;
}

int64_t
t_numel(int rank, const int64_t *dim)
{
	int64_t n = 1;
	for (int d = 0; d < rank; d++)
		n *= dim[d];
	return n;
}

void
t_unravel(int64_t f, int rank, const int64_t *dim, int64_t *idx)
{
	for (int d = rank - 1; d >= 0; d--) {
		idx[d] = f % dim[d];
		f /= dim[d];
	}
}

int64_t
t_ravel(const int64_t *idx, int rank, const int64_t *dim)
{
	int64_t f = 0;
	for (int d = 0; d < rank; d++)
		f = f * dim[d] + idx[d];
	return f;
}
