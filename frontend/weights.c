/* weights.c: safetensors weight files (docs/weights.md).
 *
 * A file is an 8-byte little-endian header length N, N bytes of JSON
 * mapping each tensor name to {dtype, shape, data_offsets}, then the data.
 * weights_load() gives every parameter and constant the tensor of the same
 * name; weights_save() writes all parameters laid out exactly as the
 * reference implementation (huggingface/safetensors) lays them out, so the
 * output is byte-deterministic.  The JSON reader is a small strict one for
 * this header only: kiln has no JSON library among its dependencies.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "frontend.h"

#define MAXHEADER 100000000     /* the reference implementation's limit */
enum { MAXDEPTH = 8, MAXARRAY = 64, MAXLISTED = 5 };

/* Every safetensors dtype, in the reference's order, which is ascending
 * alignment: it writes tensors from the last row up, then by name.  dt is
 * the kiln type, or -1 for one kiln cannot hold. */
static const struct {
	const char *name;
	int size, dt;
} st_dtype[] = {
	{"BOOL", 1, DT_BOOL}, {"U8", 1, DT_U8}, {"I8", 1, DT_I8},
	{"F8_E5M2", 1, -1}, {"F8_E4M3", 1, -1}, {"I16", 2, -1}, {"U16", 2, -1},
	{"F16", 2, -1}, {"BF16", 2, -1}, {"I32", 4, DT_I32}, {"U32", 4, -1},
	{"F32", 4, DT_F32}, {"F64", 8, DT_F64}, {"I64", 8, DT_I64},
	{"U64", 8, -1},
};

enum { J_OBJECT, J_ARRAY, J_STRING, J_INT };

typedef struct Json Json;
struct Json {
	int kind;                   /* J_ */
	size_t pos;                 /* file offset of its first byte */
	const char *key;            /* its name, when an object member */
	const char *s;              /* J_STRING, decoded to UTF-8 */
	int64_t i;                  /* J_INT */
	Json *kid, *next;           /* elements or members, in file order */
	int nkid;
};

typedef struct {
	Loc loc;                    /* the file, for diagnostics */
	Arena *a;
	const unsigned char *beg, *p, *end; /* the header; beg is file byte 8 */
	int depth;
} Parser;

typedef struct {
	const char *name;
	int st;                     /* row of st_dtype[] */
	int rank;
	int64_t dim[IR_MAXRANK];
	uint64_t begin, end;        /* data_offsets, from the start of the data */
	size_t pos;                 /* file offset of its header entry */
	bool used;                  /* a value of the module took its data */
} Tensor;

typedef struct {
	Loc loc;
	Arena *a;                   /* scratch, freed when loading is done */
	FILE *f;
	uint64_t size, hlen;        /* file size; header length N */
	Tensor *t;                  /* sorted by name */
	int nt;
} WFile;

/* ---- The JSON reader ---------------------------------------------------
 * RFC 8259 without true, false, null and numbers other than non-negative
 * integers, none of which a safetensors header holds:
 *   value   = ws (object | array | string | integer) ws
 *   object  = '{' ws [ string ws ':' value { ',' ws string ws ':' value } ] '}'
 *   array   = '[' ws [ value { ',' value } ] ']'
 *   integer = '0' | [1-9] [0-9]*           (at most 2^63 - 1)
 *   ws      = { ' ' | '\t' | '\n' | '\r' }
 * Errors give the file offset of the offending byte.
 */

static _Noreturn void
jfail(const Parser *ps, const unsigned char *at, const char *msg)
{
	diag_error(ps->loc, "bad header JSON at byte %zu: %s",
	           (size_t)(at - ps->beg) + 8, msg);
}

static int
peek(const Parser *ps)
{
	return ps->p < ps->end ? *ps->p : -1;
}

static void
skip_ws(Parser *ps)
{
	for (int c; (c = peek(ps)) == ' ' || c == '\t' || c == '\n' || c == '\r';)
		ps->p++;
}

static void
expect(Parser *ps, int c, const char *msg)
{
	skip_ws(ps);
	if (peek(ps) != c)
		jfail(ps, ps->p, msg);
	ps->p++;
}

/* Length of the well-formed UTF-8 sequence at p (RFC 3629: no overlong
 * forms, no surrogates, nothing above U+10FFFF), or 0. */
