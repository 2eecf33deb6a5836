/* train.c: kiln_train_main(), the command line of a trainer executable.
 *
 * The generated main() passes its kiln_train_desc here.  Setup loads the
 * data set and makes the one aligned block that holds the state, the
 * workspace, the batch buffers and the metrics' scratch; nothing is
 * allocated after that.  Each epoch shuffles the training samples with a
 * generator seeded by --seed, runs step() on every full batch (the last
 * partial batch of each shuffled epoch is dropped), then runs eval() over
 * the validation and test splits, whose last batch is padded by repeating
 * samples and counted by its real rows only.  A trainer without labels (an
 * autoencoder) gets batches of inputs only and reports the loss alone.
 * Output: a progress bar on a
 * terminal's stderr, one line per epoch on stdout, one JSON object per
 * epoch in --log, the weights in --save.  Errors are `PROG: error: ...`;
 * the exit status is 0, 1 for a failure, 2 for a usage error.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "kiln.h"

#define ALIGNUP(n) (((n) + KILN_ALIGN - 1) / KILN_ALIGN * KILN_ALIGN)
#define countof(a) (sizeof(a) / sizeof((a)[0]))
#define MAXCONFUSION 32         /* more classes: no matrix is printed */
#define BARWIDTH 30
#define PI 3.14159265358979323846

/* The command line, defaults from the description. */
struct opts {
	const char *data, *log, *save, *weights;
	int64_t epochs, batch;
	double lr, vsplit;
	uint64_t seed;
	bool eval, quiet, help;
};

enum { OPT_FLAG, OPT_TEXT, OPT_INT, OPT_REAL, OPT_SEED };

/* Every option, its field and the range of a number (inclusive). */
static const struct option {
	const char *name;
	int kind;                   /* OPT_ */
	size_t off;                 /* of the field in struct opts */
	double lo, hi;
	const char *arg, *help;
} options[] = {
	{"--data", OPT_TEXT, offsetof(struct opts, data), 0, 0, "DIR|FILE",
	 "the data: a directory of IDX or .npy files, or one\n"
	 "                           features file (docs/training.md)"},
	{"--epochs", OPT_INT, offsetof(struct opts, epochs), 1, 1e9, "N",
	 "passes over the training data"},
	{"--batch", OPT_INT, offsetof(struct opts, batch), 1, 1e15, "N",
	 "samples per step, fixed when compiled"},
	{"--lr", OPT_REAL, offsetof(struct opts, lr), 0, 1e9, "X",
	 "base learning rate"},
	{"--seed", OPT_SEED, offsetof(struct opts, seed), 0, 0, "N",
	 "seed of shuffling and the validation split"},
	{"--validation-split", OPT_REAL, offsetof(struct opts, vsplit), 0,
	 0.99, "X", "hold out this share of the training data"},
	{"--log", OPT_TEXT, offsetof(struct opts, log), 0, 0, "FILE",
	 "write one JSON object per epoch to FILE"},
	{"--save", OPT_TEXT, offsetof(struct opts, save), 0, 0, "FILE",
	 "write the weights to FILE (safetensors) at the end"},
	{"--weights", OPT_TEXT, offsetof(struct opts, weights), 0, 0, "FILE",
	 "start from the weights in FILE"},
	{"--eval", OPT_FLAG, offsetof(struct opts, eval), 0, 0, "",
	 "only evaluate: the test split, else the training data"},
	{"--quiet", OPT_FLAG, offsetof(struct opts, quiet), 0, 0, "",
	 "no progress on stderr"},
	{"--help", OPT_FLAG, offsetof(struct opts, help), 0, 0, "",
	 "show this help"},
};

/* Sums over the samples of one split in one epoch. */
struct metrics {
	int64_t n;                  /* real samples */
	double loss;                /* of each batch's mean loss times its rows */
	int64_t correct;            /* classifier: argmax of pred == label */
	double se, ae;              /* squared and absolute errors (regressor) */
};

/* Where the report at the end comes from. */
enum { REPORT_TEST, REPORT_VAL, REPORT_TRAIN };

