/* memplan.c: places every temporary at an offset in one workspace, so the
 * generated code allocates nothing while it runs.
 *
 * A temporary here is a VK_TEMP value that is not a graph output (outputs
 * live in the caller's buffers).  It is live from its defining node to its
 * last using node, both inclusive, in schedule order, so an op's operands
 * and its result are live together.  The new value of an updated param (a
 * training step's update list) stays live to the end, where it is copied.
 *
 * Three decisions, in this order (docs/passes.md, memplan):
 *   in place:  an elementwise op (ELTWISE class) or a byte copy (reshape,
 *              flatten, dropout) whose operand dies there and has the
 *              result's element count and element size writes its result
 *              over that operand.  The two share one buffer, whose live
 *              range is the union of theirs.
 *   offsets:   buffers are placed best-fit (the smallest gap between the
 *              placed buffers whose live ranges overlap) in several orders,
 *              TensorFlow Lite's greedy by size first, with and without
 *              running in place; the smallest workspace wins.
 *   schedule:  a memory-aware list scheduler proposes other topological
 *              orders; one is kept only when it lowers the workspace or
 *              the peak and raises neither, and the search repeats from it
 *              until nothing improves, so the pass is idempotent.
 * Sets Value.offset (-1 for all else) and g->workspace and may permute
 * g->node.  Requires final types and no dead nodes for reordering (run
 * last).  Deterministic: every choice breaks ties by position.
 * Legend: p a schedule position, v a value, b a buffer.
 */
#include <stdlib.h>
#include <string.h>
#include "passes.h"

enum { ALIGN = 64 };    /* KILN_ALIGN in runtime/kiln.h */
enum { MAXROUNDS = 16 };    /* of the schedule search */

typedef struct {
	int id;             /* buffer number, in order of first position */
	int v;              /* the first value it holds */
	int first, last;    /* live range: schedule positions, inclusive */
	int64_t size;       /* bytes */
	int64_t off;        /* workspace offset once placed */
} Slot;

/* Liveness of one schedule (order[p] is the node at position p). */
typedef struct {
	int *first, *last;  /* per value; first is -1 when not planned */
	int *into;          /* per value: the operand it overwrites, or -1 */
	int *buf;           /* per value: its buffer, or -1 */
	Slot *b;            /* buffers, by first position */
	int nb;
} Live;

/* Ops whose result may overwrite an operand of the same element count:
 * every ELTWISE kernel and generated loop reads element i of such an
 * operand before writing element i of the result (ir/ops.def), and
 * kiln_copy does nothing when source and destination are the same. */
static bool
inplace_op(int op)
{
	return op_get(op)->cls == ELTWISE || op == OP_RESHAPE ||
	       op == OP_FLATTEN || op == OP_DROPOUT;
}

/* Which ops run in place: all that may (the first plan tried), none, or
 * those whose result g's plan put at its operand's offset. */
enum { IP_ALL, IP_NONE, IP_PLANNED };

/* The operand of n (at position p) that its result may overwrite: a
 * planned one that dies at p with the result's count and element size. */
static int
inplace_operand(const Graph *g, const Node *n, const Live *L, int p)
{
	if (!inplace_op(n->op))
		return -1;
	const Type *y = &g->val[n->out].type;
	for (int k = 0; k < n->nin; k++) {
		int o = n->in[k];
		if (o < 0 || L->first[o] < 0 || L->last[o] != p)
			continue;
		const Type *t = &g->val[o].type;
		if (type_numel(t) == type_numel(y) &&
		    dt_size[t->dtype] == dt_size[y->dtype])
			return o;
	}
	return -1;
}

/* Whether v is a temporary the planner places. */
static bool
planned(const Graph *g, const bool *isout, int v)
{
	return g->val[v].kind == VK_TEMP && !isout[v];
}

