/* threads.c: the thread pool behind kiln_parallel_for(), which the
 * matrix product and the 2-D convolutions split their outputs over.
 *
 * One job at a time.  The caller takes the mutex, stores the job (fn,
 * ctx, n and the number of parts), sets left to the parts the workers
 * owe, bumps the generation counter and wakes every worker; it runs part
 * 0 itself, then sleeps on `done` until left is 0.  Worker i (from 1)
 * sleeps on `wake` until the generation differs from the last it saw,
 * runs part i if there is one, and the last to finish signals `done`.
 * Workers that have no part only note the generation, so a worker that
 * slept through a job owed nothing to it, and no job can start before
 * every part of the one before has run.  The job and the counters are
 * read and written under the mutex only; the parts write disjoint data.
 *
 * Before sleeping, a worker watches the generation counter and the
 * caller the count of parts left, for a few tens of microseconds
 * (SPIN): a model runs its layers back to back, and a sleeping thread
 * takes about as long to wake as a small layer's work.  The mutex and
 * the condition variables stay the protocol; the spinning only reads
 * atomic copies of gen and left and then takes the mutex as before.
 *
 * The workers are created on the first job that needs them, with big
 * stacks (the kernels keep their packing and im2col buffers on the
 * stack), and never exit; the pool grows when kiln_set_threads() asks for
 * more, and a smaller count just leaves some idle.  If a thread cannot
 * be created, the pool keeps the ones it has (maybe none: serial).  A
 * call from inside a part (a worker's, or the caller's own part 0) or
 * while another thread's job runs calls fn on the whole range at once,
 * so nesting and concurrent callers cannot deadlock.  Nothing is
 * allocated after the workers exist.  Not fork-safe: a child of fork()
 * has no workers, so it must not run a job that needs them.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

#include "kiln.h"

#define STACK (4 << 20)         /* bytes of a worker's stack */

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake = PTHREAD_COND_INITIALIZER;  /* a new job */
static pthread_cond_t done = PTHREAD_COND_INITIALIZER;  /* left is 0 */

/* All under mu. */
static int want;                /* threads of a job, the caller's too; 0:
                                 * not decided yet */
static int nworker;             /* workers created: ids 1..nworker */
static uint64_t gen;            /* jobs started */
static uint64_t seen[KILN_MAXTHREADS];  /* the last job worker i saw */
static int busy;                /* a job is running */
static int left;                /* parts of the job not finished */
static struct {
	void (*fn)(void *ctx, int64_t lo, int64_t hi);
	void *ctx;
	int64_t n;
	int parts;
} job;

/* gen and left as published for spinning: written under mu together
 * with them, read without it. */
static _Atomic uint64_t pub_gen;
static _Atomic int pub_left;

/* Set in workers, and in the caller while it runs its part. */
static _Thread_local int inside;

/* How long a thread spins before it sleeps, in pause instructions: a few
 * tens of microseconds.  Waking a sleeping thread costs about as much as
 * a small layer's work; a model runs its layers back to back, so the
 * workers and the caller keep watching for a short while instead. */
enum { SPIN = 4096 };

static void
pause_cpu(void)
{
#if defined(__x86_64__) && defined(__GNUC__)
	__builtin_ia32_pause();
#endif
}

/* Spins until *v differs from old or SPIN runs out. */
static void
spin_gen(uint64_t old)
{
	for (int i = 0; i < SPIN && atomic_load_explicit(&pub_gen,
	     memory_order_acquire) == old; i++)
		pause_cpu();
}

/* Part i of parts of [0, n): contiguous, sizes differing by 1 at most. */
static void
run_part(int i)
{
	int64_t q = job.n / job.parts, r = job.n % job.parts;
	int64_t lo = i * q + (i < r ? i : r), hi = lo + q + (i < r);

	job.fn(job.ctx, lo, hi);
}

