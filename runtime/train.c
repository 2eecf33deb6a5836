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
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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
	const char *data, *log, *save, *weights, *checkpoint, *resume;
	const char *attack, *advtrain;      /* "fgsm:EPS" */
	int64_t epochs, batch, every, threads;
	double lr, vsplit;
	uint64_t seed;
	bool eval, quiet, help, skip;
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
	{"--checkpoint", OPT_TEXT, offsetof(struct opts, checkpoint), 0, 0,
	 "PATH", "write a checkpoint to PATH after every epoch and\n"
	 "                           when interrupted (SIGINT, SIGTERM)"},
	{"--checkpoint-every", OPT_INT, offsetof(struct opts, every), 0, 1e15,
	 "STEPS", "also every STEPS steps (0: no)"},
	{"--resume", OPT_TEXT, offsetof(struct opts, resume), 0, 0, "CKPT",
	 "go on from checkpoint CKPT exactly where it was made"},
	{"--skip-nonfinite", OPT_FLAG, offsetof(struct opts, skip), 0, 0, "",
	 "skip a batch whose loss or update is not finite\n"
	 "                           (else the run stops there)"},
	{"--attack", OPT_TEXT, offsetof(struct opts, attack), 0, 0, "fgsm:EPS",
	 "at the end, the accuracy on FGSM adversarial\n"
	 "                           examples of the test data"},
	{"--adversarial-training", OPT_TEXT, offsetof(struct opts, advtrain), 0,
	 0, "fgsm:EPS", "train on batches half of whose samples are\n"
	 "                           their FGSM adversarial examples"},
	{"--eval", OPT_FLAG, offsetof(struct opts, eval), 0, 0, "",
	 "only evaluate: the test split, else the training data"},
	{"--quiet", OPT_FLAG, offsetof(struct opts, quiet), 0, 0, "",
	 "no progress on stderr"},
	{"--threads", OPT_INT, offsetof(struct opts, threads), 1,
	 KILN_MAXTHREADS, "N",
	 "threads for the kernels (the same results with any);\n"
	 "                           default: KILN_NUM_THREADS, else the cores"},
	{"--help", OPT_FLAG, offsetof(struct opts, help), 0, 0, "",
	 "show this help"},
};

/* Sums over the samples of one split in one epoch. */
struct metrics {
	int64_t n;                  /* real samples */
	double loss;                /* of each batch's mean loss times its rows
	                             * (with steps, the sum of theirs) */
	double losses[KILN_MAXSTEPS]; /* per step, with several */
	int64_t correct;            /* classifier: argmax of pred == label */
	double se, ae;              /* squared and absolute errors (regressor) */
};

/* Where the report at the end comes from; the splits of an epoch's
 * metrics, m[SPLIT_]. */
enum { REPORT_TEST, REPORT_VAL, REPORT_TRAIN };
enum { SPLIT_TRAIN, SPLIT_VAL, SPLIT_TEST };

/* What a checkpoint holds besides the state: the trainer's counters
 * (i64), its real numbers (f64), the data order and, for early stopping
 * that restores the best weights, the state after the best epoch. */
enum {
	CK_VERSION, CK_BATCH, CK_SAMPLES, CK_SHUFFLED,
	CK_EPOCH, CK_DONE, CK_STEP, CK_DRAWS, CK_SEED, CK_NVAL, CK_PBAD,
	CK_ESBAD, CK_ESEPOCH, CK_RUN_N, CK_RUN_CORRECT, CK_SKIPPED, NCK
};
#define CK_FORMAT 1             /* CK_VERSION: the layout above */

struct trainer {
	const char *prog;
	const struct kiln_train_desc *d;
	struct opts o;
	struct kiln_dataset ds;
	void *block;                /* the one allocation; all below point in it */
	void *state, *ws, *pred;
	void *in[KILN_MAXDATA];     /* the batch: inputs, then labels */
	void *adv[KILN_MAXDATA];    /* FGSM: adversarial inputs, then labels */
	double eps, adv_eps;        /* --attack's, --adversarial-training's */
	void *y;                    /* the first label's, or NULL */
	int64_t ysize;              /* its values per sample */
	kiln_dtype ydtype;
	int64_t *lab, *top;         /* per batch row: label, argmax of pred */
	double *pv, *yv;            /* regressor: pred and label as doubles */
	int64_t *hits, *npred, *ntrue; /* per class, for precision and recall */
	int64_t *conf;              /* [true, predicted], when few classes */
	int64_t *idx;               /* training samples, then validation ones */
	int64_t ntrain, nval;
	int64_t classes;            /* 0: a regressor */
	bool errs;                  /* regressor with pred shaped as the labels */
	int report;                 /* REPORT_ */
	/* Where the run is: epoch (from 0) and steps done in it, whether its
	 * order is shuffled yet, steps done in all, its training metrics so
	 * far, batches skipped (--skip-nonfinite) in it. */
	int64_t epoch, done, step, skipped;
	bool shuffled;
	struct metrics run;
	uint64_t draws;             /* from the seed's random stream */
	double plr, best;           /* plateau schedule: its rate, best loss */
	int64_t bad;                /* epochs since the best */
	/* early stopping: the monitored split and metric, the best value,
	 * its epoch (from 1), epochs since, the state then */
	int es_split;
	const char *es_metric;
	double es_best;
	int64_t es_epoch, es_bad;
	void *best_state;
	/* checkpoints: the tensors, their names, the counters */
	struct kiln_state_desc *ck;
	int nck;
	char *cknames;
	int64_t *cki;
	double *ckr;
	bool bar;                   /* progress bar on stderr */
	double shown;               /* when the bar was last drawn */
	FILE *log;
	char msg[2048];
};

