/* test_threads.c: the thread pool of runtime/threads.c and the kernels
 * that use it.
 *
 * kiln_parallel_for must call its function on ranges that cover [0, n)
 * exactly once, for n below, at and above the thread count (0 and 1
 * too), run the parts on distinct threads, run a nested call in the
 * calling thread, and survive two outside threads calling at once.  The
 * kernels split over the threads (gemm, matmul, conv2d, its transpose and
 * weight gradient) must give the same bits with 1, 2, 3 and 4 threads,
 * on awkward shapes above KILN_PARALLEL_MIN multiply-adds, so that they
 * are split: odd sizes, transposes, alpha and beta, groups, strides,
 * dilations, batches of 1, and im2col matrices cut into pieces.  And a
 * product cut into single rows or into columns, which the weight
 * gradient's split relies on, must give the same bits as the whole.
 *
 *   test_threads       run everything; the last line is the summary
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kiln.h"
#include "testutil.h"

#define countof(a) ((int)(sizeof(a) / sizeof((a)[0])))

static const int nthreads[] = {1, 2, 3, 4};

/* ---- kiln_parallel_for ------------------------------------------------ */

enum { MAXN = 1100, MAXPART = 16 };

/* What the parts of one call saw. */
struct cover {
	atomic_int hits[MAXN];          /* times index i was covered */
	atomic_int nparts;
	pthread_t who[MAXPART];         /* the thread of part number lo */
	int64_t lo[MAXPART];
	int inner;                      /* nested call size, 0: none */
	atomic_int inner_hits[MAXN];
	atomic_int inner_foreign;       /* inner parts on another thread */
};

static void
mark(void *ctx, int64_t lo, int64_t hi)
{
	struct cover *c = ctx;

	for (int64_t i = lo; i < hi; i++)
		atomic_fetch_add(&c->inner_hits[i], 1);
}

/* The nested call's parts run here, in this thread. */
static pthread_t inner_owner;

static void
mark_inner_thread(void *ctx, int64_t lo, int64_t hi)
{
	struct cover *c = ctx;

	if (!pthread_equal(pthread_self(), inner_owner))
		atomic_fetch_add(&c->inner_foreign, 1);
	mark(ctx, lo, hi);
}

static void
cover_part(void *ctx, int64_t lo, int64_t hi)
{
	struct cover *c = ctx;
	int k = atomic_fetch_add(&c->nparts, 1);

	if (k < MAXPART) {
		c->who[k] = pthread_self();
		c->lo[k] = lo;
	}
	for (int64_t i = lo; i < hi; i++)
		atomic_fetch_add(&c->hits[i], 1);
	if (c->inner)
		kiln_parallel_for(c->inner, mark, c);
}

/* Parts on distinct threads, as many as the threads when n allows. */
static void
check_parts(const struct cover *c, int64_t n, int th)
{
	int want = n < th ? (int)n : th, distinct = 1;

	for (int i = 1; i < c->nparts && i < MAXPART; i++) {
		int same = 0;
		for (int j = 0; j < i; j++)
			same |= pthread_equal(c->who[i], c->who[j]);
		distinct &= !same;
	}
	t_expectf(c->nparts == want, "n=%lld threads=%d: %d parts, want %d",
	          (long long)n, th, c->nparts, want);
	t_expectf(distinct, "n=%lld threads=%d: parts share a thread",
	          (long long)n, th);
}

static void
cover_case(int64_t n, int th, int inner)
{
	struct cover *c = calloc(1, sizeof *c);
	int bad = 0, badin = 0;

	if (!c)
		exit(1);
	c->inner = inner;
	kiln_set_threads(th);
	kiln_parallel_for(n, cover_part, c);
	for (int64_t i = 0; i < n; i++)
		bad += c->hits[i] != 1;
	t_expectf(bad == 0, "n=%lld threads=%d: %d indices not covered once",
	          (long long)n, th, bad);
	if (n > 0)
		check_parts(c, n, th);
	/* Every part ran the nested call whole: n times each index. */
	for (int64_t i = 0; i < inner; i++)
		badin += c->inner_hits[i] != (n < th ? n : th);
	t_expectf(badin == 0, "nested %d in n=%lld threads=%d: %d indices "
	          "covered wrongly", inner, (long long)n, th, badin);
	free(c);
}

