/* testutil.h: what the runtime's kernel tests share: an allocator that
 * exits on failure, a seeded splitmix64 stream, the same on every
 * platform, so a failing case can be rerun exactly, and the checks.
 *
 * Each check counts one in t_ncheck and, failing, one in t_nfail, and
 * prints a line "FAIL what..." (the first 20 failures only; the count
 * goes on).  t_report prints the summary line the .test files match. */
#ifndef KILN_TESTUTIL_H
#define KILN_TESTUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

void *t_alloc(size_t n);        /* malloc, or exit(1) */
void t_seed(uint64_t seed);
uint64_t t_rand_u64(void);
float t_frand(void);            /* uniform in [-1, 1), a multiple of 2^-23 */
int64_t t_irand(int64_t n);     /* uniform in [0, n) */
float *t_randf(int64_t n);      /* n values of t_frand() */
double *t_zerod(int64_t n);     /* n zeros */
unsigned char *t_randb(int64_t n);      /* n random bytes */
int64_t t_numel(int rank, const int64_t *dim);
/* The index vector of flat (row-major) index f in dims, and back. */
void t_unravel(int64_t f, int rank, const int64_t *dim, int64_t *idx);
int64_t t_ravel(const int64_t *idx, int rank, const int64_t *dim);

/* The checks; each returns whether it passed. */
extern int t_ncheck, t_nfail;
extern double t_worst;          /* largest error t_close saw, as a fraction
                                   of its tolerance */
bool t_expect(bool ok, const char *what);
bool t_expectf(bool ok, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* A failure of a check the caller counted in t_ncheck itself (one check
 * for a loop that stops at its first bad element); returns whether it was
 * printed, so that the caller prints its details only then. */
bool t_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
bool t_eq(const char *what, long long got, long long want);
/* got == want, NaN == NaN, else both finite and |got - want| <= atol +
 * rtol * |want|.  An infinity matches only itself. */
bool t_near(double got, double want, double atol, double rtol);
/* got[n] against want[n], each element by t_near; a failure prints the
 * count of bad elements, the max abs and rel error and the elements from
 * the first bad one on, each OK or NOT OK. */
bool t_close(const char *what, const float *got, const double *want,
             int64_t n, double atol, double rtol);
/* The same with a tolerance per element: |got[i] - want[i]| <= tol[i]. */
bool t_close_tol(const char *what, const float *got, const double *want,
                 const double *tol, int64_t n);
bool t_bytes(const char *what, const void *got, const void *want, size_t n);
double t_dot(const float *a, const float *b, int64_t n);
/* The adjoint identity <y, dy> = <x, dx> of a backward kernel, within
 * tol * (1 + sum |y * dy|). */
bool t_adjoint(const char *what, const float *y, const float *dy, int64_t ny,
               const float *x, const float *dx, int64_t nx, double tol);
/* Prints "name: N checks, M failed"; returns the exit status. */
int t_report(const char *name);

/* n inputs for a pool test: few distinct values, so windows often tie;
 * with fill, runs of run -inf and of alternating NaN and -inf, long
 * enough to fill whole windows. */
float *t_pool_input(int64_t n, int fill, int64_t run);

#endif
