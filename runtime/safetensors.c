/* safetensors.c: a trainer's weights as a safetensors file.
 *
 * kiln_weights_save() writes the state tensors that make up the model
 * (parameters, running statistics, frozen parameters; optimizer slots
 * belong to checkpoints) as the compiler's frontend/weights.c reads them
 * (docs/weights.md): an 8-byte little-endian header length, one line of
 * compact JSON padded with spaces to a multiple of 8 bytes, then the data,
 * each tensor's right after the previous one's, in the description's order.
 * kiln_weights_load() reads such a file, from kiln or from Python, back by
 * name.  The runtime includes nothing from the compiler, so it has its own
 * JSON reader: a small strict one for exactly this header, which checks
 * every length against the file before it reads.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kiln.h"

#define MAXHEADER 100000000     /* the reference implementation's limit */
#define MAXDEPTH 8              /* nesting that skipping a value allows */

/* The safetensors name of each kiln dtype. */
static const char *const st_name[KILN_NDTYPE] = {
	[KILN_F32] = "F32", [KILN_F64] = "F64", [KILN_I64] = "I64",
	[KILN_I32] = "I32", [KILN_I8] = "I8", [KILN_U8] = "U8",
	[KILN_BOOL] = "BOOL", [KILN_F16] = "F16", [KILN_BF16] = "BF16",
	[KILN_I16] = "I16", [KILN_U16] = "U16", [KILN_U32] = "U32",
	[KILN_U64] = "U64",
};

/* The tensors a file holds: a weights file every kind but optimizer
 * slots, a checkpoint (all) every one. */
static bool
saved(const struct kiln_state_desc *t, bool all)
{
	return all || t->kind != KILN_STATE_SLOT;
}

static uint64_t
state_bytes(const struct kiln_state_desc *t)
{
	uint64_t n = kiln_dtype_size(t->dtype);

	for (int i = 0; i < t->rank; i++)
		n *= (uint64_t)t->dim[i];
	return n;
}

/* ---- saving --------------------------------------------------------- */

/* s as a JSON string; UTF-8 passes through, as serde_json writes it. */
static void
put_name(FILE *f, const char *s)
{
	fputc('"', f);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(f, "\\%c", *p);
		else if (*p < 0x20)
			fprintf(f, "\\u%04x", *p);
		else
			fputc(*p, f);
	}
	fputc('"', f);
}

/* The header, padded with spaces to a multiple of 8 bytes as the
 * reference pads it; NULL when memory ran out. */
static char *
header(const struct kiln_state_desc *s, int n, bool all, const char *meta,
       size_t *len)
{
	char *buf = NULL;
	FILE *f = open_memstream(&buf, len);
	uint64_t off = 0;
	bool bad;

	if (!f)
		return NULL;
	fprintf(f, "{\"__metadata__\":{%s}", meta);
	for (int i = 0; i < n; i++) {
		if (!saved(&s[i], all))
			continue;
		fputc(',', f);
		put_name(f, s[i].name);
		fprintf(f, ":{\"dtype\":\"%s\",\"shape\":[", st_name[s[i].dtype]);
		for (int k = 0; k < s[i].rank; k++)
			fprintf(f, "%s%lld", k ? "," : "", (long long)s[i].dim[k]);
		fprintf(f, "],\"data_offsets\":[%llu,%llu]}",
		        (unsigned long long)off,
		        (unsigned long long)(off + state_bytes(&s[i])));
		off += state_bytes(&s[i]);
	}
	fputc('}', f);
	while (ftell(f) % 8)
		fputc(' ', f);
	bad = ferror(f);
	if (fclose(f) || bad) {
		free(buf);
		return NULL;
	}
	return buf;
}

/* A new file PATH.kiln-tmp (its name in tmp), with the permissions a
 * plain fopen would give; NULL with errno set on failure.  The name is
 * fixed, not random, so that a run killed while writing leaves at most
 * one stray file, which the next save to path replaces.  It is removed
 * first and made with O_EXCL: a link planted there is replaced, never
 * written through.  (So one process at a time writes a given path.) */
