/* peak_flops.c: the machine's fp32 peak, the yardstick the benchmark
 * suite divides a model's flops per second by.
 *
 *   peak_flops [--threads T]
 *
 * Each of T threads (pthreads, started together at a barrier) runs its
 * own loop of independent fused multiply-adds, acc = acc * m + c, on as
 * many vector accumulators as it takes to cover the FMA latency times
 * the FMA units (4 cycles x 2 units on Zen 4/5 and recent Intel cores:
 * 8 vectors; we use 16 zmm or 12 ymm, leaving registers for m and c).
 * The loop is picked at run time: AVX-512 if the CPU and OS have it,
 * else AVX2 + FMA, else plain C (a multiply and an add, as the compiler
 * vectorizes them).  The flop count is exact (2 per lane per FMA); the
 * time is from the first thread's start to the last one's end, best of
 * ten trials of about 30 ms after a calibration.  The accumulators
 * converge to c / (1 - m) = 1, and their sum is checked against that, so
 * the compiler cannot drop the loop and a broken loop cannot pass.
 * Prints one JSON line: {"gflops":..,"threads":T,"isa":"avx512"}.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define X86 1
#else
#define X86 0
#endif

#define TRIALS 10
#define TRIAL_S 0.03            /* seconds per trial */
#define GENERIC_ACC 64          /* floats in the plain C loop */
#define MAXTHREADS 256

/* Loaded at run time so that nothing about the loop is a constant. */
static volatile float mul = 0.999f, add = 0.001f;

/* A loop: runs iters steps, returns the sum of its accumulators. */
struct kernel {
	const char *isa;
	double flops_per_iter;
	float (*fn)(long iters, float m, float c);
};

#if X86
__attribute__((target("avx512f,fma"))) static float
loop_avx512(long iters, float m, float c)
{
	__m512 acc[16], vm = _mm512_set1_ps(m), vc = _mm512_set1_ps(c);

	for (int k = 0; k < 16; k++)
		acc[k] = _mm512_set1_ps((float)k / 16);
	for (long i = 0; i < iters; i++) {
#pragma GCC unroll 16
		for (int k = 0; k < 16; k++)
			acc[k] = _mm512_fmadd_ps(acc[k], vm, vc);
	}
	for (int k = 1; k < 16; k++)
		acc[0] = _mm512_add_ps(acc[0], acc[k]);
	return _mm512_reduce_add_ps(acc[0]);
}

__attribute__((target("avx2,fma"))) static float
loop_avx2(long iters, float m, float c)
{
	__m256 acc[12], vm = _mm256_set1_ps(m), vc = _mm256_set1_ps(c);
	float lane[8], s = 0;

	for (int k = 0; k < 12; k++)
		acc[k] = _mm256_set1_ps((float)k / 12);
	for (long i = 0; i < iters; i++) {
#pragma GCC unroll 12
		for (int k = 0; k < 12; k++)
			acc[k] = _mm256_fmadd_ps(acc[k], vm, vc);
	}
	for (int k = 1; k < 12; k++)
		acc[0] = _mm256_add_ps(acc[0], acc[k]);
	_mm256_storeu_ps(lane, acc[0]);
	for (int j = 0; j < 8; j++)
		s += lane[j];
	return s;
}
#endif

static float
loop_generic(long iters, float m, float c)
{
	float acc[GENERIC_ACC], s = 0;

	for (int k = 0; k < GENERIC_ACC; k++)
		acc[k] = (float)k / GENERIC_ACC;
	for (long i = 0; i < iters; i++)
		for (int k = 0; k < GENERIC_ACC; k++)
			acc[k] = acc[k] * m + c;
	for (int k = 0; k < GENERIC_ACC; k++)
		s += acc[k];
	return s;
}

static struct kernel
pick_kernel(void)
{
#if X86
	__builtin_cpu_init();
	if (__builtin_cpu_supports("avx512f"))
		return (struct kernel){"avx512", 16 * 16 * 2, loop_avx512};
	if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
		return (struct kernel){"avx2", 12 * 8 * 2, loop_avx2};
#endif
	return (struct kernel){"generic", GENERIC_ACC * 2, loop_generic};
}

