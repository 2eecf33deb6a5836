/* dataset.c: loading a trainer's data into memory (docs/training.md).
 *
 * --data names a directory of MNIST-family IDX files or of .npy files, or
 * one training features file whose labels file is found by its name.  A
 * trainer without labels (an autoencoder's loss compares the output with
 * the input) reads the features files only and ignores any labels files.
 * Each file's header is checked against the trainer's description before
 * its data is allocated, then the file is loaded whole, once, features
 * before labels: features become f32 (IDX bytes scaled to [0, 1]), labels
 * the label tensor's dtype, and a classifier's labels are range-checked
 * here so the training loop never sees a bad one.  IDX files are read
 * through zlib, which reads an uncompressed file as it is, so .gz and
 * plain files share one path.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "kiln.h"

/* Deflate never compresses better than 1032:1, so a gzip file of n bytes
 * holds at most this many times n: a bound on what a header may announce
 * before the data is decompressed. */
#define GZIP_MAX_RATIO 1032
#define CHUNK 65536             /* bytes per gzread */

/* The file names of a directory: [IDX or npy][train or test][x or y]. */
static const char *const names[2][2][2] = {
	{{"train-images-idx3-ubyte", "train-labels-idx1-ubyte"},
	 {"t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"}},
	{{"train_x.npy", "train_y.npy"}, {"test_x.npy", "test_y.npy"}},
};

/* The loading in progress: where it goes and what it must match. */
struct loader {
	struct kiln_dataset *ds;
	const struct kiln_train_desc *d;
	bool labeled;             /* the trainer takes labels (d->nlabels == 1) */
	int64_t classes;          /* labels must be below it; 0: a regressor */
	char *msg;
	size_t len;
};

/* A file's samples: n of them, each of type dtype[dim[0..rank)]. */
struct sample {
	int64_t n;
	kiln_dtype dtype;
	int rank;
	int64_t dim[KILN_MAXRANK];
};

/* An IDX file being read. */
struct idx {
	gzFile f;
	const char *path;
	int64_t fsize;            /* bytes on disk, compressed or not */
	int64_t hbytes, bytes;    /* bytes of header and of data */
	struct sample s;
};

static int64_t
numel(int rank, const int64_t *dim)
{
	int64_t n = 1;

	for (int i = 0; i < rank; i++)
		n *= dim[i];
	return n;
}

/* Checks the trainer's tensors and fills the per-sample sizes. */
static kiln_status
setup(struct loader *L)
{
	const struct kiln_train_desc *d = L->d;

	if (d->ninputs != 1 || d->nlabels > 1)
		return kiln_fail(L->msg, L->len, KILN_ERR_UNSUPPORTED, NULL,
		                 "%d inputs and %d labels: only models with one "
		                 "input and at most one label tensor are supported "
		                 "yet", d->ninputs, d->nlabels);
	if (d->inputs[0].dtype != KILN_F32)
		return kiln_fail(L->msg, L->len, KILN_ERR_UNSUPPORTED, NULL,
		                 "input '%s' is %s: only f32 inputs are supported "
		                 "yet", d->inputs[0].name,
		                 kiln_dtype_name(d->inputs[0].dtype));
	L->ds->xsize = numel(d->inputs[0].rank - 1, d->inputs[0].dim + 1);
	L->labeled = d->nlabels == 1;
	if (!L->labeled)
		return KILN_OK;
	L->ds->ysize = numel(d->labels[0].rank - 1, d->labels[0].dim + 1);
	L->ds->ydtype = d->labels[0].dtype;
	L->classes = d->classify ? d->pred.dim[1] : 0;
	return KILN_OK;
}

/* ---- checks shared by both formats ---------------------------------- */