static bool *
fill_isout(const Graph *g, Arena *a)
{
	bool *isout = arena_alloc(a, (g->nval + 1) * sizeof *isout);
	for (int i = 0; i < g->noutput; i++)
		isout[g->output[i]] = true;
	return isout;
}

/* Fills L for the schedule order[0..g->nnode) from a, running ops in
 * place as ip (IP_) says. */
static void
fill_live(const Graph *g, const int *order, int ip, Arena *a, Live *L)
{
	int nv = g->nval, nn = g->nnode;
	bool *isout = fill_isout(g, a);
	L->first = arena_alloc(a, (nv + 1) * sizeof *L->first);
	L->last = arena_alloc(a, (nv + 1) * sizeof *L->last);
	L->into = arena_alloc(a, (nv + 1) * sizeof *L->into);
	L->buf = arena_alloc(a, (nv + 1) * sizeof *L->buf);
	L->b = arena_alloc(a, (nn + 1) * sizeof *L->b);
	for (int i = 0; i < nv; i++)
		L->first[i] = L->last[i] = L->into[i] = L->buf[i] = -1;
	for (int p = 0; p < nn; p++) {
		const Node *n = &g->node[order[p]];
		if (n->dead)
			continue;
		for (int k = 0; k < n->nin; k++)
			if (n->in[k] >= 0 && L->first[n->in[k]] >= 0)
				L->last[n->in[k]] = p;
		if (planned(g, isout, n->out))
			L->first[n->out] = L->last[n->out] = p;
	}
	for (int i = 0; i < g->nupdate; i++)        /* copied after the run */
		if (L->first[g->update[i].src] >= 0)
			L->last[g->update[i].src] = nn;
	L->nb = 0;
	for (int p = 0; p < nn; p++) {
		const Node *n = &g->node[order[p]];
		int r = n->out;
		if (n->dead || L->first[r] < 0)
			continue;
		int o = ip == IP_NONE ? -1 : inplace_operand(g, n, L, p);
		if (ip == IP_PLANNED && o >= 0 &&
		    g->val[o].offset != g->val[r].offset)
			o = -1;     /* live together, so planned apart */
		if (o >= 0) {   /* o's buffer ended at p: extend it to r's end */
			L->into[r] = o;
			L->buf[r] = L->buf[o];
			L->b[L->buf[r]].last = L->last[r];
			continue;
		}
		L->buf[r] = L->nb;
		L->b[L->nb] = (Slot){L->nb, r, p, L->last[r],
		                     type_bytes(&g->val[r].type), -1};
		L->nb++;
	}
}

/* The most bytes of buffers live at one position, each rounded up to
 * ALIGN: buffers start at aligned offsets, so one of size s keeps the
 * next ALIGNUP(s) bytes from any buffer live at the same time, and the
 * workspace is rounded up too; no plan can be smaller. */
static int64_t
peak(const Live *L, int nn, Arena *a)
{
	int64_t *delta = arena_alloc(a, (nn + 2) * sizeof *delta);
	int64_t alive = 0, most = 0;
	for (int i = 0; i < L->nb; i++) {
		delta[L->b[i].first] += ALIGNUP(L->b[i].size, ALIGN);
		delta[L->b[i].last + 1] -= ALIGNUP(L->b[i].size, ALIGN);
	}
	for (int p = 0; p <= nn; p++) {
		alive += delta[p];
		most = MAX(most, alive);
	}
	return most;
}

/* ---- offsets ----------------------------------------------------------- */

/* The orders buffers are placed in; each ends in a total tie-break so
 * that qsort's instability cannot show. */
static int
bysize(const void *pa, const void *pb)      /* TensorFlow Lite's */
{
	const Slot *a = pa, *b = pb;
	if (a->size != b->size)
		return a->size < b->size ? 1 : -1;
	return a->first - b->first;
}

static int
byfirst(const void *pa, const void *pb)     /* breadth: by first use */
{
	const Slot *a = pa, *b = pb;
	if (a->first != b->first)
		return a->first - b->first;
	return bysize(pa, pb);
}

