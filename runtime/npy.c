/* npy.c: reading and writing NumPy .npy files, the runtime's tensor I/O.
 *
 * A .npy file is the magic "\x93NUMPY", a version, a little-endian header
 * length, then a Python dict literal such as
 *   {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }
 * padded with spaces to a newline, then the raw data.  The header is parsed
 * strictly (a small recursive-descent parser for exactly that dict) and
 * every size is overflow-checked and compared with the file's real size, so
 * a bad or truncated file fails with a message rather than a short read.
 * Only little-endian, C-order data of the kiln dtypes is supported (bf16
 * as its raw bits, '<u2').
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kiln.h"

#define MAXHEADER (1 << 20)  /* longer headers are refused, not read */

#ifdef __GNUC__
#define PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define PRINTF(f, a)
#endif

/* The descr NumPy writes for each kiln dtype, in kiln_dtype order.  NumPy
 * has no bfloat16: bf16 tensors are written as '<u2', their raw bits, and
 * a '<u2' file is read as u16, which kiln_npy_load also accepts where a
 * bf16 tensor is expected. */
static const char *const descrs[KILN_NDTYPE] = {
	[KILN_F32] = "<f4", [KILN_F64] = "<f8", [KILN_I64] = "<i8",
	[KILN_I32] = "<i4", [KILN_I8] = "|i1", [KILN_U8] = "|u1",
	[KILN_BOOL] = "|b1", [KILN_F16] = "<f2", [KILN_BF16] = "<u2",
	[KILN_I16] = "<i2", [KILN_U16] = "<u2", [KILN_U32] = "<u4",
	[KILN_U64] = "<u8",
};

/* A header dict as parsed; have_* catch missing and repeated keys. */
struct header {
	char descr[32];
	bool fortran;
	int rank;
	int64_t dim[KILN_MAXRANK];
	bool have_descr, have_fortran, have_shape;
};

/* Parser state: the text left to read and, on failure, why. */
struct parse {
	const char *p, *end;
	const char *why;
	kiln_status st;
};

static PRINTF(4, 5) kiln_status
fail(char *msg, size_t len, kiln_status s, const char *fmt, ...)
{
	va_list ap;

	if (msg && len > 0) {
		va_start(ap, fmt);
		vsnprintf(msg, len, fmt, ap);
		va_end(ap);
	}
	return s;
}

static bool
host_little_endian(void)
{
	const uint16_t one = 1;

	return *(const unsigned char *)&one == 1;
}

/* Product of the dims times size, or -1 if it does not fit in int64_t. */
static int64_t
byte_count(int rank, const int64_t *dim, size_t size)
{
	int64_t n = (int64_t)size;

	for (int i = 0; i < rank; i++) {
		if (dim[i] < 0)
			return -1;
		if (dim[i] > 0 && n > INT64_MAX / dim[i])
			return -1;
		n *= dim[i];
	}
	return n;
}

/* ---- the header parser ---------------------------------------------- */

static bool
bad(struct parse *P, kiln_status st, const char *why)
{
	P->st = st;
	P->why = why;
	return false;
}

static void
ws(struct parse *P)
{
	while (P->p < P->end && (*P->p == ' ' || *P->p == '\t' ||
	                         *P->p == '\n' || *P->p == '\r'))
		P->p++;
}

/* Consumes c (after white space) if it is next. */
static bool
eat(struct parse *P, char c)
{
	ws(P);
	if (P->p < P->end && *P->p == c) {
		P->p++;
		return true;
	}
	return false;
}

/* string := "'" chars "'" | '"' chars '"'
 * with no escapes or control characters, and shorter than size. */
static bool
string(struct parse *P, char *buf, size_t size)
{
	char q;
	size_t n = 0;

	ws(P);
	if (P->p >= P->end || (*P->p != '\'' && *P->p != '"'))
		return bad(P, KILN_ERR_FORMAT, "expected a string");
	q = *P->p++;
	while (P->p < P->end && *P->p != q) {
		if (*P->p == '\\' || (unsigned char)*P->p < ' ' || n + 1 >= size)
			return bad(P, KILN_ERR_FORMAT, "bad string");
		buf[n++] = *P->p++;
	}
	if (P->p >= P->end)
		return bad(P, KILN_ERR_FORMAT, "unterminated string");
	P->p++;
	buf[n] = '\0';
	return true;
}

