/* test_train.c: a hand-written trainer for testing kiln_train_main().
 *
 * The model is softmax regression, written the way a generated trainer
 * would be: a kiln_train_desc whose state holds W f32[D,C] and b f32[C]
 * (parameters), x_mean f32[D] (a buffer: the running mean of the inputs),
 * temp f32[] (frozen: scales the logits) and W.momentum (an optimizer
 * slot); step() computes logits = (x W + b) * temp, the mean cross-entropy,
 * its gradient and a momentum SGD update in plain C, eval() the same
 * without the update.  The environment changes it: KILN_TEST_D, _C and
 * _BATCH the sizes (8, 3, 16), KILN_TEST_MODEL=regress a regressor (mean
 * squared error against f32[B,C] targets), =autoencoder a model without
 * labels (below) and =broken a description with a state tensor out of
 * bounds, KILN_TEST_SCHED the schedule, KILN_TEST_NAN_STEP a step whose
 * loss is NaN (KILN_TEST_NAN_BAD=k: whose update of state tensor k is),
 * KILN_TEST_ES=MONITOR early stopping (patience KILN_TEST_PATIENCE, 1),
 * KILN_TEST_SLOW=US a sleep of US microseconds in each step, to be
 * interrupted.  The autoencoder is linear, r = x W with W f32[D,D], its
 * loss the mean squared error of r against x itself, trained by plain SGD;
 * its desc has nlabels 0 and pred r, or no pred with KILN_TEST_NOPRED=1.
 * Subcommands:
 *   test_train write-npy DIR   separable synthetic data as .npy files
 *   test_train write-idx DIR   the same as IDX files, and broken ones
 *   test_train fashion DIR     loads Fashion-MNIST, prints what it found
 * Anything else is the trainer's command line.  train.test drives it.
 */
#define _POSIX_C_SOURCE 200809L

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "kiln.h"
#include "testutil.h"

#define ALIGNUP(n) (((n) + KILN_ALIGN - 1) / KILN_ALIGN * KILN_ALIGN)
#define NTRAIN 600
#define NTEST 150               /* not a multiple of the batch: padding */
#define SIDE 4                  /* IDX images are SIDE x SIDE */

static int64_t D = 8, C = 3, B = 16;
static int regress, autoenc, nopred;
static int64_t nan_step, nan_bad, slow;

enum { S_W, S_B, S_MEAN, S_TEMP, S_MOM, NSTATE };
static struct kiln_state_desc sdesc[NSTATE];
static struct kiln_tensor_desc in_desc, lab_desc;
static struct kiln_train_desc desc;

/* ---- the model ------------------------------------------------------ */

static float *
slot(void *state, int k)
{
	return (float *)((char *)state + sdesc[k].offset);
}

static int
aligned(const void *p)
{
	return p && (uintptr_t)p % KILN_ALIGN == 0;
}

/* z[B,C] = (x W + b) * temp */
static void
forward(const float *x, void *st, float *z)
{
	const float *w = slot(st, S_W), *bias = slot(st, S_B);
	float temp = *slot(st, S_TEMP);

	for (int64_t i = 0; i < B; i++)
		for (int64_t c = 0; c < C; c++) {
			double s = bias[c];
			for (int64_t j = 0; j < D; j++)
				s += (double)x[i * D + j] * w[j * C + c];
			z[i * C + c] = (float)(s * temp);
		}
}

/* The mean loss over the batch and its gradient dz with respect to z. */
static float
loss_grad(const float *z, const void *labels, float *dz)
{
	double loss = 0;

	for (int64_t i = 0; i < B; i++) {
		const float *zi = z + i * C;
		float *di = dz + i * C;
		double mx = zi[0], sum = 0;
		int64_t y = regress ? 0 : ((const int64_t *)labels)[i];
		for (int64_t c = 0; regress && c < C; c++) {
			double e = zi[c] - ((const float *)labels)[i * C + c];
			loss += e * e / (double)C;
			di[c] = (float)(2 * e / (double)(B * C));
		}
		if (regress)
			continue;
		for (int64_t c = 1; c < C; c++)
			mx = fmax(mx, zi[c]);
		for (int64_t c = 0; c < C; c++)
			sum += exp(zi[c] - mx);
		loss += mx + log(sum) - zi[y];
		for (int64_t c = 0; c < C; c++)
			di[c] = (float)((exp(zi[c] - mx) / sum - (c == y)) / (double)B);
	}
	return (float)(loss / (double)B);
}