static FILE *
create_temp(const char *path, char *tmp, size_t size)
{
	FILE *f;
	int fd;

	if ((size_t)snprintf(tmp, size, "%s.kiln-tmp", path) >= size) {
		errno = ENAMETOOLONG;
		return NULL;
	}
	if (unlink(tmp) && errno != ENOENT)
		return NULL;
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL, 0666)) < 0)
		return NULL;
	if (!(f = fdopen(fd, "wb"))) {
		close(fd);
		unlink(tmp);
	}
	return f;
}

/* The file goes to a temporary one, on disk before the rename makes it
 * the file at path: a failure or a crash leaves the old file whole.  The
 * error is the first failure's (a full disk: "No space left on device"). */
kiln_status
kiln_st_save(const char *path, const struct kiln_state_desc *s, int n,
             const void *state, int all, const char *meta, char *msg,
             size_t msglen)
{
	unsigned char len8[8];
	char tmp[4096], *h;
	size_t hlen;
	bool ok;
	int err;
	FILE *f;

	if (!(h = header(s, n, all, meta, &hlen)))
		return kiln_fail(msg, msglen, KILN_ERR_NOMEM, path,
		                 "cannot write: out of memory");
	if (!(f = create_temp(path, tmp, sizeof tmp))) {
		free(h);
		return kiln_fail(msg, msglen, KILN_ERR_IO, path,
		                 "cannot write: %s", strerror(errno));
	}
	for (int i = 0; i < 8; i++)
		len8[i] = (unsigned char)((uint64_t)hlen >> 8 * i);
	ok = fwrite(len8, 1, 8, f) == 8 && fwrite(h, 1, hlen, f) == hlen;
	for (int i = 0; i < n && ok; i++) {
		size_t k = (size_t)state_bytes(&s[i]);
		ok = !saved(&s[i], all) || k == 0 ||
		     fwrite((const char *)state + s[i].offset, 1, k, f) == k;
	}
	ok = ok && !fflush(f) && !fsync(fileno(f));
	err = ok ? 0 : errno;
	if (fclose(f) && ok) {
		ok = false;
		err = errno;
	}
	free(h);
	if (ok && rename(tmp, path)) {
		ok = false;
		err = errno;
	}
	if (ok)
		return KILN_OK;
	unlink(tmp);
	return kiln_fail(msg, msglen, KILN_ERR_IO, path, "cannot write: %s",
	                 strerror(err));
}

kiln_status
kiln_weights_save(const char *path, const struct kiln_state_desc *s, int n,
                  const void *state, char *msg, size_t msglen)
{
	return kiln_st_save(path, s, n, state, 0, "\"format\":\"kiln\"", msg,
	                    msglen);
}

/* ---- the header's JSON ----------------------------------------------
 * RFC 8259 without true, false, null, negative numbers and fractions,
 * none of which a safetensors header holds:
 *   value  = ws (object | array | string | digits) ws
 *   object = '{' [string ':' value {',' string ':' value}] '}'
 *   array  = '[' [value {',' value}] ']'
 * Strings decode every JSON escape to UTF-8.  The first error is kept,
 * with where it was found. */

struct json {
	const char *beg, *p, *end;
	const char *why, *at;
};

static bool
jfail(struct json *j, const char *why)
{
	if (!j->why) {
		j->why = why;
		j->at = j->p;
	}
	return false;
}

/* The next character after white space, or -1 at the end. */
static int
jpeek(struct json *j)
{
	while (j->p < j->end && *j->p && strchr(" \t\n\r", *j->p))
		j->p++;
	return j->p < j->end ? (unsigned char)*j->p : -1;
}

static bool
jtake(struct json *j, char c)
{
	if (jpeek(j) != c)
		return false;
	j->p++;
	return true;
}