static int
utf8_len(const unsigned char *p, const unsigned char *end)
{
	int n = p[0] < 0x80 ? 1 : p[0] < 0xc2 ? 0 : p[0] < 0xe0 ? 2 :
	        p[0] < 0xf0 ? 3 : p[0] < 0xf5 ? 4 : 0;
	if (n <= 1)
		return n;
	if (end - p < n)
		return 0;
	unsigned min = p[0] == 0xe0 ? 0xa0 : p[0] == 0xf0 ? 0x90 : 0x80;
	unsigned max = p[0] == 0xed ? 0x9f : p[0] == 0xf4 ? 0x8f : 0xbf;
	if (p[1] < min || p[1] > max)
		return 0;
	for (int k = 2; k < n; k++)
		if ((p[k] & 0xc0) != 0x80)
			return 0;
	return n;
}

/* The first byte of s[0..n) that is not well-formed UTF-8, or NULL. */
static const unsigned char *
utf8_bad(const unsigned char *s, size_t n)
{
	const unsigned char *end = s + n;
	for (int k; s < end; s += k)
		if ((k = utf8_len(s, end)) == 0)
			return s;
	return NULL;
}

static char *
put_utf8(char *o, uint32_t c)
{
	if (c < 0x80) {
		*o++ = (char)c;
	} else if (c < 0x800) {
		*o++ = (char)(0xc0 | c >> 6);
		*o++ = (char)(0x80 | (c & 0x3f));
	} else if (c < 0x10000) {
		*o++ = (char)(0xe0 | c >> 12);
		*o++ = (char)(0x80 | (c >> 6 & 0x3f));
		*o++ = (char)(0x80 | (c & 0x3f));
	} else {
		*o++ = (char)(0xf0 | c >> 18);
		*o++ = (char)(0x80 | (c >> 12 & 0x3f));
		*o++ = (char)(0x80 | (c >> 6 & 0x3f));
		*o++ = (char)(0x80 | (c & 0x3f));
	}
	return o;
}

/* u-escape = '\u' hex hex hex hex, at ps->p; q ends the string */
static uint32_t
hex4(Parser *ps, const unsigned char *q)
{
	const unsigned char *at = ps->p;
	uint32_t c = 0;
	if (q - at < 6 || at[0] != '\\' || at[1] != 'u')
		jfail(ps, at, "unpaired UTF-16 surrogate in a \\u escape");
	for (ps->p += 2; ps->p < at + 6; ps->p++) {
		int d = *ps->p | 0x20;  /* lower case for letters */
		if ('0' <= *ps->p && *ps->p <= '9')
			c = c << 4 | (uint32_t)(*ps->p - '0');
		else if ('a' <= d && d <= 'f')
			c = c << 4 | (uint32_t)(d - 'a' + 10);
		else
			jfail(ps, at, "expected 4 hex digits after \\u");
	}
	return c;
}

/* escape = '\' ( '"' | '\' | '/' | 'b' | 'f' | 'n' | 'r' | 't' )
 *        | u-escape [ u-escape ]       (a UTF-16 surrogate pair) */
static char *
unescape(Parser *ps, char *o, const unsigned char *q)
{
	static const char in[] = "\"\\/bfnrt", out[] = "\"\\/\b\f\n\r\t";
	const unsigned char *at = ps->p;
	const char *e = at + 1 < q ? memchr(in, at[1], 8) : NULL;
	if (e) {
		ps->p += 2;
		*o++ = out[e - in];
		return o;
	}
	if (at + 1 >= q || at[1] != 'u')
		jfail(ps, at, "unknown escape in a string");
	uint32_t c = hex4(ps, q);
	if (c >= 0xdc00 && c < 0xe000)
		jfail(ps, at, "unpaired UTF-16 surrogate in a \\u escape");
	if (c >= 0xd800 && c < 0xdc00) {
		uint32_t lo = hex4(ps, q);
		if (lo < 0xdc00 || lo >= 0xe000)
			jfail(ps, at, "unpaired UTF-16 surrogate in a \\u escape");
		c = 0x10000 + ((c - 0xd800) << 10) + (lo - 0xdc00);
	}
	if (c == 0)
		jfail(ps, at, "\\u0000 (NUL) is not allowed in a string");
	return put_utf8(o, c);
}