static int
bylength(const void *pa, const void *pb)    /* longest lived first */
{
	const Slot *a = pa, *b = pb;
	if (a->last - a->first != b->last - b->first)
		return (b->last - b->first) - (a->last - a->first);
	return bysize(pa, pb);
}

static int
byarea(const void *pa, const void *pb)      /* size times lifetime */
{
	const Slot *a = pa, *b = pb;
	int64_t x = a->size * (a->last - a->first + 1);
	int64_t y = b->size * (b->last - b->first + 1);
	if (x != y)
		return x < y ? 1 : -1;
	return bysize(pa, pb);
}

static int (*const strategy[])(const void *, const void *) = {
	bysize, byfirst, bylength, byarea,
};

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

/* Places the buffers of L with every strategy; off[b] receives the
 * offsets of the smallest plan (the first strategy on ties).  Returns
 * its workspace bytes. */
static int64_t
assign(const Live *L, int64_t *off, Arena *a)
{
	int nb = L->nb;
	Slot *s = arena_alloc(a, (nb + 1) * sizeof *s);
	Slot **placed = arena_alloc(a, (nb + 1) * sizeof *placed);
	int64_t best = INT64_MAX;
	for (int k = 0; k < countof(strategy); k++) {
		memcpy(s, L->b, nb * sizeof *s);
		qsort(s, nb, sizeof *s, strategy[k]);
		int64_t end = 0;
		for (int i = 0; i < nb; i++) {
			s[i].off = place(&s[i], placed, i);
			insert(placed, i, &s[i]);
			end = MAX(end, s[i].off + s[i].size);
		}
		end = ALIGNUP(end, ALIGN);
		if (end >= best)
			continue;
		best = end;
		for (int i = 0; i < nb; i++)
			off[s[i].id] = s[i].off;
	}
	return nb ? best : 0;
}

/* ---- schedule ---------------------------------------------------------- */

/* Per-node facts for the list scheduler: distinct operands and users. */
typedef struct {
	int *uses;          /* per value: distinct nodes reading it */
	int *ustart, *user; /* per value: user[ustart[v] .. ustart[v+1]) */
	bool *isout, *pinned;   /* outputs; update sources, live to the end */
} Deps;

/* Whether operand k of n is the first occurrence of its value. */
static bool
first_occurrence(const Node *n, int k)
{
	for (int j = 0; j < k; j++)
		if (n->in[j] == n->in[k])
			return false;
	return n->in[k] >= 0;
}

static void
fill_deps(const Graph *g, Arena *a, Deps *d)
{
	int nv = g->nval;
	d->uses = arena_alloc(a, (nv + 1) * sizeof *d->uses);
	d->ustart = arena_alloc(a, (nv + 2) * sizeof *d->ustart);
	d->isout = fill_isout(g, a);
	d->pinned = arena_alloc(a, (nv + 1) * sizeof *d->pinned);
	for (int i = 0; i < g->nupdate; i++)
		d->pinned[g->update[i].src] = true;
	for (int i = 0; i < g->nnode; i++)
		for (int k = 0; k < g->node[i].nin; k++)
			if (first_occurrence(&g->node[i], k))
				d->uses[g->node[i].in[k]]++;
	for (int v = 0; v < nv; v++)
		d->ustart[v + 1] = d->ustart[v] + d->uses[v];
	int *fill = arena_alloc(a, (nv + 1) * sizeof *fill);
	d->user = arena_alloc(a, (d->ustart[nv] + 1) * sizeof *d->user);
	for (int i = 0; i < g->nnode; i++)
		for (int k = 0; k < g->node[i].nin; k++)
			if (first_occurrence(&g->node[i], k)) {
				int v = g->node[i].in[k];
				d->user[d->ustart[v] + fill[v]++] = i;
			}
}

/* Bytes of planned temporaries node i adds when it runs now, less the
 * bytes of those it frees (left[v]: its readers not yet scheduled). */