/* A file's samples must hold as many values as tensor t per batch row. */
static kiln_status
check_fit(struct loader *L, const char *path, const struct sample *s,
          const struct kiln_tensor_desc *t, const char *what)
{
	char got[256], want[256];
	int64_t per = numel(s->rank, s->dim);
	int64_t need = numel(t->rank - 1, t->dim + 1);

	if (per == need)
		return KILN_OK;
	return kiln_fail(L->msg, L->len, KILN_ERR_SHAPE, path,
	                 "samples of %s (%lld values) do not fit %s '%s' %s, "
	                 "which takes %lld per sample",
	                 kiln_type_name(got, sizeof got, s->dtype, s->rank,
	                                s->dim),
	                 (long long)per, what, t->name,
	                 kiln_type_name(want, sizeof want, t->dtype, t->rank,
	                                t->dim),
	                 (long long)need);
}

static kiln_status
check_counts(struct loader *L, const char *xpath, int64_t nx,
             const char *ypath, int64_t ny)
{
	if (nx == ny)
		return KILN_OK;
	return kiln_fail(L->msg, L->len, KILN_ERR_SHAPE, NULL,
	                 "%s holds %lld samples but %s holds %lld labels",
	                 xpath, (long long)nx, ypath, (long long)ny);
}

/* Converts count labels of dtype t at src into sp->y.  A classifier's
 * must be integers in [0, classes). */
static kiln_status
take_labels(struct loader *L, struct kiln_split *sp, const void *src,
            kiln_dtype t, int64_t count, const char *path)
{
	size_t es = kiln_dtype_size(t);

	if (L->classes && (t == KILN_F32 || t == KILN_F64 || t == KILN_F16 ||
	                   t == KILN_BF16 || t == KILN_BOOL))
		return kiln_fail(L->msg, L->len, KILN_ERR_DTYPE, path,
		                 "labels of a classifier must be integers, "
		                 "got %s", kiln_dtype_name(t));
	for (int64_t i = 0; L->classes && i < count; i++) {
		int64_t v;
		kiln_cast(&v, KILN_I64, (const char *)src + i * es, t, 1);
		if (v < 0 || v >= L->classes)
			return kiln_fail(L->msg, L->len, KILN_ERR_RANGE, path,
			                 "label %lld of sample %lld is out of range: "
			                 "the model has %lld classes", (long long)v,
			                 (long long)i, (long long)L->classes);
	}
	sp->y = malloc((size_t)count * kiln_dtype_size(L->ds->ydtype) + 1);
	if (!sp->y)
		return kiln_fail(L->msg, L->len, KILN_ERR_NOMEM, path,
		                 "out of memory");
	kiln_cast(sp->y, L->ds->ydtype, src, t, count);
	return KILN_OK;
}

/* ---- IDX ------------------------------------------------------------
 * magic: 0x00 0x00 type rank, then rank big-endian u32 dims, then the
 * elements in C order.  Only type 0x08 (unsigned bytes) is supported. */

/* Why gzread stopped early, after at bytes of data (-1: in the header):
 * a gzip error, or the end of the data.  zlib inflates ahead, so a bad
 * CRC may show at any read; it reports a cut stream as Z_BUF_ERROR. */
static kiln_status
idx_short(struct loader *L, const struct idx *x, int64_t at)
{
	int err = Z_OK;
	const char *why = gzerror(x->f, &err);
	size_t n = strlen(x->path);

	if (!strncmp(why, x->path, n) && !strncmp(why + n, ": ", 2))
		why += n + 2;           /* zlib names the file too */
	if (err != Z_OK && err != Z_BUF_ERROR)
		return kiln_fail(L->msg, L->len, KILN_ERR_FORMAT, x->path,
		                 "corrupt gzip data: %s", why);
	if (at < 0)
		return kiln_fail(L->msg, L->len, KILN_ERR_FORMAT, x->path,
		                 "truncated: the file ends inside the IDX header");
	if (at == x->bytes)
		return kiln_fail(L->msg, L->len, KILN_ERR_FORMAT, x->path,
		                 "truncated: the gzip stream is cut short");
	return kiln_fail(L->msg, L->len, KILN_ERR_FORMAT, x->path,
	                 "truncated: the header announces %lld bytes of data, "
	                 "the file has %lld", (long long)x->bytes,
	                 (long long)at);
}