struct trainer {
	const char *prog;
	const struct kiln_train_desc *d;
	struct opts o;
	struct kiln_dataset ds;
	void *block;                /* the one allocation; all below point in it */
	void *state, *ws, *x, *y, *pred;
	int64_t *lab, *top;         /* per batch row: label, argmax of pred */
	double *pv, *yv;            /* regressor: pred and label as doubles */
	int64_t *hits, *npred, *ntrue; /* per class, for precision and recall */
	int64_t *conf;              /* [true, predicted], when few classes */
	int64_t *idx;               /* training samples, then validation ones */
	int64_t ntrain, nval;
	int64_t classes;            /* 0: a regressor */
	bool errs;                  /* regressor with pred shaped as the labels */
	int report;                 /* REPORT_ */
	uint64_t draws;             /* from the seed's random stream */
	double plr, best;           /* plateau schedule: its rate, best loss */
	int64_t bad;                /* epochs since the best */
	bool bar;                   /* progress bar on stderr */
	double shown;               /* when the bar was last drawn */
	FILE *log;
	char msg[2048];
};

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Fisher-Yates, drawing from random.c's splitmix64 stream for --seed, the
 * same on every platform; t->draws counts the draws so far, so each
 * shuffle continues the stream.  The modulo's bias is below n / 2^64. */
static void
shuffle(struct trainer *t, int64_t *a, int64_t n)
{
	for (int64_t i = n - 1; i > 0; i--) {
		uint64_t r = kiln_splitmix64(t->o.seed, t->draws++);
		int64_t j = (int64_t)(r % (uint64_t)(i + 1)), v = a[i];
		a[i] = a[j];
		a[j] = v;
	}
}

/* ---- the description ------------------------------------------------ */

/* Bytes of a tensor, or SIZE_MAX when the type is invalid or too large
 * for every buffer of the trainer to be added up safely. */
static size_t
type_bytes(kiln_dtype t, int rank, const int64_t *dim)
{
	size_t n = kiln_dtype_size(t);

	if (n == 0 || rank < 0 || rank > KILN_MAXRANK)
		return SIZE_MAX;
	for (int i = 0; i < rank; i++) {
		if (dim[i] < 0 || (dim[i] > 0 && n > SIZE_MAX / 64 / dim[i]))
			return SIZE_MAX;
		n *= (size_t)dim[i];
	}
	return n;
}

static size_t
tensor_bytes(const struct kiln_tensor_desc *t)
{
	return type_bytes(t->dtype, t->rank, t->dim);
}

/* An input, label or prediction: batch first. */
static bool
valid_batched(const struct kiln_train_desc *d,
              const struct kiln_tensor_desc *t)
{
	return t->name && tensor_bytes(t) != SIZE_MAX && t->rank >= 1 &&
	       t->dim[0] == d->batch;
}

/* The desc has no pred: the loss has no prediction step() writes. */
static bool
no_pred(const struct kiln_train_desc *d)
{
	return d->pred.rank == 0 && !d->pred.name;
}

static const char *
check_tensors(const struct kiln_train_desc *d)
{
	const struct kiln_tensor_desc *lab = d->labels;

	if (d->batch < 1 || d->ninputs < 1 || d->nlabels < 0 || !d->inputs ||
	    (d->nlabels > 0 && !lab))
		return "no batch or inputs, or bad labels";
	for (int i = 0; i < d->ninputs; i++)
		if (!valid_batched(d, &d->inputs[i]))
			return "an input is not a valid batch";
	for (int i = 0; i < d->nlabels; i++)
		if (!valid_batched(d, &lab[i]))
			return "a label is not a valid batch";
	if (!no_pred(d) && !valid_batched(d, &d->pred))
		return "pred is not a valid batch";
	if (d->classify && (d->nlabels < 1 || d->pred.rank != 2 ||
	                    d->pred.dim[1] < 1 || tensor_bytes(&lab[0]) !=
	                    (size_t)d->batch * kiln_dtype_size(lab[0].dtype)))
		return "a classifier needs pred [batch, classes] and one label "
		       "per sample";
	return NULL;
}

static const char *
check_state(const struct kiln_train_desc *d)
{
	if (d->nstate < 0 || (d->nstate > 0 && !d->state) ||
	    d->state_bytes >= SIZE_MAX / 64 || (d->state_bytes && !d->state_init))
		return "bad state";
	for (int i = 0; i < d->nstate; i++) {
		const struct kiln_state_desc *s = &d->state[i];
		size_t n = type_bytes(s->dtype, s->rank, s->dim);
		if (!s->name || n == SIZE_MAX || s->offset > d->state_bytes ||
		    n > d->state_bytes - s->offset)
			return "a state tensor lies outside the state";
	}
	return NULL;
}