/* bool := 'True' | 'False' */
static bool
boolean(struct parse *P, bool *v)
{
	size_t left;

	ws(P);
	left = (size_t)(P->end - P->p);
	if (left >= 4 && !memcmp(P->p, "True", 4)) {
		P->p += 4;
		*v = true;
	} else if (left >= 5 && !memcmp(P->p, "False", 5)) {
		P->p += 5;
		*v = false;
	} else {
		return bad(P, KILN_ERR_FORMAT,
		           "fortran_order is not True or False");
	}
	return true;
}

/* int := digits ['L']    (Python 2 era NumPy wrote 3L for 3) */
static bool
integer(struct parse *P, int64_t *v)
{
	int64_t n = 0;

	ws(P);
	if (P->p < P->end && *P->p == '-')
		return bad(P, KILN_ERR_FORMAT, "shape holds a negative dimension");
	if (P->p >= P->end || *P->p < '0' || *P->p > '9')
		return bad(P, KILN_ERR_FORMAT, "shape holds a non-integer");
	while (P->p < P->end && *P->p >= '0' && *P->p <= '9') {
		int d = *P->p++ - '0';
		if (n > (INT64_MAX - d) / 10)
			return bad(P, KILN_ERR_FORMAT, "dimension too large");
		n = n * 10 + d;
	}
	if (P->p < P->end && *P->p == 'L')
		P->p++;
	*v = n;
	return true;
}

/* shape := '(' ')' | '(' int ',' ')' | '(' int (',' int)+ [','] ')' */
static bool
shape(struct parse *P, struct header *h)
{
	bool comma = false;

	if (!eat(P, '('))
		return bad(P, KILN_ERR_FORMAT, "shape is not a tuple");
	h->rank = 0;
	while (!eat(P, ')')) {
		if (h->rank == KILN_MAXRANK)
			return bad(P, KILN_ERR_UNSUPPORTED,
			           "more than 8 dimensions (KILN_MAXRANK) "
			           "are not supported");
		if (!integer(P, &h->dim[h->rank]))
			return false;
		h->rank++;
		comma = eat(P, ',');
		if (!comma) {
			if (!eat(P, ')'))
				return bad(P, KILN_ERR_FORMAT,
				           "expected ',' or ')' in shape");
			break;
		}
	}
	if (h->rank == 1 && !comma)
		return bad(P, KILN_ERR_FORMAT, "shape (n) is not a tuple");
	return true;
}

/* item := string ':' value, for the three keys NumPy writes. */
static bool
item(struct parse *P, struct header *h)
{
	char key[32];
	bool *seen;

	if (!string(P, key, sizeof key) || !eat(P, ':'))
		return bad(P, KILN_ERR_FORMAT, "expected 'key': value");
	if (!strcmp(key, "descr"))
		seen = &h->have_descr;
	else if (!strcmp(key, "fortran_order"))
		seen = &h->have_fortran;
	else if (!strcmp(key, "shape"))
		seen = &h->have_shape;
	else
		return bad(P, KILN_ERR_FORMAT, "unknown key");
	if (*seen)
		return bad(P, KILN_ERR_FORMAT, "repeated key");
	*seen = true;
	if (seen == &h->have_fortran)
		return boolean(P, &h->fortran);
	if (seen == &h->have_shape)
		return shape(P, h);
	if (eat(P, '['))
		return bad(P, KILN_ERR_UNSUPPORTED,
		           "structured dtypes are not supported");
	return string(P, h->descr, sizeof h->descr);
}

/* header := '{' [item (',' item)* [',']] '}' */
static bool
dict(struct parse *P, struct header *h)
{
	if (!eat(P, '{'))
		return bad(P, KILN_ERR_FORMAT, "header is not a dict");
	while (!eat(P, '}')) {
		if (!item(P, h))
			return false;
		if (eat(P, '}'))
			break;
		if (!eat(P, ','))
			return bad(P, KILN_ERR_FORMAT, "expected ',' or '}'");
	}
	ws(P);
	if (P->p != P->end)
		return bad(P, KILN_ERR_FORMAT, "text after the dict");
	if (!h->have_descr || !h->have_fortran || !h->have_shape)
		return bad(P, KILN_ERR_FORMAT, "missing key");
	return true;
}

/* ---- reading ------------------------------------------------------ */

/* Checks the parsed header h and fills info's dtype and shape. */
static kiln_status
check_header(const struct header *h, const char *path,
             struct kiln_npy_info *info, char *msg, size_t len)
{
	int t;