/* Momentum SGD on W, plain SGD on b; the running mean of x. */
static void
update(const float *x, const float *dz, float lr, void *st)
{
	float *w = slot(st, S_W), *bias = slot(st, S_B), *mom = slot(st, S_MOM);
	float *mean = slot(st, S_MEAN), temp = *slot(st, S_TEMP);

	for (int64_t j = 0; j < D; j++) {
		double m = 0;
		for (int64_t c = 0; c < C; c++) {
			double g = 0;
			for (int64_t i = 0; i < B; i++)
				g += (double)x[i * D + j] * dz[i * C + c];
			mom[j * C + c] = (float)(0.5 * mom[j * C + c] + g * temp);
			w[j * C + c] -= lr * mom[j * C + c];
		}
		for (int64_t i = 0; i < B; i++)
			m += x[i * D + j];
		mean[j] = (float)(0.9 * mean[j] + 0.1 * m / (double)B);
	}
	for (int64_t c = 0; c < C; c++) {
		double g = 0;
		for (int64_t i = 0; i < B; i++)
			g += dz[i * C + c];
		bias[c] -= (float)(lr * g * temp);
	}
}

static kiln_status
eval(const void *const *in, void *state, void *ws, float *loss, void *pred)
{
	float *z = ws, *dz = z + B * C;

	if (!aligned(in[0]) || !aligned(in[1]) || !aligned(state) ||
	    !aligned(ws) || !aligned(pred))
		return KILN_ERR_ARG;
	forward(in[0], state, z);
	*loss = loss_grad(z, in[1], dz);
	memcpy(pred, z, (size_t)(B * C) * sizeof *z);
	return KILN_OK;
}

/* As a generated step(): a non-finite loss (at KILN_TEST_NAN_STEP)
 * returns before the update. */
static kiln_status
step(const void *const *in, float lr, int64_t t, void *state, void *ws,
     float *loss, void *pred, int *bad)
{
	kiln_status s = eval(in, state, ws, loss, pred);

	if (s)
		return s;
	if (slow)
		nanosleep(&(struct timespec){slow / 1000000, slow % 1000000 * 1000},
		          NULL);
	if (t == nan_step) {
		*loss = nan_bad < 0 ? NAN : 0.5f;
		*bad = (int)nan_bad;
		return KILN_ERR_NONFINITE;
	}
	update(in[0], (float *)ws + B * C, lr, state);
	return KILN_OK;
}

/* ---- the autoencoder ------------------------------------------------ */

/* r = x W, the mean of (r - x)^2 and dr, its gradient, in ws. */
static float
ae_forward(const float *x, void *st, float *r, float *dr)
{
	const float *w = slot(st, S_W);
	double loss = 0;

	for (int64_t i = 0; i < B; i++)
		for (int64_t k = 0; k < D; k++) {
			double s = 0, e;
			for (int64_t j = 0; j < D; j++)
				s += (double)x[i * D + j] * w[j * D + k];
			r[i * D + k] = (float)s;
			e = s - x[i * D + k];
			loss += e * e;
			dr[i * D + k] = (float)(2 * e / (double)(B * D));
		}
	return (float)(loss / (double)(B * D));
}

/* The generated code's contract: in[] holds the input only, and pred is
 * a buffer of pred's size exactly when the desc has a pred. */
static kiln_status
ae_eval(const void *const *in, void *state, void *ws, float *loss,
        void *pred)
{
	float *r = ws, *dr = r + B * D;

	if (!aligned(in[0]) || !aligned(state) || !aligned(ws) ||
	    (nopred ? pred != NULL : !aligned(pred)))
		return KILN_ERR_ARG;
	*loss = ae_forward(in[0], state, r, dr);
	if (pred)
		memcpy(pred, r, (size_t)(B * D) * sizeof *r);
	return KILN_OK;
}