static const char *
check_schedule(const struct kiln_train_desc *d)
{
	if (d->epochs < 1 || !(d->lr >= 0) || !isfinite(d->lr) ||
	    !(d->validation_split >= 0 && d->validation_split < 1))
		return "bad epochs, lr or validation_split";
	switch (d->schedule) {
	case KILN_SCHED_CONSTANT:
		return NULL;
	case KILN_SCHED_STEP:
		return d->sched_gamma > 0 && d->sched_step_size >= 1 ? NULL :
		       "step needs gamma > 0 and step_size >= 1";
	case KILN_SCHED_EXPONENTIAL:
		return d->sched_gamma > 0 ? NULL : "exponential needs gamma > 0";
	case KILN_SCHED_COSINE:
		return d->sched_epochs >= 0 ? NULL : "cosine: epochs < 0";
	case KILN_SCHED_PLATEAU:
		return d->sched_factor > 0 && d->sched_factor <= 1 &&
		       d->sched_patience >= 0 ? NULL :
		       "plateau needs 0 < factor <= 1 and patience >= 0";
	}
	return "unknown schedule";
}

/* Why d cannot be used, or NULL.  Only a compiler bug makes one bad. */
static const char *
check_desc(const struct kiln_train_desc *d)
{
	const char *why;

	if (!d->step || !d->eval || d->workspace_bytes >= SIZE_MAX / 64)
		return "no step or eval, or a bad workspace size";
	if ((why = check_tensors(d)) || (why = check_state(d)))
		return why;
	return check_schedule(d);
}

/* ---- the command line ----------------------------------------------- */

static const struct option *
find_option(const char *arg, size_t len)
{
	for (size_t i = 0; i < countof(options); i++)
		if (strlen(options[i].name) == len &&
		    !strncmp(options[i].name, arg, len))
			return &options[i];
	return NULL;
}

/* Stores the value text v of option o into t->o. */
static kiln_status
set_option(struct trainer *t, const struct option *o, const char *v)
{
	char *field = (char *)&t->o + o->off, *end;
	double x;

	errno = 0;
	if (o->kind == OPT_TEXT) {
		*(const char **)field = v;
		return KILN_OK;
	}
	if (o->kind == OPT_SEED) {
		*(uint64_t *)field = strtoull(v, &end, 10);
		if (*v >= '0' && *v <= '9' && !*end && !errno)
			return KILN_OK;
		return kiln_fail(t->msg, sizeof t->msg, KILN_ERR_ARG, NULL,
		                 "%s expects an integer from 0 to 2^64-1, got '%s'",
		                 o->name, v);
	}
	x = strtod(v, &end);
	if (o->kind == OPT_INT && *v && !*end && x == floor(x) && x >= o->lo &&
	    x <= o->hi) {
		*(int64_t *)field = (int64_t)x;
		return KILN_OK;
	}
	if (o->kind == OPT_REAL && *v && !*end && x >= o->lo && x <= o->hi) {
		*(double *)field = x;
		return KILN_OK;
	}
	return kiln_fail(t->msg, sizeof t->msg, KILN_ERR_ARG, NULL,
	                 "%s expects %s from %.15g to %.15g, got '%s'", o->name,
	                 o->kind == OPT_INT ? "an integer" : "a number", o->lo,
	                 o->hi, v);
}

/* --name VALUE or --name=VALUE, and flags. */
static kiln_status
parse_args(struct trainer *t, int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *eq = strchr(a, '=');
		const struct option *o = find_option(a, eq ? (size_t)(eq - a)
		                                           : strlen(a));
		const char *v = eq ? eq + 1 : i + 1 < argc ? argv[i + 1] : NULL;
		kiln_status s;
		if (!o)
			return kiln_fail(t->msg, sizeof t->msg, KILN_ERR_ARG, NULL,
			                 "unknown argument '%s' (try --help)", a);
		if (o->kind == OPT_FLAG && eq)
			return kiln_fail(t->msg, sizeof t->msg, KILN_ERR_ARG, NULL,
			                 "%s takes no value", o->name);
		if (o->kind == OPT_FLAG) {
			*(bool *)((char *)&t->o + o->off) = true;
			continue;
		}
		if (!v)
			return kiln_fail(t->msg, sizeof t->msg, KILN_ERR_ARG, NULL,
			                 "%s expects %s", o->name, o->arg);
		if ((s = set_option(t, o, v)))
			return s;
		i += !eq;
	}
	return KILN_OK;
}