	for (t = 0; t < KILN_NDTYPE; t++)
		if (t != KILN_BF16 && !strcmp(h->descr, descrs[t]))
			break;
	if (t == KILN_NDTYPE && h->descr[0] == '>')
		return fail(msg, len, KILN_ERR_UNSUPPORTED,
		            "%s: big-endian dtype '%s' is not supported",
		            path, h->descr);
	if (t == KILN_NDTYPE)
		return fail(msg, len, KILN_ERR_UNSUPPORTED,
		            "%s: unsupported dtype '%s' (supported: <f4 <f8 "
		            "<f2 <i8 <i4 <i2 |i1 |u1 <u2 <u4 <u8 |b1)", path,
		            h->descr);
	if (h->fortran)
		return fail(msg, len, KILN_ERR_UNSUPPORTED,
		            "%s: fortran_order True is not supported "
		            "(save a C-order array)", path);
	info->dtype = (kiln_dtype)t;
	info->rank = h->rank;
	memcpy(info->dim, h->dim, sizeof h->dim);
	return KILN_OK;
}

/* Reads the header text (hlen bytes) and parses it into info. */
static kiln_status
read_dict(FILE *f, const char *path, uint32_t hlen,
          struct kiln_npy_info *info, char *msg, size_t len)
{
	struct header h = {0};
	struct parse P;
	char *buf;
	bool ok;

	if (hlen > MAXHEADER)
		return fail(msg, len, KILN_ERR_UNSUPPORTED,
		            "%s: header of %lu bytes is too long", path,
		            (unsigned long)hlen);
	buf = malloc(hlen + 1);
	if (!buf)
		return fail(msg, len, KILN_ERR_NOMEM, "%s: out of memory",
		            path);
	if (fread(buf, 1, hlen, f) != hlen) {
		free(buf);
		return fail(msg, len, KILN_ERR_IO, "%s: read error", path);
	}
	P = (struct parse){.p = buf, .end = buf + hlen};
	ok = dict(&P, &h);
	free(buf);
	if (!ok && P.st == KILN_ERR_UNSUPPORTED)
		return fail(msg, len, P.st, "%s: %s", path, P.why);
	if (!ok)
		return fail(msg, len, P.st, "%s: malformed .npy header: %s",
		            path, P.why);
	return check_header(&h, path, info, msg, len);
}

/* Reads magic, version and header length; sets info->data_offset. */
static kiln_status
read_preamble(FILE *f, const char *path, int64_t fsize, uint32_t *hlen,
              struct kiln_npy_info *info, char *msg, size_t len)
{
	unsigned char b[12];

	if (fsize < 10 || fread(b, 1, 10, f) != 10)
		return fail(msg, len, KILN_ERR_FORMAT,
		            "%s: truncated: %lld bytes is too short for a .npy "
		            "file", path, (long long)fsize);
	if (memcmp(b, "\x93NUMPY", 6))
		return fail(msg, len, KILN_ERR_FORMAT,
		            "%s: not a .npy file (bad magic)", path);
	if (b[7] != 0 || b[6] < 1 || b[6] > 3)
		return fail(msg, len, KILN_ERR_UNSUPPORTED,
		            "%s: .npy format version %d.%d is not supported "
		            "(1.0, 2.0 and 3.0 are)", path, b[6], b[7]);
	if (b[6] == 1) {
		*hlen = b[8] | (uint32_t)b[9] << 8;
		info->data_offset = 10 + (int64_t)*hlen;
		return KILN_OK;
	}
	if (fsize < 12 || fread(b + 10, 1, 2, f) != 2)
		return fail(msg, len, KILN_ERR_FORMAT,
		            "%s: truncated: %lld bytes is too short for a .npy "
		            "file", path, (long long)fsize);
	*hlen = b[8] | (uint32_t)b[9] << 8 | (uint32_t)b[10] << 16 |
	        (uint32_t)b[11] << 24;
	info->data_offset = 12 + (int64_t)*hlen;
	return KILN_OK;
}

/* Checks that fsize is exactly header plus data. */
static kiln_status
check_size(const char *path, int64_t fsize, const struct kiln_npy_info *info,
           char *msg, size_t len)
{
	int64_t want = byte_count(info->rank, info->dim,
	                          kiln_dtype_size(info->dtype));
	int64_t have = fsize - info->data_offset;

	if (want < 0)
		return fail(msg, len, KILN_ERR_FORMAT,
		            "%s: shape too large: byte count overflows", path);
	if (have < want)
		return fail(msg, len, KILN_ERR_FORMAT,
		            "%s: truncated: header announces %lld bytes of "
		            "data, file has %lld", path, (long long)want,
		            (long long)have);
	if (have > want)
		return fail(msg, len, KILN_ERR_FORMAT,
		            "%s: file has %lld bytes of data, header announces "
		            "%lld", path, (long long)have, (long long)want);
	return KILN_OK;
}

