/* threads_bench.c: what the thread pool (runtime/threads.c) gains: the
 * kernels that split over it, timed with 1 thread and with N (2 unless
 * given), on the shapes of examples/fashion_cnn.kiln at batch 64 (conv
 * 1->32 on 28x28 and 32->64 on 14x14, 3x3, pad 1: forward, weight
 * gradient and input gradient, the transposed convolution) and at batch
 * 1, its dense layer 3136 -> 128, and a 1024 x 1024 x 1024 product.  The
 * two counts run in turns of 3 runs for 2 s, at least 5 turns, and the
 * best time counts, as other work shares the machine (a turn rather than
 * a single run, as a worker woken after a long sleep waits longer for a
 * core); it prints the 1/N ratio and checks that the results are the
 * same bits.  On a loaded
 * machine the N threads seldom all get a core at once, so it also prints
 * the work, the process's CPU time with N threads over that with 1 (best
 * of each): 1.00 means the split costs nothing, and N / work is what an
 * idle machine would give.  Not part of the test suite: it proves
 * nothing, it measures.
 *
 *   cc -O2 -std=c11 -Iruntime bench/threads_bench.c \
 *      build/runtime/libkiln_runtime.a -lm -lz -pthread -o threads_bench
 *   ./threads_bench [N]
 */
#define _POSIX_C_SOURCE 200809L

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kiln.h"

/* One kernel call. */
struct run {
	int op;                 /* CONV, GRAD_W, CONVT, GEMM */
	struct kiln_conv2d p;
	int64_t m, n, k;
	const float *x, *w;
	float *y;
};
enum { CONV, GRAD_W, CONVT, GEMM };

static void
call(const struct run *r)
{
	switch (r->op) {
	case CONV:
		kiln_conv2d_f32(r->y, r->x, r->w, NULL, &r->p);
		break;
	case GRAD_W:
		kiln_conv2d_grad_w_f32(r->y, r->x, r->w, &r->p);
		break;
	case CONVT:
		kiln_conv2d_transpose_f32(r->y, r->x, r->w, NULL, &r->p);
		break;
	case GEMM:
		kiln_gemm_f32(r->y, r->x, r->w, NULL, r->m, r->n, r->k, 0, 0, 1.0f,
		              0.0f, 0, 0);
		break;
	}
}

static double
clock_s(clockid_t id)
{
	struct timespec t;

	clock_gettime(id, &t);
	return t.tv_sec + t.tv_nsec * 1e-9;
}

static double
now(void)
{
	return clock_s(CLOCK_MONOTONIC);
}

/* Runs r on threads threads; keeps the best wall and CPU times. */
static void
timed(const struct run *r, int threads, double *wall, double *cpu)
{
	double t, c;

	kiln_set_threads(threads);
	t = now();
	c = clock_s(CLOCK_PROCESS_CPUTIME_ID);
	call(r);
	*cpu = fmin(*cpu, clock_s(CLOCK_PROCESS_CPUTIME_ID) - c);
	*wall = fmin(*wall, now() - t);
}

static float *
randf(int64_t n)
{
	float *p = malloc((size_t)n * sizeof *p);

	if (!p)
		exit(1);
	for (int64_t i = 0; i < n; i++)
		p[i] = (float)((double)rand() / RAND_MAX - 0.5);
	return p;
}

/* Times r with 1 and nt threads in turns and prints the ratio of the
 * best times; the two results must be the same bits. */
static void
compare(const char *name, struct run r, int nt, int64_t nx, int64_t nw,
        int64_t ny)
{
	float *x = randf(nx), *w = randf(nw), *y1 = randf(ny), *yn = randf(ny);
	double t1 = INFINITY, tn = INFINITY, c1 = INFINITY, cn = INFINITY;
	double start = now();

	r.x = x, r.w = w;
	for (int i = 0; i < 5 || now() - start < 2.0; i++) {
		r.y = y1;
		for (int j = 0; j < 3; j++)
			timed(&r, 1, &t1, &c1);
		r.y = yn;
		for (int j = 0; j < 3; j++)
			timed(&r, nt, &tn, &cn);
	}
	printf("%-30s 1/%d: %5.2fx  work %4.2f  (1: %7.2f ms, %d: %7.2f ms)%s\n",
	       name, nt, t1 / tn, cn / c1, t1 * 1e3, nt, tn * 1e3,
	       memcmp(y1, yn, (size_t)ny * sizeof *y1) ? "  DIFFERENT" : "");
	free(x), free(w), free(y1), free(yn);
}

/* conv2d 3x3, pad 1, stride 1 over [n,c,h,h] to oc channels, and its
 * weight and input gradients. */
static void
conv3x3(const char *name, int nt, int64_t n, int64_t c, int64_t h,
        int64_t oc)
{
	struct kiln_conv2d p = {
		.n = n, .c = c, .h = h, .w = h, .oc = oc, .kh = 3, .kw = 3,
		.oh = h, .ow = h, .sh = 1, .sw = 1, .pt = 1, .pl = 1, .dh = 1,
		.dw = 1, .group = 1,
	};
	struct kiln_conv2d t = p;
	int64_t nx = n * c * h * h, ny = n * oc * h * h, nw = oc * c * 9;
	char what[64];

	t.c = oc, t.oc = c;
	snprintf(what, sizeof what, "%s forward", name);
	compare(what, (struct run){.op = CONV, .p = p}, nt, nx, nw, ny);
	snprintf(what, sizeof what, "%s grad_w", name);
	compare(what, (struct run){.op = GRAD_W, .p = p}, nt, nx, ny, nw);
	snprintf(what, sizeof what, "%s grad_x", name);
	compare(what, (struct run){.op = CONVT, .p = t}, nt, ny, nw, nx);
}

static void
gemm(const char *name, int nt, int64_t m, int64_t n, int64_t k)
{
	compare(name, (struct run){.op = GEMM, .m = m, .n = n, .k = k}, nt,
	        m * k, k * n, m * n);
}

int
main(int argc, char **argv)
{
	int nt = argc > 1 ? atoi(argv[1]) : 2;

	if (nt < 2 || nt > KILN_MAXTHREADS) {
		fprintf(stderr, "usage: threads_bench [N >= 2]\n");
		return 2;
	}
	srand(1);
	conv3x3("conv 1->32 28x28 b64", nt, 64, 1, 28, 32);
	conv3x3("conv 32->64 14x14 b64", nt, 64, 32, 14, 64);
	conv3x3("conv 32->64 14x14 b1", nt, 1, 32, 14, 64);
	gemm("dense 64x3136 @ 3136x128", nt, 64, 128, 3136);
	gemm("gemm 1024x1024x1024", nt, 1024, 1024, 1024);
	return 0;
}