static int
hexval(char c)
{
	return c >= '0' && c <= '9' ? c - '0' :
	       c >= 'a' && c <= 'f' ? c - 'a' + 10 :
	       c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* The code unit of \uXXXX at j->p, or -1. */
static long
jhex4(struct json *j)
{
	long c = 0;

	if (j->end - j->p < 6 || j->p[0] != '\\' || j->p[1] != 'u')
		return -1;
	for (int i = 2; i < 6; i++) {
		int h = hexval(j->p[i]);
		if (h < 0)
			return -1;
		c = c << 4 | h;
	}
	j->p += 6;
	return c;
}

/* One \u escape, two for a surrogate pair, as UTF-8 at o; NULL for a
 * bad escape.  \u0000 is refused: names are C strings. */
static char *
junicode(struct json *j, char *o)
{
	static const unsigned char lead[] = {0x00, 0xc0, 0xe0, 0xf0};
	long c = jhex4(j), lo;
	int extra;

	if (c >= 0xd800 && c < 0xdc00) {
		if ((lo = jhex4(j)) < 0xdc00 || lo >= 0xe000) {
			jfail(j, "unpaired UTF-16 surrogate");
			return NULL;
		}
		c = 0x10000 + ((c - 0xd800) << 10) + (lo - 0xdc00);
	}
	if (c <= 0 || (c >= 0xdc00 && c < 0xe000)) {
		jfail(j, "bad escape in a string");
		return NULL;
	}
	extra = c < 0x80 ? 0 : c < 0x800 ? 1 : c < 0x10000 ? 2 : 3;
	*o++ = (char)(lead[extra] | c >> 6 * extra);
	for (int k = extra - 1; k >= 0; k--)
		*o++ = (char)(0x80 | (c >> 6 * k & 0x3f));
	return o;
}

/* A string into out, which has room for size bytes with the NUL.  The
 * decoded form is never longer than the text. */
static bool
jstring(struct json *j, char *out, size_t size)
{
	static const char esc[] = "\"\\/bfnrt", val[] = "\"\\/\b\f\n\r\t";
	char *o = out;

	if (!jtake(j, '"'))
		return jfail(j, "expected a string");
	while (j->p < j->end && *j->p != '"') {
		const char *e = j->p[0] == '\\' && j->p + 1 < j->end && j->p[1]
		                ? strchr(esc, j->p[1]) : NULL;
		if ((size_t)(o - out) + 4 >= size)
			return jfail(j, "string too long");
		if ((unsigned char)*j->p < 0x20)
			return jfail(j, "control character in a string");
		if (e) {
			*o++ = val[e - esc];
			j->p += 2;
		} else if (*j->p == '\\') {
			if (!(o = junicode(j, o)))
				return false;
		} else {
			*o++ = *j->p++;
		}
	}
	if (j->p >= j->end)
		return jfail(j, "unterminated string");
	j->p++;
	*o = '\0';
	return true;
}

/* digits, at most 2^63 - 1 and without a leading zero */
static bool
jint(struct json *j, int64_t *v)
{
	const char *at;

	jpeek(j);
	at = j->p;
	*v = 0;
	for (; j->p < j->end && *j->p >= '0' && *j->p <= '9'; j->p++) {
		if (*v > (INT64_MAX - (*j->p - '0')) / 10)
			return jfail(j, "integer too large");
		*v = *v * 10 + (*j->p - '0');
	}
	if (j->p == at || (*at == '0' && j->p - at > 1))
		return jfail(j, "expected a non-negative integer");
	return true;
}

/* [int, ...] of at most max elements into v; *n is their number.  More
 * than max fails with the message toolong. */
static bool
jints(struct json *j, int64_t *v, int max, int *n, const char *toolong)
{
	*n = 0;
	if (!jtake(j, '['))
		return jfail(j, "expected an array of integers");
	if (jtake(j, ']'))
		return true;
	do {
		if (*n == max)
			return jfail(j, toolong);
		if (!jint(j, &v[(*n)++]))
			return false;
	} while (jtake(j, ','));
	return jtake(j, ']') || jfail(j, "expected ',' or ']'");
}

/* Any value, checked and thrown away. */
static bool
jskip(struct json *j, char *scratch, size_t size, int depth)
{
	bool obj = jtake(j, '{');
	int64_t v;

	if (!obj && !jtake(j, '['))
		return jpeek(j) == '"' ? jstring(j, scratch, size) : jint(j, &v);
	if (depth >= MAXDEPTH)
		return jfail(j, "nested too deeply");
	if (jtake(j, obj ? '}' : ']'))
		return true;
	do {
		if (obj && !(jstring(j, scratch, size) && jtake(j, ':')))
			return jfail(j, "expected \"key\": value");
		if (!jskip(j, scratch, size, depth + 1))
			return false;
	} while (jtake(j, ','));
	return jtake(j, obj ? '}' : ']') || jfail(j, "expected ',' or a close");
}

/* ---- loading -------------------------------------------------------- */

/* One tensor entry: {"dtype": S, "shape": [...], "data_offsets": [b, e]}
 * with each key exactly once, in any order. */
struct entry {
	char dtype[16];
	int rank, noff;
	int64_t dim[KILN_MAXRANK];
	int64_t off[2];
};

/* A file being loaded into state. */
struct reader {
	const char *path;
	FILE *f;
	uint64_t size, hlen;        /* the file's bytes; the header's */
	const struct kiln_state_desc *s;
	int n;
	void *state;
	bool all;                   /* slots too: a checkpoint */
	struct kiln_st_meta *meta;  /* what __metadata__ says, or NULL */
	bool *found;                /* per s[]: taken from the file */
	char *msg;
	size_t len;
};

static bool
jentry(struct json *j, struct entry *e, char *key, size_t size)
{
	unsigned seen = 0;

	if (!jtake(j, '{'))
		return jfail(j, "a tensor entry must be an object");
	do {
		int k;
		if (!jstring(j, key, size) || !jtake(j, ':'))
			return jfail(j, "expected \"key\": value");
		k = !strcmp(key, "dtype") ? 0 : !strcmp(key, "shape") ? 1 :
		    !strcmp(key, "data_offsets") ? 2 : -1;
		if (k < 0 || seen & 1u << k)
			return jfail(j, k < 0 ? "unknown key in a tensor entry"
			                      : "repeated key in a tensor entry");
		seen |= 1u << k;
		if (!(k == 0 ? jstring(j, e->dtype, sizeof e->dtype) :
		      k == 1 ? jints(j, e->dim, KILN_MAXRANK, &e->rank,
		                     "a shape has more than 8 dimensions "
		                     "(KILN_MAXRANK)") :
		      jints(j, e->off, 2, &e->noff,
		            "data_offsets has more than 2 values")))
			return false;
	} while (jtake(j, ','));
	if (!jtake(j, '}'))
		return jfail(j, "expected ',' or '}'");
	if (seen != 7 || e->noff != 2)
		return jfail(j, "a tensor entry needs \"dtype\", \"shape\" and "
		             "two \"data_offsets\"");
	return true;
}

/* The state tensor saved under name, or -1. */
static int
lookup(const struct reader *r, const char *name)
{
	for (int i = 0; i < r->n; i++)
		if (saved(&r->s[i], r->all) && !strcmp(r->s[i].name, name))
			return i;
	return -1;
}

/* Checks entry e against state tensor i and reads its data. */
static kiln_status
take(struct reader *r, int i, const struct entry *e)
{
	const struct kiln_state_desc *t = &r->s[i];
	char want[256], got[256];
	kiln_dtype dt = 0;
	uint64_t bytes = state_bytes(t), data = r->size - 8 - r->hlen;

	while (dt < KILN_NDTYPE && strcmp(st_name[dt], e->dtype))
		dt++;
	if (r->found[i])
		return kiln_fail(r->msg, r->len, KILN_ERR_FORMAT, r->path,
		                 "tensor '%s' appears twice", t->name);
	if (dt == KILN_NDTYPE)
		return kiln_fail(r->msg, r->len, KILN_ERR_DTYPE, r->path,
		                 "tensor '%s': dtype %s is not supported", t->name,
		                 e->dtype);
	if (dt != t->dtype || e->rank != t->rank ||
	    memcmp(e->dim, t->dim, (size_t)t->rank * sizeof *t->dim))
		return kiln_fail(r->msg, r->len, KILN_ERR_SHAPE, r->path,
		                 "tensor '%s': expected %s, got %s", t->name,
		                 kiln_type_name(want, sizeof want, t->dtype,
		                                t->rank, t->dim),
		                 kiln_type_name(got, sizeof got, dt, e->rank,
		                                e->dim));
	if (e->off[0] > e->off[1] || (uint64_t)e->off[1] > data ||
	    (uint64_t)(e->off[1] - e->off[0]) != bytes)
		return kiln_fail(r->msg, r->len, KILN_ERR_FORMAT, r->path,
		                 "tensor '%s': data_offsets [%lld, %lld] do not "
		                 "hold its %llu bytes within the file's %llu",
		                 t->name, (long long)e->off[0],
		                 (long long)e->off[1], (unsigned long long)bytes,
		                 (unsigned long long)data);
	r->found[i] = true;
	if (bytes && (fseeko(r->f, (off_t)(8 + r->hlen) + e->off[0], SEEK_SET) ||
	              fread((char *)r->state + t->offset, 1, bytes, r->f) !=
	              bytes))
		return kiln_fail(r->msg, r->len, KILN_ERR_IO, r->path,
		                 "read error");
	return KILN_OK;
}

/* __metadata__, a map of strings (the format says so; other values are
 * skipped): the values of the keys struct kiln_st_meta has, if wanted. */
static bool
jmeta(struct reader *r, struct json *j, char *key, size_t size)
{
	struct kiln_st_meta *m = r->meta;

	if (!jtake(j, '{'))
		return jfail(j, "__metadata__ must be an object");
	if (jtake(j, '}'))
		return true;
	do {
		char *v = NULL;
		size_t n = 0;
		if (!jstring(j, key, size) || !jtake(j, ':'))
			return jfail(j, "expected \"key\": value");
		if (m && !strcmp(key, "format"))
			v = m->format, n = sizeof m->format;
		else if (m && !strcmp(key, "model"))
			v = m->model, n = sizeof m->model;
		else if (m && !strcmp(key, "crc32"))
			v = m->crc32, n = sizeof m->crc32;
		if (!v || jpeek(j) != '"') {
			if (!jskip(j, key, size, 1))
				return false;
		} else if (!jstring(j, key, size)) {
			return false;
		} else if (strlen(key) < n) {
			memcpy(v, key, strlen(key) + 1);
		}
	} while (jtake(j, ','));
	return jtake(j, '}') || jfail(j, "expected ',' or '}'");
}

/* header = '{' [member {',' member}] '}' ws, member = name ':' (entry |
 * the __metadata__ value); names use buf, keys and skipped strings key. */
static kiln_status
read_header(struct reader *r, struct json *j, char *buf, char *key)
{
	size_t size = r->hlen + 1;
	kiln_status s = KILN_OK;

	if (!jtake(j, '{'))
		jfail(j, "the header must be a JSON object");
	else if (!jtake(j, '}')) {
		do {
			struct entry e = {0};
			int i;
			if (!jstring(j, buf, size) || !jtake(j, ':')) {
				jfail(j, "expected \"name\": value");
				break;
			}
			if (!strcmp(buf, "__metadata__")) {
				if (!jmeta(r, j, key, size))
					break;
				continue;
			}
			if (!jentry(j, &e, key, size))
				break;
			if ((i = lookup(r, buf)) >= 0 && (s = take(r, i, &e)))
				return s;
		} while (jtake(j, ','));
		if (!j->why && !jtake(j, '}'))
			jfail(j, "expected ',' or '}'");
	}
	if (!j->why && jpeek(j) != -1)
		jfail(j, "more data after the header object");
	if (j->why)
		return kiln_fail(r->msg, r->len, KILN_ERR_FORMAT, r->path,
		                 "bad header JSON at byte %lld: %s",
		                 (long long)(j->at - j->beg) + 8, j->why);
	return KILN_OK;
}

/* Opens the file and checks the header length against its size. */
static kiln_status
open_file(struct reader *r)
{
	struct stat st;
	unsigned char b[8];

	if (!(r->f = fopen(r->path, "rb")) || fstat(fileno(r->f), &st))
		return kiln_fail(r->msg, r->len, KILN_ERR_IO, r->path,
		                 "cannot read weights: %s", strerror(errno));
	if (!S_ISREG(st.st_mode))
		return kiln_fail(r->msg, r->len, KILN_ERR_IO, r->path,
		                 "cannot read weights: not a regular file");
	r->size = (uint64_t)st.st_size;
	if (r->size < 8 || fread(b, 1, 8, r->f) != 8)
		return kiln_fail(r->msg, r->len, KILN_ERR_FORMAT, r->path,
		                 "%llu bytes is too short for a safetensors file",
		                 (unsigned long long)r->size);
	for (int i = 8; i-- > 0;)
		r->hlen = r->hlen << 8 | b[i];
	if (r->hlen > MAXHEADER || r->hlen > r->size - 8)
		return kiln_fail(r->msg, r->len, KILN_ERR_FORMAT, r->path,
		                 "header length %llu is %s; is this a safetensors "
		                 "file?", (unsigned long long)r->hlen,
		                 r->hlen > MAXHEADER ? "absurd"
		                                     : "past the end of the file");
	return KILN_OK;
}

/* Every saved tensor must have come from the file. */
static kiln_status
check_missing(const struct reader *r)
{
	char type[256];

	for (int i = 0; i < r->n; i++)
		if (saved(&r->s[i], r->all) && !r->found[i])
			return kiln_fail(r->msg, r->len, KILN_ERR_FORMAT, r->path,
			                 "missing tensor '%s' (%s)", r->s[i].name,
			                 kiln_type_name(type, sizeof type,
			                                r->s[i].dtype, r->s[i].rank,
			                                r->s[i].dim));
	return KILN_OK;
}

kiln_status
kiln_st_load(const char *path, const struct kiln_state_desc *s, int n,
             void *state, int all, struct kiln_st_meta *meta, char *msg,
             size_t msglen)
{
	struct reader r = {.path = path, .s = s, .n = n, .state = state,
	                   .all = all, .meta = meta, .msg = msg, .len = msglen};
	char *text = NULL, *buf = NULL, *key = NULL;
	kiln_status st = open_file(&r);

	if (!st && (!(r.found = calloc((size_t)n + 1, sizeof *r.found)) ||
	            !(text = malloc(r.hlen + 1)) || !(buf = malloc(r.hlen + 1)) ||
	            !(key = malloc(r.hlen + 1))))
		st = kiln_fail(msg, msglen, KILN_ERR_NOMEM, path, "out of memory");
	if (!st && fread(text, 1, r.hlen, r.f) != r.hlen)
		st = kiln_fail(msg, msglen, KILN_ERR_IO, path, "read error");
	if (!st) {
		struct json j = {.beg = text, .p = text, .end = text + r.hlen};
		st = read_header(&r, &j, buf, key);
	}
	if (!st)
		st = check_missing(&r);
	if (r.f)
		fclose(r.f);
	free(r.found);
	free(text);
	free(buf);
	free(key);
	return st;
}

kiln_status
kiln_weights_load(const char *path, const struct kiln_state_desc *s, int n,
                  void *state, char *msg, size_t msglen)
{
	return kiln_st_load(path, s, n, state, 0, NULL, msg, msglen);
}