static void *
worker(void *arg)
{
	int id = (int)(intptr_t)arg;

	inside = 1;
	pthread_mutex_lock(&mu);
	for (;;) {
		if (seen[id] == gen) {
			/* seen[id] is this thread's own */
			pthread_mutex_unlock(&mu);
			spin_gen(seen[id]);
			pthread_mutex_lock(&mu);
		}
		while (seen[id] == gen)
			pthread_cond_wait(&wake, &mu);
		seen[id] = gen;
		if (id >= job.parts)
			continue;
		/* The job cannot change before left reaches 0, which needs
		 * this part: reading it unlocked is safe. */
		pthread_mutex_unlock(&mu);
		run_part(id);
		pthread_mutex_lock(&mu);
		atomic_store_explicit(&pub_left, --left, memory_order_release);
		if (left == 0)
			pthread_cond_signal(&done);
	}
	return NULL;
}

/* KILN_NUM_THREADS, else the online CPUs, within [1, KILN_MAXTHREADS]. */
static int
default_threads(void)
{
	const char *s = getenv("KILN_NUM_THREADS");
	char *end;
	long n = 0;

	if (s && *s) {
		errno = 0;
		n = strtol(s, &end, 10);
		if (*end || errno)
			n = 0;
	}
	if (n < 1)
		n = sysconf(_SC_NPROCESSORS_ONLN);
	return n < 1 ? 1 : n > KILN_MAXTHREADS ? KILN_MAXTHREADS : (int)n;
}

/* Creates workers up to want - 1, under mu.  The workers block every
 * signal, so that signals go to the caller's threads, as without a pool.
 * On failure want drops to what there is, so it is not tried again. */
static void
grow(void)
{
	pthread_attr_t attr;
	sigset_t all, old;

	if (nworker >= want - 1 || pthread_attr_init(&attr))
		return;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, STACK);
	while (nworker < want - 1) {
		pthread_t t;
		seen[nworker + 1] = gen;
		if (pthread_create(&t, &attr, worker,
		                   (void *)(intptr_t)(nworker + 1))) {
			want = nworker + 1;
			break;
		}
		nworker++;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&attr);
}

void
kiln_set_threads(int n)
{
	pthread_mutex_lock(&mu);
	want = n < 1 ? default_threads() : n > KILN_MAXTHREADS ?
	       KILN_MAXTHREADS : n;
	pthread_mutex_unlock(&mu);
}

int
kiln_threads(void)
{
	int n;

	pthread_mutex_lock(&mu);
	if (!want)
		want = default_threads();
	n = want;
	pthread_mutex_unlock(&mu);
	return n;
}

/* Starts fn over n in as many parts as there are threads, at most n;
 * returns the parts, or 1 when it started nothing. */
static int
start(int64_t n, void (*fn)(void *, int64_t, int64_t), void *ctx)
{
	int parts = 1;

	pthread_mutex_lock(&mu);
	if (!want)
		want = default_threads();
	if (!busy && want > 1) {
		grow();
		parts = nworker + 1 < n ? nworker + 1 : (int)n;
		parts = parts < want ? parts : want;
	}
	if (parts > 1) {
		busy = 1;
		job.fn = fn;
		job.ctx = ctx;
		job.n = n;
		job.parts = parts;
		left = parts - 1;
		atomic_store_explicit(&pub_left, left, memory_order_relaxed);
		gen++;
		atomic_store_explicit(&pub_gen, gen, memory_order_release);
		pthread_cond_broadcast(&wake);
	}
	pthread_mutex_unlock(&mu);
	return parts;
}

void
kiln_parallel_for(int64_t n, void (*fn)(void *ctx, int64_t lo, int64_t hi),
                  void *ctx)
{
	if (n <= 0)
		return;
	/* One part gets no thread, and inside stays as it was, so the part
	 * may split its own work. */
	if (n == 1 || inside || start(n, fn, ctx) == 1) {
		fn(ctx, 0, n);
		return;
	}
	inside = 1;
	run_part(0);
	inside = 0;
	for (int i = 0; i < SPIN && atomic_load_explicit(&pub_left,
	     memory_order_acquire) > 0; i++)
		pause_cpu();
	pthread_mutex_lock(&mu);
	while (left > 0)
		pthread_cond_wait(&done, &mu);
	busy = 0;
	pthread_mutex_unlock(&mu);
}