/* string = '"' { UTF-8 other than '"', '\' and U+0000..U+001F | escape } '"'
 * Decoding never lengthens a string, so the escaped length bounds it. */
static const char *
parse_string(Parser *ps)
{
	const unsigned char *q = ++ps->p;
	while (q < ps->end && *q != '"')
		q += *q == '\\' ? 2 : 1;
	if (q >= ps->end)
		jfail(ps, ps->p - 1, "unterminated string");
	char *s = arena_alloc(ps->a, (size_t)(q - ps->p) + 1), *o = s;
	while (ps->p < q) {
		if (*ps->p < 0x20)
			jfail(ps, ps->p, "control character in a string");
		if (*ps->p == '\\')
			o = unescape(ps, o, q);
		else
			*o++ = (char)*ps->p++;
	}
	ps->p++;
	return s;
}

static int64_t
parse_int(Parser *ps)
{
	const unsigned char *at = ps->p;
	int64_t n = 0;
	for (int c; (c = peek(ps)) >= '0' && c <= '9'; ps->p++) {
		if (n > (INT64_MAX - (c - '0')) / 10)
			jfail(ps, at, "integer too large");
		n = n * 10 + (c - '0');
	}
	if (at[0] == '0' && ps->p - at > 1)
		jfail(ps, at, "integer with a leading zero");
	int c = peek(ps);
	if (c == '.' || c == 'e' || c == 'E')
		jfail(ps, at, "only integers are allowed, not fractions");
	return n;
}

static Json *parse_value(Parser *ps);

static void
parse_object(Parser *ps, Json *j)
{
	Json **tail = &j->kid;
	ps->p++;
	skip_ws(ps);
	if (peek(ps) == '}') {
		ps->p++;
		return;
	}
	for (;;) {
		skip_ws(ps);
		if (peek(ps) != '"')
			jfail(ps, ps->p, "expected a string key");
		const char *key = parse_string(ps);
		expect(ps, ':', "expected ':' after a key");
		Json *v = parse_value(ps);
		v->key = key;
		*tail = v;
		tail = &v->next;
		j->nkid++;
		if (peek(ps) != ',')
			break;
		ps->p++;
	}
	expect(ps, '}', "expected ',' or '}' after an object member");
}

static void
parse_array(Parser *ps, Json *j)
{
	Json **tail = &j->kid;
	ps->p++;
	skip_ws(ps);
	if (peek(ps) == ']') {
		ps->p++;
		return;
	}
	for (;;) {
		Json *v = parse_value(ps);
		*tail = v;
		tail = &v->next;
		if (++j->nkid > MAXARRAY)
			jfail(ps, ps->beg + (v->pos - 8), "array longer than 64 elements");
		if (peek(ps) != ',')
			break;
		ps->p++;
	}
	expect(ps, ']', "expected ',' or ']' after an array element");
}

static Json *
parse_value(Parser *ps)
{
	skip_ws(ps);
	Json *j = arena_alloc(ps->a, sizeof *j);
	j->pos = (size_t)(ps->p - ps->beg) + 8;
	int c = peek(ps);
	if ((c == '{' || c == '[') && ++ps->depth > MAXDEPTH)
		jfail(ps, ps->p, "nested too deeply");
	if (c == '{') {
		j->kind = J_OBJECT;
		parse_object(ps, j);
		ps->depth--;
	} else if (c == '[') {
		j->kind = J_ARRAY;
		parse_array(ps, j);
		ps->depth--;
	} else if (c == '"') {
		j->kind = J_STRING;
		j->s = parse_string(ps);
	} else if (c >= '0' && c <= '9') {
		j->kind = J_INT;
		j->i = parse_int(ps);
	} else if (c == '-') {
		jfail(ps, ps->p, "negative numbers are not allowed");
	} else if (c < 0) {
		jfail(ps, ps->p, "unexpected end of the header");
	} else {
		jfail(ps, ps->p, "expected an object, array, string or "
		      "non-negative integer (true, false and null are not allowed)");
	}
	skip_ws(ps);
	return j;
}