/* W -= lr * x^T dr */
static kiln_status
ae_step(const void *const *in, float lr, int64_t t, void *state, void *ws,
        float *loss, void *pred, int *bad)
{
	const float *x = in[0], *dr = (float *)ws + B * D;
	float *w = slot(state, S_W);
	kiln_status s = ae_eval(in, state, ws, loss, pred);

	(void)t;
	(void)bad;
	for (int64_t j = 0; !s && j < D; j++)
		for (int64_t k = 0; k < D; k++) {
			double g = 0;
			for (int64_t i = 0; i < B; i++)
				g += (double)x[i * D + j] * dr[i * D + k];
			w[j * D + k] -= (float)(lr * g);
		}
	return s;
}

/* ---- the description ------------------------------------------------ */

static int64_t
env(const char *name, int64_t def)
{
	const char *v = getenv(name);

	return v && *v ? strtoll(v, NULL, 10) : def;
}

static void
schedule(const char *s)
{
	if (!strcmp(s, "step"))
		desc.schedule = KILN_SCHED_STEP;
	else if (!strcmp(s, "exponential"))
		desc.schedule = KILN_SCHED_EXPONENTIAL;
	else if (!strcmp(s, "cosine"))
		desc.schedule = KILN_SCHED_COSINE;
	else if (!strcmp(s, "plateau"))
		desc.schedule = KILN_SCHED_PLATEAU;
	desc.sched_gamma = 0.5;
	desc.sched_step_size = 2;
	desc.sched_min_lr = 0.01;
	desc.sched_factor = 0.5;
	desc.sched_patience = 0;
}

static void
add_state(int k, const char *name, int kind, int rank, int64_t d0,
          int64_t d1, size_t *at)
{
	struct kiln_state_desc *s = &sdesc[k];

	*s = (struct kiln_state_desc){.name = name, .kind = kind,
	                              .dtype = KILN_F32, .rank = rank,
	                              .dim = {d0, d1}, .offset = *at};
	*at += ALIGNUP((size_t)(rank > 0 ? d0 : 1) * (size_t)(rank > 1 ? d1 : 1)
	               * sizeof(float));
}

static void
make_ae_desc(void)
{
	unsigned char *init;
	size_t at = 0;

	nopred = env("KILN_TEST_NOPRED", 0);
	add_state(S_W, "W", KILN_STATE_PARAM, 2, D, D, &at);
	init = calloc(1, at);
	for (int64_t i = 0; i < D * D; i++)
		((float *)init)[i] = 0.01f * (float)(i % 7 - 3);
	desc = (struct kiln_train_desc){
		.name = "autoencoder", .batch = B, .ninputs = 1, .nlabels = 0,
		.inputs = &in_desc, .labels = NULL,
		.pred = {"reconstruction", KILN_F32, 2, {B, D}}, .nstate = 1,
		.state = sdesc, .state_bytes = at, .state_init = init,
		.workspace_bytes = (size_t)(2 * B * D) * 4, .step = ae_step,
		.eval = ae_eval, .epochs = 5, .lr = 0.1, .seed = 1,
	};
	if (nopred)
		desc.pred = (struct kiln_tensor_desc){0};
}

