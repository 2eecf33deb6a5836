/* dataset.c: loading a trainer's data into memory (docs/training.md).
 *
 * --data names a directory of MNIST-family IDX files, of .npy files or of
 * CSV files, or one training file (a features file whose labels file is
 * found by its name, or a CSV file).  The data's columns are the
 * trainer's tensors, inputs then labels.  A trainer without labels (an
 * autoencoder's loss compares the output with the input) reads the
 * features only and ignores any labels files.  Each file's header is
 * checked against the trainer's description before its data is
 * allocated, then the file is loaded whole, once, column by column: IDX
 * bytes become f32 scaled to [0, 1], everything else the dtype of its
 * tensor, and a classifier's labels are range-checked here so the
 * training loop never sees a bad one.  IDX files are read through zlib,
 * which reads an uncompressed file as it is, so .gz and plain files
 * share one path.  CSV is parsed here: one sample per line, the values
 * of the inputs then of the labels, numbers as strtod reads them, with
 * an optional header line; no quoting, which numbers never need.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <math.h>
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
	int ninputs;              /* columns 0..ninputs-1 are inputs */
	bool labeled;             /* the trainer takes labels */
	bool single;              /* one input, at most one label: x and y */
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

/* The product of dim[0..rank) (non-negative), or INT64_MAX when it
 * overflows: a header's dimensions may, when one of them is 0 and the
 * file's size bounds nothing. */
static int64_t
numel(int rank, const int64_t *dim)
{
	int64_t n = 1;

	for (int i = 0; i < rank; i++) {
		if (dim[i] && n > INT64_MAX / dim[i])
			return INT64_MAX;
		n *= dim[i];
	}
	return n;
}

/* The tensor of column k. */
static const struct kiln_tensor_desc *
tensor(const struct loader *L, int k)
{
	return k < L->ninputs ? &L->d->inputs[k] : &L->d->labels[k - L->ninputs];
}

static const char *
role(const struct loader *L, int k)
{
	return k < L->ninputs ? "input" : "labels";
}

static bool
is_float(kiln_dtype t)
{
	return t == KILN_F32 || t == KILN_F64 || t == KILN_F16 || t == KILN_BF16;
}