/* The trainer's fields that counters CK_EPOCH.. and the reals hold, in
 * their order; each is 8 bytes (int64_t, uint64_t or double). */
static const size_t ck_fields[] = {
	offsetof(struct trainer, epoch), offsetof(struct trainer, done),
	offsetof(struct trainer, step), offsetof(struct trainer, draws),
	offsetof(struct trainer, o.seed), offsetof(struct trainer, nval),
	offsetof(struct trainer, bad), offsetof(struct trainer, es_bad),
	offsetof(struct trainer, es_epoch), offsetof(struct trainer, run.n),
	offsetof(struct trainer, run.correct),
	offsetof(struct trainer, skipped),
};
static const size_t cr_fields[] = {
	offsetof(struct trainer, plr), offsetof(struct trainer, best),
	offsetof(struct trainer, es_best), offsetof(struct trainer, run.loss),
	offsetof(struct trainer, run.se), offsetof(struct trainer, run.ae),
	offsetof(struct trainer, run.losses[0]),
	offsetof(struct trainer, run.losses[1]),
	offsetof(struct trainer, run.losses[2]),
	offsetof(struct trainer, run.losses[3]),
	offsetof(struct trainer, run.losses[4]),
	offsetof(struct trainer, run.losses[5]),
	offsetof(struct trainer, run.losses[6]),
	offsetof(struct trainer, run.losses[7]),
};
_Static_assert(KILN_MAXSTEPS == 8, "cr_fields holds 8 step losses");
#define NCR countof(cr_fields)

/* The signal that asked the run to stop, or 0.  The handler only sets
 * it; the loop checks it after each step and each evaluated batch. */
static volatile sig_atomic_t stop_signal;


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
	if (d->nsteps < 0 || d->nsteps > KILN_MAXSTEPS ||
	    (d->nsteps > 1 && (!d->steps || !d->step_names || !no_pred(d))))
		return "bad steps";
	for (int k = 0; d->nsteps > 1 && k < d->nsteps; k++)
		if (!d->steps[k] || !d->step_names[k])
			return "a step without a function or a name";
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

/* An attack option's value, "fgsm:EPS" with EPS a number >= 0, into
 * *eps; the trainer must have attack(). */