/* What the options must satisfy together. */
static kiln_status
check_args(struct trainer *t)
{
	if (t->o.help)
		return KILN_OK;
	if (!t->o.data)
		return kiln_fail(t->msg, sizeof t->msg, KILN_ERR_ARG, NULL,
		                 "missing --data DIR|FILE, the data to train on "
		                 "(try --help)");
	if (t->o.batch != t->d->batch)
		return kiln_fail(t->msg, sizeof t->msg, KILN_ERR_ARG, NULL,
		                 "--batch %lld: this trainer was compiled for "
		                 "batch %lld (the batch size is fixed at build "
		                 "time)", (long long)t->o.batch,
		                 (long long)t->d->batch);
	return KILN_OK;
}

static void
usage(const struct trainer *t)
{
	const struct kiln_train_desc *d = t->d;

	printf("usage: %s --data DIR|FILE [options]\n"
	       "Trains the model '%s', compiled for batch %lld.\n", t->prog,
	       d->name ? d->name : "", (long long)d->batch);
	for (size_t i = 0; i < countof(options); i++) {
		const struct option *o = &options[i];
		const char *f = (const char *)&t->o + o->off;
		printf("  %s %-*s%s", o->name, 24 - (int)strlen(o->name), o->arg,
		       o->help);
		if (o->kind == OPT_INT)
			printf(" (default %lld)", (long long)*(const int64_t *)f);
		else if (o->kind == OPT_REAL)
			printf(" (default %g)", *(const double *)f);
		else if (o->kind == OPT_SEED)
			printf(" (default %llu)",
			       (unsigned long long)*(const uint64_t *)f);
		putchar('\n');
	}
}

/* ---- setup ---------------------------------------------------------- */

/* The next n bytes of the block at *at, or NULL (for n == 0, or while
 * the block is not there yet and only the total is being added up). */
static void *
carve(const struct trainer *t, size_t *at, size_t n)
{
	void *p = n && t->block ? (char *)t->block + *at : NULL;

	*at += ALIGNUP(n);
	return p;
}

/* Points every buffer into the block; returns the block's size. */
static size_t
carve_all(struct trainer *t)
{
	const struct kiln_train_desc *d = t->d;
	size_t b = (size_t)d->batch, c = (size_t)t->classes, at = 0;
	size_t rv = t->errs ? b * (size_t)t->ds.ysize * sizeof(double) : 0;

	t->state = carve(t, &at, d->state_bytes);
	t->ws = carve(t, &at, d->workspace_bytes);
	t->x = carve(t, &at, tensor_bytes(&d->inputs[0]));
	t->y = carve(t, &at, d->nlabels ? tensor_bytes(&d->labels[0]) : 0);
	t->pred = carve(t, &at, no_pred(d) ? 0 : tensor_bytes(&d->pred));
	t->lab = carve(t, &at, b * sizeof *t->lab);
	t->top = carve(t, &at, b * sizeof *t->top);
	t->pv = carve(t, &at, rv);
	t->yv = carve(t, &at, rv);
	t->hits = carve(t, &at, c * sizeof *t->hits);
	t->npred = carve(t, &at, c * sizeof *t->npred);
	t->ntrue = carve(t, &at, c * sizeof *t->ntrue);
	t->conf = carve(t, &at, c <= MAXCONFUSION ? c * c * sizeof *t->conf : 0);
	return at;
}

/* The one allocation, zeroed, with the initial state copied in. */
static kiln_status
alloc_block(struct trainer *t)
{
	size_t total = carve_all(t);

	if (!(t->block = aligned_alloc(KILN_ALIGN, total + KILN_ALIGN)))
		return kiln_fail(t->msg, sizeof t->msg, KILN_ERR_NOMEM, NULL,
		                 "out of memory (%zu bytes of buffers)", total);
	memset(t->block, 0, total);
	carve_all(t);
	if (t->d->state_bytes)
		memcpy(t->state, t->d->state_init, t->d->state_bytes);
	return KILN_OK;
}

/* The training samples, and the validation split: the last share of one
 * seeded permutation, made before the first epoch. */
static kiln_status
split(struct trainer *t)
{
	int64_t n = t->ds.train.n;

	if (!(t->idx = malloc((size_t)n * sizeof *t->idx + 1)))
		return kiln_fail(t->msg, sizeof t->msg, KILN_ERR_NOMEM, NULL,
		                 "out of memory");
	for (int64_t i = 0; i < n; i++)
		t->idx[i] = i;
	t->ntrain = n;
	if (t->o.eval)
		return KILN_OK;
	if (t->o.vsplit > 0) {
		shuffle(t, t->idx, n);
		t->nval = (int64_t)(t->o.vsplit * (double)n);
		t->ntrain = n - t->nval;
	}
	if (t->ntrain < t->d->batch)
		return kiln_fail(t->msg, sizeof t->msg, KILN_ERR_ARG, t->o.data,
		                 "%lld training samples are fewer than one batch "
		                 "of %lld", (long long)t->ntrain,
		                 (long long)t->d->batch);
	return KILN_OK;
}