/* Checks the trainer's tensors and fills the per-sample sizes. */
static kiln_status
setup(struct loader *L)
{
	const struct kiln_train_desc *d = L->d;
	struct kiln_dataset *ds = L->ds;

	if (d->ninputs + d->nlabels > KILN_MAXDATA)
		return kiln_fail(L->msg, L->len, KILN_ERR_UNSUPPORTED, NULL,
		                 "%d inputs and %d labels: a trainer reads at most "
		                 "%d tensors", d->ninputs, d->nlabels, KILN_MAXDATA);
	L->ninputs = d->ninputs;
	L->labeled = d->nlabels > 0;
	L->single = d->ninputs == 1 && d->nlabels <= 1;
	L->classes = d->classify ? d->pred.dim[1] : 0;
	ds->ncols = d->ninputs + d->nlabels;
	for (int k = 0; k < ds->ncols; k++) {
		const struct kiln_tensor_desc *t = tensor(L, k);
		ds->size[k] = numel(t->rank - 1, t->dim + 1);
		ds->dtype[k] = t->dtype;
	}
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

/* Checks the n samples of column k, of dtype t at src, against its
 * tensor: a classifier's labels (column ninputs) must be integers in
 * [0, classes), integer inputs integers. */
static kiln_status
check_values(struct loader *L, int k, const void *src, kiln_dtype t,
             int64_t count, const char *path)
{
	size_t es = kiln_dtype_size(t);
	bool cls = L->classes && k == L->ninputs;

	if (cls && (is_float(t) || t == KILN_BOOL))
		return kiln_fail(L->msg, L->len, KILN_ERR_DTYPE, path,
		                 "labels of a classifier must be integers, "
		                 "got %s", kiln_dtype_name(t));
	if (k < L->ninputs && !is_float(L->ds->dtype[k]) && is_float(t))
		return kiln_fail(L->msg, L->len, KILN_ERR_DTYPE, path,
		                 "input '%s' takes integers (%s), got %s",
		                 tensor(L, k)->name,
		                 kiln_dtype_name(L->ds->dtype[k]),
		                 kiln_dtype_name(t));
	for (int64_t i = 0; cls && i < count; i++) {
		int64_t v;
		kiln_cast(&v, KILN_I64, (const char *)src + i * es, t, 1);
		if (v < 0 || v >= L->classes)
			return kiln_fail(L->msg, L->len, KILN_ERR_RANGE, path,
			                 "label %lld of sample %lld is out of range: "
			                 "the model has %lld classes", (long long)v,
			                 (long long)(i / L->ds->size[k]),
			                 (long long)L->classes);
	}
	return KILN_OK;
}

/* Column k of sp: count values of dtype t at src, checked, converted to
 * the column's dtype. */
static kiln_status
take(struct loader *L, struct kiln_split *sp, int k, const void *src,
     kiln_dtype t, int64_t count, const char *path)
{
	kiln_dtype ct = L->ds->dtype[k];
	kiln_status s = check_values(L, k, src, t, count, path);

	if (s)
		return s;
	if (!(sp->col[k] = malloc((size_t)count * kiln_dtype_size(ct) + 1)))
		return kiln_fail(L->msg, L->len, KILN_ERR_NOMEM, path,
		                 "out of memory");
	kiln_cast(sp->col[k], ct, src, t, count);
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

	if (!s && L->ds->dtype[0] != KILN_F32)
		s = kiln_fail(L->msg, L->len, KILN_ERR_DTYPE, path,
		              "IDX images become f32, but input '%s' is %s",
		              L->d->inputs[0].name,
		              kiln_dtype_name(L->ds->dtype[0]));
	if (!s && !(sp->col[0] = malloc((size_t)x.bytes * sizeof(float) + 1)))
		s = kiln_fail(L->msg, L->len, KILN_ERR_NOMEM, path,
		              "out of memory");
	if (!s)
		s = idx_data(L, &x, sp->col[0], NULL);
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
		s = take(L, sp, 1, u8, KILN_U8, x.bytes, path);
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

/* Column k of sp from the .npy file at path; first names the first
 * column's file, whose sample count the others must have. */
static kiln_status
npy_column(struct loader *L, struct kiln_split *sp, int k, const char *path,
           const char *first)
{
	const struct kiln_tensor_desc *t = tensor(L, k);
	kiln_dtype ct = L->ds->dtype[k];
	struct kiln_npy_info info;
	struct sample xs;
	void *tmp = NULL;
	kiln_status s = npy_open(L, path, t, role(L, k), &info, &xs);

	if (!s && k > 0)
		s = check_counts(L, first, sp->n, path, xs.n);
	if (!s && k < L->ninputs && is_float(ct) && info.dtype != ct)
		s = kiln_fail(L->msg, L->len, KILN_ERR_DTYPE, path,
		              "features must be %s, got %s (save them with "
		              "x.astype(np.%s))", kiln_dtype_name(ct),
		              kiln_dtype_name(info.dtype),
		              ct == KILN_F32 ? "float32" : ct == KILN_F64 ?
		              "float64" : "float16");
	if (!s && !(tmp = malloc((size_t)(xs.n * L->ds->size[k]) *
	                         kiln_dtype_size(info.dtype) + 1)))
		s = kiln_fail(L->msg, L->len, KILN_ERR_NOMEM, path,
		              "out of memory");
	if (!s)
		s = kiln_npy_load(path, t->name, info.dtype, info.rank, info.dim,
		                  tmp, L->msg, L->len);
	if (!s && info.dtype == ct && !check_values(L, k, tmp, ct,
	                                            xs.n * L->ds->size[k], path)) {
		sp->col[k] = tmp;       /* already in the column's dtype */
		tmp = NULL;
	} else if (!s) {
		s = take(L, sp, k, tmp, info.dtype, xs.n * L->ds->size[k], path);
	}
	if (!s && k == 0)
		sp->n = xs.n;
	free(tmp);
	return s;
}

/* ---- CSV ------------------------------------------------------------ */

/* The value text at *p as a double, moving *p past it and its comma;
 * false when it is not a number. */
static bool
csv_value(char **p, double *v)
{
	char *end;

	while (**p == ' ' || **p == '\t')
		(*p)++;
	*v = strtod(*p, &end);
	if (end == *p)
		return false;
	while (*end == ' ' || *end == '\t' || *end == '\r')
		end++;
	if (*end == ',')
		end++;
	else if (*end && *end != '\n')
		return false;
	*p = end;
	return true;
}

/* The line at p holds a number first (else it is a header). */
static bool
csv_numeric(char *p)
{
	double v;

	return csv_value(&p, &v);
}

static int64_t
csv_lines(const char *text)
{
	int64_t n = 0;

	for (const char *p = text; *p; p++)
		if (*p == '\n' || !p[1])
			n++;
	return n;
}

/* Parses one line into sample i of every column; *p moves to the next
 * line.  lineno is for messages. */
static kiln_status
csv_row(struct loader *L, struct kiln_split *sp, char **p, int64_t i,
        int64_t lineno, const char *path)
{
	int64_t at = 0, want = 0;

	for (int k = 0; k < L->ds->ncols; k++)
		want += L->ds->size[k];
	for (int k = 0; k < L->ds->ncols; k++)
		for (int64_t j = 0; j < L->ds->size[k]; j++, at++) {
			double v;
			kiln_dtype ct = L->ds->dtype[k];
			char *start = *p;
			if (!**p || **p == '\n')
				return kiln_fail(L->msg, L->len, KILN_ERR_FORMAT, path,
				                 "line %lld: %lld values, expected %lld "
				                 "(the inputs' then the labels')",
				                 (long long)lineno, (long long)at,
				                 (long long)want);
			if (!csv_value(p, &v))
				return kiln_fail(L->msg, L->len, KILN_ERR_FORMAT, path,
				                 "line %lld, value %lld: not a number: "
				                 "'%.*s'", (long long)lineno,
				                 (long long)at + 1,
				                 (int)strcspn(start, ",\r\n") > 40 ? 40 :
				                 (int)strcspn(start, ",\r\n"), start);
			if (!is_float(ct) && v != floor(v))
				return kiln_fail(L->msg, L->len, KILN_ERR_FORMAT, path,
				                 "line %lld, value %lld: %s '%s' takes "
				                 "integers, got %g", (long long)lineno,
				                 (long long)at + 1, role(L, k),
				                 tensor(L, k)->name, v);
			kiln_cast((char *)sp->col[k] + (size_t)(i * L->ds->size[k] + j) *
			          kiln_dtype_size(ct), ct, &v, KILN_F64, 1);
		}
	if (**p && **p != '\n')
		return kiln_fail(L->msg, L->len, KILN_ERR_FORMAT, path,
		                 "line %lld: more than the %lld values expected "
		                 "(the inputs' then the labels')",
		                 (long long)lineno, (long long)want);
	if (**p)
		(*p)++;
	return KILN_OK;
}

/* Every sample of a CSV file: the whole text is read, counted, then
 * parsed into the columns; labels are checked as a .npy file's. */
static kiln_status
csv_parse(struct loader *L, struct kiln_split *sp, char *text,
          const char *path)
{
	int64_t lineno = 1, n = csv_lines(text);
	char *p = text;
	kiln_status s = KILN_OK;

	if (n > 0 && !csv_numeric(p)) {     /* a header line */
		p += strcspn(p, "\n");
		p += *p == '\n';
		lineno++;
		n--;
	}
	for (int k = 0; k < L->ds->ncols && !s; k++)
		if (!(sp->col[k] = malloc((size_t)(n * L->ds->size[k]) *
		                          kiln_dtype_size(L->ds->dtype[k]) + 1)))
			s = kiln_fail(L->msg, L->len, KILN_ERR_NOMEM, path,
			              "out of memory");
	for (int64_t i = 0; i < n && !s; i++, lineno++)
		s = csv_row(L, sp, &p, i, lineno, path);
	for (int k = 0; k < L->ds->ncols && !s; k++)
		s = check_values(L, k, sp->col[k], L->ds->dtype[k],
		                 n * L->ds->size[k], path);
	if (!s && n == 0)
		s = kiln_fail(L->msg, L->len, KILN_ERR_FORMAT, path,
		              "no samples");
	sp->n = n;
	return s;
}

static kiln_status
csv_load(struct loader *L, struct kiln_split *sp, const char *path)
{
	struct stat st;
	FILE *f = fopen(path, "rb");
	char *text = NULL;
	kiln_status s = KILN_OK;

	if (!f || fstat(fileno(f), &st))
		s = kiln_fail(L->msg, L->len, KILN_ERR_IO, path, "cannot open: %s",
		              strerror(errno));
	else if (!(text = malloc((size_t)st.st_size + 1)))
		s = kiln_fail(L->msg, L->len, KILN_ERR_NOMEM, path,
		              "out of memory");
	else if (fread(text, 1, (size_t)st.st_size, f) != (size_t)st.st_size)
		s = kiln_fail(L->msg, L->len, KILN_ERR_IO, path, "read error");
	else if (memchr(text, '\0', (size_t)st.st_size))
		s = kiln_fail(L->msg, L->len, KILN_ERR_FORMAT, path,
		              "not a text file");
	if (!s) {
		text[st.st_size] = '\0';
		s = csv_parse(L, sp, text, path);
	}
	if (f)
		fclose(f);
	free(text);
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
ends_with(const char *path, const char *ext)
{
	size_t n = strlen(path), k = strlen(ext);

	return n >= k && !strcmp(path + n - k, ext);
}

static bool
is_npy(const char *path)
{
	return ends_with(path, ".npy");
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
	kiln_status s = npy ? npy_column(L, sp, 0, xpath, NULL)
	                    : idx_features(L, sp, xpath);

	if (s || !ypath)
		return s;
	return npy ? npy_column(L, sp, 1, ypath, xpath)
	           : idx_labels(L, sp, xpath, ypath);
}

/* DIR/SPLIT_NAME.npy of column k into out; whether it exists. */
static bool
named_file(const struct loader *L, const char *dir, int split, int k,
           char *out, size_t size)
{
	snprintf(out, size, "%s/%s_%s.npy", dir, split ? "test" : "train",
	         tensor(L, k)->name);
	return is_file(out);
}

/* A split of a directory of one .npy file per tensor: every column's, or
 * none (the test split is optional). */
static kiln_status
load_named(struct loader *L, const char *dir, int split)
{
	struct kiln_split *sp = split ? &L->ds->test : &L->ds->train;
	char first[4096], path[4096];
	int have = 0, miss = -1;
	kiln_status s = KILN_OK;

	for (int k = 0; k < L->ds->ncols; k++) {
		bool h = named_file(L, dir, split, k, path, sizeof path);
		have += h;
		miss = miss < 0 && !h ? k : miss;
	}
	if (have == 0 && split)
		return KILN_OK;
	if (have < L->ds->ncols) {
		named_file(L, dir, split, miss, path, sizeof path);
		return kiln_fail(L->msg, L->len, KILN_ERR_IO, dir,
		                 "no %s data for %s '%s': expected %s (one "
		                 "%s_NAME.npy per input and label)",
		                 split ? "test" : "training", role(L, miss),
		                 tensor(L, miss)->name, strrchr(path, '/') + 1,
		                 split ? "test" : "train");
	}
	named_file(L, dir, split, 0, first, sizeof first);
	for (int k = 0; k < L->ds->ncols && !s; k++) {
		named_file(L, dir, split, k, path, sizeof path);
		s = npy_column(L, sp, k, path, first);
	}
	return s;
}

/* DIR/train.csv and DIR/test.csv, if there. */
static kiln_status
load_csv_dir(struct loader *L, const char *dir)
{
	char path[4096];
	kiln_status s;

	snprintf(path, sizeof path, "%s/train.csv", dir);
	if ((s = csv_load(L, &L->ds->train, path)))
		return s;
	snprintf(path, sizeof path, "%s/test.csv", dir);
	return is_file(path) ? csv_load(L, &L->ds->test, path) : KILN_OK;
}

static kiln_status
no_data(struct loader *L, const char *dir)
{
	const char *xn = L->d->inputs[0].name;
	const char *yn = L->labeled ? L->d->labels[0].name : "";
	char named[600] = "";

	/* the files by tensor name, unless they are train_x and train_y */
	if (strcmp(xn, "x") || (L->labeled && strcmp(yn, "y")))
		snprintf(named, sizeof named, ", train_%s.npy%s%s%s", xn,
		         L->labeled ? " and train_" : "", yn,
		         L->labeled ? ".npy" : "");
	if (!L->labeled)
		return kiln_fail(L->msg, L->len, KILN_ERR_IO, dir,
		                 "no training data: expected %s[.gz], %s%s or "
		                 "train.csv", names[0][0][0], names[1][0][0], named);
	return kiln_fail(L->msg, L->len, KILN_ERR_IO, dir,
	                 "no training data: expected %s[.gz] and %s[.gz], %s "
	                 "and %s%s, or train.csv", names[0][0][0],
	                 names[0][0][1], names[1][0][0], names[1][0][1], named);
}

/* The train and test splits of a directory; only train is required.
 * Without labels, the labels files are not looked for. */
static kiln_status
load_dir(struct loader *L, const char *dir)
{
	char x[4096], y[4096];
	bool idx;
	kiln_status s = KILN_OK;

	if (strlen(dir) > sizeof x - 300)
		return kiln_fail(L->msg, L->len, KILN_ERR_ARG, dir,
		                 "path too long");
	idx = !find(dir, names[1][0][0], false, x, sizeof x);
	/* one file per tensor: the only way for several, else when there */
	if (!L->single || (idx && named_file(L, dir, 0, 0, x, sizeof x))) {
		if (!(s = load_named(L, dir, 0)))
			s = load_named(L, dir, 1);
		return s;
	}
	if (idx && !find(dir, names[0][0][0], true, x, sizeof x) &&
	    find(dir, "train.csv", false, x, sizeof x))
		return load_csv_dir(L, dir);
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

	if (ends_with(xpath, ".csv"))
		return csv_load(L, &L->ds->train, xpath);
	if (!L->single)
		return kiln_fail(L->msg, L->len, KILN_ERR_ARG, xpath,
		                 "a model with %d inputs and %d labels reads a "
		                 "directory of train_NAME.npy files, one per "
		                 "tensor, or a .csv file", L->d->ninputs,
		                 L->d->nlabels);
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
	for (int k = 0; k < KILN_MAXDATA; k++) {
		free(ds->train.col[k]);
		free(ds->test.col[k]);
		ds->train.col[k] = ds->test.col[k] = NULL;
	}
	ds->train.n = ds->test.n = 0;
}
