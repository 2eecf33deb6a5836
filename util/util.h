/* util.h: what every compiler layer shares: the arena, the growable array,
 * source locations and diagnostics.
 *
 * Diagnostics have one path: diag_error() prints `file:line:col: error: msg`,
 * the source line and a caret, then exits with status 1.  Sources are
 * registered with diag_source() so the line can be shown; a location
 * without a line (an ONNX node, a command-line flag) prints just its file.
 * die() is for compiler bugs only and aborts.
 */
#ifndef KILN_UTIL_H
#define KILN_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#define countof(a) ((int)(sizeof(a) / sizeof((a)[0])))
#define MAX(a, b) ((a) > (b) ? (a) : (b))
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define ALIGNUP(x, a) (((x) + (a) - 1) / (a) * (a))

typedef struct Arena Arena;
typedef struct Loc Loc;

struct Loc {
	const char *file;   /* NULL when unknown */
	int line, col;      /* 1-based; 0 when the location has no line */
	const char *node;   /* ONNX node name, or NULL */
	const char *op;     /* with node: the ONNX op type, or NULL */
};

/* util/arena.c */
Arena *arena_new(void);
void *arena_alloc(Arena *a, size_t n);          /* zeroed, 16-byte aligned */
char *arena_strdup(Arena *a, const char *s);
char *arena_strndup(Arena *a, const char *s, size_t n);
char *arena_printf(Arena *a, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void arena_free(Arena *a);
/* Grows *p, an array of elsz-byte elements with *cap slots inside arena
 * a, to hold at least n (the old copy is abandoned to the arena). */
void arena_grow(Arena *a, void **p, int *cap, int n, size_t elsz);
#define APUSH(a, arr, len, cap, x) \
	(arena_grow(a, (void **)&(arr), &(cap), (len) + 1, sizeof(*(arr))), \
	 (arr)[(len)++] = (x))
void *xmalloc(size_t n);
void *xrealloc(void *p, size_t n);
/* Grows *p (an array of elsz-byte elements with *cap slots) to hold at
 * least n elements.  Memory comes from malloc; free it with free(). */
void vec_grow(void **p, int *cap, int n, size_t elsz);
#define VEC_PUSH(arr, len, cap, x) \
	(vec_grow((void **)&(arr), &(cap), (len) + 1, sizeof(*(arr))), \
	 (arr)[(len)++] = (x))

/* util/diag.c */
extern const char *prog_name;                   /* "kiln" */
void diag_source(const char *file, const char *text);
void diag_verror(Loc loc, const char *kind, const char *fmt, va_list ap);
_Noreturn void diag_error(Loc loc, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* diag_error() in two halves, for notes in between: the error and its
 * caret, then (after any diag_note) the context's notes and the exit. */
void diag_error_begin(Loc loc, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
_Noreturn void diag_exit(void);
/* fn prints notes (diag_note) on where an error happened, e.g. the block
 * calls a frontend is inside; called by diag_exit.  NULL: none. */
void diag_set_context(void (*fn)(void));
void diag_warn(Loc loc, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void diag_note(Loc loc, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
_Noreturn void fatal(const char *fmt, ...)       /* error without a location */
	__attribute__((format(printf, 1, 2)));
_Noreturn void die_at(const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
#define die(...) die_at(__FILE__, __LINE__, __VA_ARGS__)
void diag_atexit(void (*fn)(void));             /* cleanup run before exit */
/* Forgets the sources, the context and the cleanup: for a caller that goes
 * on after an error, as the fuzz targets do (their cleanup longjmps). */
void diag_reset(void);
char *read_file(Arena *a, const char *path, size_t *len); /* NULL on error */
/* Writes len bytes to path through a temporary file and rename(); returns
 * 0, or -1 with errno set, leaving any existing file untouched. */
int write_file_atomic(const char *path, const void *data, size_t len);
/* Its first half: writes len bytes to a new temporary file next to path
 * and returns its name (malloc'd) for the caller to rename or unlink;
 * NULL with errno set, and no file left, on failure. */
char *write_file_temp(const char *path, const void *data, size_t len);

#endif
