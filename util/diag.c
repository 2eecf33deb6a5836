/* diag.c: user-facing diagnostics and internal errors.
 *
 * diag_error() prints `file:line:col: error: message`, the source line and
 * a caret under the column, runs the registered cleanup and exits with 1.
 * It is diag_error_begin() then diag_exit(), which a caller splits to put
 * `note:` lines (diag_note) after the error; diag_exit() first prints the
 * notes of the registered context (where a frontend is in the source).
 * Source text comes from diag_source(), which the frontends and the .kir
 * parser call for every buffer they read.  Files are also read here, and
 * written atomically (temporary file, then rename) so a failure never
 * leaves a half-written output.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include "util.h"

const char *prog_name = "kiln";

typedef struct {
	const char *file, *text;
} Source;

static Source *sources;
static int nsource, capsource;
static void (*cleanup)(void);
static void (*context)(void);

void
diag_set_context(void (*fn)(void))
{
	context = fn;
}

void
diag_atexit(void (*fn)(void))
{
	cleanup = fn;
}

void
diag_source(const char *file, const char *text)
{
	Source s = {file, text};
	VEC_PUSH(sources, nsource, capsource, s);
}

static void
free_sources(void)
{
	free(sources);
	sources = NULL;
	nsource = capsource = 0;
}

void
diag_reset(void)
{
	free_sources();
	context = NULL;
	cleanup = NULL;
}

static const char *
source_text(const char *file)
{
	for (int i = nsource - 1; i >= 0; i--)
		if (strcmp(sources[i].file, file) == 0)
			return sources[i].text;
	return NULL;
}

/* Prints the source line of loc and a caret under its column.  Tabs in
 * the line are echoed in the caret's indent so they line up. */
static void
show_line(Loc loc)
{
	const char *p = source_text(loc.file);
	if (!p)
		return;
	for (int line = 1; line < loc.line && *p; p++)
		if (*p == '\n')
			line++;
	const char *end = strchr(p, '\n');
	int len = end ? (int)(end - p) : (int)strlen(p);
	fprintf(stderr, "%.*s\n", len, p);
	for (int i = 0; i < loc.col - 1 && i < len; i++)
		fputc(p[i] == '\t' ? '\t' : ' ', stderr);
	fputs("^\n", stderr);
}

void
diag_verror(Loc loc, const char *kind, const char *fmt, va_list ap)
{
	if (loc.file && loc.line > 0)
		fprintf(stderr, "%s:%d:%d: %s: ", loc.file, loc.line, loc.col, kind);
	else if (loc.file && loc.node && loc.op)
		fprintf(stderr, "%s: node '%s' (%s): %s: ", loc.file, loc.node,
		        loc.op, kind);
	else if (loc.file && loc.node)
		fprintf(stderr, "%s: node '%s': %s: ", loc.file, loc.node, kind);
	else if (loc.file)
		fprintf(stderr, "%s: %s: ", loc.file, kind);
	else
		fprintf(stderr, "%s: %s: ", prog_name, kind);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	if (loc.file && loc.line > 0)
		show_line(loc);
}

static _Noreturn void
quit(int status)
{
	if (cleanup)
		cleanup();
	free_sources();
	exit(status);
}

void
diag_error_begin(Loc loc, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	diag_verror(loc, "error", fmt, ap);
	va_end(ap);
}

void
diag_exit(void)
{
	void (*fn)(void) = context;
	context = NULL;             /* an error inside fn cannot loop */
	if (fn)
		fn();
	quit(1);
}

void
diag_error(Loc loc, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	diag_verror(loc, "error", fmt, ap);
	va_end(ap);
	diag_exit();
}

void
diag_warn(Loc loc, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	diag_verror(loc, "warning", fmt, ap);
	va_end(ap);
}

void
diag_note(Loc loc, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	diag_verror(loc, "note", fmt, ap);
	va_end(ap);
}

void
fatal(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	diag_verror((Loc){0}, "error", fmt, ap);
	va_end(ap);
	quit(1);
}

void
die_at(const char *file, int line, const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "%s: internal error at %s:%d: ", prog_name, file, line);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	abort();
}

/* A regular file is read straight into arena memory of its size (a
 * model's weights can be hundreds of megabytes); a pipe grows a buffer. */
char *
read_file(Arena *a, const char *path, size_t *len)
{
	FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
	if (!f)
		return NULL;
	struct stat st;
	char *p = NULL;
	size_t n = 0;
	int err;
	if (f != stdin && fstat(fileno(f), &st) == 0 && S_ISREG(st.st_mode)) {
		p = arena_alloc(a, (size_t)st.st_size + 1);
		n = fread(p, 1, (size_t)st.st_size, f);
		err = ferror(f) || n != (size_t)st.st_size;
	} else {
		size_t cap = 1 << 16;
		char *buf = xmalloc(cap);
		for (size_t got; (got = fread(buf + n, 1, cap - n - 1, f)) > 0;) {
			n += got;
			if (cap - n - 1 == 0)
				buf = xrealloc(buf, cap *= 2);
		}
		err = ferror(f);
		if (!err)
			p = arena_strndup(a, buf, n);
		free(buf);
	}
	if (f != stdin)
		fclose(f);
	if (err) {
		errno = EIO;
		return NULL;
	}
	if (len)
		*len = n;
	return p;
}

/* mkstemp makes files 0600; an output gets what a plain fopen would give. */
char *
write_file_temp(const char *path, const void *data, size_t len)
{
	size_t n = strlen(path);
	char *tmp = xmalloc(n + 16);
	snprintf(tmp, n + 16, "%s.tmpXXXXXX", path);
	int fd = mkstemp(tmp);
	if (fd < 0) {
		free(tmp);
		return NULL;
	}
	mode_t mask = umask(0);
	umask(mask);
	fchmod(fd, 0666 & ~mask);
	const char *p = data;
	size_t left = len;
	while (left > 0) {
		ssize_t w = write(fd, p, left);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		p += w;
		left -= (size_t)w;
	}
	int err = left ? errno : 0;
	if (close(fd) != 0 && !err)
		err = errno;
	if (err) {
		unlink(tmp);
		free(tmp);
		errno = err;
		return NULL;
	}
	return tmp;
}

int
write_file_atomic(const char *path, const void *data, size_t len)
{
	char *tmp = write_file_temp(path, data, len);
	if (!tmp)
		return -1;
	int err = rename(tmp, path) != 0 ? errno : 0;
	if (err)
		unlink(tmp);
	free(tmp);
	errno = err;
	return err ? -1 : 0;
}
