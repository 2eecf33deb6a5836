/* cgen.h: what the C backend's files share (backends/c/ only).
 *
 * cgen.c emits a model's inference code; trainer.c emits a trainer's
 * step and eval functions with the same node emission, reading inputs
 * from arrays and parameters from the trainer's mutable state.
 */
#ifndef KILN_CGEN_H
#define KILN_CGEN_H

#include "lower.h"

extern const char *const ctype[NDTYPE];   /* C element types */
extern const char *const kdtype[NDTYPE];  /* KILN_F32, ... */

typedef struct {
	Graph *g;
	const CgenOpts *o;
	FILE *f;
	char **infield;     /* C field of each input value, by value index */
	char **outfield;    /* C field of each output, by output index */
	int *outpos;        /* output a temporary is computed into, or -1 */
	int64_t *woff;      /* blob offset of each param/const */
	int *inpos;         /* trainer: in[] index of each input, else NULL */
	int64_t *soff;      /* trainer: state offset of each param, else NULL */
} Gen;

void name_fields(Gen *s);
char *ptr(Gen *s, int v);           /* C expression for v's data */
void emit_node(Gen *s, const Node *n);
void cstring(FILE *f, const char *s);   /* a C string literal */
void emit_float(FILE *f, double x);     /* a float argument, exactly */

/* backends/c/loop.c */
void emit_fused(Gen *s, const Node *n); /* a fused node's loop */

#endif
