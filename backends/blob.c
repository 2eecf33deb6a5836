/* blob.c: the weights blob shared by every backend.
 *
 * All parameters and constants of a graph, in value order, each at an
 * offset aligned to 64 bytes so kernels may assume aligned weights.  The
 * generated code links the blob (see docs/backend-c.md).
 */
#include <string.h>
#include "backend.h"

int64_t
blob_layout(Graph *g, int64_t *off)
{
	int64_t size = 0;
	for (int i = 0; i < g->nval; i++) {
		Value *v = &g->val[i];
		off[i] = -1;
		if (v->kind != VK_PARAM && v->kind != VK_CONST)
			continue;
		if (!v->data && v->init == INIT_DATA)
			diag_error(v->loc, "'%s': its data was elided from this IR; "
			           "give it with --weights FILE", v->name);
		ir_materialize(g, i);
		off[i] = size;
		size = ALIGNUP(size + type_bytes(&v->type), 64);
	}
	return size;
}

unsigned char *
blob_build(Graph *g, const int64_t *off, int64_t size)
{
	unsigned char *p = arena_alloc(g->mod->arena, (size_t)size);
	for (int i = 0; i < g->nval; i++)
		if (off[i] >= 0)
			memcpy(p + off[i], g->val[i].data,
			       (size_t)type_bytes(&g->val[i].type));
	return p;
}