static bool
same_dims(const struct kiln_tensor_desc *a, const struct kiln_tensor_desc *b)
{
	return a->rank == b->rank &&
	       !memcmp(a->dim, b->dim, (size_t)a->rank * sizeof *a->dim);
}

static kiln_status
setup(struct trainer *t)
{
	const struct kiln_train_desc *d = t->d;
	kiln_status s;

	t->classes = d->classify ? d->pred.dim[1] : 0;
	t->errs = !d->classify && d->nlabels && !no_pred(d) &&
	          same_dims(&d->pred, &d->labels[0]);
	t->report = t->ds.test.n ? REPORT_TEST : REPORT_TRAIN;
	t->plr = t->o.lr;
	t->best = INFINITY;
	t->bar = !t->o.quiet && isatty(fileno(stderr));
	if ((s = alloc_block(t)) || (s = split(t)))
		return s;
	if (!t->ds.test.n && t->nval)
		t->report = REPORT_VAL;
	if (t->o.log && !(t->log = fopen(t->o.log, "w")))
		return kiln_fail(t->msg, sizeof t->msg, KILN_ERR_IO, t->o.log,
		                 "cannot open: %s", strerror(errno));
	if (t->o.weights)
		return kiln_weights_load(t->o.weights, d->state, d->nstate,
		                         t->state, t->msg, sizeof t->msg);
	return KILN_OK;
}

/* ---- batches and metrics -------------------------------------------- */

/* Fills the batch with rows samples at positions first.. of idx (NULL:
 * the split's own order), repeating them to fill a partial batch.  Without
 * labels yb is 0 and sp->y NULL. */
static void
gather(struct trainer *t, const struct kiln_split *sp, const int64_t *idx,
       int64_t first, int64_t rows)
{
	size_t xb = (size_t)t->ds.xsize * sizeof(float);
	size_t yb = (size_t)t->ds.ysize * kiln_dtype_size(t->ds.ydtype);

	for (int64_t b = 0; b < t->d->batch; b++) {
		int64_t k = first + b % rows, i = idx ? idx[k] : k;
		memcpy((char *)t->x + b * xb, sp->x + i * t->ds.xsize, xb);
		if (yb)
			memcpy((char *)t->y + b * yb, (const char *)sp->y + i * yb,
			       yb);
	}
}

/* Adds a batch's first rows rows to m; with counts, also to the per-class
 * counts (and the confusion matrix) of the report. */
static void
score(struct trainer *t, struct metrics *m, float loss, int64_t rows,
      bool counts)
{
	const struct kiln_tensor_desc *p = &t->d->pred;
	int64_t per = t->ds.ysize * rows;

	m->n += rows;
	m->loss += (double)loss * (double)rows;
	if (t->classes) {
		kiln_argmax(t->top, t->pred, p->dtype, rows, t->classes, 1, 0);
		kiln_cast(t->lab, KILN_I64, t->y, t->ds.ydtype, rows);
	}
	for (int64_t b = 0; t->classes && b < rows; b++) {
		int64_t y = t->lab[b], k = t->top[b];
		m->correct += y == k;
		if (!counts)
			continue;
		t->hits[y] += y == k;
		t->npred[k]++;
		t->ntrue[y]++;
		if (t->conf)
			t->conf[y * t->classes + k]++;
	}
	if (!t->errs)
		return;
	kiln_cast(t->pv, KILN_F64, t->pred, p->dtype, per);
	kiln_cast(t->yv, KILN_F64, t->y, t->ds.ydtype, per);
	for (int64_t i = 0; i < per; i++) {
		double e = t->pv[i] - t->yv[i];
		m->se += e * e;
		m->ae += fabs(e);
	}
}

static void
clear_counts(struct trainer *t)
{
	size_t c = (size_t)t->classes;

	if (!c)
		return;
	memset(t->hits, 0, c * sizeof *t->hits);
	memset(t->npred, 0, c * sizeof *t->npred);
	memset(t->ntrue, 0, c * sizeof *t->ntrue);
	if (t->conf)
		memset(t->conf, 0, c * c * sizeof *t->conf);
}