/* header = ws object ws        (trailing spaces pad it to 8 bytes) */
static Json *
json_parse(Loc loc, Arena *a, const char *text, size_t n)
{
	Parser ps = {.loc = loc, .a = a, .beg = (const unsigned char *)text};
	ps.p = ps.beg;
	ps.end = ps.beg + n;
	const unsigned char *bad = utf8_bad(ps.beg, n);
	if (bad)
		jfail(&ps, bad, "not valid UTF-8");
	skip_ws(&ps);
	if (peek(&ps) != '{')
		jfail(&ps, ps.p, "the header must be a JSON object");
	Json *root = parse_value(&ps);
	if (ps.p < ps.end)
		jfail(&ps, ps.p, "more data after the header object");
	return root;
}

/* ---- From the parsed header to a checked table of tensors ------------- */

static const char *const field_name[] = {"dtype", "shape", "data_offsets"};

static _Noreturn void
entry_fail(const WFile *w, const char *name, const Json *j, const char *msg)
{
	diag_error(w->loc, "tensor '%s': %s (at byte %zu)", name, msg, j->pos);
}

static int
st_lookup(const char *name)
{
	for (int i = 0; i < countof(st_dtype); i++)
		if (strcmp(st_dtype[i].name, name) == 0)
			return i;
	return -1;
}

/* Reads an array of at most max integers into out; returns the count, or
 * -1 when j is something else. */
static int
int_list(const Json *j, int64_t *out, int max)
{
	if (j->kind != J_ARRAY || j->nkid > max)
		return -1;
	int n = 0;
	for (const Json *k = j->kid; k; k = k->next) {
		if (k->kind != J_INT)
			return -1;
		out[n++] = k->i;
	}
	return n;
}

static void
read_field(const WFile *w, Tensor *t, int field, const Json *k)
{
	int64_t off[2];
	switch (field) {
	case 0:
		if (k->kind != J_STRING)
			entry_fail(w, t->name, k, "\"dtype\" must be a string");
		if ((t->st = st_lookup(k->s)) < 0)
			diag_error(w->loc, "tensor '%s': unknown dtype '%s' (at byte "
			           "%zu)", t->name, k->s, k->pos);
		break;
	case 1:
		if (k->kind == J_ARRAY && k->nkid > IR_MAXRANK)
			entry_fail(w, t->name, k, "more dimensions than kiln's "
			           "limit of 8");
		if ((t->rank = int_list(k, t->dim, IR_MAXRANK)) < 0)
			entry_fail(w, t->name, k, "\"shape\" must be an array of "
			           "non-negative integers");
		break;
	case 2:
		if (int_list(k, off, 2) != 2)
			entry_fail(w, t->name, k, "\"data_offsets\" must be an array "
			           "of two non-negative integers");
		t->begin = (uint64_t)off[0];
		t->end = (uint64_t)off[1];
		break;
	}
}

/* entry = '{' "dtype": string, "shape": [int...], "data_offsets": [int, int] '}'
 * in any order, each exactly once, and nothing else. */
static void
read_entry(const WFile *w, Tensor *t, const Json *e)
{
	unsigned seen = 0;
	t->name = e->key;
	t->pos = e->pos;
	if (e->kind != J_OBJECT)
		entry_fail(w, t->name, e, "must be an object");
	for (const Json *k = e->kid; k; k = k->next) {
		int f = 0;
		while (f < countof(field_name) && strcmp(field_name[f], k->key))
			f++;
		if (f == countof(field_name))
			diag_error(w->loc, "tensor '%s': unknown key '%s' (at byte "
			           "%zu)", t->name, k->key, k->pos);
		if (seen & 1u << f)
			diag_error(w->loc, "tensor '%s': key '%s' appears twice "
			           "(at byte %zu)", t->name, k->key, k->pos);
		seen |= 1u << f;
		read_field(w, t, f, k);
	}
	if (seen != 7)
		entry_fail(w, t->name, e, "needs \"dtype\", \"shape\" and "
		           "\"data_offsets\"");
}