/* ---- threads ------------------------------------------------------- */

struct job {
	const struct kernel *k;
	long iters;
	pthread_barrier_t *start;
	double t0, t1;                  /* seconds, CLOCK_MONOTONIC */
	float sum;
};

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void *
worker(void *arg)
{
	struct job *j = arg;

	pthread_barrier_wait(j->start);
	j->t0 = now_s();
	j->sum = j->k->fn(j->iters, mul, add);
	j->t1 = now_s();
	return NULL;
}

/* Every accumulator lane ends at 1, give or take rounding: it starts
 * within 1 of it and the distance shrinks by m = 0.999 a step, so after
 * the 2^14 steps of the shortest run it is below 1e-7.  A sum far from
 * the lane count means the loop did not run as counted. */
static void
check_sum(const struct kernel *k, const struct job *j)
{
	double lanes = k->flops_per_iter / 2;

	if (!(fabs(j->sum - lanes) <= 1e-3 * lanes)) {
		fprintf(stderr, "peak_flops: %s loop gave %g, expected %g\n",
		        k->isa, j->sum, lanes);
		exit(1);
	}
}

/* One trial: T threads, iters steps each; returns the wall seconds from
 * the first start to the last end. */
static double
trial(const struct kernel *k, int nthreads, long iters)
{
	pthread_t tid[MAXTHREADS];
	struct job job[MAXTHREADS];
	pthread_barrier_t start;
	double t0 = 1e300, t1 = 0;
	int err;

	pthread_barrier_init(&start, NULL, (unsigned)nthreads);
	for (int i = 0; i < nthreads; i++) {
		job[i] = (struct job){.k = k, .iters = iters, .start = &start};
		err = pthread_create(&tid[i], NULL, worker, &job[i]);
		if (err) {
			fprintf(stderr, "peak_flops: cannot start a thread: %s\n",
			        strerror(err));
			exit(1);
		}
	}
	for (int i = 0; i < nthreads; i++) {
		pthread_join(tid[i], NULL);
		check_sum(k, &job[i]);
		t0 = job[i].t0 < t0 ? job[i].t0 : t0;
		t1 = job[i].t1 > t1 ? job[i].t1 : t1;
	}
	pthread_barrier_destroy(&start);
	return t1 - t0;
}

/* Steps for a trial of about TRIAL_S seconds on one thread. */
static long
calibrate(const struct kernel *k)
{
	long iters = 1 << 14;
	double t;

	while ((t = trial(k, 1, iters)) < TRIAL_S / 4 && iters < (1L << 40))
		iters *= 2;
	return (long)(iters * (TRIAL_S / t)) + 1;
}

int
main(int argc, char **argv)
{
	struct kernel k = pick_kernel();
	int nthreads = 1;
	double best = 1e300;
	long iters;

	if (argc == 3 && !strcmp(argv[1], "--threads")) {
		char *end;
		errno = 0;
		nthreads = (int)strtol(argv[2], &end, 10);
		if (*end || errno || nthreads < 1 || nthreads > MAXTHREADS) {
			fprintf(stderr, "peak_flops: --threads expects 1 to %d, "
			        "got '%s'\n", MAXTHREADS, argv[2]);
			return 1;
		}
	} else if (argc != 1) {
		fprintf(stderr, "usage: peak_flops [--threads T]\n");
		return 1;
	}
	iters = calibrate(&k);
	for (int i = 0; i < TRIALS; i++) {
		double t = trial(&k, nthreads, iters);
		best = t < best ? t : best;
	}
	printf("{\"gflops\":%.1f,\"threads\":%d,\"isa\":\"%s\"}\n",
	       k.flops_per_iter * (double)iters * nthreads / best / 1e9,
	       nthreads, k.isa);
	return 0;
}