/* eval() over n samples of sp, in batches; counts for the report. */
static kiln_status
evaluate(struct trainer *t, const struct kiln_split *sp, const int64_t *idx,
         int64_t n, struct metrics *m, bool counts)
{
	const void *in[2] = {t->x, t->y};
	int64_t b = t->d->batch;

	*m = (struct metrics){0};
	if (counts)
		clear_counts(t);
	for (int64_t at = 0; at < n; at += b) {
		int64_t rows = n - at < b ? n - at : b;
		float loss = 0;
		kiln_status s;
		gather(t, sp, idx, at, rows);
		if ((s = t->d->eval(in, t->state, t->ws, &loss, t->pred)))
			return kiln_fail(t->msg, sizeof t->msg, s, NULL,
			                 "eval() failed: %s", kiln_status_str(s));
		score(t, m, loss, rows, counts);
	}
	return KILN_OK;
}

/* ---- output --------------------------------------------------------- */

/* One metric: ` name 0.1234` as text, `,"name":0.123456789` as JSON
 * (null when not finite, which JSON cannot hold). */
static void
put(FILE *f, bool json, const char *prefix, const char *key, double v)
{
	if (!json)
		fprintf(f, " %s%s %.4f", prefix, key, v);
	else if (isfinite(v))
		fprintf(f, ",\"%s%s\":%.9g", prefix, key, v);
	else
		fprintf(f, ",\"%s%s\":null", prefix, key);
}

static void
put_metrics(const struct trainer *t, FILE *f, bool json, const char *prefix,
            const struct metrics *m)
{
	double n = (double)m->n, nv = n * (double)t->ds.ysize;

	if (m->n == 0)
		return;
	put(f, json, prefix, "loss", m->loss / n);
	if (t->classes)
		put(f, json, prefix, "accuracy", (double)m->correct / n);
	if (t->errs) {
		put(f, json, prefix, "mse", m->se / nv);
		put(f, json, prefix, "mae", m->ae / nv);
	}
}

/* An epoch's line on stdout and in the log. */
static void
put_epoch(struct trainer *t, int64_t e, double lr, const struct metrics *m,
          double secs)
{
	for (int json = 0; json < 2; json++) {
		FILE *f = json ? t->log : stdout;
		if (!f)
			continue;
		if (json)
			fprintf(f, "{\"epoch\":%lld,\"lr\":%.9g", (long long)e + 1, lr);
		else
			fprintf(f, "epoch %lld/%lld:", (long long)e + 1,
			        (long long)t->o.epochs);
		put_metrics(t, f, json, "", &m[0]);
		put_metrics(t, f, json, "val_", &m[1]);
		put_metrics(t, f, json, "test_", &m[2]);
		fprintf(f, json ? ",\"seconds\":%.3f}\n" : " (%.1f s)\n", secs);
		fflush(f);
	}
}

/* 75 -> "1m15s" */
static const char *
duration(char *buf, size_t len, double s)
{
	long n = s < 1e7 ? (long)(s + 0.5) : 9999999;

	if (n >= 3600)
		snprintf(buf, len, "%ldh%02ldm", n / 3600, n / 60 % 60);
	else if (n >= 60)
		snprintf(buf, len, "%ldm%02lds", n / 60, n % 60);
	else
		snprintf(buf, len, "%lds", n);
	return buf;
}

/* The progress bar, redrawn in place at most ten times a second. */
static void
progress(struct trainer *t, int64_t e, int64_t k, int64_t steps,
         const struct metrics *m, double t0)
{
	static const char fill[BARWIDTH + 1] = "==============================";
	double tn = now(), secs = tn - t0;
	char left[32];

	if (tn - t->shown < 0.1 && k < steps)
		return;
	t->shown = tn;
	fprintf(stderr, "\repoch %lld/%lld [%-*.*s] %lld/%lld loss %.4f",
	        (long long)e + 1, (long long)t->o.epochs, BARWIDTH,
	        (int)(BARWIDTH * k / steps), fill, (long long)k,
	        (long long)steps, m->loss / (double)m->n);
	if (t->classes)
		fprintf(stderr, " accuracy %.4f", (double)m->correct / (double)m->n);
	fprintf(stderr, " %.0f samples/s %s left\033[K",
	        (double)m->n / (secs > 0 ? secs : 1e-9),
	        duration(left, sizeof left, secs * (double)(steps - k) / k));
	fflush(stderr);
}

/* Macro precision, recall and F1 of the counts, and the confusion matrix
 * when there are few classes. */