/* Opens path and checks it through the header; on success *fp is left
 * positioned at the data. */
static kiln_status
npy_open(const char *path, struct kiln_npy_info *info, FILE **fp, char *msg,
         size_t len)
{
	struct stat st;
	uint32_t hlen = 0;
	kiln_status s;
	FILE *f;
	int fd;

	if (!host_little_endian())
		return fail(msg, len, KILN_ERR_UNSUPPORTED,
		            "%s: .npy on a big-endian host is not supported",
		            path);
	/* O_NONBLOCK: a FIFO fails the check below instead of waiting for
	 * a writer (it changes nothing for a regular file) */
	fd = open(path, O_RDONLY | O_NONBLOCK);
	if (fd < 0)
		return fail(msg, len, KILN_ERR_IO, "%s: cannot open: %s", path,
		            strerror(errno));
	if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
		close(fd);
		return fail(msg, len, KILN_ERR_IO, "%s: not a regular file",
		            path);
	}
	if (!(f = fdopen(fd, "rb"))) {
		close(fd);
		return fail(msg, len, KILN_ERR_IO, "%s: cannot open: %s",
		            path, strerror(errno));
	}
	s = read_preamble(f, path, (int64_t)st.st_size, &hlen, info, msg, len);
	if (!s && info->data_offset > (int64_t)st.st_size)
		s = fail(msg, len, KILN_ERR_FORMAT,
		         "%s: truncated: the header runs past the end of the "
		         "file", path);
	if (!s)
		s = read_dict(f, path, hlen, info, msg, len);
	if (!s)
		s = check_size(path, (int64_t)st.st_size, info, msg, len);
	if (s)
		fclose(f);
	else
		*fp = f;
	return s;
}

kiln_status
kiln_npy_info(const char *path, struct kiln_npy_info *info, char *msg,
              size_t msglen)
{
	FILE *f;
	kiln_status s = npy_open(path, info, &f, msg, msglen);

	if (!s)
		fclose(f);
	return s;
}

/* The caller's description of a tensor, checked like any input; its
 * byte count must also fit in a size_t. */
static bool
valid_type(kiln_dtype dtype, int rank, const int64_t *dim)
{
	int64_t n;

	if ((unsigned)dtype >= KILN_NDTYPE || rank < 0 || rank > KILN_MAXRANK)
		return false;
	if (rank > 0 && !dim)
		return false;
	n = byte_count(rank, dim, kiln_dtype_size(dtype));
	return n >= 0 && (uint64_t)n <= (uint64_t)(SIZE_MAX / 2);
}

static bool
same_shape(int rank, const int64_t *dim, const struct kiln_npy_info *in)
{
	if (rank != in->rank)
		return false;
	for (int i = 0; i < rank; i++)
		if (dim[i] != in->dim[i])
			return false;
	return true;
}

kiln_status
kiln_npy_load(const char *path, const char *name, kiln_dtype dtype,
              int rank, const int64_t *dim, void *dst, char *msg,
              size_t msglen)
{
	char why[1024], want[256], got[256];
	struct kiln_npy_info in;
	kiln_status s;
	int64_t n;
	FILE *f;

	if (!valid_type(dtype, rank, dim))
		return fail(msg, msglen, KILN_ERR_ARG,
		            "input '%s': invalid expected type", name);
	s = npy_open(path, &in, &f, why, sizeof why);
	if (s)
		return fail(msg, msglen, s, "input '%s': %s", name, why);
	if (in.dtype == KILN_U16 && dtype == KILN_BF16)
		in.dtype = KILN_BF16;       /* bf16 files hold raw bits as <u2 */
	if (in.dtype != dtype || !same_shape(rank, dim, &in)) {
		fclose(f);
		kiln_type_name(want, sizeof want, dtype, rank, dim);
		kiln_type_name(got, sizeof got, in.dtype, in.rank, in.dim);
		s = in.dtype != dtype ? KILN_ERR_DTYPE : KILN_ERR_SHAPE;
		return fail(msg, msglen, s, "input '%s': expected %s, got %s in %s",
		            name, want, got, path);
	}
	n = byte_count(rank, dim, kiln_dtype_size(dtype));
	if (n > 0 && fread(dst, 1, (size_t)n, f) != (size_t)n)
		s = fail(msg, msglen, KILN_ERR_IO, "input '%s': %s: read error",
		         name, path);
	fclose(f);
	return s;
}