/* "__metadata__" = '{' { string: string } '}'; kiln reads nothing in it. */
static void
read_metadata(const WFile *w, const Json *e)
{
	if (e->kind != J_OBJECT)
		diag_error(w->loc, "\"__metadata__\" must be an object of strings "
		           "(at byte %zu)", e->pos);
	for (const Json *k = e->kid; k; k = k->next) {
		if (k->kind != J_STRING)
			diag_error(w->loc, "\"__metadata__\": the value of '%s' must "
			           "be a string (at byte %zu)", k->key, k->pos);
		for (const Json *d = e->kid; d != k; d = d->next)
			if (strcmp(d->key, k->key) == 0)
				diag_error(w->loc, "\"__metadata__\": key '%s' appears "
				           "twice (at byte %zu)", k->key, k->pos);
	}
}

/* The file's own spelling of a tensor's type, e.g. "F32[2,3]". */
static const char *
st_type(Arena *a, const Tensor *t)
{
	const char *s = arena_printf(a, "%s[", st_dtype[t->st].name);
	for (int i = 0; i < t->rank; i++)
		s = arena_printf(a, "%s%s%lld", s, i ? "," : "",
		                 (long long)t->dim[i]);
	return arena_printf(a, "%s]", s);
}

/* Checks that the data_offsets hold numel * element size bytes; the
 * product is kept below 2^63 so it also fits an int64_t type_bytes(). */
static void
check_size(const WFile *w, const Tensor *t)
{
	uint64_t n = (uint64_t)st_dtype[t->st].size;
	for (int i = 0; i < t->rank; i++) {
		uint64_t d = (uint64_t)t->dim[i];
		if (d && n > (uint64_t)INT64_MAX / d)
			diag_error(w->loc, "tensor '%s': %s is too large (at byte "
			           "%zu)", t->name, st_type(w->a, t), t->pos);
		n *= d;
	}
	if (t->end < t->begin)
		diag_error(w->loc, "tensor '%s': data_offsets [%llu, %llu] end "
		           "before they begin (at byte %zu)", t->name,
		           (unsigned long long)t->begin,
		           (unsigned long long)t->end, t->pos);
	if (t->end - t->begin != n)
		diag_error(w->loc, "tensor '%s': %s needs %llu bytes but "
		           "data_offsets [%llu, %llu] hold %llu (at byte %zu)",
		           t->name, st_type(w->a, t), (unsigned long long)n,
		           (unsigned long long)t->begin, (unsigned long long)t->end,
		           (unsigned long long)(t->end - t->begin), t->pos);
}

static int
cmp_name(const void *a, const void *b)
{
	return strcmp(((const Tensor *)a)->name, ((const Tensor *)b)->name);
}

static int
cmp_offsets(const void *a, const void *b)
{
	const Tensor *x = *(Tensor *const *)a, *y = *(Tensor *const *)b;
	if (x->begin != y->begin)
		return x->begin < y->begin ? -1 : 1;
	if (x->end != y->end)
		return x->end < y->end ? -1 : 1;
	return strcmp(x->name, y->name);
}

/* As the reference requires, the tensors must tile the data buffer: in
 * offset order each begins where the previous one ended, and the last
 * ends at the end of the file. */
static void
check_layout(const WFile *w)
{
	uint64_t at = 0, len = w->size - 8 - w->hlen;
	Tensor **by = arena_alloc(w->a, (size_t)w->nt * sizeof *by);
	for (int i = 0; i < w->nt; i++)
		by[i] = &w->t[i];
	qsort(by, (size_t)w->nt, sizeof *by, cmp_offsets);
	for (int i = 0; i < w->nt; i++) {
		const Tensor *t = by[i];
		unsigned long long b = t->begin, e = t->end;
		if (t->begin < at)
			diag_error(w->loc, "tensor '%s': data_offsets [%llu, %llu] "
			           "overlap tensor '%s'", t->name, b, e, by[i - 1]->name);
		if (t->begin > at)
			diag_error(w->loc, "tensor '%s': data_offsets [%llu, %llu] "
			           "leave a gap after data byte %llu (the data must be "
			           "contiguous)", t->name, b, e, (unsigned long long)at);
		if (t->end > len)
			diag_error(w->loc, "tensor '%s': data_offsets [%llu, %llu] run "
			           "past the end of the file, which has %llu bytes of "
			           "data (truncated?)", t->name, b, e,
			           (unsigned long long)len);
		at = t->end;
	}
	if (at != len)
		diag_error(w->loc, "%llu bytes after the last tensor's data "
		           "(the tensors cover %llu of %llu bytes)",
		           (unsigned long long)(len - at), (unsigned long long)at,
		           (unsigned long long)len);
}