/* Reads the header into x->s and x->bytes, the size of the data. */
static kiln_status
idx_header(struct loader *L, struct idx *x)
{
	unsigned char b[4 * KILN_MAXRANK];
	int rank;

	if (gzread(x->f, b, 4) != 4)
		return idx_short(L, x, -1);
	if (b[0] || b[1])
		return kiln_fail(L->msg, L->len, KILN_ERR_FORMAT, x->path,
		                 "not an IDX file (bad magic %02x %02x %02x %02x)",
		                 b[0], b[1], b[2], b[3]);
	if (b[2] != 0x08)
		return kiln_fail(L->msg, L->len, KILN_ERR_UNSUPPORTED, x->path,
		                 "IDX element type 0x%02x is not supported (only "
		                 "unsigned bytes, 0x08)", b[2]);
	rank = b[3];
	if (rank < 1 || rank > KILN_MAXRANK)
		return kiln_fail(L->msg, L->len, KILN_ERR_UNSUPPORTED, x->path,
		                 "IDX files of %d dimensions are not supported "
		                 "(1 to 8 are)", rank);
	if (gzread(x->f, b, 4 * (unsigned)rank) != 4 * rank)
		return idx_short(L, x, -1);
	x->s = (struct sample){.dtype = KILN_U8, .rank = rank - 1};
	x->bytes = 1;
	for (int i = 0; i < rank; i++) {
		const unsigned char *p = b + 4 * i;
		int64_t v = (int64_t)p[0] << 24 | p[1] << 16 | p[2] << 8 | p[3];
		if (v > 0 && x->bytes > INT64_MAX / 2 / v)
			return kiln_fail(L->msg, L->len, KILN_ERR_FORMAT, x->path,
			                 "the IDX header's dimensions are too large");
		x->bytes *= v;
		*(i ? &x->s.dim[i - 1] : &x->s.n) = v;
	}
	x->hbytes = 4 + 4 * rank;
	return KILN_OK;
}

/* The header's data size against the file, before anything is allocated:
 * exact for a plain file, bounded by the ratio for a gzip one. */
static kiln_status
idx_check_size(struct loader *L, const struct idx *x)
{
	int64_t have = x->fsize - x->hbytes, want = x->bytes;

	if (gzdirect(x->f) && have != want)
		return kiln_fail(L->msg, L->len, KILN_ERR_FORMAT, x->path,
		                 "%s: the header announces %lld bytes of data, the "
		                 "file has %lld", have < want ? "truncated" :
		                 "too long", (long long)want, (long long)have);
	if (!gzdirect(x->f) && want / GZIP_MAX_RATIO > x->fsize)
		return kiln_fail(L->msg, L->len, KILN_ERR_FORMAT, x->path,
		                 "the header announces %lld bytes of data, more "
		                 "than a gzip file of %lld bytes can hold: it is "
		                 "corrupt", (long long)want, (long long)x->fsize);
	return KILN_OK;
}

/* Reads the data into u8, or as f32 / 255 into f32, then checks that the
 * file ends there, which also makes zlib check the gzip trailer's CRC. */
static kiln_status
idx_data(struct loader *L, const struct idx *x, float *f32,
         unsigned char *u8)
{
	unsigned char buf[CHUNK];
	int64_t at = 0;
	int got, err = Z_OK;

	while (at < x->bytes) {
		unsigned k = x->bytes - at < CHUNK ? (unsigned)(x->bytes - at)
		                                   : CHUNK;
		if ((got = gzread(x->f, buf, k)) <= 0)
			return idx_short(L, x, at);
		for (int i = 0; f32 && i < got; i++)
			f32[at + i] = buf[i] / 255.0f;
		if (u8)
			memcpy(u8 + at, buf, (size_t)got);
		at += got;
	}
	if ((got = gzread(x->f, buf, 1)) > 0)
		return kiln_fail(L->msg, L->len, KILN_ERR_FORMAT, x->path,
		                 "the file has more than the %lld bytes of data "
		                 "its header announces", (long long)x->bytes);
	gzerror(x->f, &err);
	if (got < 0 || err == Z_BUF_ERROR)
		return idx_short(L, x, at);
	return KILN_OK;
}