/* ---- writing ------------------------------------------------------ */

/* Builds a version 1.0 header for the type into b; returns its length,
 * a multiple of 64 as NumPy writes it, so the data is aligned. */
static size_t
make_header(char *b, size_t size, kiln_dtype t, int rank, const int64_t *dim)
{
	size_t k = 10;

	k += (size_t)snprintf(b + k, size - k,
	                      "{'descr': '%s', 'fortran_order': False, "
	                      "'shape': (", descrs[t]);
	for (int i = 0; i < rank; i++)
		k += (size_t)snprintf(b + k, size - k, "%s%lld", i ? ", " : "",
		                      (long long)dim[i]);
	k += (size_t)snprintf(b + k, size - k, "%s), }", rank == 1 ? "," : "");
	while ((k + 1) % 64)
		b[k++] = ' ';
	b[k++] = '\n';
	memcpy(b, "\x93NUMPY\x01\x00", 8);
	b[8] = (char)((k - 10) & 0xff);
	b[9] = (char)((k - 10) >> 8);
	return k;
}

/* Creates a fresh temporary file next to path, named in tmp. */
static FILE *
create_temp(const char *path, char *tmp, size_t size)
{
	for (int i = 0; i < 100; i++) {
		int fd;
		FILE *f;
		snprintf(tmp, size, "%s.tmp%ld.%d", path, (long)getpid(), i);
		fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL, 0666);
		if (fd < 0 && errno == EEXIST)
			continue;
		if (fd < 0)
			return NULL;
		if (!(f = fdopen(fd, "wb"))) {
			close(fd);
			unlink(tmp);
		}
		return f;
	}
	return NULL;
}

kiln_status
kiln_npy_save_temp(const char *path, char *tmp, size_t tmplen,
                   kiln_dtype dtype, int rank, const int64_t *dim,
                   const void *src, char *msg, size_t msglen)
{
	char hdr[512];
	struct stat st;
	size_t hlen, n;
	bool ok;
	int err;
	FILE *f;

	if (!valid_type(dtype, rank, dim))
		return fail(msg, msglen, KILN_ERR_ARG,
		            "%s: invalid tensor type", path);
	if (!host_little_endian())
		return fail(msg, msglen, KILN_ERR_UNSUPPORTED,
		            "%s: .npy on a big-endian host is not supported",
		            path);
	if (strlen(path) + 32 > tmplen)
		return fail(msg, msglen, KILN_ERR_ARG, "%s: path too long",
		            path);
	/* the rename would fail, maybe after others of a set */
	if (!stat(path, &st) && S_ISDIR(st.st_mode))
		return fail(msg, msglen, KILN_ERR_IO, "%s: cannot write: %s",
		            path, strerror(EISDIR));
	hlen = make_header(hdr, sizeof hdr, dtype, rank, dim);
	n = (size_t)byte_count(rank, dim, kiln_dtype_size(dtype));
	f = create_temp(path, tmp, tmplen);
	if (!f)
		return fail(msg, msglen, KILN_ERR_IO, "%s: cannot write: %s",
		            path, strerror(errno));
	ok = fwrite(hdr, 1, hlen, f) == hlen &&
	     (n == 0 || fwrite(src, 1, n, f) == n) && !fflush(f);
	err = ok ? 0 : errno;
	if (fclose(f) && ok) {
		ok = false;
		err = errno;
	}
	if (ok)
		return KILN_OK;
	unlink(tmp);
	return fail(msg, msglen, KILN_ERR_IO, "%s: cannot write: %s", path,
	            strerror(err));
}

kiln_status
kiln_npy_save(const char *path, kiln_dtype dtype, int rank,
              const int64_t *dim, const void *src, char *msg, size_t msglen)
{
	char tmp[4096];
	kiln_status s = kiln_npy_save_temp(path, tmp, sizeof tmp, dtype, rank,
	                                   dim, src, msg, msglen);

	if (s || !rename(tmp, path))
		return s;
	fail(msg, msglen, KILN_ERR_IO, "%s: cannot write: %s", path,
	     strerror(errno));
	unlink(tmp);
	return KILN_ERR_IO;
}
