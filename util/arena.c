/* arena.c: bump allocation for the compiler, and the one growable array.
 *
 * An Arena hands out zeroed memory from large blocks and frees them all at
 * once.  Each compilation uses one arena for its IR, strings and attributes;
 * it is freed at exit so LeakSanitizer stays quiet.
 *
 * An allocation larger than a block (a model's weights: ResNet-18's are
 * 46 MB) gets a block of its own straight from mmap, asking the kernel for
 * transparent huge pages: mmap's memory is already zero, and touching it
 * takes one page fault per 2 MB instead of per 4 KB, which on this kind
 * of virtual machine halved the time `kiln build` takes for ResNet-18
 * (bench/build_time.sh).
 */
#define _DEFAULT_SOURCE         /* MAP_ANONYMOUS, MADV_HUGEPAGE */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include "util.h"

enum { BLOCK = 1 << 20 };

typedef struct Block Block;
struct Block {
	Block *next;
	size_t used, cap;
	bool mapped;            /* from mmap: munmap it, sizeof(Block) + cap */
	_Alignas(16) unsigned char mem[];
};

struct Arena {
	Block *head;
};

void *
xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p)
		fatal("out of memory (%zu bytes)", n);
	return p;
}

void *
xrealloc(void *p, size_t n)
{
	p = realloc(p, n ? n : 1);
	if (!p)
		fatal("out of memory (%zu bytes)", n);
	return p;
}

Arena *
arena_new(void)
{
	Arena *a = xmalloc(sizeof *a);
	a->head = NULL;
	return a;
}

/* A zeroed block of n bytes, mapped, on huge pages where the kernel has
 * them (madvise may fail: then it is ordinary memory). */
static Block *
big_block(size_t n)
{
	size_t len = sizeof(Block) + n;
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
	               MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		fatal("out of memory (%zu bytes)", n);
#ifdef MADV_HUGEPAGE
	madvise(p, len, MADV_HUGEPAGE);
#endif
	Block *b = p;
	b->cap = n;
	b->mapped = true;
	return b;
}

void *
arena_alloc(Arena *a, size_t n)
{
	Block *b = a->head;
	n = ALIGNUP(n, 16);
	if (n > BLOCK) {        /* its own block, behind the current one */
		b = big_block(n);
		if (a->head) {
			b->next = a->head->next;
			a->head->next = b;
		} else {
			a->head = b;
		}
		b->used = n;
		return b->mem;
	}
	if (!b || b->cap - b->used < n) {
		size_t cap = n > BLOCK ? n : BLOCK;
		b = xmalloc(sizeof *b + cap);
		b->used = 0;
		b->cap = cap;
		b->mapped = false;
		b->next = a->head;
		a->head = b;
	}
	void *p = b->mem + b->used;
	b->used += n;
	memset(p, 0, n);
	return p;
}

char *
arena_strndup(Arena *a, const char *s, size_t n)
{
	char *p = arena_alloc(a, n + 1);
	memcpy(p, s, n);
	return p;
}

char *
arena_strdup(Arena *a, const char *s)
{
	return arena_strndup(a, s, strlen(s));
}

char *
arena_printf(Arena *a, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	char *p = arena_alloc(a, (size_t)n + 1);
	va_start(ap, fmt);
	vsnprintf(p, (size_t)n + 1, fmt, ap);
	va_end(ap);
	return p;
}

void
arena_free(Arena *a)
{
	if (!a)
		return;
	for (Block *b = a->head, *next; b; b = next) {
		next = b->next;
		if (b->mapped)
			munmap(b, sizeof *b + b->cap);
		else
			free(b);
	}
	free(a);
}

void
arena_grow(Arena *a, void **p, int *cap, int n, size_t elsz)
{
	if (n <= *cap)
		return;
	int c = *cap ? *cap * 2 : 16;
	while (c < n)
		c *= 2;
	void *q = arena_alloc(a, (size_t)c * elsz);
	if (*cap)
		memcpy(q, *p, (size_t)*cap * elsz);
	*p = q;
	*cap = c;
}

void
vec_grow(void **p, int *cap, int n, size_t elsz)
{
	if (n <= *cap)
		return;
	int c = *cap ? *cap : 8;
	while (c < n)
		c *= 2;
	*p = xrealloc(*p, (size_t)c * elsz);
	*cap = c;
}