static void
make_desc(void)
{
	const char *model = getenv("KILN_TEST_MODEL"), *sched;
	unsigned char *init;
	size_t at = 0;

	D = env("KILN_TEST_D", 8);
	C = env("KILN_TEST_C", 3);
	B = env("KILN_TEST_BATCH", 16);
	nan_step = env("KILN_TEST_NAN_STEP", 0);
	nan_bad = env("KILN_TEST_NAN_BAD", -1);
	slow = env("KILN_TEST_SLOW", 0);
	regress = model && !strcmp(model, "regress");
	autoenc = model && !strcmp(model, "autoencoder");
	in_desc = (struct kiln_tensor_desc){"x", KILN_F32, 2, {B, D}};
	if (autoenc) {
		make_ae_desc();
		return;
	}
	lab_desc = regress ? (struct kiln_tensor_desc){"y", KILN_F32, 2, {B, C}}
	                   : (struct kiln_tensor_desc){"y", KILN_I64, 1, {B}};
	add_state(S_W, "W", KILN_STATE_PARAM, 2, D, C, &at);
	add_state(S_B, "b", KILN_STATE_PARAM, 1, C, 0, &at);
	add_state(S_MEAN, "x_mean", KILN_STATE_BUFFER, 1, D, 0, &at);
	add_state(S_TEMP, "temp", KILN_STATE_FROZEN, 0, 0, 0, &at);
	add_state(S_MOM, "W.momentum", KILN_STATE_SLOT, 2, D, C, &at);
	init = calloc(1, at);
	for (int64_t i = 0; i < D * C; i++)
		((float *)init)[i] = 0.01f * (float)(i % 7 - 3);
	*(float *)(init + sdesc[S_TEMP].offset) = 1;
	desc = (struct kiln_train_desc){
		.name = regress ? "linear" : "softmax", .batch = B, .ninputs = 1,
		.nlabels = 1, .inputs = &in_desc, .labels = &lab_desc,
		.pred = {"logits", KILN_F32, 2, {B, C}}, .classify = !regress,
		.nstate = NSTATE, .state = sdesc, .state_bytes = at,
		.state_init = init, .workspace_bytes = (size_t)(2 * B * C) * 4,
		.step = step, .eval = eval, .epochs = 5, .lr = 0.1, .seed = 1,
	};
	if ((sched = getenv("KILN_TEST_SCHED")))
		schedule(sched);
	desc.es_monitor = getenv("KILN_TEST_ES");
	desc.es_patience = env("KILN_TEST_PATIENCE", 1);
	desc.es_restore_best = 1;
	if (model && !strcmp(model, "broken"))
		sdesc[S_MOM].offset = at;      /* past the end of the state */
}

/* ---- making data ---------------------------------------------------- */

static char path[4096];

static const char *
in_dir(const char *dir, const char *name)
{
	snprintf(path, sizeof path, "%s/%s", dir, name);
	return path;
}

/* n samples of D features: those of class c (j % C == c) are higher by
 * 0.45, with noise of 0.5, so a few samples overlap the other classes. */
static void
make_samples(int64_t n, float *x, int64_t *y)
{
	for (int64_t i = 0; i < n; i++) {
		y[i] = t_irand(C);
		for (int64_t j = 0; j < D; j++)
			x[i * D + j] = 0.5f * t_frand() + (j % C == y[i] ? 0.45f : 0);
	}
}

static void
save_npy(const char *dir, const char *name, kiln_dtype t, int rank,
         int64_t d0, int64_t d1, const void *p)
{
	char msg[512];
	int64_t dim[2] = {d0, d1};

	if (kiln_npy_save(in_dir(dir, name), t, rank, dim, p, msg, sizeof msg)) {
		fprintf(stderr, "%s\n", msg);
		exit(1);
	}
}

static void
write_split(const char *dir, const char *x, const char *y, int64_t n,
            int with_targets)
{
	float *xs = t_alloc((size_t)(n * D) * sizeof *xs);
	float *ts = t_alloc((size_t)(n * C) * sizeof *ts);
	int64_t *ys = t_alloc((size_t)n * sizeof *ys);

	make_samples(n, xs, ys);
	for (int64_t i = 0; i < n * C; i++)   /* targets: y = 2x - 1 */
		ts[i] = 2 * xs[i / C * D + i % C] - 1;
	save_npy(dir, x, KILN_F32, 2, n, D, xs);
	if (with_targets)
		save_npy(dir, y, KILN_F32, 2, n, C, ts);
	else
		save_npy(dir, y, KILN_I64, 1, n, 0, ys);
	free(xs);
	free(ts);
	free(ys);
}

/* DIR: train and test; DIR/reg: regression targets; DIR/bad-*: errors. */
static int
write_npy(const char *dir)
{
	char sub[4096];
	double f64[64] = {0};
	float f32[64] = {0};

	t_seed(7);
	mkdir(dir, 0777);
	write_split(dir, "train_x.npy", "train_y.npy", NTRAIN, 0);
	write_split(dir, "test_x.npy", "test_y.npy", NTEST, 0);
	snprintf(sub, sizeof sub, "%s/reg", dir);
	mkdir(sub, 0777);
	write_split(sub, "train_x.npy", "train_y.npy", NTRAIN, 1);
	snprintf(sub, sizeof sub, "%s/bad-f64", dir);
	mkdir(sub, 0777);
	save_npy(sub, "train_x.npy", KILN_F64, 2, 1, D, f64);
	save_npy(sub, "train_y.npy", KILN_I64, 1, 1, 0, f64);
	snprintf(sub, sizeof sub, "%s/bad-labels", dir);
	mkdir(sub, 0777);
	save_npy(sub, "train_x.npy", KILN_F32, 2, 1, D, f32);
	save_npy(sub, "train_y.npy", KILN_F32, 1, 1, 0, f32);
	return 0;
}