static void
read_table(WFile *w, const Json *root)
{
	const Json *meta = NULL;
	w->t = arena_alloc(w->a, (size_t)root->nkid * sizeof *w->t);
	for (const Json *e = root->kid; e; e = e->next) {
		if (strcmp(e->key, "__metadata__") == 0) {
			if (meta)
				diag_error(w->loc, "\"__metadata__\" appears twice (at "
				           "byte %zu)", e->pos);
			read_metadata(w, meta = e);
			continue;
		}
		Tensor *t = &w->t[w->nt++];
		read_entry(w, t, e);
		check_size(w, t);
	}
	qsort(w->t, (size_t)w->nt, sizeof *w->t, cmp_name);
	for (int i = 1; i < w->nt; i++)
		if (strcmp(w->t[i - 1].name, w->t[i].name) == 0)
			diag_error(w->loc, "tensor '%s' appears twice in the header",
			           w->t[i].name);
	check_layout(w);
}

/* ---- Loading ----------------------------------------------------------- */

static void
read_at(const WFile *w, uint64_t off, void *buf, size_t n)
{
	if (n == 0)
		return;
	errno = 0;
	if (fseeko(w->f, (off_t)off, SEEK_SET) != 0 || fread(buf, 1, n, w->f) != n)
		diag_error(w->loc, "cannot read %zu bytes at offset %llu: %s", n,
		           (unsigned long long)off,
		           errno ? strerror(errno) : "unexpected end of file");
}

/* Opens the file and checks the header length against its size. */
static void
open_file(WFile *w, const char *path)
{
	struct stat st;
	unsigned char b[8];
	if (!(w->f = fopen(path, "rb")) || fstat(fileno(w->f), &st) != 0)
		diag_error(w->loc, "cannot read weights: %s", strerror(errno));
	if (!S_ISREG(st.st_mode))
		diag_error(w->loc, "cannot read weights: not a regular file");
	w->size = (uint64_t)st.st_size;
	if (w->size < 8)
		diag_error(w->loc, "%llu bytes is too short for a safetensors file",
		           (unsigned long long)w->size);
	read_at(w, 0, b, 8);
	for (int i = 8; i-- > 0;)
		w->hlen = w->hlen << 8 | b[i];
	if (w->hlen > MAXHEADER)
		diag_error(w->loc, "header length %llu is absurd (the limit is %d "
		           "bytes); is this a safetensors file?",
		           (unsigned long long)w->hlen, MAXHEADER);
	if (w->hlen > w->size - 8)
		diag_error(w->loc, "header length %llu runs past the end of the "
		           "file (%llu bytes); is it truncated?",
		           (unsigned long long)w->hlen, (unsigned long long)w->size);
}

static void
check_bools(const WFile *w, const Tensor *t, const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] > 1)
			diag_error(w->loc, "tensor '%s': BOOL element %zu is %d, not 0 "
			           "or 1", t->name, i, p[i]);
}

static void
load_value(WFile *w, Arena *a, Value *v, Tensor *t)
{
	int dt = st_dtype[t->st].dt;
	if (dt < 0)
		diag_error(w->loc, "tensor '%s': dtype %s is not supported (kiln "
		           "reads F32, F64, I64, I32, I8, U8 and BOOL)", t->name,
		           st_dtype[t->st].name);
	Type ft = {.dtype = dt, .rank = t->rank};
	memcpy(ft.dim, t->dim, sizeof ft.dim);
	if (!type_eq(&v->type, &ft))
		diag_error(w->loc, "tensor '%s': expected %s, got %s", t->name,
		           type_str(w->a, &v->type), type_str(w->a, &ft));
	size_t n = (size_t)(t->end - t->begin);
	if (n != t->end - t->begin)
		diag_error(w->loc, "tensor '%s': too large for this machine",
		           t->name);
	unsigned char *p = arena_alloc(a, n);
	read_at(w, 8 + w->hlen + t->begin, p, n);
	if (dt == DT_BOOL)
		check_bools(w, t, p, n);
	v->data = p;
	v->init = INIT_DATA;
	v->elided = false;
	t->used = true;
}