static void
test_cover(void)
{
	static const int64_t ns[] = {0, 1, 2, 3, 4, 5, 7, 8, 13, 100, 1001};

	for (int t = 0; t < countof(nthreads); t++)
		for (int i = 0; i < countof(ns); i++) {
			cover_case(ns[i], nthreads[t], 0);
			cover_case(ns[i], nthreads[t], 7);
		}
	cover_case(5, 7, 0);    /* more threads than cores */
	cover_case(MAXN, 16, 3);
}

/* A call of n = 1 gets no thread: a call inside it may split. */
static void
one_part(void *ctx, int64_t lo, int64_t hi)
{
	struct cover *c = ctx;

	(void)lo, (void)hi;
	inner_owner = pthread_self();
	kiln_parallel_for(c->inner, mark, c);
}

/* A nested call inside a split one runs in the part's own thread. */
static void
nested_part(void *ctx, int64_t lo, int64_t hi)
{
	static pthread_mutex_t one = PTHREAD_MUTEX_INITIALIZER;
	struct cover *c = ctx;

	(void)lo, (void)hi;
	/* inner_owner is one variable: one part at a time checks. */
	pthread_mutex_lock(&one);
	inner_owner = pthread_self();
	kiln_parallel_for(c->inner, mark_inner_thread, c);
	pthread_mutex_unlock(&one);
}

static void
test_nested(void)
{
	struct cover *c = calloc(1, sizeof *c);
	int bad = 0;

	if (!c)
		exit(1);
	kiln_set_threads(2);
	c->inner = 50;
	kiln_parallel_for(1, one_part, c);
	for (int i = 0; i < 50; i++)
		bad += c->inner_hits[i] != 1;
	t_expectf(bad == 0, "under n=1: %d indices not covered once", bad);

	memset(c, 0, sizeof *c);
	c->inner = 50;
	kiln_parallel_for(2, nested_part, c);
	bad = 0;
	for (int i = 0; i < 50; i++)
		bad += c->inner_hits[i] != 2;
	t_expectf(bad == 0, "nested: %d indices not covered twice", bad);
	t_expectf(c->inner_foreign == 0, "nested: %d parts left their thread",
	          (int)c->inner_foreign);
	free(c);
}

/* Two threads of the caller's calling at once: one gets the pool, the
 * other runs serially, and neither waits for ever. */
static void *
caller(void *arg)
{
	int *bad = arg;

	for (int r = 0; r < 200; r++) {
		struct cover *c = calloc(1, sizeof *c);
		if (!c)
			exit(1);
		kiln_parallel_for(97, cover_part, c);
		for (int i = 0; i < 97; i++)
			*bad += c->hits[i] != 1;
		free(c);
	}
	return NULL;
}

static void
test_concurrent(void)
{
	pthread_t t[2];
	int bad[2] = {0, 0};

	kiln_set_threads(3);
	for (int i = 0; i < 2; i++)
		if (pthread_create(&t[i], NULL, caller, &bad[i]))
			exit(1);
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	t_expectf(bad[0] + bad[1] == 0, "concurrent callers: %d indices not "
	          "covered once", bad[0] + bad[1]);
}

/* kiln_set_threads and the default from KILN_NUM_THREADS. */
static void
test_count(void)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);

	kiln_set_threads(3);
	t_eq("kiln_threads after kiln_set_threads(3)", kiln_threads(), 3);
	kiln_set_threads(100000);
	t_eq("kiln_set_threads(100000)", kiln_threads(), KILN_MAXTHREADS);
	setenv("KILN_NUM_THREADS", "5", 1);
	kiln_set_threads(0);
	t_eq("KILN_NUM_THREADS=5", kiln_threads(), 5);
	setenv("KILN_NUM_THREADS", "5x", 1);
	kiln_set_threads(0);
	t_eq("KILN_NUM_THREADS=5x: the CPUs", kiln_threads(),
	     cpus < 1 ? 1 : cpus);
	unsetenv("KILN_NUM_THREADS");
	kiln_set_threads(-1);
	t_eq("no KILN_NUM_THREADS: the CPUs", kiln_threads(),
	     cpus < 1 ? 1 : cpus);
}

