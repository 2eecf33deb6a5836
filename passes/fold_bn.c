/* fold_bn.c: folds an inference batchnorm into the conv2d, gemm or matmul
 * that produces its input.
 *
 * batchnorm computes y = (x - mean) * s + bias per channel c (axis 1),
 * s = scale / sqrt(var + epsilon).  When x = conv(w, b) is used by the
 * batchnorm alone, y = conv(w * s[o], (b - mean) * s + bias): the weights
 * of output channel o scaled, a new bias.  A rank-2 gemm or matmul has
 * its channels in its columns: the columns of the weight operand b scale
 * and the bias becomes gemm's c (a matmul becomes a gemm).  The folded
 * node takes the batchnorm's place in the schedule and its result, so
 * names and graph outputs stay.
 *
 * Fires only when every batchnorm operand but x and the producer's
 * weights and bias are f32 params or constants with data, and not in a
 * training build (Module.training), whose params change while it runs.
 * The new weights and bias are new params named <name>_bn (a bias that
 * was not there <weights>_bn_bias); the old ones go when dce finds them
 * unused.  The products are computed in double
 * and rounded once.
 */
#include <math.h>
#include <string.h>
#include "passes.h"

/* The epilogue is empty: no activation, no residual. */
static bool
plain(Graph *g, const Node *n)
{
	int act, res;
	return ir_epilogue(g, n, &act, &res) && act == 0 && res < 0;
}

typedef struct {
	int64_t c;                  /* channels */
	double *s, *t;              /* y = x * s[c] + t[c] */
} Affine;

/* The batchnorm at node k as an affine map, or false when its
 * operands are not all fixed. */
static bool
affine(Graph *g, const Node *bn, Affine *f)
{
	const float *sc = ir_fixed_f32(g, bn->in[1]), *bi = ir_fixed_f32(g, bn->in[2]);
	const float *mean = ir_fixed_f32(g, bn->in[3]), *var = ir_fixed_f32(g, bn->in[4]);
	if (!sc || !bi || !mean || !var)
		return false;
	double eps = ir_attr(g, bn, AT_BATCHNORM_EPSILON)->f;
	f->c = type_numel(&g->val[bn->in[1]].type);
	f->s = arena_alloc(g->mod->arena, f->c * sizeof *f->s);
	f->t = arena_alloc(g->mod->arena, f->c * sizeof *f->t);
	for (int64_t c = 0; c < f->c; c++) {
		f->s[c] = sc[c] / sqrt((double)var[c] + eps);
		f->t[c] = bi[c] - mean[c] * f->s[c];
	}
	return true;
}

/* conv2d node p with weights w[O,...], bias b[O] (or none): new weights
 * w*s, new bias b*s + t. */
static bool
fold_conv(Graph *g, int p, const Affine *f)
{
	Node *n = &g->node[p];
	const float *w = ir_fixed_f32(g, n->in[1]);
	int bv = n->nin > 2 ? n->in[2] : -1;
	const float *b = ir_fixed_f32(g, bv);
	if (!w || (bv >= 0 && !b))
		return false;
	Type wt = g->val[n->in[1]].type;
	int64_t per = type_numel(&wt) / wt.dim[0];
	float *nw = arena_alloc(g->mod->arena, type_bytes(&wt) + 1);
	float *nb = arena_alloc(g->mod->arena, f->c * sizeof *nb);
	for (int64_t o = 0; o < f->c; o++) {
		for (int64_t i = 0; i < per; i++)
			nw[o * per + i] = (float)(w[o * per + i] * f->s[o]);
		nb[o] = (float)((b ? b[o] : 0.0) * f->s[o] + f->t[o]);
	}
	Type bt = {.dtype = DT_F32, .rank = 1, .dim = {f->c}};
	int like = n->in[1];
	int v = ir_new_global(g, like, "_bn", &wt, nw);
	int u = ir_new_global(g, bv >= 0 ? bv : like, bv >= 0 ? "_bn" : "_bn_bias",
	                   &bt, nb);
	n = &g->node[p];
	n->in[1] = v;
	if (n->nin < 3)
		n->nin = 3;
	n->in[2] = u;
	return true;
}