static int64_t
net_bytes(const Graph *g, const Deps *d, const int *left, int i)
{
	const Node *n = &g->node[i];
	int64_t net = 0;
	if (planned(g, d->isout, n->out))
		net += d->uses[n->out] ? type_bytes(&g->val[n->out].type) : 0;
	for (int k = 0; k < n->nin; k++) {
		int v = n->in[k];
		if (first_occurrence(n, k) && planned(g, d->isout, v) &&
		    !d->pinned[v] && left[v] == 1)
			net -= type_bytes(&g->val[v].type);
	}
	return net;
}

/* A topological order of g's nodes built by repeatedly running a ready
 * node (one whose temporary operands are all computed): the one that
 * frees the most bytes net, ties and (with eager) any choice between
 * nodes that allocate going to the earliest in the current order cur. */
static int *
schedule(const Graph *g, const Deps *d, const int *cur, bool eager,
         Arena *a)
{
	int nn = g->nnode, nready = 0;
	int *pos = arena_alloc(a, (nn + 1) * sizeof *pos);
	int *wait = arena_alloc(a, (nn + 1) * sizeof *wait);
	int *left = arena_alloc(a, (g->nval + 1) * sizeof *left);
	int *ready = arena_alloc(a, (nn + 1) * sizeof *ready);
	int *order = arena_alloc(a, (nn + 1) * sizeof *order);
	memcpy(left, d->uses, g->nval * sizeof *left);
	for (int p = 0; p < nn; p++)
		pos[cur[p]] = p;
	for (int i = 0; i < nn; i++) {
		const Node *n = &g->node[i];
		for (int k = 0; k < n->nin; k++)
			wait[i] += first_occurrence(n, k) &&
			           g->val[n->in[k]].kind == VK_TEMP;
		if (!wait[i])
			ready[nready++] = i;
	}
	for (int p = 0; p < nn; p++) {
		int best = -1;
		int64_t bestnet = 0;
		for (int r = 0; r < nready; r++) {
			int i = ready[r];
			int64_t net = net_bytes(g, d, left, i);
			if (!eager && net > 0)
				net = 1;    /* allocating: keep the current order */
			if (best < 0 || net < bestnet ||
			    (net == bestnet && pos[i] < pos[ready[best]])) {
				best = r;
				bestnet = net;
			}
		}
		if (best < 0)
			die("memplan: graph @%s is not a DAG", g->name);
		int i = order[p] = ready[best];
		ready[best] = ready[--nready];
		const Node *n = &g->node[i];
		for (int k = 0; k < n->nin; k++)
			if (first_occurrence(n, k))
				left[n->in[k]]--;
		int v = n->out;
		for (int u = d->ustart[v]; u < d->ustart[v + 1]; u++)
			if (--wait[d->user[u]] == 0)
				ready[nready++] = d->user[u];
	}
	return order;
}

/* One schedule's plan: offsets of its buffers, workspace and peak. */
typedef struct {
	int *order;
	Live live;
	int64_t *off;
	int64_t workspace, peak;
} Plan;

static Plan
plan(const Graph *g, int *order, int ip, Arena *a)
{
	Plan pl = {.order = order};
	fill_live(g, order, ip, a, &pl.live);
	pl.off = arena_alloc(a, (pl.live.nb + 1) * sizeof *pl.off);
	pl.workspace = assign(&pl.live, pl.off, a);
	pl.peak = peak(&pl.live, g->nnode, a);
	return pl;
}

/* Whether x uses a smaller workspace, or an equal one with a lower peak. */
static bool
smaller(const Plan *x, const Plan *than)
{
	return x->workspace < than->workspace ||
	       (x->workspace == than->workspace && x->peak < than->peak);
}

/* The plan for order, with or without running in place, whichever is
 * smaller (in place on ties). */