static void
put_report(const struct trainer *t, const char *split)
{
	double p = 0, r = 0, f1 = 0, c = (double)t->classes;
	int64_t max = 0;
	int w;

	for (int64_t k = 0; k < t->classes; k++) {
		double pk = t->npred[k] ? (double)t->hits[k] / t->npred[k] : 0;
		double rk = t->ntrue[k] ? (double)t->hits[k] / t->ntrue[k] : 0;
		p += pk / c;
		r += rk / c;
		f1 += pk + rk > 0 ? 2 * pk * rk / (pk + rk) / c : 0;
		max = t->ntrue[k] > max ? t->ntrue[k] : max;
	}
	printf("%s: precision %.4f recall %.4f f1 %.4f (macro average over "
	       "%lld classes)\n", split, p, r, f1, (long long)t->classes);
	if (!t->conf) {
		printf("confusion matrix: not printed for more than %d classes\n",
		       MAXCONFUSION);
		return;
	}
	w = snprintf(NULL, 0, "%lld", (long long)(max > c ? max : c)) + 1;
	printf("confusion matrix (rows: true class, columns: predicted):\n%*s",
	       w + 1, "");
	for (int64_t k = 0; k < t->classes; k++)
		printf("%*lld", w, (long long)k);
	for (int64_t i = 0; i < t->classes * t->classes; i++) {
		if (i % t->classes == 0)
			printf("\n%*lld ", w, (long long)(i / t->classes));
		printf("%*lld", w, (long long)t->conf[i]);
	}
	putchar('\n');
}

/* ---- training ------------------------------------------------------- */

static double
epoch_lr(const struct trainer *t, int64_t e)
{
	const struct kiln_train_desc *d = t->d;
	double lr = t->o.lr, n = (double)(d->sched_epochs > 0 ? d->sched_epochs
	                                                      : t->o.epochs);

	switch (d->schedule) {
	case KILN_SCHED_STEP:
		return lr * pow(d->sched_gamma, (double)(e / d->sched_step_size));
	case KILN_SCHED_EXPONENTIAL:
		return lr * pow(d->sched_gamma, (double)e);
	case KILN_SCHED_COSINE:
		return d->sched_min_lr + (lr - d->sched_min_lr) *
		       (1 + cos(PI * fmin((double)e, n) / n)) / 2;
	case KILN_SCHED_PLATEAU:
		return t->plr;
	}
	return lr;
}

/* After an epoch with this loss (NaN counts as no improvement). */
static void
plateau(struct trainer *t, double loss)
{
	if (loss < t->best) {
		t->best = loss;
		t->bad = 0;
	} else if (++t->bad > t->d->sched_patience) {
		t->plr = fmax(t->plr * t->d->sched_factor, t->d->sched_min_lr);
		t->bad = 0;
	}
}

/* One epoch of steps over the shuffled training samples; *step counts
 * them across epochs, from 1. */
static kiln_status
train_epoch(struct trainer *t, int64_t e, double lr, int64_t *step,
            struct metrics *m, double t0)
{
	const void *in[2] = {t->x, t->y};
	int64_t b = t->d->batch, steps = t->ntrain / b;

	shuffle(t, t->idx, t->ntrain);
	for (int64_t k = 0; k < steps; k++) {
		float loss = 0;
		kiln_status s;
		gather(t, &t->ds.train, t->idx, k * b, b);
		s = t->d->step(in, (float)lr, ++*step, t->state, t->ws, &loss,
		               t->pred);
		if (s)
			return kiln_fail(t->msg, sizeof t->msg, s, NULL,
			                 "epoch %lld, step %lld: step() failed: %s",
			                 (long long)e + 1, (long long)k + 1,
			                 kiln_status_str(s));
		if (!isfinite(loss))
			return kiln_fail(t->msg, sizeof t->msg, KILN_ERR_RANGE, NULL,
			                 "epoch %lld, step %lld: the loss is %g; "
			                 "stopping (a lower --lr may help)",
			                 (long long)e + 1, (long long)k + 1, loss);
		score(t, m, loss, b, false);
		if (t->bar)
			progress(t, e, k + 1, steps, m, t0);
	}
	if (t->bar)
		fputs("\r\033[K", stderr);
	return KILN_OK;
}

static void
intro(const struct trainer *t)
{
	int64_t b = t->d->batch;

	if (t->o.quiet)
		return;
	fprintf(stderr, "%s: %lld training samples: %lld steps of %lld per "
	        "epoch (%lld left over each epoch are skipped); %lld "
	        "validation, %lld test\n", t->prog, (long long)t->ntrain,
	        (long long)(t->ntrain / b), (long long)b,
	        (long long)(t->ntrain % b), (long long)t->nval,
	        (long long)t->ds.test.n);
}