/* A rank-2 product p, y = alpha * op(a) @ B + beta * c (a gemm) or a @ B
 * (a matmul, alpha = 1, no c), B the fixed weights b[k,n] or b[n,k] when
 * trans_b: the columns of B scale by s, c becomes beta*c*s + t.  c must
 * be fixed and the same for every row.  Returns the gemm node that
 * replaces p (appended to the schedule), or -1. */
static int
fold_product(Graph *g, int p, const Affine *f)
{
	Node *n = &g->node[p];
	bool gemm = n->op == OP_GEMM;
	Type btype = g->val[n->in[1]].type;
	const Type *bt = &btype;
	const float *b = ir_fixed_f32(g, n->in[1]);
	if (!b || bt->rank != 2 || g->val[n->in[0]].type.rank != 2)
		return -1;
	bool tb = gemm && ir_attr(g, n, AT_GEMM_TRANS_B)->i;
	int cv = gemm && n->nin > 2 ? n->in[2] : -1;
	const float *c = ir_fixed_f32(g, cv);
	double beta = gemm ? ir_attr(g, n, AT_GEMM_BETA)->f : 0.0;
	if (cv >= 0 && !c)
		return -1;
	Type ctv = cv >= 0 ? g->val[cv].type : (Type){0};
	const Type *ct = cv >= 0 ? &ctv : NULL;
	if (ct && type_numel(ct) != 1 && type_numel(ct) != f->c)
		return -1;      /* c differs between rows */
	if (ct && ct->rank == 2 && ct->dim[0] != 1)
		return -1;
	int64_t k = bt->dim[tb], cols = f->c;
	float *nb = arena_alloc(g->mod->arena, type_bytes(bt) + 1);
	float *nc = arena_alloc(g->mod->arena, cols * sizeof *nc);
	for (int64_t j = 0; j < cols; j++) {
		for (int64_t i = 0; i < k; i++) {
			int64_t at = tb ? j * k + i : i * cols + j;
			nb[at] = (float)(b[at] * f->s[j]);
		}
		double cj = c ? c[type_numel(ct) == 1 ? 0 : j] : 0.0;
		nc[j] = (float)(beta * cj * f->s[j] + f->t[j]);
	}
	Type ctype = {.dtype = DT_F32, .rank = 1, .dim = {cols}};
	int like = n->in[1];
	int nbv = ir_new_global(g, like, "_bn", bt, nb);
	int ncv = ir_new_global(g, cv >= 0 ? cv : like, cv >= 0 ? "_bn" : "_bn_bias",
	                     &ctype, nc);
	n = &g->node[p];
	int q = ir_add_node(g, OP_GEMM, n->loc, (int[]){n->in[0], nbv, ncv}, 3);
	n = &g->node[p];
	if (gemm) {
		ir_set_float(g, q, AT_GEMM_ALPHA, ir_attr(g, n, AT_GEMM_ALPHA)->f);
		ir_set_int(g, q, AT_GEMM_TRANS_A, ir_attr(g, n, AT_GEMM_TRANS_A)->i);
		ir_set_int(g, q, AT_GEMM_TRANS_B, tb);
	}
	g->node[p].dead = true;
	return q;
}

void
pass_fold_bn(Graph *g)
{
	if (g->mod->training)
		return;
	int *use = ir_fill_uses(g, g->mod->arena);
	bool changed = false;
	for (int k = 0; k < g->nnode; k++) {
		Node *bn = &g->node[k];
		if (bn->dead || bn->op != OP_BATCHNORM)
			continue;
		int x = bn->in[0], p = g->val[x].def;
		if (p < 0 || use[x] != 1)
			continue;
		Node *n = &g->node[p];
		int rank = g->val[x].type.rank;
		bool conv = n->op == OP_CONV2D &&
		            !ir_attr(g, n, AT_CONV2D_WPANEL)->i;
		bool prod = (n->op == OP_GEMM || n->op == OP_MATMUL) && rank == 2;
		Affine f;
		if (!(conv || prod) || !plain(g, n) || !affine(g, bn, &f))
			continue;
		int q = p;
		if (conv && !fold_conv(g, p, &f))
			continue;
		if (prod && (q = fold_product(g, p, &f)) < 0)
			continue;
		fuse_move(g, q, k);
		changed = true;
	}
	if (changed)
		ir_compact(g);
}