/* Opens an IDX file of samples fitting tensor t and checks it through
 * its header; x->f is NULL when it could not be opened. */
static kiln_status
idx_open(struct loader *L, struct idx *x, const char *path,
         const struct kiln_tensor_desc *t, const char *what)
{
	struct stat st;
	kiln_status s;

	*x = (struct idx){.path = path};
	if (stat(path, &st))
		return kiln_fail(L->msg, L->len, KILN_ERR_IO, path,
		                 "cannot open: %s", strerror(errno));
	if (!S_ISREG(st.st_mode))
		return kiln_fail(L->msg, L->len, KILN_ERR_IO, path,
		                 "cannot open: not a regular file");
	x->fsize = (int64_t)st.st_size;
	if (!(x->f = gzopen(path, "rb")))
		return kiln_fail(L->msg, L->len, KILN_ERR_IO, path,
		                 "cannot open: %s", strerror(errno));
	s = idx_header(L, x);
	if (!s)
		s = check_fit(L, path, &x->s, t, what);
	return s ? s : idx_check_size(L, x);
}

static kiln_status
idx_features(struct loader *L, struct kiln_split *sp, const char *path)
{
	struct idx x;
	kiln_status s = idx_open(L, &x, path, &L->d->inputs[0], "input");

	if (!s && !(sp->x = malloc((size_t)x.bytes * sizeof(float) + 1)))
		s = kiln_fail(L->msg, L->len, KILN_ERR_NOMEM, path,
		              "out of memory");
	if (!s)
		s = idx_data(L, &x, sp->x, NULL);
	if (!s)
		sp->n = x.s.n;
	if (x.f)
		gzclose(x.f);
	return s;
}

/* The labels of the sp->n samples read from xpath. */
static kiln_status
idx_labels(struct loader *L, struct kiln_split *sp, const char *xpath,
           const char *path)
{
	unsigned char *u8 = NULL;
	struct idx x;
	kiln_status s = idx_open(L, &x, path, &L->d->labels[0], "labels");

	if (!s)
		s = check_counts(L, xpath, sp->n, path, x.s.n);
	if (!s && !(u8 = malloc((size_t)x.bytes + 1)))
		s = kiln_fail(L->msg, L->len, KILN_ERR_NOMEM, path,
		              "out of memory");
	if (!s)
		s = idx_data(L, &x, NULL, u8);
	if (!s)
		s = take_labels(L, sp, u8, KILN_U8, x.bytes, path);
	free(u8);
	if (x.f)
		gzclose(x.f);
	return s;
}

/* ---- .npy ----------------------------------------------------------- */

/* The header of a .npy file of samples fitting tensor t. */
static kiln_status
npy_open(struct loader *L, const char *path,
         const struct kiln_tensor_desc *t, const char *what,
         struct kiln_npy_info *info, struct sample *s)
{
	kiln_status st = kiln_npy_info(path, info, L->msg, L->len);

	if (st)
		return st;
	if (info->rank < 1)
		return kiln_fail(L->msg, L->len, KILN_ERR_SHAPE, path,
		                 "a scalar is not a list of samples");
	*s = (struct sample){.n = info->dim[0], .dtype = info->dtype,
	                     .rank = info->rank - 1};
	memcpy(s->dim, info->dim + 1, (size_t)s->rank * sizeof *s->dim);
	return check_fit(L, path, s, t, what);
}