static kiln_status
train(struct trainer *t)
{
	const struct kiln_split *tr = &t->ds.train, *te = &t->ds.test;
	int64_t step = 0;
	kiln_status s = KILN_OK;

	intro(t);
	for (int64_t e = 0; e < t->o.epochs && !s; e++) {
		struct metrics m[3] = {{0}};   /* training, validation, test */
		double t0 = now(), lr = epoch_lr(t, e);
		s = train_epoch(t, e, lr, &step, &m[0], t0);
		if (!s && t->nval)
			s = evaluate(t, tr, t->idx + t->ntrain, t->nval, &m[1],
			             t->report == REPORT_VAL);
		if (!s && te->n)
			s = evaluate(t, te, NULL, te->n, &m[2],
			             t->report == REPORT_TEST);
		if (s)
			break;
		put_epoch(t, e, lr, m, now() - t0);
		plateau(t, t->nval ? m[1].loss / (double)m[1].n
		                   : m[0].loss / (double)m[0].n);
	}
	if (!s && t->classes && t->report == REPORT_TRAIN) {
		struct metrics m;
		s = evaluate(t, tr, t->idx, t->ntrain, &m, true);
	}
	if (!s && t->classes)
		put_report(t, t->report == REPORT_TEST ? "test" :
		              t->report == REPORT_VAL ? "validation" : "train");
	return s;
}

/* --eval: the test split, else all the training data. */
static kiln_status
evaluate_only(struct trainer *t)
{
	const struct kiln_split *sp = t->ds.test.n ? &t->ds.test : &t->ds.train;
	const char *prefix = t->ds.test.n ? "test_" : "";
	double t0 = now();
	struct metrics m;
	kiln_status s = evaluate(t, sp, NULL, sp->n, &m, true);

	if (s)
		return s;
	printf("eval:");
	put_metrics(t, stdout, false, prefix, &m);
	printf(" (%.1f s)\n", now() - t0);
	if (t->log) {
		fprintf(t->log, "{\"eval\":\"%s\"", t->ds.test.n ? "test" : "train");
		put_metrics(t, t->log, true, prefix, &m);
		fprintf(t->log, ",\"seconds\":%.3f}\n", now() - t0);
	}
	if (t->classes)
		put_report(t, t->ds.test.n ? "test" : "train");
	return KILN_OK;
}

static int
run(struct trainer *t)
{
	const struct kiln_train_desc *d = t->d;
	kiln_status s = kiln_dataset_load(&t->ds, t->o.data, d, t->msg,
	                                  sizeof t->msg);

	if (!s)
		s = setup(t);
	if (!s)
		s = t->o.eval ? evaluate_only(t) : train(t);
	if (!s && t->o.save)
		s = kiln_weights_save(t->o.save, d->state, d->nstate, t->state,
		                      t->msg, sizeof t->msg);
	if (t->log) {
		bool bad = ferror(t->log);
		if ((fclose(t->log) || bad) && !s)
			s = kiln_fail(t->msg, sizeof t->msg, KILN_ERR_IO, t->o.log,
			              "cannot write");
	}
	kiln_dataset_free(&t->ds);
	free(t->block);
	free(t->idx);
	return s ? 1 : 0;
}

int
kiln_train_main(int argc, char **argv, const struct kiln_train_desc *d)
{
	struct trainer t = {.prog = argc > 0 && argv[0] ? argv[0] : "train",
	                    .d = d};
	const char *slash = strrchr(t.prog, '/'), *why;
	int r;

	if (slash && slash[1])
		t.prog = slash + 1;
	if (!d || (why = check_desc(d))) {
		fprintf(stderr, "%s: error: invalid trainer description: %s\n",
		        t.prog, d ? why : "none");
		return 1;
	}
	t.o = (struct opts){.epochs = d->epochs, .batch = d->batch,
	                    .lr = d->lr, .seed = d->seed,
	                    .vsplit = d->validation_split};
	r = parse_args(&t, argc, argv) || check_args(&t) ? 2 : 0;
	if (!r && t.o.help)
		usage(&t);
	else if (!r)
		r = run(&t);
	if (!r && (fflush(stdout) || ferror(stdout))) {
		snprintf(t.msg, sizeof t.msg, "cannot write to standard output");
		r = 1;
	}
	if (r)
		fprintf(stderr, "%s: error: %s\n", t.prog, t.msg);
	return r;
}