/* ---- the kernels: the same bits with any thread count ---------------- */

/* One kernel call writing ny floats into y. */
struct call {
	int op;
	int64_t m, n, k, batch;
	int ta, tb;
	float alpha, beta;
	int bias;
	struct kiln_conv2d p;
};
enum { GEMM, GEMM_C, GEMM_LD, MATMUL, CONV, CONV_PK, CONVT, GRAD_W };

static int64_t
out_size(const struct call *c)
{
	const struct kiln_conv2d *p = &c->p;

	switch (c->op) {
	case MATMUL: return c->batch * c->m * c->n;
	case CONV:
	case CONV_PK:
	case CONVT: return p->n * p->oc * p->oh * p->ow;
	case GRAD_W: return p->oc * p->c / p->group * p->kh * p->kw;
	default: return c->m * c->n;
	}
}

/* y = the call on inputs u and v (and y itself for GEMM_LD's beta). */
static void
run(const struct call *c, float *y, const float *u, const float *v,
    const float *bias)
{
	const struct kiln_conv2d *p = &c->p;

	switch (c->op) {
	case GEMM:
		kiln_gemm_f32(y, u, v, NULL, c->m, c->n, c->k, c->ta, c->tb,
		              c->alpha, 0.0f, 0, 0);
		break;
	case GEMM_C:
		kiln_gemm_f32(y, u, v, bias, c->m, c->n, c->k, c->ta, c->tb,
		              c->alpha, c->beta, 0, 1);
		break;
	case GEMM_LD:
		kiln_gemm_ld_f32(y, c->n, u, c->ta ? c->m : c->k, v,
		                 c->tb ? c->k : c->n, c->m, c->n, c->k, c->ta,
		                 c->tb, c->alpha, c->beta);
		break;
	case MATMUL:
		kiln_matmul_f32(y, u, v, c->batch, c->m, c->n, c->k,
		                c->m * c->k, 0);
		break;
	case CONV:
		kiln_conv2d_f32(y, u, v, c->bias ? bias : NULL, p);
		break;
	case CONV_PK: {
		int64_t nw = p->oc * p->c / p->group * p->kh * p->kw;
		float *wp = t_alloc((size_t)nw * sizeof *wp);
		kiln_conv2d_pack_weights(wp, v, p);
		kiln_conv2d_pk_f32(y, u, wp, c->bias ? bias : NULL, p);
		free(wp);
		break;
	}
	case CONVT:
		kiln_conv2d_transpose_f32(y, u, v, c->bias ? bias : NULL, p);
		break;
	case GRAD_W:
		kiln_conv2d_grad_w_f32(y, u, v, p);
		break;
	}
}

/* The kernels' inputs, larger than any case's, and a bias or c. */
enum { NIN = 1 << 22, NBIAS = 1 << 12 };
static float *in_u, *in_v, *in_bias;

/* Runs c with each thread count, on the same inputs and the same start
 * of y, and compares the bits with the first. */
static void
same_bits(const char *what, const struct call *c)
{
	int64_t ny = out_size(c);
	float *u = in_u, *v = in_v, *bias = in_bias;
	float *y0 = t_randf(ny), *ref = t_alloc((size_t)ny * sizeof *ref);
	float *y = t_alloc((size_t)ny * sizeof *y);
	char buf[200];

	for (int t = 0; t < countof(nthreads); t++) {
		kiln_set_threads(nthreads[t]);
		memcpy(y, y0, (size_t)ny * sizeof *y);
		run(c, y, u, v, bias);
		if (t == 0) {
			memcpy(ref, y, (size_t)ny * sizeof *y);
			continue;
		}
		snprintf(buf, sizeof buf, "%s: %d threads", what, nthreads[t]);
		t_bytes(buf, y, ref, (size_t)ny * sizeof *y);
	}
	free(y0), free(ref), free(y);
}