/* An IDX file of u8 elements: n samples of dims d1 (0: none) x d2. */
static void
put_idx(const char *file, int gz, int64_t n, int64_t d1, int64_t d2,
        const unsigned char *data, int64_t bytes)
{
	unsigned char h[16] = {0, 0, 8, (unsigned char)(d1 ? 3 : 1)};
	int64_t dims[3] = {n, d1, d2};
	int hl = d1 ? 16 : 8;
	gzFile f = gzopen(file, gz ? "wb" : "wbT");

	for (int k = 0; k < (d1 ? 3 : 1); k++)
		for (int i = 0; i < 4; i++)
			h[4 + 4 * k + i] = (unsigned char)(dims[k] >> (24 - 8 * i));
	if (!f || gzwrite(f, h, (unsigned)hl) != hl ||
	    (bytes && gzwrite(f, data, (unsigned)bytes) != bytes) ||
	    gzclose(f) != Z_OK) {
		fprintf(stderr, "cannot write %s\n", file);
		exit(1);
	}
}

/* Images in which class c has row c bright. */
static void
make_images(int64_t n, unsigned char *px, unsigned char *y)
{
	for (int64_t i = 0; i < n; i++) {
		y[i] = (unsigned char)t_irand(C);
		for (int j = 0; j < SIDE * SIDE; j++)
			px[i * SIDE * SIDE + j] = (unsigned char)(t_irand(60) +
			                          (j / SIDE == y[i] ? 180 : 0));
	}
}

/* A directory of IDX files; gz: gzipped; nlab: labels to write. */
static void
idx_dir(const char *dir, const char *sub, int gz, int64_t nlab,
        const unsigned char *px, const unsigned char *y)
{
	const char *ext = gz ? ".gz" : "";
	char d[4096], f[4200];

	snprintf(d, sizeof d, "%s/%s", dir, sub);
	mkdir(d, 0777);
	snprintf(f, sizeof f, "%s/train-images-idx3-ubyte%s", d, ext);
	put_idx(f, gz, NTRAIN, SIDE, SIDE, px, NTRAIN * SIDE * SIDE);
	snprintf(f, sizeof f, "%s/train-labels-idx1-ubyte%s", d, ext);
	put_idx(f, gz, nlab, 0, 0, y, nlab);
}

/* Cuts the last k bytes off DIR/SUB/NAME, or flips byte -k when flip. */
static void
damage(const char *dir, const char *sub, const char *name, long k, int flip)
{
	char f[4200];
	struct stat st;
	FILE *fp;

	snprintf(f, sizeof f, "%s/%s/%s", dir, sub, name);
	if (stat(f, &st) || (!flip && truncate(f, st.st_size - k)))
		exit(1);
	if (flip && (fp = fopen(f, "r+b"))) {
		int c;
		fseek(fp, st.st_size - k, SEEK_SET);
		c = fgetc(fp);
		fseek(fp, st.st_size - k, SEEK_SET);
		fputc(c ^ 0xff, fp);
		fclose(fp);
	}
}

