/* flops.c: how much arithmetic an op does, for `kiln build --stats`.
 *
 * One rule per op family, beside the shape rules it mirrors: a multiply
 * and an add count as two FLOPs, an elementwise op (and each epilogue
 * step fused into a conv or gemm) as one per result element, a window
 * op as one per tap, a normalization or softmax as a few per element.
 * Data movement (reshape, transpose, gather, pad, ...) counts zero.  The
 * figures are estimates of the work the reference kernels do, exact for
 * the contractions that dominate real models.
 */
#include <string.h>
#include "ir.h"

static int64_t
numel(const Graph *g, int v)
{
	return v >= 0 ? type_numel(&g->val[v].type) : 0;
}

/* The product of dims [from, rank) of value v. */
static int64_t
tail(const Graph *g, int v, int from)
{
	const Type *t = &g->val[v].type;
	int64_t p = 1;
	for (int d = from; d < t->rank; d++)
		p *= t->dim[d];
	return p;
}

static int64_t
window(Graph *g, const Node *n, int kernel_attr)
{
	const Attr *k = ir_attr(g, n, kernel_attr);
	int64_t p = 1;
	for (int i = 0; i < k->n; i++)
		p *= k->ints[i];
	return p;
}

/* A fused epilogue (fuse_epilogue's act attribute and residual operand
 * on conv2d, gemm and matmul): one FLOP per result element for each. */
static int64_t
epilogue(Graph *g, const Node *n, int nplain)
{
	int64_t y = numel(g, n->out), f = 0;
	int act = op_attr_lookup(n->op, "act");
	if (act >= 0) {
		const Attr *a = ir_attr(g, n, act);
		f += a->kind == AK_STRING && strcmp(a->s, "none") != 0 ? y : 0;
	}
	if (n->nin > nplain && n->in[nplain] >= 0)
		f += y;
	return f;
}

/* conv: each result element is a dot product over C/G * kernel taps */
static int64_t
conv(Graph *g, const Node *n)
{
	int64_t y = numel(g, n->out);
	int64_t f = 2 * y * tail(g, n->in[1], 1);
	if (n->nin > 2 && n->in[2] >= 0)
		f += y;                         /* the bias */
	return f + epilogue(g, n, 3);
}

static int64_t
gemm(Graph *g, const Node *n)
{
	const Type *a = &g->val[n->in[0]].type;
	int64_t k = ir_attr(g, n, AT_GEMM_TRANS_A)->i ? a->dim[0] : a->dim[1];
	int64_t y = numel(g, n->out), f = 2 * y * k;
	if (n->nin > 2 && n->in[2] >= 0)
		f += y;                         /* + beta * c */
	return f + epilogue(g, n, 3);
}

/* a fused elementwise loop: one per element for each op of its
 * expression (ir/fused.c) */
static int64_t
fused(Graph *g, const Node *n)
{
	FusedExpr e;
	const char *err = ir_fused_parse(g->mod->arena,
	                                 ir_attr(g, n, AT_FUSED_EXPR)->s,
	                                 n->nin, &e);
	int64_t ops = 0;
	for (int i = 0; !err && i < e.n; i++)
		ops += e.t[i].op >= 0;
	return numel(g, n->out) * MAX(ops, 1);
}

int64_t
ir_flops(Graph *g, const Node *n)
{
	int d = ir_data_operand(n);
	int64_t x = d >= 0 ? numel(g, n->in[d]) : 0, y = numel(g, n->out);
	if (n->op == OP_FUSED)
		return fused(g, n);
	if (op_get(n->op)->cls == ELTWISE)
		return y;
	switch (n->op) {
	case OP_CONV2D: case OP_CONV3D:
		return conv(g, n);
	case OP_CONV2D_TRANSPOSE: case OP_CONV3D_TRANSPOSE:
		/* each input element scatters into O/G * kernel taps */
		return 2 * x * tail(g, n->in[1], 1) +
		       (n->nin > 2 && n->in[2] >= 0 ? y : 0);
	case OP_CONV2D_GRAD_W: case OP_CONV3D_GRAD_W:
		/* dw[o,q,...] sums dy over N and the output positions */
		return 2 * numel(g, n->in[1]) * tail(g, n->out, 1);
	case OP_GEMM:
		return gemm(g, n);
	case OP_MATMUL: {
		const Type *a = &g->val[n->in[0]].type;
		return 2 * y * a->dim[a->rank - 1] + epilogue(g, n, 2);
	}
	case OP_MAXPOOL2D: case OP_MAXPOOL2D_INDICES: case OP_MAXPOOL3D:
	case OP_AVGPOOL2D: case OP_AVGPOOL3D:
		return y * window(g, n, op_get(n->op)->attr0);
	case OP_MAXPOOL2D_GRAD: case OP_MAXPOOL3D_GRAD:
	case OP_AVGPOOL2D_GRAD: case OP_AVGPOOL3D_GRAD:
		return numel(g, n->in[0]) * window(g, n, op_get(n->op)->attr0);
	case OP_LRN:
		return 2 * x * ir_attr(g, n, AT_LRN_SIZE)->i + 3 * x;
	case OP_REDUCE_SUM: case OP_REDUCE_MEAN: case OP_REDUCE_MAX:
	case OP_REDUCE_MIN: case OP_REDUCE_PROD: case OP_ARGMAX: case OP_ARGMIN:
	case OP_CUMSUM: case OP_HARDMAX: case OP_TOPK_VALUES:
	case OP_TOPK_INDICES: case OP_RESIZE: case OP_RANDOM_NORMAL:
	case OP_DROPOUT_TRAIN:
		return MAX(x, y);
	case OP_BATCHNORM:
		return 2 * y;                   /* scale and shift per element */
	case OP_SOFTMAX: case OP_LOG_SOFTMAX: case OP_SOFTMAX_CROSS_ENTROPY:
	case OP_SOFTMAX_CROSS_ENTROPY_GRAD:
		return 4 * x;                   /* max, exp, sum, divide */
	case OP_LAYERNORM: case OP_INSTANCE_NORM:
		return 7 * x;       /* mean, variance, normalize, scale, shift */
	case OP_RESHAPE: case OP_FLATTEN: case OP_TRANSPOSE: case OP_CONCAT:
	case OP_SLICE: case OP_PAD: case OP_GATHER: case OP_EXPAND:
	case OP_TILE: case OP_TRILU: case OP_GATHER_ELEMENTS:
	case OP_DEPTH_TO_SPACE: case OP_SPACE_TO_DEPTH: case OP_GATHER_ND:
	case OP_SCATTER_ND: case OP_SCATTER_ELEMENTS: case OP_DROPOUT:
		return 0;
	default:
		return y;       /* one per result element */
	}
}

int64_t
ir_graph_flops(Graph *g)
{
	int64_t f = 0;
	for (int i = 0; i < g->nnode; i++)
		if (!g->node[i].dead)
			f += ir_flops(g, &g->node[i]);
	return f;
}