static kiln_status
npy_features(struct loader *L, struct kiln_split *sp, const char *path)
{
	const struct kiln_tensor_desc *in = &L->d->inputs[0];
	struct kiln_npy_info info;
	struct sample xs;
	kiln_status s = npy_open(L, path, in, "input", &info, &xs);

	if (!s && info.dtype != KILN_F32)
		s = kiln_fail(L->msg, L->len, KILN_ERR_DTYPE, path,
		              "features must be f32, got %s (save them with "
		              "x.astype(np.float32))", kiln_dtype_name(info.dtype));
	if (!s && !(sp->x = malloc((size_t)(xs.n * L->ds->xsize) *
	                           sizeof(float) + 1)))
		s = kiln_fail(L->msg, L->len, KILN_ERR_NOMEM, path,
		              "out of memory");
	if (!s)
		s = kiln_npy_load(path, in->name, KILN_F32, info.rank, info.dim,
		                  sp->x, L->msg, L->len);
	if (!s)
		sp->n = xs.n;
	return s;
}

/* The labels of the sp->n samples read from xpath. */
static kiln_status
npy_labels(struct loader *L, struct kiln_split *sp, const char *xpath,
           const char *path)
{
	const struct kiln_tensor_desc *lab = &L->d->labels[0];
	struct kiln_npy_info info;
	struct sample ys;
	void *tmp = NULL;
	kiln_status s = npy_open(L, path, lab, "labels", &info, &ys);

	if (!s)
		s = check_counts(L, xpath, sp->n, path, ys.n);
	if (!s && !(tmp = malloc((size_t)(ys.n * L->ds->ysize) *
	                         kiln_dtype_size(info.dtype) + 1)))
		s = kiln_fail(L->msg, L->len, KILN_ERR_NOMEM, path,
		              "out of memory");
	if (!s)
		s = kiln_npy_load(path, lab->name, info.dtype, info.rank, info.dim,
		                  tmp, L->msg, L->len);
	if (!s)
		s = take_labels(L, sp, tmp, info.dtype, ys.n * L->ds->ysize, path);
	free(tmp);
	return s;
}

/* ---- finding the files ---------------------------------------------- */

static bool
is_file(const char *path)
{
	struct stat st;

	return !stat(path, &st) && S_ISREG(st.st_mode);
}

static bool
is_npy(const char *path)
{
	size_t n = strlen(path);

	return n >= 4 && !strcmp(path + n - 4, ".npy");
}

/* DIR/NAME into out; for IDX, DIR/NAME.gz when that exists.  Returns
 * whether the file exists. */
static bool
find(const char *dir, const char *name, bool idx, char *out, size_t size)
{
	snprintf(out, size, "%s/%s.gz", dir, name);
	if (idx && is_file(out))
		return true;
	snprintf(out, size, "%s/%s", dir, name);
	return is_file(out);
}

/* The features at xpath, then the labels at ypath (NULL: none). */
static kiln_status
load_split(struct loader *L, struct kiln_split *sp, const char *xpath,
           const char *ypath)
{
	bool npy = is_npy(xpath);
	kiln_status s = npy ? npy_features(L, sp, xpath)
	                    : idx_features(L, sp, xpath);

	if (s || !ypath)
		return s;
	return npy ? npy_labels(L, sp, xpath, ypath)
	           : idx_labels(L, sp, xpath, ypath);
}

static kiln_status
no_data(struct loader *L, const char *dir)
{
	if (!L->labeled)
		return kiln_fail(L->msg, L->len, KILN_ERR_IO, dir,
		                 "no training data: expected %s[.gz] or %s",
		                 names[0][0][0], names[1][0][0]);
	return kiln_fail(L->msg, L->len, KILN_ERR_IO, dir,
	                 "no training data: expected %s[.gz] and %s[.gz], or "
	                 "%s and %s", names[0][0][0], names[0][0][1],
	                 names[1][0][0], names[1][0][1]);
}