static Tensor *
find_tensor(WFile *w, const char *name)
{
	Tensor key = {.name = name};
	return bsearch(&key, w->t, (size_t)w->nt, sizeof *w->t, cmp_name);
}

/* A parameter must come from the file; a constant only when it has
 * nothing else to come from.  A parameter of graph g found not by its
 * name but as G.NAME is the one a model calling g trained: a GAN's
 * generator.h.w is the generator's h.w. */
static void
load_slot(WFile *w, Arena *a, const Graph *g, Value *v)
{
	if (v->kind != VK_PARAM && v->kind != VK_CONST)
		return;
	Tensor *t = find_tensor(w, v->name);
	if (!t && v->kind == VK_PARAM)
		t = find_tensor(w, arena_printf(w->a, "%s.%s", g->name, v->name));
	if (t)
		load_value(w, a, v, t);
	else if (v->kind == VK_PARAM || (!v->data && v->init == INIT_DATA))
		diag_error(w->loc, "missing tensor '%s' (%s)", v->name,
		           type_str(w->a, &v->type));
}

static void
warn_unused(const WFile *w)
{
	const char *list = "";
	int n = 0;
	for (int i = 0; i < w->nt; i++) {
		if (w->t[i].used)
			continue;
		if (n < MAXLISTED)
			list = arena_printf(w->a, "%s%s'%s'", list, n ? ", " : "",
			                    w->t[i].name);
		n++;
	}
	if (n > MAXLISTED)
		list = arena_printf(w->a, "%s and %d more", list, n - MAXLISTED);
	if (n)
		diag_warn(w->loc, "ignoring %d tensor%s the model does not have: %s",
		          n, n == 1 ? "" : "s", list);
}

void
weights_load(Module *m, const char *path)
{
	WFile w = {.loc = {.file = path}, .a = arena_new()};
	open_file(&w, path);
	char *h = arena_alloc(w.a, (size_t)w.hlen + 1);
	read_at(&w, 8, h, (size_t)w.hlen);
	read_table(&w, json_parse(w.loc, w.a, h, (size_t)w.hlen));
	for (int i = 0; i < m->ngraph; i++)
		for (int k = 0; k < m->graph[i]->nval; k++)
			load_slot(&w, m->arena, m->graph[i], &m->graph[i]->val[k]);
	warn_unused(&w);
	fclose(w.f);
	arena_free(w.a);
}

/* ---- Saving ------------------------------------------------------------ */

typedef struct {
	const Graph *g;
	const Value *v;
	int st;                     /* row of st_dtype[] */
	int seq;                    /* module order: graphs, then values */
} Entry;

static int
st_of(int dt)
{
	for (int i = 0; i < countof(st_dtype); i++)
		if (st_dtype[i].dt == dt)
			return i;
	die("dtype %s has no safetensors name", dt_name[dt]);
}

/* Adds g->val[i] to e if it is a parameter, making its data first. */
static void
take_param(Graph *g, int i, Entry **e, int *n, int *cap)
{
	Value *v = &g->val[i];
	if (v->kind != VK_PARAM)
		return;
	ir_materialize(g, i);
	if (!v->data)
		diag_error(v->loc, "cannot save param '%s': it has no data%s",
		           v->name, v->elided ? " (it was elided from the .kir; "
		           "load it with --weights)" : "");
	if (utf8_bad((const unsigned char *)v->name, strlen(v->name)))
		diag_error(v->loc, "cannot save param '%s': safetensors names "
		           "must be UTF-8", v->name);
	if (strcmp(v->name, "__metadata__") == 0)
		diag_error(v->loc, "cannot save param '__metadata__': safetensors "
		           "reserves that name");
	Entry x = {g, v, st_of(v->type.dtype), *n};
	VEC_PUSH(*e, *n, *cap, x);
}

static int
cmp_entry_name(const void *a, const void *b)
{
	const Entry *x = a, *y = b;
	int c = strcmp(x->v->name, y->v->name);
	return c ? c : x->seq - y->seq;
}

/* The reference's order: widest alignment first, then by name. */
static int
cmp_entry_layout(const void *a, const void *b)
{
	const Entry *x = a, *y = b;
	if (x->st != y->st)
		return y->st - x->st;
	return strcmp(x->v->name, y->v->name);
}

