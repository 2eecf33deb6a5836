/* memplan.c: places every temporary at an offset in one workspace, so the
 * generated code allocates nothing while it runs.
 *
 * A temporary here is a VK_TEMP value that is not a graph output (outputs
 * live in the caller's buffers).  It is live from its defining node to its
 * last using node, both inclusive, in schedule order, so an op's operands
 * and its result never share memory.  The new value of an updated param
 * (a training step's update list) stays live to the end, where it is
 * copied.  Offsets are assigned greedily by
 * size as TensorFlow Lite's arena planner does: largest first, each into
 * the smallest gap between the already-placed temporaries whose live
 * ranges overlap its own, else after them.  Requires a final schedule (run
 * last); O(T^2) for T temporaries.  Sets Value.offset (-1 for all else) and
 * g->workspace; the plan depends only on types and the schedule, so the
 * pass is deterministic and idempotent.
 */
#include <stdlib.h>
#include "passes.h"

enum { ALIGN = 64 };    /* KILN_ALIGN in runtime/kiln.h */

typedef struct {
	int v;              /* the value */
	int first, last;    /* live range: schedule positions, inclusive */
	int64_t size;       /* bytes */
	int64_t off;        /* workspace offset once placed */
} Slot;

/* Collects the temporaries of g in definition order with their live
 * ranges into *out (from a); returns how many there are. */
static int
fill_live(const Graph *g, Arena *a, Slot **out)
{
	int *slot = arena_alloc(a, (g->nval + 1) * sizeof *slot);
	bool *isout = arena_alloc(a, (g->nval + 1) * sizeof *isout);
	Slot *s = arena_alloc(a, (g->nnode + 1) * sizeof *s);
	int ns = 0;
	for (int i = 0; i < g->nval; i++)
		slot[i] = -1;
	for (int i = 0; i < g->noutput; i++)
		isout[g->output[i]] = true;
	for (int i = 0; i < g->nnode; i++) {
		const Node *n = &g->node[i];
		if (n->dead)
			continue;
		for (int k = 0; k < n->nin; k++)
			if (n->in[k] >= 0 && slot[n->in[k]] >= 0)
				s[slot[n->in[k]]].last = i;
		const Value *v = &g->val[n->out];
		if (v->kind != VK_TEMP || isout[n->out])
			continue;
		slot[n->out] = ns;
		s[ns++] = (Slot){n->out, i, i, type_bytes(&v->type), -1};
	}
	for (int i = 0; i < g->nupdate; i++)        /* copied after the run */
		if (slot[g->update[i].src] >= 0)
			s[slot[g->update[i].src]].last = g->nnode;
	*out = s;
	return ns;
}

/* Largest first; equal sizes in definition order, for determinism. */
static int
bysize(const void *pa, const void *pb)
{
	const Slot *a = pa, *b = pb;
	if (a->size != b->size)
		return a->size < b->size ? 1 : -1;
	return a->first - b->first;
}

/* The offset for s: the smallest gap that fits between the placed slots
 * live at the same time, else the first aligned byte after them all.
 * placed[0..np) is sorted by offset. */
static int64_t
place(const Slot *s, Slot *const *placed, int np)
{
	int64_t best = -1, bestgap = INT64_MAX, end = 0;
	for (int i = 0; i < np; i++) {
		const Slot *p = placed[i];
		if (p->last < s->first || p->first > s->last)
			continue;
		int64_t at = ALIGNUP(end, ALIGN);
		if (at + s->size <= p->off && p->off - at < bestgap) {
			best = at;
			bestgap = p->off - at;
		}
		end = MAX(end, p->off + p->size);
	}
	return best >= 0 ? best : ALIGNUP(end, ALIGN);
}

static void
insert(Slot **placed, int np, Slot *s)
{
	int i = np;
	for (; i > 0 && placed[i - 1]->off > s->off; i--)
		placed[i] = placed[i - 1];
	placed[i] = s;
}

void
pass_memplan(Graph *g)
{
	Arena *scratch = arena_new();
	Slot *s;
	int ns = fill_live(g, scratch, &s);
	Slot **placed = arena_alloc(scratch, (ns + 1) * sizeof *placed);
	int64_t end = 0;
	for (int i = 0; i < g->nval; i++)
		g->val[i].offset = -1;
	qsort(s, ns, sizeof *s, bysize);
	for (int i = 0; i < ns; i++) {
		s[i].off = place(&s[i], placed, i);
		insert(placed, i, &s[i]);
		g->val[s[i].v].offset = s[i].off;
		end = MAX(end, s[i].off + s[i].size);
	}
	g->workspace = ALIGNUP(end, ALIGN);
	arena_free(scratch);
}

/* naive and lower need no plan; arena is -1 when g is not planned.
 * lower: the temporaries alive at one position overlap in time, so no
 * plan can put them in fewer bytes than the sum of their sizes. */
MemStats
memplan_stats(const Graph *g)
{
	Arena *scratch = arena_new();
	Slot *s;
	int ns = fill_live(g, scratch, &s);
	int64_t *delta = arena_alloc(scratch, (g->nnode + 1) * sizeof *delta);
	MemStats st = {.arena = g->workspace};
	for (int i = 0; i < ns; i++) {
		st.naive += s[i].size;
		delta[s[i].first] += s[i].size;
		delta[s[i].last + 1] -= s[i].size;
	}
	int64_t alive = 0;
	for (int i = 0; i < g->nnode; i++) {
		alive += delta[i];
		st.lower = MAX(st.lower, alive);
	}
	arena_free(scratch);
	return st;
}

static void
print_header(FILE *f, const Graph *g)
{
	MemStats st = memplan_stats(g);
	fputs("// memplan ", f);
	ir_print_name(f, '@', g->name);
	if (st.arena < 0)
		fputs(": not planned", f);
	else
		fprintf(f, ": workspace %lld bytes", (long long)st.arena);
	fprintf(f, ", naive %lld, lower bound %lld", (long long)st.naive,
	        (long long)st.lower);
	if (st.arena >= 0 && st.lower > 0)
		fprintf(f, " (%.2fx)", (double)st.arena / (double)st.lower);
	fputc('\n', f);
}

void
memplan_print(FILE *f, const Graph *g)
{
	Arena *scratch = arena_new();
	Slot *s;
	int ns = fill_live(g, scratch, &s);
	print_header(f, g);
	for (int i = 0; i < ns; i++) {
		const Value *v = &g->val[s[i].v];
		fputs("//   ", f);
		ir_print_name(f, '%', v->name);
		fputs(":", f);
		if (g->workspace >= 0)
			fprintf(f, " offset %lld,", (long long)v->offset);
		fprintf(f, " %lld bytes, live %d..%d\n", (long long)s[i].size,
		        s[i].first, s[i].last);
	}
	arena_free(scratch);
}