static int
write_idx(const char *dir)
{
	unsigned char *px = t_alloc(NTRAIN * SIDE * SIDE), y[NTRAIN];
	const char *im = "train-images-idx3-ubyte", *img = "train-images-idx3-ubyte.gz";
	char f[4200];

	t_seed(11);
	mkdir(dir, 0777);
	make_images(NTRAIN, px, y);
	idx_dir(dir, "gz", 1, NTRAIN, px, y);
	idx_dir(dir, "raw", 0, NTRAIN, px, y);
	snprintf(f, sizeof f, "%s/gz/t10k-images-idx3-ubyte.gz", dir);
	put_idx(f, 1, NTEST, SIDE, SIDE, px, NTEST * SIDE * SIDE);
	snprintf(f, sizeof f, "%s/gz/t10k-labels-idx1-ubyte.gz", dir);
	put_idx(f, 1, NTEST, 0, 0, y, NTEST);
	idx_dir(dir, "trunc", 0, NTRAIN, px, y);
	damage(dir, "trunc", im, 10, 0);
	idx_dir(dir, "truncgz", 1, NTRAIN, px, y);
	damage(dir, "truncgz", img, 200, 0);
	idx_dir(dir, "crc", 1, NTRAIN, px, y);
	damage(dir, "crc", img, 6, 1);
	idx_dir(dir, "trailer", 1, NTRAIN, px, y);
	damage(dir, "trailer", img, 3, 0);
	idx_dir(dir, "empty", 0, NTRAIN, px, y);
	damage(dir, "empty", im, NTRAIN * SIDE * SIDE + 14, 0);
	idx_dir(dir, "count", 0, NTRAIN - 1, px, y);
	y[17] = 7;
	idx_dir(dir, "range", 1, NTRAIN, px, y);
	idx_dir(dir, "magic", 0, NTRAIN, px, y);
	snprintf(f, sizeof f, "%s/magic/%s", dir, im);
	put_idx(f, 0, NTRAIN, SIDE, SIDE, px, NTRAIN * SIDE * SIDE);
	damage(dir, "magic", im, NTRAIN * SIDE * SIDE + 16, 1);
	snprintf(f, sizeof f, "%s/huge", dir);
	mkdir(f, 0777);
	snprintf(f, sizeof f, "%s/huge/%s", dir, img);
	put_idx(f, 1, 0x7fffffff, SIDE, SIDE, px, 100);
	snprintf(f, sizeof f, "%s/huge/train-labels-idx1-ubyte.gz", dir);
	put_idx(f, 1, 0x7fffffff, 0, 0, px, 100);
	free(px);
	return 0;
}

/* ---- the real data -------------------------------------------------- */

static void
show_split(const char *name, const struct kiln_split *s, int64_t xsize)
{
	float lo = INFINITY, hi = -INFINITY;
	int64_t per[10] = {0};

	const float *x = s->col[0];
	const int64_t *y = s->col[1];

	for (int64_t i = 0; i < s->n * xsize; i++) {
		lo = fminf(lo, x[i]);
		hi = fmaxf(hi, x[i]);
	}
	printf("%s: %lld samples, pixels in [%g, %g], first labels", name,
	       (long long)s->n, lo, hi);
	for (int64_t i = 0; i < 10 && i < s->n; i++)
		printf(" %lld", (long long)y[i]);
	for (int64_t i = 0; i < s->n; i++)
		per[y[i]]++;
	printf(", per class");
	for (int k = 0; k < 10; k++)
		printf(" %lld", (long long)per[k]);
	putchar('\n');
}

static int
fashion(const char *dir)
{
	struct kiln_dataset ds;
	char msg[1024];

	if (kiln_dataset_load(&ds, dir, &desc, msg, sizeof msg)) {
		fprintf(stderr, "error: %s\n", msg);
		return 1;
	}
	show_split("train", &ds.train, ds.size[0]);
	show_split("test", &ds.test, ds.size[0]);
	kiln_dataset_free(&ds);
	return 0;
}

int
main(int argc, char **argv)
{
	const char *cmd = argc == 3 ? argv[1] : "";
	int r;

	if (!strcmp(cmd, "write-idx"))
		setenv("KILN_TEST_D", "16", 1);
	if (!strcmp(cmd, "fashion")) {
		setenv("KILN_TEST_D", "784", 1);
		setenv("KILN_TEST_C", "10", 1);
	}
	make_desc();
	if (!strcmp(cmd, "write-npy"))
		r = write_npy(argv[2]);
	else if (!strcmp(cmd, "write-idx"))
		r = write_idx(argv[2]);
	else if (!strcmp(cmd, "fashion"))
		r = fashion(argv[2]);
	else
		r = kiln_train_main(argc, argv, &desc);
	free((void *)desc.state_init);
	return r;
}