/* A file holds one tensor per name, so graphs sharing a parameter must
 * agree on it; e becomes sorted by name with one entry per name. */
static void
dedupe(Entry *e, int *n)
{
	int k = 0;
	qsort(e, (size_t)*n, sizeof *e, cmp_entry_name);
	for (int i = 0; i < *n; i++) {
		const Value *a = k ? e[k - 1].v : NULL, *b = e[i].v;
		if (!a || strcmp(a->name, b->name) != 0) {
			e[k++] = e[i];
			continue;
		}
		if (!type_eq(&a->type, &b->type) ||
		    memcmp(a->data, b->data, (size_t)type_bytes(&a->type)) != 0)
			diag_error(b->loc, "cannot save param '%s': graphs @%s and @%s "
			           "give it different values", b->name,
			           e[k - 1].g->name, e[i].g->name);
	}
	*n = k;
}

/* Writes s as a JSON string the way serde_json and Python's json do
 * without ASCII escaping, so names round-trip byte for byte. */
static void
put_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		const char *e = c ? strchr("\"\\\b\f\n\r\t", c) : NULL;
		if (e)
			fprintf(f, "\\%c", "\"\\bfnrt"[e - "\"\\\b\f\n\r\t"]);
		else if (c < 0x20)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

/* The header JSON, padded with spaces to a multiple of 8 bytes so that
 * the data, laid out widest type first, is aligned in the file. */
static char *
header_json(const Entry *e, int n, size_t *len)
{
	char *buf = NULL;
	FILE *f = open_memstream(&buf, len);
	if (!f)
		fatal("cannot make the weights header: %s", strerror(errno));
	fputs("{\"__metadata__\":{\"format\":\"kiln\"}", f);
	unsigned long long off = 0;
	for (int i = 0; i < n; i++) {
		const Type *t = &e[i].v->type;
		unsigned long long size = (unsigned long long)type_bytes(t);
		fputc(',', f);
		put_string(f, e[i].v->name);
		fprintf(f, ":{\"dtype\":\"%s\",\"shape\":[", st_dtype[e[i].st].name);
		for (int k = 0; k < t->rank; k++)
			fprintf(f, "%s%lld", k ? "," : "", (long long)t->dim[k]);
		fprintf(f, "],\"data_offsets\":[%llu,%llu]}", off, off + size);
		off += size;
	}
	fputc('}', f);
	for (long pos = ftell(f); pos % 8; pos++)
		fputc(' ', f);
	int bad = ferror(f);
	if (fclose(f) != 0 || bad)
		fatal("cannot make the weights header: %s", strerror(errno));
	return buf;
}

static size_t
add_size(size_t a, uint64_t b)
{
	if (b > SIZE_MAX - a)
		fatal("weights too large to write (over %zu bytes)", SIZE_MAX);
	return a + (size_t)b;
}

void
weights_save(Module *m, const char *path)
{
	Entry *e = NULL;
	int n = 0, cap = 0;
	for (int i = 0; i < m->ngraph; i++)
		for (int k = 0; k < m->graph[i]->nval; k++)
			take_param(m->graph[i], k, &e, &n, &cap);
	if (n > 0) {
		dedupe(e, &n);
		qsort(e, (size_t)n, sizeof *e, cmp_entry_layout);
	}
	size_t hlen, total;
	char *h = header_json(e, n, &hlen);
	total = add_size(8, hlen);
	for (int i = 0; i < n; i++)
		total = add_size(total, (uint64_t)type_bytes(&e[i].v->type));
	unsigned char *out = xmalloc(total), *p = out + 8;
	for (int i = 0; i < 8; i++)
		out[i] = (unsigned char)((uint64_t)hlen >> 8 * i);
	memcpy(p, h, hlen);
	p += hlen;
	for (int i = 0; i < n; i++) {
		size_t size = (size_t)type_bytes(&e[i].v->type);
		memcpy(p, e[i].v->data, size);
		p += size;
	}
	int rc = write_file_atomic(path, out, total), err = errno;
	free(out);
	free(h);
	free(e);
	if (rc != 0)
		fatal("cannot write '%s': %s", path, strerror(err));
}
