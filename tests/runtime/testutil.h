/* testutil.h: what the runtime's kernel tests share: an allocator that
 * exits on failure and a seeded splitmix64 stream, the same on every
 * platform, so a failing case can be rerun exactly. */
#ifndef KILN_TESTUTIL_H
#define KILN_TESTUTIL_H

#include <stddef.h>
#include <stdint.h>

void *t_alloc(size_t n);        /* malloc, or exit(1) */
void t_seed(uint64_t seed);
uint64_t t_rand_u64(void);
float t_frand(void);            /* uniform in [-1, 1), a multiple of 2^-23 */
int64_t t_irand(int64_t n);     /* uniform in [0, n) */
float *t_randf(int64_t n);      /* n values of t_frand() */
unsigned char *t_randb(int64_t n);      /* n random bytes */
int64_t t_numel(int rank, const int64_t *dim);
/* The index vector of flat (row-major) index f in dims, and back. */
void t_unravel(int64_t f, int rank, const int64_t *dim, int64_t *idx);
int64_t t_ravel(const int64_t *idx, int rank, const int64_t *dim);

#endif
