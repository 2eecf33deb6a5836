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