static Plan
plan_order(const Graph *g, int *order, Arena *a)
{
	Plan with = plan(g, order, IP_ALL, a);
	Plan without = plan(g, order, IP_NONE, a);
	return smaller(&without, &with) ? without : with;
}

/* A new schedule is kept only when it lowers the workspace or the peak
 * and raises neither. */
static bool
better(const Plan *x, const Plan *than)
{
	return x->workspace <= than->workspace && x->peak <= than->peak &&
	       (x->workspace < than->workspace || x->peak < than->peak);
}

/* Puts the nodes of g in the order order[0..nnode). */
static void
reorder(Graph *g, const int *order, Arena *a)
{
	if (g->nnode == 0)
		return;     /* g->node may be NULL */
	Node *old = arena_alloc(a, (g->nnode + 1) * sizeof *old);
	memcpy(old, g->node, g->nnode * sizeof *old);
	for (int p = 0; p < g->nnode; p++) {
		g->node[p] = old[order[p]];
		g->val[g->node[p].out].def = p;
	}
}

static bool
has_dead(const Graph *g)
{
	for (int i = 0; i < g->nnode; i++)
		if (g->node[i].dead)
			return true;
	return false;
}

static int *
identity(int n, Arena *a)
{
	int *order = arena_alloc(a, (n + 1) * sizeof *order);
	for (int i = 0; i < n; i++)
		order[i] = i;
	return order;
}

void
pass_memplan(Graph *g)
{
	Arena *scratch = arena_new();
	Plan best = plan_order(g, identity(g->nnode, scratch), scratch);
	if (!has_dead(g)) {
		Deps d;
		fill_deps(g, scratch, &d);
		for (int round = 0; round < MAXROUNDS; round++) {
			bool moved = false;
			for (int eager = 0; eager < 2; eager++) {
				Plan c = plan_order(g, schedule(g, &d, best.order, eager,
				                                scratch), scratch);
				if (better(&c, &best)) {
					best = c;
					moved = true;
				}
			}
			if (!moved)
				break;
		}
	}
	reorder(g, best.order, scratch);
	for (int i = 0; i < g->nval; i++)
		g->val[i].offset = best.live.buf[i] >= 0 ?
		                   best.off[best.live.buf[i]] : -1;
	g->workspace = best.workspace;
	arena_free(scratch);
}

/* ---- figures ----------------------------------------------------------- */

/* naive and lower need no plan; arena is -1 when g is not planned.
 * lower: the buffers alive at one position overlap in time, so no plan
 * can put them in fewer bytes than the sum of their sizes. */
MemStats
memplan_stats(const Graph *g)
{
	Arena *scratch = arena_new();
	Live L;
	fill_live(g, identity(g->nnode, scratch),
	          g->workspace >= 0 ? IP_PLANNED : IP_ALL, scratch, &L);
	MemStats st = {.arena = g->workspace};
	for (int v = 0; v < g->nval; v++)
		if (L.first[v] >= 0)
			st.naive += type_bytes(&g->val[v].type);
	st.lower = peak(&L, g->nnode, scratch);
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
	Live L;
	fill_live(g, identity(g->nnode, scratch),
	          g->workspace >= 0 ? IP_PLANNED : IP_ALL, scratch, &L);
	print_header(f, g);
	for (int p = 0; p < g->nnode; p++) {
		int v = g->node[p].out;
		if (g->node[p].dead || L.first[v] < 0)
			continue;
		fputs("//   ", f);
		ir_print_name(f, '%', g->val[v].name);
		fputs(":", f);
		if (g->workspace >= 0)
			fprintf(f, " offset %lld,", (long long)g->val[v].offset);
		fprintf(f, " %lld bytes, live %d..%d",
		        (long long)type_bytes(&g->val[v].type), L.first[v],
		        L.last[v]);
		if (L.into[v] >= 0) {
			fputs(", in place of ", f);
			ir_print_name(f, '%', g->val[L.into[v]].name);
		}
		fputc('\n', f);
	}
	arena_free(scratch);
}