static void
test_gemm(void)
{
	static const struct call g[] = {
		{GEMM, 97, 131, 257, 0, 0, 0, 1.0f, 0, 0, {0}},
		{GEMM, 301, 7, 1000, 0, 1, 0, 1.0f, 0, 0, {0}},
		{GEMM, 17, 1500, 130, 0, 0, 1, 0.5f, 0, 0, {0}},
		{GEMM, 200, 200, 200, 0, 1, 1, 1.0f, 0, 0, {0}},
		{GEMM, 1, 3000, 700, 0, 0, 0, 1.0f, 0, 0, {0}},
		{GEMM, 3000, 1, 700, 0, 0, 1, 1.0f, 0, 0, {0}},
		{GEMM_C, 64, 128, 513, 0, 0, 0, 1.0f, 1.0f, 0, {0}},
		{GEMM_LD, 95, 133, 300, 0, 0, 1, -1.5f, 0.25f, 0, {0}},
		{GEMM_LD, 130, 97, 255, 0, 1, 0, 1.0f, 1.0f, 0, {0}},
		{MATMUL, 40, 50, 130, 5, 0, 0, 1.0f, 0, 0, {0}},
		{MATMUL, 3, 5, 7, 40000, 0, 0, 1.0f, 0, 0, {0}},
	};
	char what[120];

	for (int i = 0; i < countof(g); i++) {
		snprintf(what, sizeof what, "gemm %d: m=%lld n=%lld k=%lld", i,
		         (long long)g[i].m, (long long)g[i].n, (long long)g[i].k);
		same_bits(what, &g[i]);
	}
}

/* A 2-D convolution's parameters, oh and ow from the rest. */
static struct kiln_conv2d
conv(int64_t n, int64_t c, int64_t h, int64_t w, int64_t oc, int64_t k,
     int64_t s, int64_t pad, int64_t d, int64_t group)
{
	struct kiln_conv2d p = {
		.n = n, .c = c, .h = h, .w = w, .oc = oc, .kh = k, .kw = k,
		.sh = s, .sw = s, .pt = pad, .pl = pad, .dh = d, .dw = d,
		.group = group,
	};

	p.oh = (h + 2 * pad - d * (k - 1) - 1) / s + 1;
	p.ow = (w + 2 * pad - d * (k - 1) - 1) / s + 1;
	return p;
}

/* The transposed convolution's parameters: p with input and output
 * swapped, as the gradient of conv2d's input uses it. */
static struct kiln_conv2d
transposed(struct kiln_conv2d p)
{
	struct kiln_conv2d t = p;

	t.c = p.oc, t.oc = p.c, t.h = p.oh, t.w = p.ow, t.oh = p.h, t.ow = p.w;
	return t;
}

