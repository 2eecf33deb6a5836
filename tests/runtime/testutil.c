/* testutil.c: the shared helpers of the runtime's kernel tests: the
 * random stream and the checks, whose counts and FAIL lines every test
 * prints the same way. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

double *
t_zerod(int64_t n)
{
	double *p = t_alloc((size_t)n * sizeof *p);
	for (int64_t i = 0; i < n; i++)
		p[i] = 0;
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

/* ---- checks --------------------------------------------------------- */

enum { MAXSHOWN = 20 };         /* failures printed; the rest only counted */

int t_ncheck, t_nfail;
double t_worst;

static bool
vfail(const char *fmt, va_list ap)
{
	if (++t_nfail > MAXSHOWN) {
		if (t_nfail == MAXSHOWN + 1)
			printf("FAIL ... (more failures, not shown)\n");
		return false;
	}
	printf("FAIL ");
	vprintf(fmt, ap);
	printf("\n");
	return true;
}

bool
t_fail(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	bool shown = vfail(fmt, ap);
	va_end(ap);
	return shown;
}

bool
t_expect(bool ok, const char *what)
{
	t_ncheck++;
	if (!ok)
		t_fail("%s", what);
	return ok;
}

bool
t_expectf(bool ok, const char *fmt, ...)
{
	va_list ap;

	t_ncheck++;
	if (!ok) {
		va_start(ap, fmt);
		vfail(fmt, ap);
		va_end(ap);
	}
	return ok;
}

bool
t_eq(const char *what, long long got, long long want)
{
	return t_expectf(got == want, "%s: got %lld want %lld", what, got, want);
}

bool
t_near(double got, double want, double atol, double rtol)
{
	if (got == want)
		return true;
	if (isnan(got) || isnan(want))
		return isnan(got) && isnan(want);
	if (isinf(got) || isinf(want))
		return false;
	return fabs(got - want) <= atol + rtol * fabs(want);
}

/* Element i's tolerance: tol[i], or atol + rtol * |want[i]| without tol. */
static double
limit(const double *tol, double atol, double rtol, const double *want,
      int64_t i)
{
	return tol ? tol[i] : atol + rtol * fabs(want[i]);
}

static bool
close_each(const char *what, const float *got, const double *want,
           int64_t n, double atol, double rtol, const double *tol)
{
	double maxabs = 0, maxrel = 0;
	int64_t nbad = 0, first = -1;

	t_ncheck++;
	for (int64_t i = 0; i < n; i++) {
		double lim = limit(tol, atol, rtol, want, i), d = 0;
		if (got[i] != want[i] && !(isnan(got[i]) && isnan(want[i])))
			d = isnan(got[i]) || isnan(want[i]) ? INFINITY :
			    fabs(got[i] - want[i]);
		maxabs = fmax(maxabs, d);
		if (want[i] != 0)
			maxrel = fmax(maxrel, d / fabs(want[i]));
		if (d > 0 && lim > 0)
			t_worst = fmax(t_worst, d / lim);
		if (!t_near(got[i], want[i], lim, 0) && nbad++ == 0)
			first = i;
	}
	if (nbad == 0)
		return true;
	if (!t_fail("%s: %lld of %lld differ, max abs error %g, max rel error %g",
	            what, (long long)nbad, (long long)n, maxabs, maxrel))
		return false;
	for (int64_t i = first; i < n && i < first + 5; i++) {
		double lim = limit(tol, atol, rtol, want, i);
		printf("  [%lld] got %.9g want %.9g tolerance %.3g %s\n",
		       (long long)i, got[i], want[i], lim,
		       t_near(got[i], want[i], lim, 0) ? "OK" : "NOT OK");
	}
	return false;
}

bool
t_close(const char *what, const float *got, const double *want, int64_t n,
        double atol, double rtol)
{
	return close_each(what, got, want, n, atol, rtol, NULL);
}

bool
t_close_tol(const char *what, const float *got, const double *want,
            const double *tol, int64_t n)
{
	return close_each(what, got, want, n, 0, 0, tol);
}

bool
t_bytes(const char *what, const void *got, const void *want, size_t n)
{
	const unsigned char *g = got, *w = want;
	size_t nbad = 0;

	t_ncheck++;
	if (memcmp(g, w, n) == 0)
		return true;
	for (size_t i = 0; i < n; i++)
		nbad += g[i] != w[i];
	if (!t_fail("%s: %zu of %zu bytes differ", what, nbad, n))
		return false;
	for (size_t i = 0, shown = 0; i < n && shown < 5; i++)
		if (g[i] != w[i]) {
			printf("  byte %zu: got %02x want %02x\n", i, g[i], w[i]);
			shown++;
		}
	return false;
}

double
t_dot(const float *a, const float *b, int64_t n)
{
	double s = 0;
	for (int64_t i = 0; i < n; i++)
		s += (double)a[i] * b[i];
	return s;
}

bool
t_adjoint(const char *what, const float *y, const float *dy, int64_t ny,
          const float *x, const float *dx, int64_t nx, double tol)
{
	double lhs = t_dot(y, dy, ny), rhs = t_dot(x, dx, nx), scale = 0;

	for (int64_t i = 0; i < ny; i++)
		scale += fabs((double)y[i] * dy[i]);
	return t_expectf(fabs(lhs - rhs) <= tol * (1 + scale),
	                 "%s, adjoint: <f(x), dy> = %.9g, <x, f'(dy)> = %.9g",
	                 what, lhs, rhs);
}

int
t_report(const char *name)
{
	printf("%s: %d checks, %d failed\n", name, t_ncheck, t_nfail);
	return t_nfail != 0;
}

float *
t_pool_input(int64_t n, int fill, int64_t run)
{
	float *x = t_alloc((size_t)n * sizeof *x);

	for (int64_t i = 0; i < n; i++) {
		x[i] = (float)t_irand(3) - 1;
		if (fill && i / run % 4 == 1)
			x[i] = -INFINITY;
		else if (fill && i / run % 4 == 2)
			x[i] = i % 2 ? NAN : -INFINITY;
	}
	return x;
}