static kiln_status
fgsm(struct trainer *t, const char *opt, const char *v, double *eps)
{
	char *end;

	if (!v)
		return KILN_OK;
	if (!t->d->attack)
		return kiln_fail(t->msg, sizeof t->msg, KILN_ERR_ARG, NULL,
		                 "%s: this trainer has no input gradient (a model "
		                 "trained in several steps, or without float "
		                 "inputs)", opt);
	errno = 0;
	*eps = strncmp(v, "fgsm:", 5) ? -1 : strtod(v + 5, &end);
	if (*eps >= 0 && isfinite(*eps) && end != v + 5 && !*end && !errno)
		return KILN_OK;
	return kiln_fail(t->msg, sizeof t->msg, KILN_ERR_ARG, NULL,
	                 "%s expects fgsm:EPS, EPS a number >= 0 (the size of "
	                 "the perturbation), got '%s'", opt, v);
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
	if (t->o.resume && (t->o.weights || t->o.eval))
		return kiln_fail(t->msg, sizeof t->msg, KILN_ERR_ARG, NULL,
		                 "--resume goes on with a run; it takes neither "
		                 "--weights nor --eval (both take a checkpoint as "
		                 "weights)");
	if (t->o.every && !t->o.checkpoint)
		return kiln_fail(t->msg, sizeof t->msg, KILN_ERR_ARG, NULL,
		                 "--checkpoint-every needs --checkpoint PATH");
	if (fgsm(t, "--attack", t->o.attack, &t->eps) ||
	    fgsm(t, "--adversarial-training", t->o.advtrain, &t->adv_eps))
		return KILN_ERR_ARG;
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
		int w = 24 - (int)strlen(o->name);
		/* an argument too long for its column puts the help below */
		printf("  %s %-*s%s%s", o->name, w, o->arg,
		       (int)strlen(o->arg) >= w ? "\n                           " :
		       "", o->help);
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

/* ---- monitored metrics ---------------------------------------------- */

/* A monitor's name ("val_loss") as a split and a metric, or false when
 * this trainer does not compute that metric. */
static bool
parse_monitor(const struct trainer *t, const char *name, int *split,
              const char **metric)
{
	*split = !strncmp(name, "val_", 4) ? SPLIT_VAL :
	         !strncmp(name, "test_", 5) ? SPLIT_TEST : SPLIT_TRAIN;
	*metric = name + (*split == SPLIT_VAL ? 4 : *split == SPLIT_TEST ? 5 : 0);
	return !strcmp(*metric, "loss") ||
	       (t->classes && !strcmp(*metric, "accuracy")) ||
	       (t->errs && (!strcmp(*metric, "mse") || !strcmp(*metric, "mae")));
}

/* Whether larger values of the metric are better. */
static bool
maximized(const char *metric)
{
	return !strcmp(metric, "accuracy");
}

static double
metric_value(const struct trainer *t, const struct metrics *m,
             const char *metric)
{
	double n = (double)m->n, nv = n * (double)t->ysize;

	if (!strcmp(metric, "accuracy"))
		return (double)m->correct / n;
	if (!strcmp(metric, "mse"))
		return m->se / nv;
	if (!strcmp(metric, "mae"))
		return m->ae / nv;
	return m->loss / n;
}

/* Whether v improves on best by more than delta (NaN never does). */
static bool
improves(double v, double best, double delta, bool max)
{
	return max ? v - best > delta : best - v > delta;
}

/* The split a monitor reads, or -1 when this run has no such data. */
static int
present(const struct trainer *t, int split)
{
	return split == SPLIT_VAL && !t->nval ? -1 :
	       split == SPLIT_TEST && !t->ds.test.n ? -1 : split;
}

/* The monitors of the schedule and early stopping, before the block is
 * made (it holds the best state when early stopping restores it). */
static kiln_status
parse_monitors(struct trainer *t)
{
	const char *es = t->d->es_monitor, *pm = t->d->sched_monitor;
	const char *have = t->classes ? ", accuracy" : t->errs ? ", mse, mae"
	                                                       : "";
	int split;

	if (pm && !parse_monitor(t, pm, &split, &t->es_metric))
		return kiln_fail(t->msg, sizeof t->msg, KILN_ERR_UNSUPPORTED, NULL,
		                 "the plateau schedule monitors '%s', which this "
		                 "trainer does not compute (it has loss%s)", pm,
		                 have);
	t->es_metric = NULL;
	if (es && !parse_monitor(t, es, &t->es_split, &t->es_metric))
		return kiln_fail(t->msg, sizeof t->msg, KILN_ERR_UNSUPPORTED, NULL,
		                 "early stopping monitors '%s', which this trainer "
		                 "does not compute (it has loss%s)", es, have);
	return KILN_OK;
}

/* Early stopping's data must be there, once the split is known. */
static kiln_status
check_monitors(struct trainer *t)
{
	if (!t->es_metric || t->o.eval || present(t, t->es_split) >= 0)
		return KILN_OK;
	return kiln_fail(t->msg, sizeof t->msg, KILN_ERR_ARG, NULL,
	                 "early stopping monitors '%s', but there is no %s "
	                 "data%s", t->d->es_monitor, t->es_split == SPLIT_VAL ?
	                 "validation" : "test", t->es_split == SPLIT_VAL ?
	                 " (give --validation-split X)" : "");
}

/* After an epoch with metrics m: the plateau schedule's rate, from its
 * monitor (the validation loss by default), read on the training split
 * when the run has not the one it names. */
static void
plateau(struct trainer *t, const struct metrics *m)
{
	const char *name = t->d->sched_monitor ? t->d->sched_monitor : "val_loss";
	const char *metric;
	int split;

	parse_monitor(t, name, &split, &metric);
	if (present(t, split) < 0)
		split = SPLIT_TRAIN;
	double v = metric_value(t, &m[split], metric);
	bool max = maximized(metric);
	if (improves(v, t->best, 0, max) || t->best == INFINITY) {
		t->best = v;
		t->bad = 0;
	} else if (++t->bad > t->d->sched_patience) {
		t->plr = fmax(t->plr * t->d->sched_factor, t->d->sched_min_lr);
		t->bad = 0;
	}
}

/* After epoch t->epoch with metrics m: whether early stopping ends the
 * run; keeps the best state when asked to restore it. */
static bool
early_stop(struct trainer *t, const struct metrics *m)
{
	const struct kiln_train_desc *d = t->d;
	double v;

	if (!t->es_metric)
		return false;
	v = metric_value(t, &m[t->es_split], t->es_metric);
	if (t->es_epoch == 0 || improves(v, t->es_best, d->es_min_delta,
	                                 maximized(t->es_metric))) {
		t->es_best = v;
		t->es_epoch = t->epoch + 1;
		t->es_bad = 0;
		if (t->best_state)
			memcpy(t->best_state, t->state, d->state_bytes);
		return false;
	}
	return ++t->es_bad >= d->es_patience;
}

/* Whether early stopping has ended the run (a resumed one, too). */
static bool
stopped_early(const struct trainer *t)
{
	return t->es_metric && t->es_bad > 0 && t->es_bad >= t->d->es_patience;
}

/* ---- checkpoints ---------------------------------------------------- */

static struct kiln_state_desc
own_tensor(const struct trainer *t, const char *name, kiln_dtype dt,
           int64_t n, const void *p)
{
	return (struct kiln_state_desc){
		.name = name, .kind = KILN_STATE_SLOT, .dtype = dt, .rank = 1,
		.dim = {n}, .offset = (size_t)((const char *)p -
		                               (const char *)t->state)};
}

/* The tensors of a checkpoint: the state's, the trainer's counters, the
 * data order and the best state ("best/NAME"); made once. */
static kiln_status
setup_checkpoints(struct trainer *t)
{
	const struct kiln_train_desc *d = t->d;
	int ns = d->nstate, n = ns + 3 + (t->best_state ? ns : 0);
	size_t len = 1;
	char *p;

	for (int i = 0; t->best_state && i < ns; i++)
		len += strlen(d->state[i].name) + 6;
	if (!(t->ck = calloc((size_t)n, sizeof *t->ck)) ||
	    !(t->cknames = p = malloc(len)))
		return kiln_fail(t->msg, sizeof t->msg, KILN_ERR_NOMEM, NULL,
		                 "out of memory");
	memcpy(t->ck, d->state, (size_t)ns * sizeof *t->ck);
	t->ck[ns] = own_tensor(t, "trainer.counters", KILN_I64, NCK, t->cki);
	t->ck[ns + 1] = own_tensor(t, "trainer.reals", KILN_F64, NCR, t->ckr);
	t->ck[ns + 2] = own_tensor(t, "trainer.order", KILN_I64, t->ds.train.n,
	                           t->idx);
	for (int i = 0; t->best_state && i < ns; i++) {
		struct kiln_state_desc *b = &t->ck[ns + 3 + i];
		*b = d->state[i];
		b->name = p;
		b->offset += (size_t)((char *)t->best_state - (char *)t->state);
		p += sprintf(p, "best/%s", d->state[i].name) + 1;
	}
	t->nck = n;
	return KILN_OK;
}

/* Copies the fields of ck_fields and cr_fields into the counters and
 * the reals (save), or back. */
static void
copy_fields(struct trainer *t, bool save)
{
	for (size_t i = 0; i < countof(ck_fields); i++) {
		char *f = (char *)t + ck_fields[i];
		int64_t *c = &t->cki[CK_EPOCH + i];
		memcpy(save ? (void *)c : f, save ? (void *)f : c, sizeof *c);
	}
	for (size_t i = 0; i < NCR; i++) {
		char *f = (char *)t + cr_fields[i];
		memcpy(save ? (void *)&t->ckr[i] : f, save ? (void *)f : &t->ckr[i],
		       sizeof *t->ckr);
	}
}

static kiln_status
write_checkpoint(struct trainer *t)
{
	if (!t->o.checkpoint)
		return KILN_OK;
	t->cki[CK_VERSION] = CK_FORMAT;
	t->cki[CK_BATCH] = t->d->batch;
	t->cki[CK_SAMPLES] = t->ds.train.n;
	t->cki[CK_SHUFFLED] = t->shuffled;
	copy_fields(t, true);
	return kiln_checkpoint_save(t->o.checkpoint, t->ck, t->nck, t->state,
	                            t->d->name ? t->d->name : "", t->msg,
	                            sizeof t->msg);
}

/* Why the counters just read cannot be this run's, or NULL. */
static const char *
check_counters(const struct trainer *t)
{
	const int64_t *c = t->cki;
	int64_t n = t->ds.train.n, b = t->d->batch;

	if (c[CK_VERSION] != CK_FORMAT)
		return "it is from another version of kiln's trainer";
	if (c[CK_BATCH] != b)
		return "it was made with another batch size";
	if (c[CK_SAMPLES] != n)
		return "it was made on data with another number of training "
		       "samples";
	if (c[CK_NVAL] < 0 || c[CK_NVAL] > n - b || c[CK_EPOCH] < 0 ||
	    c[CK_DONE] < 0 || c[CK_DONE] > (n - c[CK_NVAL]) / b ||
	    c[CK_STEP] < 0 || c[CK_ESEPOCH] < 0 || c[CK_ESBAD] < 0 ||
	    c[CK_PBAD] < 0 || c[CK_RUN_N] < 0 || c[CK_SKIPPED] < 0)
		return "its counters are out of range";
	for (int64_t i = 0; i < n; i++)
		if (t->idx[i] < 0 || t->idx[i] >= n)
			return "its data order holds a sample that is not there";
	return NULL;
}

/* --resume: the state, the position and the counters as they were. */
static kiln_status
resume(struct trainer *t)
{
	const int64_t *c = t->cki;
	const char *why;
	kiln_status s = kiln_checkpoint_load(t->o.resume, t->ck, t->nck,
	                                     t->state, t->d->name ? t->d->name
	                                                          : "",
	                                     t->msg, sizeof t->msg);

	/* the counters come before the data order in the file: a run on
	 * other data fails on the order's shape, but it is the count */
	if (s == KILN_ERR_SHAPE && c[CK_VERSION] == CK_FORMAT &&
	    c[CK_SAMPLES] != t->ds.train.n)
		s = KILN_ERR_FORMAT;
	else if (s)
		return s;
	if ((why = check_counters(t)))
		return kiln_fail(t->msg, sizeof t->msg, KILN_ERR_FORMAT,
		                 t->o.resume, "cannot resume: %s", why);
	copy_fields(t, false);
	t->shuffled = c[CK_SHUFFLED] != 0;
	t->ntrain = t->ds.train.n - t->nval;
	return KILN_OK;
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
	size_t rv = t->errs ? b * (size_t)t->ysize * sizeof(double) : 0;

	t->state = carve(t, &at, d->state_bytes);
	t->idx = carve(t, &at, (size_t)t->ds.train.n * sizeof *t->idx);
	t->cki = carve(t, &at, NCK * sizeof *t->cki);
	t->ckr = carve(t, &at, NCR * sizeof *t->ckr);
	t->best_state = carve(t, &at, t->es_metric && d->es_restore_best ?
	                              d->state_bytes : 0);
	t->ws = carve(t, &at, d->workspace_bytes);
	for (int k = 0; k < d->ninputs + d->nlabels; k++)
		t->in[k] = carve(t, &at, tensor_bytes(k < d->ninputs ? &d->inputs[k]
		                                      : &d->labels[k - d->ninputs]));
	for (int k = 0; k < d->ninputs + d->nlabels; k++)
		t->adv[k] = k >= d->ninputs ? t->in[k] :
		            carve(t, &at, d->attack ? tensor_bytes(&d->inputs[k])
		                                    : 0);
	t->y = d->nlabels ? t->in[d->ninputs] : NULL;
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

/* The one allocation, zeroed, with the initial state copied in.  The
 * state comes first: checkpoints address everything by its offset from
 * the state. */
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


/* The --log file, streamed a line per epoch; a resumed run's log goes on.
 * It is the one output not written through a temporary file, so it is
 * opened without following a link: a link at its path is an error rather
 * than a way to overwrite the file it points to. */
static kiln_status
open_log(struct trainer *t)
{
	int fd = open(t->o.log, O_WRONLY | O_CREAT | O_NOFOLLOW |
	              (t->o.resume ? O_APPEND : O_TRUNC), 0666);
	if (fd < 0 && errno == ELOOP)
		return kiln_fail(t->msg, sizeof t->msg, KILN_ERR_IO, t->o.log,
		                 "cannot open: it is a symbolic link (the log "
		                 "is not written through one)");
	if (fd < 0 || !(t->log = fdopen(fd, t->o.resume ? "a" : "w"))) {
		int err = errno;
		if (fd >= 0)
			close(fd);
		return kiln_fail(t->msg, sizeof t->msg, KILN_ERR_IO, t->o.log,
		                 "cannot open: %s", strerror(err));
	}
	return KILN_OK;
}
/* The training samples, and the validation split: the last share of one
 * seeded permutation, made before the first epoch. */
static kiln_status
split(struct trainer *t)
{
	int64_t n = t->ds.train.n;

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
	t->ysize = d->nlabels ? t->ds.size[d->ninputs] : 0;
	t->ydtype = d->nlabels ? d->labels[0].dtype : KILN_F32;
	t->plr = t->o.lr;
	t->best = INFINITY;
	t->bar = !t->o.quiet && isatty(fileno(stderr));
	if ((s = parse_monitors(t)) || (s = alloc_block(t)) || (s = split(t)) ||
	    (s = setup_checkpoints(t)) || (t->o.resume && (s = resume(t))) ||
	    (s = check_monitors(t)))
		return s;
	t->report = t->ds.test.n ? REPORT_TEST : t->nval ? REPORT_VAL
	                                                 : REPORT_TRAIN;
	if (t->o.log && (s = open_log(t)))
		return s;
	if (t->o.weights)
		return kiln_weights_load(t->o.weights, d->state, d->nstate,
		                         t->state, t->msg, sizeof t->msg);
	return KILN_OK;
}

/* ---- batches and metrics -------------------------------------------- */

/* Fills the batch with rows samples at positions first.. of idx (NULL:
 * the split's own order), repeating them to fill a partial batch: every
 * column, inputs then labels. */
static void
gather(struct trainer *t, const struct kiln_split *sp, const int64_t *idx,
       int64_t first, int64_t rows)
{
	for (int k = 0; k < t->ds.ncols; k++) {
		size_t es = (size_t)t->ds.size[k] * kiln_dtype_size(t->ds.dtype[k]);
		for (int64_t b = 0; b < t->d->batch; b++) {
			int64_t j = first + b % rows, i = idx ? idx[j] : j;
			memcpy((char *)t->in[k] + b * es,
			       (const char *)sp->col[k] + i * es, es);
		}
	}
}

/* The training steps per batch: 1, or the desc's several. */
static int
nsteps(const struct kiln_train_desc *d)
{
	return d->nsteps > 1 ? d->nsteps : 1;
}

/* Adds a batch's first rows rows with its loss[] (one per step) to m;
 * with counts, also to the per-class counts (and the confusion matrix)
 * of the report. */
static void
score(struct trainer *t, struct metrics *m, const float *loss, int64_t rows,
      bool counts)
{
	const struct kiln_tensor_desc *p = &t->d->pred;
	int64_t per = t->ysize * rows;

	m->n += rows;
	for (int k = 0; k < nsteps(t->d); k++) {
		m->loss += (double)loss[k] * (double)rows;
		m->losses[k] += (double)loss[k] * (double)rows;
	}
	if (t->classes) {
		kiln_argmax(t->top, t->pred, p->dtype, rows, t->classes, 1, 0);
		kiln_cast(t->lab, KILN_I64, t->y, t->ydtype, rows);
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
	kiln_cast(t->yv, KILN_F64, t->y, t->ydtype, per);
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
	const void *const *in = (const void *const *)t->in;
	int64_t b = t->d->batch;

	*m = (struct metrics){0};
	if (counts)
		clear_counts(t);
	for (int64_t at = 0; at < n && !stop_signal; at += b) {
		int64_t rows = n - at < b ? n - at : b;
		float loss[KILN_MAXSTEPS] = {0};
		kiln_status s;
		gather(t, sp, idx, at, rows);
		if ((s = t->d->eval(in, t->state, t->ws, loss, t->pred)))
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
	double n = (double)m->n, nv = n * (double)t->ysize;

	if (m->n == 0)
		return;
	put(f, json, prefix, "loss", m->loss / n);
	for (int k = 0; t->d->nsteps > 1 && k < t->d->nsteps; k++) {
		char key[300];
		snprintf(key, sizeof key, "%.200s_loss", t->d->step_names[k]);
		put(f, json, prefix, key, m->losses[k] / n);
	}
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
          double secs, double train_secs)
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
		if (json)
			fprintf(f, ",\"train_seconds\":%.3f", train_secs);
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

static void
on_signal(int sig)
{
	stop_signal = sig;
}

/* SIGINT and SIGTERM ask the run to stop after the current step; a
 * second one kills it as usual (checkpoints are written whole or not at
 * all, so that loses nothing but the current step). */
static void
catch_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sa.sa_flags = SA_RESETHAND;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
}

static const char *
kind_name(int kind)
{
	return kind == KILN_STATE_PARAM ? "parameter" :
	       kind == KILN_STATE_BUFFER ? "running statistic" :
	       kind == KILN_STATE_FROZEN ? "frozen parameter" : "optimizer slot";
}

/* The message of a step (training step k of the batch) that computed a
 * NaN or an infinity; the state is still the previous step's. */
static kiln_status
nonfinite(struct trainer *t, int k, float loss, int bad)
{
	char what[600];
	const struct kiln_state_desc *st = t->d->state;

	if (bad >= 0 && bad < t->d->nstate)
		snprintf(what, sizeof what, "the new value of %s '%s' has a NaN "
		         "or infinity (%s)", kind_name(st[bad].kind), st[bad].name,
		         st[bad].kind == KILN_STATE_BUFFER ? "from the batch's "
		         "statistics" : "from its gradient or the optimizer's "
		         "state");
	else
		snprintf(what, sizeof what, "the loss is %s", isnan(loss) ? "NaN" :
		         loss > 0 ? "+infinity" : "-infinity");
	if (t->d->nsteps > 1) {
		size_t n = strlen(what);
		snprintf(what + n, sizeof what - n, " in training step '%.100s'",
		         t->d->step_names[k]);
	}
	return kiln_fail(t->msg, sizeof t->msg, KILN_ERR_NONFINITE, NULL,
	                 "epoch %lld, step %lld (step %lld of the run): %s; "
	                 "stopping with the weights of the step before%s%s%s "
	                 "(a lower --lr may help; --skip-nonfinite skips such "
	                 "batches)", (long long)t->epoch + 1,
	                 (long long)t->done + 1, (long long)t->step + 1, what,
	                 t->o.checkpoint ? "; the last checkpoint, " : "",
	                 t->o.checkpoint ? t->o.checkpoint : "",
	                 t->o.checkpoint ? ", is kept" : "");
}

/* attack() on the batch in t->in: the adversarial inputs in t->adv. */
static kiln_status
attack(struct trainer *t, double eps)
{
	kiln_status s = t->d->attack((const void *const *)t->in, (float)eps,
	                             t->state, t->ws, t->adv);

	if (s)
		return kiln_fail(t->msg, sizeof t->msg, s, NULL,
		                 "attack() failed: %s", kiln_status_str(s));
	return KILN_OK;
}

/* --adversarial-training: the odd rows of the batch's inputs become
 * their FGSM adversarial examples, made with the current weights, so
 * half of each batch is adversarial (the even rows stay clean). */
static kiln_status
adversarial_batch(struct trainer *t)
{
	const struct kiln_train_desc *d = t->d;
	kiln_status s = attack(t, t->adv_eps);

	for (int k = 0; !s && k < d->ninputs; k++) {
		size_t rb = tensor_bytes(&d->inputs[k]) / (size_t)d->batch;
		for (int64_t b = 1; b < d->batch; b += 2)
			memcpy((char *)t->in[k] + b * rb,
			       (const char *)t->adv[k] + b * rb, rb);
	}
	return s;
}

/* One step on the next batch of the epoch's order: each training step
 * in turn, with the same step number.  A batch one of whose steps is
 * skipped (--skip-nonfinite) counts as skipped and not in the metrics;
 * its other steps still run. */
static kiln_status
train_step(struct trainer *t, double lr)
{
	const void *const *in = (const void *const *)t->in;
	const struct kiln_train_desc *d = t->d;
	float loss[KILN_MAXSTEPS] = {0};
	bool skip = false;

	gather(t, &t->ds.train, t->idx, t->done * d->batch, d->batch);
	if (t->o.advtrain) {
		kiln_status s = adversarial_batch(t);
		if (s)
			return s;
	}
	for (int k = 0; k < nsteps(d); k++) {
		int bad = -1;
		kiln_status s = (d->nsteps > 1 ? d->steps[k] : d->step)(in,
		                (float)lr, t->step + 1, t->state, t->ws, &loss[k],
		                t->pred, &bad);
		if (s == KILN_ERR_NONFINITE && !t->o.skip)
			return nonfinite(t, k, loss[k], bad);
		if (s && s != KILN_ERR_NONFINITE)
			return kiln_fail(t->msg, sizeof t->msg, s, NULL,
			                 "epoch %lld, step %lld: step() failed: %s",
			                 (long long)t->epoch + 1,
			                 (long long)t->done + 1, kiln_status_str(s));
		skip |= s != KILN_OK;
	}
	if (skip)
		t->skipped++;
	else
		score(t, &t->run, loss, d->batch, false);
	t->done++;
	t->step++;
	return KILN_OK;
}

/* The steps of epoch t->epoch from t->done on, its order shuffled first
 * unless that is done; stops early for a signal. */
static kiln_status
train_epoch(struct trainer *t, double lr, double t0)
{
	int64_t steps = t->ntrain / t->d->batch;
	kiln_status s;

	if (!t->shuffled) {
		/* one batch holds it all: its order is left as given, which a
		 * graph model whose samples are its nodes needs */
		if (t->ntrain > t->d->batch)
			shuffle(t, t->idx, t->ntrain);
		t->shuffled = true;
		t->run = (struct metrics){0};
		t->skipped = 0;
	}
	while (t->done < steps && !stop_signal) {
		if ((s = train_step(t, lr)))
			return s;
		if (t->bar && t->run.n)
			progress(t, t->epoch, t->done, steps, &t->run, t0);
		if (t->o.every && t->step % t->o.every == 0 &&
		    (s = write_checkpoint(t)))
			return s;
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
	if (t->o.resume)
		fprintf(stderr, "%s: resuming from %s: epoch %lld, %lld steps "
		        "done in it, %lld in all\n", t->prog, t->o.resume,
		        (long long)t->epoch + 1, (long long)t->done,
		        (long long)t->step);
}

/* The run stopped for a signal: a checkpoint where it is. */
static kiln_status
interrupted(struct trainer *t)
{
	const char *sig = stop_signal == SIGINT ? "SIGINT" : "SIGTERM";
	kiln_status s = write_checkpoint(t);

	if (s)
		return s;
	if (t->o.checkpoint)
		return kiln_fail(t->msg, sizeof t->msg, KILN_ERR_ARG, NULL,
		                 "interrupted by %s in epoch %lld after step "
		                 "%lld; checkpoint written to %s (go on with "
		                 "--resume %s)", sig, (long long)t->epoch + 1,
		                 (long long)t->done, t->o.checkpoint,
		                 t->o.checkpoint);
	return kiln_fail(t->msg, sizeof t->msg, KILN_ERR_ARG, NULL,
	                 "interrupted by %s in epoch %lld after step %lld; "
	                 "nothing saved (--checkpoint PATH would have)", sig,
	                 (long long)t->epoch + 1, (long long)t->done);
}

/* --attack: the loss and accuracy on the FGSM adversarial examples of
 * the test split (else the validation split, else the training data),
 * made with the final weights, on stdout and in the log. */
static kiln_status
attack_report(struct trainer *t)
{
	const struct kiln_split *sp = t->ds.test.n ? &t->ds.test : &t->ds.train;
	const int64_t *idx = t->ds.test.n ? NULL : t->nval ? t->idx + t->ntrain
	                                                   : t->idx;
	int64_t n = t->ds.test.n ? t->ds.test.n : t->nval ? t->nval : t->ntrain;
	const char *prefix = t->ds.test.n ? "test_" : t->nval ? "val_" : "";
	struct metrics m = {0};
	int64_t b = t->d->batch;

	for (int64_t at = 0; at < n && !stop_signal; at += b) {
		int64_t rows = n - at < b ? n - at : b;
		float loss[KILN_MAXSTEPS] = {0};
		kiln_status s;
		gather(t, sp, idx, at, rows);
		if ((s = attack(t, t->eps)))
			return s;
		if ((s = t->d->eval((const void *const *)t->adv, t->state, t->ws,
		                    loss, t->pred)))
			return kiln_fail(t->msg, sizeof t->msg, s, NULL,
			                 "eval() failed: %s", kiln_status_str(s));
		score(t, &m, loss, rows, false);
	}
	printf("fgsm eps %g:", t->eps);
	put_metrics(t, stdout, false, prefix, &m);
	putchar('\n');
	if (t->log) {
		fprintf(t->log, "{\"attack\":\"fgsm\",\"eps\":%.9g", t->eps);
		put_metrics(t, t->log, true, prefix, &m);
		fputs("}\n", t->log);
	}
	return KILN_OK;
}

/* With early stopping's restore_best: the best epoch's state back. */
static void
restore_best(struct trainer *t)
{
	if (!t->best_state || t->es_epoch == 0 || t->es_epoch == t->epoch)
		return;
	memcpy(t->state, t->best_state, t->d->state_bytes);
	printf("early stopping: restored the weights of epoch %lld (%s %.4f)\n",
	       (long long)t->es_epoch, t->d->es_monitor, t->es_best);
}

/* After an epoch: its line, the schedule, early stopping, a checkpoint;
 * *stop when early stopping ends the run. */
static kiln_status
end_epoch(struct trainer *t, double lr, const struct metrics *m,
          double secs, double train_secs, bool *stop)
{
	put_epoch(t, t->epoch, lr, m, secs, train_secs);
	if (t->skipped)
		printf("epoch %lld: %lld batches skipped: not finite\n",
		       (long long)t->epoch + 1, (long long)t->skipped);
	plateau(t, m);
	*stop = early_stop(t, m);
	t->epoch++;
	t->done = 0;
	t->shuffled = false;
	if (*stop)
		printf("early stopping: %s has not improved for %lld epochs "
		       "(best %.4f in epoch %lld)\n", t->d->es_monitor,
		       (long long)t->es_bad, t->es_best, (long long)t->es_epoch);
	return write_checkpoint(t);
}

static kiln_status
train(struct trainer *t)
{
	const struct kiln_split *tr = &t->ds.train, *te = &t->ds.test;
	kiln_status s = KILN_OK;
	bool stop = stopped_early(t);
	int64_t first = t->epoch;

	intro(t);
	catch_signals();
	while (t->epoch < t->o.epochs && !stop && !s) {
		struct metrics m[3] = {{0}};   /* SPLIT_ */
		double t0 = now(), lr = epoch_lr(t, t->epoch);
		s = train_epoch(t, lr, t0);
		double t1 = now();
		m[SPLIT_TRAIN] = t->run;
		if (!s && !stop_signal && t->nval)
			s = evaluate(t, tr, t->idx + t->ntrain, t->nval, &m[SPLIT_VAL],
			             t->report == REPORT_VAL);
		if (!s && !stop_signal && te->n)
			s = evaluate(t, te, NULL, te->n, &m[SPLIT_TEST],
			             t->report == REPORT_TEST);
		if (s || stop_signal)
			break;
		s = end_epoch(t, lr, m, now() - t0, t1 - t0, &stop);
	}
	if (!s && stop_signal)
		return interrupted(t);
	if (!s)
		restore_best(t);
	/* the report's counts are the last epoch's, unless there was none
	 * here or its weights were replaced */
	if (!s && t->classes && (t->report == REPORT_TRAIN || t->best_state ||
	                         t->epoch == first)) {
		struct metrics m;
		const struct kiln_split *sp = t->report == REPORT_TEST ? te : tr;
		const int64_t *idx = t->report == REPORT_TEST ? NULL :
		                     t->report == REPORT_VAL ? t->idx + t->ntrain :
		                     t->idx;
		int64_t n = t->report == REPORT_TEST ? te->n :
		            t->report == REPORT_VAL ? t->nval : t->ntrain;
		s = evaluate(t, sp, idx, n, &m, true);
	}
	if (!s && t->classes)
		put_report(t, t->report == REPORT_TEST ? "test" :
		              t->report == REPORT_VAL ? "validation" : "train");
	if (!s && t->o.attack)
		s = attack_report(t);
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
	return t->o.attack ? attack_report(t) : KILN_OK;
}

/* A --save or --checkpoint PATH that cannot be written fails before the
 * training, not after it: its directory must exist and be writable, and
 * PATH must not be a directory.  (A full disk is found when writing.) */
static kiln_status
writable(struct trainer *t, const char *path)
{
	const char *slash = path ? strrchr(path, '/') : NULL;
	char dir[4096];
	struct stat st;
	int err = 0;

	if (!path)
		return KILN_OK;
	snprintf(dir, sizeof dir, "%.*s", !slash ? 1 : slash == path ? 1 :
	         (int)(slash - path), !slash ? "." : path);
	if (stat(dir, &st))
		err = errno;
	else if (!S_ISDIR(st.st_mode))
		err = ENOTDIR;
	else if (access(dir, W_OK))
		err = errno;
	else if (!stat(path, &st) && S_ISDIR(st.st_mode))
		err = EISDIR;
	if (!err)
		return KILN_OK;
	return kiln_fail(t->msg, sizeof t->msg, KILN_ERR_IO, path,
	                 "cannot write: %s", strerror(err));
}

static int
run(struct trainer *t)
{
	const struct kiln_train_desc *d = t->d;
	kiln_status s = writable(t, t->o.save);

	if (!s)
		s = writable(t, t->o.checkpoint);
	if (!s)
		s = kiln_dataset_load(&t->ds, t->o.data, d, t->msg, sizeof t->msg);
	kiln_set_threads((int)t->o.threads);
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
	free(t->ck);
	free(t->cknames);
	return !s ? 0 : stop_signal ? 128 + stop_signal : 1;
}

int
kiln_finite(const void *x, kiln_dtype t, int64_t n)
{
	const float *f = x;
	const double *g = x;

	for (int64_t i = 0; t == KILN_F32 && i < n; i++)
		if (!isfinite(f[i]))
			return 0;
	for (int64_t i = 0; t == KILN_F64 && i < n; i++)
		if (!isfinite(g[i]))
			return 0;
	return 1;
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
	                    .vsplit = d->validation_split,
	                    .threads = kiln_threads()};
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