/* The train and test splits of a directory; only train is required.
 * Without labels, the labels files are not looked for. */
static kiln_status
load_dir(struct loader *L, const char *dir)
{
	char x[4096], y[4096];
	bool idx;
	kiln_status s = KILN_OK;

	if (strlen(dir) > sizeof x - 64)
		return kiln_fail(L->msg, L->len, KILN_ERR_ARG, dir,
		                 "path too long");
	idx = !find(dir, names[1][0][0], false, x, sizeof x);
	for (int k = 0; k < 2 && !s; k++) {
		struct kiln_split *sp = k ? &L->ds->test : &L->ds->train;
		const char *const *nm = names[!idx][k];
		bool hx = find(dir, nm[0], idx, x, sizeof x);
		bool hy = L->labeled && find(dir, nm[1], idx, y, sizeof y);
		if (hx && (hy || !L->labeled))
			s = load_split(L, sp, x, hy ? y : NULL);
		else if (hx || hy)
			s = kiln_fail(L->msg, L->len, KILN_ERR_IO, dir,
			              "has %s but not %s%s", nm[!hx], nm[hx],
			              idx ? "[.gz]" : "");
		else if (k == 0)
			s = no_data(L, dir);
	}
	return s;
}

/* The labels file of a features file: the same name in the same directory
 * with images-idx3 replaced by labels-idx1, or x.npy by y.npy. */
static bool
labels_name(const char *xpath, char *out, size_t size)
{
	const char *base = strrchr(xpath, '/');
	char *p, *q;
	size_t n = strlen(xpath);

	if (n >= size)
		return false;
	memcpy(out, xpath, n + 1);
	base = out + (base ? base - xpath + 1 : 0);
	if (is_npy(out)) {
		if (n < 5 || out + n - 5 < base || out[n - 5] != 'x')
			return false;
		out[n - 5] = 'y';
		return true;
	}
	if (!(p = strstr(base, "images")) || !(q = strstr(base, "idx3")))
		return false;
	memcpy(p, "labels", 6);
	q[3] = '1';
	return true;
}

static kiln_status
load_file(struct loader *L, const char *xpath)
{
	char y[4096];

	if (!L->labeled)
		return load_split(L, &L->ds->train, xpath, NULL);
	if (!labels_name(xpath, y, sizeof y))
		return kiln_fail(L->msg, L->len, KILN_ERR_ARG, xpath,
		                 "cannot tell the labels file of this file: name "
		                 "it like train-images-idx3-ubyte.gz or "
		                 "train_x.npy, or give a directory");
	if (!is_file(y))
		return kiln_fail(L->msg, L->len, KILN_ERR_IO, y,
		                 "not found (the labels of %s)", xpath);
	return load_split(L, &L->ds->train, xpath, y);
}

kiln_status
kiln_dataset_load(struct kiln_dataset *ds, const char *path,
                  const struct kiln_train_desc *d, char *msg, size_t msglen)
{
	struct loader L = {.ds = ds, .d = d, .msg = msg, .len = msglen};
	struct stat st;
	kiln_status s;

	*ds = (struct kiln_dataset){0};
	s = setup(&L);
	if (!s && stat(path, &st))
		s = kiln_fail(msg, msglen, KILN_ERR_IO, path, "cannot open: %s",
		              strerror(errno));
	else if (!s)
		s = S_ISDIR(st.st_mode) ? load_dir(&L, path) : load_file(&L, path);
	if (s)
		kiln_dataset_free(ds);
	return s;
}

void
kiln_dataset_free(struct kiln_dataset *ds)
{
	free(ds->train.x);
	free(ds->train.y);
	free(ds->test.x);
	free(ds->test.y);
	*ds = (struct kiln_dataset){.xsize = ds->xsize, .ysize = ds->ysize,
	                            .ydtype = ds->ydtype};
}