static void
test_conv(void)
{
	static const struct { int64_t n, c, h, w, oc, k, s, pad, d, g; } cs[] = {
		{3, 8, 31, 29, 17, 3, 1, 1, 1, 1},      /* several images */
		{1, 12, 60, 60, 19, 3, 1, 1, 1, 1},     /* im2col in pieces */
		{1, 6, 9, 9, 33, 3, 1, 1, 1, 1},        /* few channels */
		{1, 64, 30, 30, 19, 3, 1, 1, 1, 1},     /* by taps, row blocks */
		{1, 600, 9, 9, 33, 3, 1, 1, 1, 1},      /* chunks of channels */
		{1, 16, 7, 7, 512, 3, 1, 1, 1, 1},      /* parts of channels */
		{2, 32, 12, 12, 48, 3, 1, 1, 2, 2},     /* dilation, groups */
		{2, 48, 33, 35, 36, 3, 2, 2, 2, 3},     /* strides, groups */
		{1, 96, 40, 40, 80, 1, 1, 0, 1, 1},     /* 1x1: x is col */
		{2, 160, 7, 7, 96, 1, 1, 0, 1, 1},      /* along channels */
		{1, 64, 13, 13, 168, 3, 2, 1, 1, 1},    /* along channels */
		{8, 32, 21, 21, 32, 5, 1, 2, 1, 32},    /* depthwise */
		{4, 1, 100, 100, 3, 3, 1, 1, 1, 1},     /* few columns of dw */
		{6, 1, 100, 100, 5, 2, 1, 1, 1, 1},     /* a row or two each */
	};
	char what[160];

	for (int i = 0; i < countof(cs); i++) {
		struct kiln_conv2d p = conv(cs[i].n, cs[i].c, cs[i].h, cs[i].w,
		                            cs[i].oc, cs[i].k, cs[i].s, cs[i].pad,
		                            cs[i].d, cs[i].g);
		struct call c = {.op = CONV, .p = p, .bias = i % 2};
		snprintf(what, sizeof what, "conv2d %d", i);
		same_bits(what, &c);
		c.op = CONV_PK;
		snprintf(what, sizeof what, "conv2d packed weights %d", i);
		same_bits(what, &c);
		c.op = GRAD_W;
		snprintf(what, sizeof what, "conv2d_grad_w %d", i);
		same_bits(what, &c);
		c.op = CONVT;
		c.p = transposed(p);
		c.bias = !c.bias;
		snprintf(what, sizeof what, "conv2d_transpose %d", i);
		same_bits(what, &c);
	}
}

/* A product computed row by row, and in two column halves, against the
 * whole: the row path and the blocked path must agree to the bit. */
static void
test_pieces(void)
{
	static const int64_t shape[][3] = {
		{37, 41, 600}, {12, 300, 9}, {7, 19, 1000}, {50, 50, 257},
	};

	kiln_set_threads(1);
	for (int s = 0; s < countof(shape); s++)
		for (int tb = 0; tb < 2; tb++) {
			int64_t m = shape[s][0], n = shape[s][1], k = shape[s][2];
			int64_t ldb = tb ? k : n, h = n / 2;
			size_t bytes = (size_t)(m * n) * sizeof(float);
			float *a = t_randf(m * k), *b = t_randf(k * n);
			float *y0 = t_randf(m * n), *whole = t_alloc(bytes);
			float *part = t_alloc(bytes);
			char what[120];

			memcpy(whole, y0, bytes);
			memcpy(part, y0, bytes);
			kiln_gemm_ld_f32(whole, n, a, k, b, ldb, m, n, k, 0, tb, 0.75f,
			                 1.0f);
			for (int64_t i = 0; i < m; i++)
				kiln_gemm_ld_f32(part + i * n, n, a + i * k, k, b, ldb, 1, n,
				                 k, 0, tb, 0.75f, 1.0f);
			snprintf(what, sizeof what, "m=%lld n=%lld k=%lld tb=%d by rows",
			         (long long)m, (long long)n, (long long)k, tb);
			t_bytes(what, part, whole, bytes);
			memcpy(part, y0, bytes);
			kiln_gemm_ld_f32(part, n, a, k, b, ldb, m, h, k, 0, tb, 0.75f,
			                 1.0f);
			kiln_gemm_ld_f32(part + h, n, a, k, b + (tb ? h * k : h), ldb,
			                 m, n - h, k, 0, tb, 0.75f, 1.0f);
			snprintf(what, sizeof what, "m=%lld n=%lld k=%lld tb=%d by "
			         "columns", (long long)m, (long long)n, (long long)k, tb);
			t_bytes(what, part, whole, bytes);
			free(a), free(b), free(y0), free(whole), free(part);
		}
}

int
main(void)
{
	t_seed(7);
	test_count();
	test_cover();
	test_nested();
	test_concurrent();
	test_pieces();
	in_u = t_randf(NIN), in_v = t_randf(NIN), in_bias = t_randf(NBIAS);
	test_gemm();
	test_conv();
	free(in_u), free(in_v), free(in_bias);
	return t_report("threads");
}
