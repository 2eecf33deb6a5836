/* lower.c: each node of a planned graph as the runtime calls that compute
 * it (lower.h), the one switch over op kinds both code generators share.
 *
 * Everything the kernels need that is known at build time is worked out
 * here, once: broadcast strides, the [outer, len, inner] view of an axis,
 * the parameter structs of windows, pads and resizes, the pad's fill value
 * in the tensor's dtype.  The backends only spell the calls.
 */
#include <math.h>
#include <string.h>
#include "kiln.h"
#include "lower.h"

_Static_assert((int)KILN_U64 == (int)DT_U64 && (int)KILN_NDTYPE == (int)NDTYPE,
               "the IR and runtime dtype enums agree: dtypes pass as ints");

typedef struct {
	Graph *g;
	Arena *a;
	KArg arg[IR_MAXIN + 16];
	int narg;
	KCall **calls;
	int *ncall, *cap;
} Low;

/* Data arrays and structs are built in a Fields, then copied. */
enum { MAXFIELD = 24 };
typedef struct {
	KField f[MAXFIELD];
	int n;
} Fields;

static const Type *
ty(Low *l, int v)
{
	return &l->g->val[v].type;
}

static int64_t
ival(Low *l, const Node *n, int id)
{
	return ir_attr(l->g, n, id)->i;
}

static int64_t *
ints(Low *l, const Node *n, int id)
{
	return ir_attr(l->g, n, id)->ints;
}

/* The INTS or INT attribute called name: the 2-D and 3-D window ops
 * share attribute names, not ids. */
static int64_t *
named_ints(Low *l, const Node *n, const char *name)
{
	return ints(l, n, op_attr_lookup(n->op, name));
}

static int64_t
named_ival(Low *l, const Node *n, const char *name)
{
	return ival(l, n, op_attr_lookup(n->op, name));
}

static KArg *
push(Low *l, KArgKind kind)
{
	if (l->narg == countof(l->arg))
		die("lower: too many arguments");
	KArg *a = &l->arg[l->narg++];
	*a = (KArg){.kind = kind, .v = -1};
	return a;
}

/* An integer argument of kind k: KA_INT, KA_I64, KA_U64 or KA_SIZE. */
static void
arg_i(Low *l, KArgKind k, int64_t i)
{
	push(l, k)->i = i;
}

/* A float (KA_F32) or double (KA_F64) argument. */
static void
arg_f(Low *l, KArgKind k, double f)
{
	push(l, k)->f = f;
}

static void
arg_val(Low *l, int v)
{
	push(l, KA_VAL)->v = v;
}

static void
arg_data(Low *l, const KData *d)
{
	push(l, KA_DATA)->d = d;
}

/* Ends the call to kernel for node n (status: it returns kiln_status). */
static void
call(Low *l, const Node *n, const char *kernel, bool status)
{
	if (*l->ncall == *l->cap) {
		int cap = *l->cap ? 2 * *l->cap : 64;
		KCall *c = arena_alloc(l->a, cap * sizeof *c);
		if (*l->ncall)
			memcpy(c, *l->calls, *l->ncall * sizeof *c);
		*l->calls = c;
		*l->cap = cap;
	}
	KArg *args = arena_alloc(l->a, MAX(l->narg, 1) * sizeof *args);
	memcpy(args, l->arg, l->narg * sizeof *args);
	(*l->calls)[(*l->ncall)++] = (KCall){
		.node = n, .kernel = kernel, .arg = args, .narg = l->narg,
		.status = status,
	};
	l->narg = 0;
}

/* ---- constant data */

static KField *
field(Fields *fs, KFieldKind kind, int n)
{
	if (fs->n == MAXFIELD)
		die("lower: too many fields");
	KField *f = &fs->f[fs->n++];
	*f = (KField){.kind = kind, .n = n};
	return f;
}

/* An int or int64_t field of n elements from v (zeros past have); n = 1
 * is a scalar. */
static void
f_ints(Low *l, Fields *fs, KFieldKind kind, const int64_t *v, int have,
       int n)
{
	int64_t *p = arena_alloc(l->a, n * sizeof *p);
	for (int i = 0; i < n; i++)
		p[i] = i < have ? v[i] : 0;
	field(fs, kind, n)->i = p;
}

static void
f_int(Low *l, Fields *fs, int64_t x)
{
	f_ints(l, fs, KF_INT, &x, 1, 1);
}

static void
f_floats(Low *l, Fields *fs, KFieldKind kind, const double *v, int have,
         int n)
{
	double *p = arena_alloc(l->a, n * sizeof *p);
	for (int i = 0; i < n; i++)
		p[i] = i < have ? v[i] : 0.0;
	field(fs, kind, n)->f = p;
}

static void
f_f32(Low *l, Fields *fs, double x)
{
	f_floats(l, fs, KF_F32, &x, 1, 1);
}

static const KData *
data(Low *l, const char *name, const char *ctype, bool array,
     const Fields *fs)
{
	KData *d = arena_alloc(l->a, sizeof *d);
	KField *f = arena_alloc(l->a, fs->n * sizeof *f);
	memcpy(f, fs->f, fs->n * sizeof *f);
	*d = (KData){.name = name, .ctype = ctype, .array = array, .field = f,
	             .nfield = fs->n};
	return d;
}

/* A pointer to a constant int64_t array of n elements (at least one: C
 * has no empty arrays). */
static void
arg_array(Low *l, const char *name, const int64_t *v, int n)
{
	Fields fs = {0};
	f_ints(l, &fs, KF_I64, v, n, MAX(n, 1));
	arg_data(l, data(l, name, "int64_t", true, &fs));
}

/* ---- ops */

/* The kernel node n calls: the registry's name, with the name of the op's
 * dtype (its first data operand's) appended when the name ends in '_',
 * a family with one kernel per dtype (ir/ops.def). */
static const char *
kernel_name(Low *l, const Node *n)
{
	const char *k = op_get(n->op)->kernel;
	size_t len = k ? strlen(k) : 0;
	if (len == 0 || k[len - 1] != '_')
		return k;
	int d = ir_data_operand(n);
	if (d < 0)
		die("%s: a kernel family needs a data operand", op_get(n->op)->name);
	return arena_printf(l->a, "%s%s", k, dt_name[ty(l, n->in[d])->dtype]);
}

/* Each INT and FLOAT attribute in registry order: an int, and a float,
 * except that the clip kernels of dtypes other than f32 take their bounds
 * as double (runtime/kiln.h, KILN_CLIP), from the f32 attribute. */
static void
attr_args(Low *l, const Node *n)
{
	const OpInfo *o = op_get(n->op);
	int d = ir_data_operand(n);
	bool dbl = n->op == OP_CLIP && d >= 0 && ty(l, n->in[d])->dtype != DT_F32;
	for (int i = 0; i < o->nattr; i++) {
		const Attr *a = &l->g->attr[n->attr + i];
		if (a->kind == AK_INT)
			arg_i(l, KA_INT, a->i);
		else if (a->kind == AK_FLOAT && dbl)
			arg_f(l, KA_F64, (float)a->f);
		else if (a->kind == AK_FLOAT)
			arg_f(l, KA_F32, a->f);
		else
			die("%s: an elementwise op's attributes must be INT or FLOAT",
			    o->name);
	}
}

/* A two-operand ELTWISE op: kernel(y, a, b, rank, yd, as, bs, then its
 * attributes). */
static void
lower_binary(Low *l, const Node *n)
{
	const Type *y = ty(l, n->out);
	int64_t as[IR_MAXRANK], bs[IR_MAXRANK];
	type_bcast_strides(ty(l, n->in[0]), y, as);
	type_bcast_strides(ty(l, n->in[1]), y, bs);
	arg_val(l, n->out);
	arg_val(l, n->in[0]);
	arg_val(l, n->in[1]);
	arg_i(l, KA_INT, y->rank);
	arg_array(l, "yd", y->dim, y->rank);
	arg_array(l, "as", as, y->rank);
	arg_array(l, "bs", bs, y->rank);
	attr_args(l, n);
	call(l, n, kernel_name(l, n), false);
}

/* A one-operand ELTWISE op: kernel(y, x, n, then its attributes), so a
 * new one needs no code here. */
static void
lower_unary(Low *l, const Node *n)
{
	arg_val(l, n->out);
	arg_val(l, n->in[0]);
	arg_i(l, KA_I64, type_numel(ty(l, n->out)));
	attr_args(l, n);
	call(l, n, kernel_name(l, n), false);
}

static void
lower_where(Low *l, const Node *n)
{
	const Type *y = ty(l, n->out);
	int64_t cs[IR_MAXRANK], as[IR_MAXRANK], bs[IR_MAXRANK];
	type_bcast_strides(ty(l, n->in[0]), y, cs);
	type_bcast_strides(ty(l, n->in[1]), y, as);
	type_bcast_strides(ty(l, n->in[2]), y, bs);
	for (int k = -1; k < 3; k++)
		arg_val(l, k < 0 ? n->out : n->in[k]);
	arg_i(l, KA_SIZE, dt_size[y->dtype]);
	arg_i(l, KA_INT, y->rank);
	arg_array(l, "yd", y->dim, y->rank);
	arg_array(l, "cs", cs, y->rank);
	arg_array(l, "as", as, y->rank);
	arg_array(l, "bs", bs, y->rank);
	call(l, n, kernel_name(l, n), false);
}

static void
lower_cast(Low *l, const Node *n)
{
	arg_val(l, n->out);
	arg_i(l, KA_INT, ty(l, n->out)->dtype);
	arg_val(l, n->in[0]);
	arg_i(l, KA_INT, ty(l, n->in[0])->dtype);
	arg_i(l, KA_I64, type_numel(ty(l, n->out)));
	call(l, n, kernel_name(l, n), false);
}

/* The fused epilogue of a conv2d, gemm or matmul (its act attribute and
 * its residual, the op's last operand) as struct kiln_epilogue, or NULL
 * when there is none. */
static const KData *
epilogue(Low *l, const Node *n)
{
	int act, res;
	if (!ir_epilogue(l->g, n, &act, &res) || (act == 0 && res < 0))
		return NULL;
	int id = op_attr_lookup(n->op, "act");
	Fields fs = {0};
	f_int(l, &fs, act);
	f_f32(l, &fs, ir_attr(l->g, n, id + 1)->f);
	f_f32(l, &fs, ir_attr(l->g, n, id + 2)->f);
	int *v = arena_alloc(l->a, sizeof *v);
	*v = res;
	field(&fs, KF_PTR, 1)->v = v;
	return data(l, "e", "struct kiln_epilogue", false, &fs);
}

/* The kernel of a node with an epilogue: kiln_X_f32 becomes
 * kiln_X_ep_f32, which takes it last. */
static void
call_kernel_ep(Low *l, const Node *n, const char *k, const KData *e)
{
	if (e) {
		arg_data(l, e);
		k = arena_printf(l->a, "%.*s_ep_f32",
		                 (int)(strlen(k) - strlen("_f32")), k);
	}
	call(l, n, k, false);
}

static void
call_ep(Low *l, const Node *n, const KData *e)
{
	call_kernel_ep(l, n, op_get(n->op)->kernel, e);
}

static void
lower_gemm(Low *l, const Node *n)
{
	const Type *a = ty(l, n->in[0]), *y = ty(l, n->out);
	int64_t ta = ival(l, n, AT_GEMM_TRANS_A), tb = ival(l, n, AT_GEMM_TRANS_B);
	int64_t rs = 0, cs = 0;
	int c = n->nin > 2 ? n->in[2] : -1;
	if (c >= 0) {
		const Type *t = ty(l, c);
		int64_t rows = t->rank == 2 ? t->dim[0] : 1;
		int64_t cols = t->rank >= 1 ? t->dim[t->rank - 1] : 1;
		rs = rows == 1 ? 0 : cols;
		cs = cols == 1 ? 0 : 1;
	}
	const KData *e = epilogue(l, n);
	arg_val(l, n->out);
	arg_val(l, n->in[0]);
	arg_val(l, n->in[1]);
	arg_val(l, c);
	arg_i(l, KA_I64, y->dim[0]);
	arg_i(l, KA_I64, y->dim[1]);
	arg_i(l, KA_I64, a->dim[ta ? 0 : 1]);
	arg_i(l, KA_INT, ta);
	arg_i(l, KA_INT, tb);
	arg_f(l, KA_F32, (float)ir_attr(l->g, n, AT_GEMM_ALPHA)->f);
	arg_f(l, KA_F32, (float)ir_attr(l->g, n, AT_GEMM_BETA)->f);
	arg_i(l, KA_I64, rs);
	arg_i(l, KA_I64, cs);
	call_ep(l, n, e);
}

/* Batch stride of a matmul operand: its matrices are packed, or one
 * matrix is shared by the whole batch.  Other broadcasts are refused. */
static int64_t
batch_stride(Low *l, const Node *n, const Type *t, const Type *y)
{
	int64_t nb = type_numel(t) / (t->dim[t->rank - 1] * t->dim[t->rank - 2]);
	int64_t yb = type_numel(y) / (y->dim[y->rank - 1] * y->dim[y->rank - 2]);
	if (nb == 1)
		return 0;
	if (nb == yb)
		return t->dim[t->rank - 1] * t->dim[t->rank - 2];
	diag_error(n->loc, "matmul: the backends do not handle this batch "
	           "broadcast (%s)", type_str(l->a, t));
}

static void
lower_matmul(Low *l, const Node *n)
{
	const Type *a = ty(l, n->in[0]), *b = ty(l, n->in[1]), *y = ty(l, n->out);
	int64_t m = y->dim[y->rank - 2], nn = y->dim[y->rank - 1];
	const KData *e = epilogue(l, n);
	arg_val(l, n->out);
	arg_val(l, n->in[0]);
	arg_val(l, n->in[1]);
	arg_i(l, KA_I64, type_numel(y) / (m * nn));
	arg_i(l, KA_I64, m);
	arg_i(l, KA_I64, nn);
	arg_i(l, KA_I64, a->dim[a->rank - 1]);
	arg_i(l, KA_I64, batch_stride(l, n, a, y));
	arg_i(l, KA_I64, batch_stride(l, n, b, y));
	call_ep(l, n, e);
}

/* conv2d, conv3d, their transposes and their weight gradients: struct
 * kiln_conv2d for the height and width of input x, kernel spatial sizes
 * wd and output y, or for the 3-D ops struct kiln_conv3d, which adds the
 * depth (spatial dim 0) after those. */
static const KData *
conv_params(Low *l, const Node *n, const Type *x, const int64_t *wd,
            const Type *y)
{
	int nsp = x->rank - 2, e = nsp - 2;     /* e: spatial index of the height */
	const int64_t *xd = x->dim + 2, *yd = y->dim + 2;
	int64_t *st = named_ints(l, n, "strides"), *p = named_ints(l, n, "pads");
	int64_t *d = named_ints(l, n, "dilations");
	int64_t v[] = {
		x->dim[0], x->dim[1], xd[e], xd[e + 1], y->dim[1], wd[e], wd[e + 1],
		yd[e], yd[e + 1], st[e], st[e + 1], p[e], p[e + 1], d[e], d[e + 1],
		named_ival(l, n, "group"),
		xd[0], wd[0], yd[0], st[0], p[0], d[0],   /* the depth, 3-D only */
	};
	Fields fs = {0};
	for (int i = 0; i < (e ? countof(v) : 16); i++)
		f_ints(l, &fs, KF_I64, &v[i], 1, 1);
	fs.f[0].nest = e ? 16 : 0;      /* struct kiln_conv3d's hw */
	return data(l, "p", e ? "struct kiln_conv3d" : "struct kiln_conv2d",
	            false, &fs);
}

static void
lower_conv(Low *l, const Node *n)
{
	const KData *p = conv_params(l, n, ty(l, n->in[0]),
	                             ty(l, n->in[1])->dim + 2, ty(l, n->out));
	const KData *e = epilogue(l, n);
	arg_val(l, n->out);
	arg_val(l, n->in[0]);
	arg_val(l, n->in[1]);
	arg_val(l, n->nin > 2 ? n->in[2] : -1);
	arg_data(l, p);
	bool packed = n->op == OP_CONV2D && ival(l, n, AT_CONV2D_WPANEL);
	call_kernel_ep(l, n, packed ? "kiln_conv2d_pk_f32" :
	               op_get(n->op)->kernel, e);
}

/* The pools and their gradients, the same way: struct kiln_pool2d for
 * input x and output y, or struct kiln_pool3d. */
static const KData *
pool_params(Low *l, const Node *n, const Type *x, const Type *y)
{
	int nsp = x->rank - 2, e = nsp - 2;
	const int64_t *xd = x->dim + 2, *yd = y->dim + 2;
	int64_t *k = named_ints(l, n, "kernel"), *st = named_ints(l, n, "strides");
	int64_t *p = named_ints(l, n, "pads"), *d = named_ints(l, n, "dilations");
	int cip = op_attr_lookup(n->op, "count_include_pad") < 0 ? 0 :
	          (int)named_ival(l, n, "count_include_pad");
	int64_t v[] = {
		x->dim[0], x->dim[1], xd[e], xd[e + 1], yd[e], yd[e + 1], k[e],
		k[e + 1], st[e], st[e + 1], p[e], p[e + 1], d[e], d[e + 1],
	};
	Fields fs = {0};
	for (int i = 0; i < countof(v); i++)
		f_ints(l, &fs, KF_I64, &v[i], 1, 1);
	f_int(l, &fs, cip);
	if (e) {
		int64_t dv[] = {xd[0], yd[0], k[0], st[0], p[0], d[0]};
		fs.f[0].nest = fs.n;        /* struct kiln_pool3d's hw */
		for (int i = 0; i < countof(dv); i++)
			f_ints(l, &fs, KF_I64, &dv[i], 1, 1);
	}
	return data(l, "p", e ? "struct kiln_pool3d" : "struct kiln_pool2d",
	            false, &fs);
}

/* maxpool2d_indices adds its storage order. */
static void
lower_pool(Low *l, const Node *n)
{
	const KData *p = pool_params(l, n, ty(l, n->in[0]), ty(l, n->out));
	arg_val(l, n->out);
	arg_val(l, n->in[0]);
	arg_data(l, p);
	if (n->op == OP_MAXPOOL2D_INDICES)
		arg_i(l, KA_INT, ival(l, n, AT_MAXPOOL2D_INDICES_STORAGE_ORDER));
	call(l, n, kernel_name(l, n), false);
}

static int
axis_arg(Low *l, const Node *n, int id, int rank)
{
	int64_t axis = ival(l, n, id);
	return (int)(axis < 0 ? axis + rank : axis);
}

/* A kernel over x as [outer, len, inner] around axis: (y, x, outer, len,
 * inner) for softmax, log_softmax and hardmax. */
static void
lower_axis3(Low *l, const Node *n, int id)
{
	const Type *x = ty(l, n->in[0]);
	int axis = axis_arg(l, n, id, x->rank);
	int64_t outer, inner;
	type_outer_inner(x, axis, &outer, &inner);
	arg_val(l, n->out);
	arg_val(l, n->in[0]);
	arg_i(l, KA_I64, outer);
	arg_i(l, KA_I64, x->dim[axis]);
	arg_i(l, KA_I64, inner);
	call(l, n, kernel_name(l, n), false);
}

static void
lower_reduce(Low *l, const Node *n)
{
	const Type *x = ty(l, n->in[0]);
	unsigned mask;
	const char *err = shape_reduce_mask(l->g, n, &mask);
	if (err)
		die("%s", err);
	arg_val(l, n->out);
	arg_val(l, n->in[0]);
	arg_i(l, KA_INT, x->rank);
	arg_array(l, "xd", x->dim, x->rank);
	arg_i(l, KA_INT, mask);      /* an unsigned int; the same bits */
	call(l, n, kernel_name(l, n), false);
}

static void
lower_random(Low *l, const Node *n)
{
	arg_val(l, n->out);
	arg_i(l, KA_I64, type_numel(ty(l, n->out)));
	arg_f(l, KA_F32, ir_attr(l->g, n, AT_RANDOM_NORMAL_MEAN)->f);
	arg_f(l, KA_F32, ir_attr(l->g, n, AT_RANDOM_NORMAL_SCALE)->f);
	int64_t seed = ival(l, n, AT_RANDOM_NORMAL_SEED);
	if (n->nin > 0 && n->in[0] >= 0) {     /* a new draw per step */
		KArg *a = push(l, KA_MIX);
		a->i = seed;
		a->v = n->in[0];
	} else {
		arg_i(l, KA_U64, seed);
	}
	call(l, n, kernel_name(l, n), false);
}

/* A copy of x through strides st from offset off into y seen with dims
 * yd: transpose, slice, expand, depth_to_space, space_to_depth. */
static void
lower_strided(Low *l, const Node *n, int rank, const int64_t *yd,
              const int64_t *st, int64_t off)
{
	arg_val(l, n->out);
	arg_val(l, n->in[0]);
	arg_i(l, KA_SIZE, dt_size[ty(l, n->out)->dtype]);
	arg_i(l, KA_INT, rank);
	arg_array(l, "yd", yd, rank);
	arg_array(l, "xs", st, rank);
	arg_i(l, KA_I64, off);
	call(l, n, kernel_name(l, n), false);
}

static void
lower_transpose(Low *l, const Node *n)
{
	int64_t xs[IR_MAXRANK], st[IR_MAXRANK];
	const int64_t *perm = ints(l, n, AT_TRANSPOSE_PERM);
	const Type *x = ty(l, n->in[0]), *y = ty(l, n->out);
	type_strides(x, xs);
	for (int d = 0; d < x->rank; d++)
		st[d] = xs[perm[d]];
	lower_strided(l, n, y->rank, y->dim, st, 0);
}

static void
lower_slice(Low *l, const Node *n)
{
	int64_t start[IR_MAXRANK], step[IR_MAXRANK], count[IR_MAXRANK];
	int64_t xs[IR_MAXRANK], off = 0;
	const Type *x = ty(l, n->in[0]), *y = ty(l, n->out);
	const char *err = shape_slice_params(l->g, n, start, step, count);
	if (err)
		die("%s", err);
	type_strides(x, xs);
	for (int d = 0; d < x->rank; d++) {
		off += start[d] * xs[d];
		xs[d] *= step[d];
	}
	lower_strided(l, n, y->rank, y->dim, xs, off);
}

static void
lower_expand(Low *l, const Node *n)
{
	const Type *y = ty(l, n->out);
	int64_t xs[IR_MAXRANK];
	type_bcast_strides(ty(l, n->in[0]), y, xs);
	lower_strided(l, n, y->rank, y->dim, xs, 0);
}

/* depth_to_space sees y[N,C',H*b,W*b] as [N,C',H,b,W,b] and
 * space_to_depth sees y[N,C*b*b,H',W'] as [N,b,b,C,H',W']; the strides
 * say where each of those six indices moves in x[N,C,H,W]. */
static void
lower_space(Low *l, const Node *n)
{
	const Type *x = ty(l, n->in[0]);
	int64_t c = x->dim[1], h = x->dim[2], w = x->dim[3], hw = h * w;
	if (n->op == OP_SPACE_TO_DEPTH) {
		int64_t b = ival(l, n, AT_SPACE_TO_DEPTH_BLOCKSIZE);
		int64_t yd[6] = {x->dim[0], b, b, c, h / b, w / b};
		int64_t xs[6] = {c * hw, w, 1, hw, b * w, b};
		lower_strided(l, n, 6, yd, xs, 0);
		return;
	}
	int64_t b = ival(l, n, AT_DEPTH_TO_SPACE_BLOCKSIZE), cb = c / (b * b);
	int64_t yd[6] = {x->dim[0], cb, h, b, w, b};
	int64_t dcr[6] = {c * hw, hw, w, b * cb * hw, 1, cb * hw};
	int64_t crd[6] = {c * hw, b * b * hw, w, b * hw, 1, hw};
	bool is_dcr = shape_choice(ir_attr(l->g, n, AT_DEPTH_TO_SPACE_MODE)->s,
	                           shape_d2s_mode) == 0;
	lower_strided(l, n, 6, yd, is_dcr ? dcr : crd, 0);
}

static void
lower_concat(Low *l, const Node *n)
{
	const Type *y = ty(l, n->out);
	int axis = axis_arg(l, n, AT_CONCAT_AXIS, y->rank);
	int64_t outer, inner, len[IR_MAXIN];
	type_outer_inner(y, axis, &outer, &inner);
	int *v = arena_alloc(l->a, n->nin * sizeof *v);
	for (int k = 0; k < n->nin; k++) {
		v[k] = n->in[k];
		len[k] = ty(l, n->in[k])->dim[axis];
	}
	Fields fs = {0};
	KField *f = field(&fs, KF_PTR, n->nin);
	f->v = v;
	arg_val(l, n->out);
	arg_data(l, data(l, "xs", "const void *", true, &fs));
	arg_i(l, KA_INT, n->nin);
	arg_array(l, "len", len, n->nin);
	arg_i(l, KA_I64, outer);
	arg_i(l, KA_I64, inner);
	arg_i(l, KA_SIZE, dt_size[y->dtype]);
	call(l, n, kernel_name(l, n), false);
}

/* The run stops with the kernel's status when an index is out of range. */
static void
lower_gather(Low *l, const Node *n)
{
	const Type *x = ty(l, n->in[0]), *idx = ty(l, n->in[1]);
	int axis = axis_arg(l, n, AT_GATHER_AXIS, x->rank);
	int64_t outer, inner;
	type_outer_inner(x, axis, &outer, &inner);
	arg_val(l, n->out);
	arg_val(l, n->in[0]);
	arg_val(l, n->in[1]);
	arg_i(l, KA_INT, idx->dtype);
	arg_i(l, KA_I64, outer);
	arg_i(l, KA_I64, x->dim[axis]);
	arg_i(l, KA_I64, type_numel(idx));
	arg_i(l, KA_I64, inner);
	arg_i(l, KA_SIZE, dt_size[x->dtype]);
	call(l, n, kernel_name(l, n), true);
}

/* kiln_pad(y, x, esize, &fill, &p): the fill value is converted to x's
 * dtype here by the runtime's own cast, as a run would. */
static void
lower_pad(Low *l, const Node *n)
{
	const Type *x = ty(l, n->in[0]);
	const int64_t *pads = ints(l, n, AT_PAD_PADS);
	Fields fs = {0};
	f_int(l, &fs, x->rank);
	f_ints(l, &fs, KF_I64, x->dim, x->rank, KILN_MAXRANK);
	f_ints(l, &fs, KF_I64, pads, x->rank, KILN_MAXRANK);
	f_ints(l, &fs, KF_I64, pads + x->rank, x->rank, KILN_MAXRANK);
	f_int(l, &fs, shape_choice(ir_attr(l->g, n, AT_PAD_MODE)->s,
	                           shape_pad_mode));
	f_f32(l, &fs, 0);
	const KData *p = data(l, "p", "struct kiln_pad", false, &fs);
	double v = ir_attr(l->g, n, AT_PAD_VALUE)->f;
	unsigned char e[16];
	kiln_cast(e, (kiln_dtype)x->dtype, &v, KILN_F64, 1);
	int64_t bytes[16];
	for (int i = 0; i < dt_size[x->dtype]; i++)
		bytes[i] = e[i];
	Fields ef = {0};
	f_ints(l, &ef, KF_U8, bytes, dt_size[x->dtype], dt_size[x->dtype]);
	arg_val(l, n->out);
	arg_val(l, n->in[0]);
	arg_i(l, KA_SIZE, dt_size[x->dtype]);
	arg_data(l, data(l, "fill", "uint8_t", true, &ef));
	arg_data(l, p);
	call(l, n, kernel_name(l, n), false);
}

/* struct kiln_resize, with ONNX's scale and length_resized per dim worked
 * out here: the scales given, or ydim/xdim and ydim. */
static void
lower_resize(Low *l, const Node *n)
{
	const Type *x = ty(l, n->in[0]), *y = ty(l, n->out);
	const Attr *sc = ir_attr(l->g, n, AT_RESIZE_SCALES);
	const Attr *roi = ir_attr(l->g, n, AT_RESIZE_ROI);
	double scale[IR_MAXRANK], len[IR_MAXRANK];
	for (int d = 0; d < x->rank; d++) {
		scale[d] = sc->n ? sc->floats[d] : (double)y->dim[d] / x->dim[d];
		len[d] = sc->n ? x->dim[d] * sc->floats[d] : (double)y->dim[d];
	}
	Fields fs = {0};
	f_int(l, &fs, x->rank);
	f_ints(l, &fs, KF_I64, x->dim, x->rank, KILN_MAXRANK);
	f_ints(l, &fs, KF_I64, y->dim, y->rank, KILN_MAXRANK);
	f_floats(l, &fs, KF_F64, scale, x->rank, KILN_MAXRANK);
	f_floats(l, &fs, KF_F64, len, x->rank, KILN_MAXRANK);
	f_floats(l, &fs, KF_F64, roi->floats, roi->n, 2 * KILN_MAXRANK);
	f_int(l, &fs, shape_choice(ir_attr(l->g, n, AT_RESIZE_MODE)->s,
	                           shape_resize_mode));
	f_int(l, &fs, shape_choice(ir_attr(l->g, n, AT_RESIZE_COORD)->s,
	                           shape_resize_coord));
	f_int(l, &fs, shape_choice(ir_attr(l->g, n, AT_RESIZE_NEAREST_MODE)->s,
	                           shape_nearest_mode));
	double a = ir_attr(l->g, n, AT_RESIZE_CUBIC_A)->f;
	f_floats(l, &fs, KF_F64, &a, 1, 1);
	f_int(l, &fs, ir_attr(l->g, n, AT_RESIZE_EXCLUDE)->i);
	f_f32(l, &fs, ir_attr(l->g, n, AT_RESIZE_EXTRAPOLATION)->f);
	arg_val(l, n->out);
	arg_val(l, n->in[0]);
	arg_data(l, data(l, "p", "struct kiln_resize", false, &fs));
	call(l, n, kernel_name(l, n), false);
}

/* x as [n, c, inner]. */
static void
arg_nc_inner(Low *l, const Type *x)
{
	arg_i(l, KA_I64, x->dim[0]);
	arg_i(l, KA_I64, x->dim[1]);
	arg_i(l, KA_I64, type_numel(x) / (x->dim[0] * x->dim[1]));
}

static void
lower_batchnorm(Low *l, const Node *n)
{
	for (int k = -1; k < 5; k++)
		arg_val(l, k < 0 ? n->out : n->in[k]);
	arg_nc_inner(l, ty(l, n->in[0]));
	arg_f(l, KA_F32, ir_attr(l->g, n, AT_BATCHNORM_EPSILON)->f);
	call(l, n, kernel_name(l, n), false);
}

static void
lower_layernorm(Low *l, const Node *n)
{
	const Type *x = ty(l, n->in[0]);
	int axis = axis_arg(l, n, AT_LAYERNORM_AXIS, x->rank);
	int64_t outer, inner;
	type_outer_inner(x, axis, &outer, &inner);
	arg_val(l, n->out);
	arg_val(l, n->in[0]);
	arg_val(l, n->in[1]);
	arg_val(l, n->nin > 2 ? n->in[2] : -1);
	arg_i(l, KA_I64, outer);
	arg_i(l, KA_I64, x->dim[axis] * inner);
	arg_f(l, KA_F32, ir_attr(l->g, n, AT_LAYERNORM_EPSILON)->f);
	call(l, n, kernel_name(l, n), false);
}

static void
lower_tile(Low *l, const Node *n)
{
	const Type *x = ty(l, n->in[0]);
	arg_val(l, n->out);
	arg_val(l, n->in[0]);
	arg_i(l, KA_SIZE, dt_size[x->dtype]);
	arg_i(l, KA_INT, x->rank);
	arg_array(l, "xd", x->dim, x->rank);
	arg_array(l, "reps", ints(l, n, AT_TILE_REPEATS), x->rank);
	call(l, n, kernel_name(l, n), false);
}

/* argmax, argmin and cumsum: x as [outer, len, inner], with its dtype. */
static void
lower_axis_op(Low *l, const Node *n)
{
	const Type *x = ty(l, n->in[0]);
	int id = n->op == OP_ARGMAX ? AT_ARGMAX_AXIS :
	         n->op == OP_ARGMIN ? AT_ARGMIN_AXIS : AT_CUMSUM_AXIS;
	int axis = axis_arg(l, n, id, x->rank);
	int64_t outer, inner;
	type_outer_inner(x, axis, &outer, &inner);
	arg_val(l, n->out);
	arg_val(l, n->in[0]);
	arg_i(l, KA_INT, x->dtype);
	arg_i(l, KA_I64, outer);
	arg_i(l, KA_I64, x->dim[axis]);
	arg_i(l, KA_I64, inner);
	if (n->op == OP_ARGMAX || n->op == OP_ARGMIN) {
		arg_i(l, KA_INT, ival(l, n, n->op == OP_ARGMAX ?
		        AT_ARGMAX_SELECT_LAST_INDEX : AT_ARGMIN_SELECT_LAST_INDEX));
	} else {
		arg_i(l, KA_INT, ival(l, n, AT_CUMSUM_EXCLUSIVE));
		arg_i(l, KA_INT, ival(l, n, AT_CUMSUM_REVERSE));
	}
	call(l, n, kernel_name(l, n), false);
}

static void
lower_trilu(Low *l, const Node *n)
{
	const Type *x = ty(l, n->in[0]);
	int64_t rows = x->dim[x->rank - 2], cols = x->dim[x->rank - 1];
	int64_t k = ival(l, n, AT_TRILU_K);
	/* j - i lies in [-rows, cols], so clamping k there changes nothing
	 * and keeps it a plain C literal */
	k = k < -rows ? -rows : k > cols ? cols : k;
	arg_val(l, n->out);
	arg_val(l, n->in[0]);
	arg_i(l, KA_SIZE, dt_size[x->dtype]);
	arg_i(l, KA_I64, type_numel(x) / (rows * cols));
	arg_i(l, KA_I64, rows);
	arg_i(l, KA_I64, cols);
	arg_i(l, KA_INT, ival(l, n, AT_TRILU_UPPER));
	arg_i(l, KA_I64, k);
	call(l, n, kernel_name(l, n), false);
}

/* The run stops with the kernel's status when an index is out of range. */
static void
lower_gather_elements(Low *l, const Node *n)
{
	const Type *x = ty(l, n->in[0]), *idx = ty(l, n->in[1]);
	arg_val(l, n->out);
	arg_val(l, n->in[0]);
	arg_val(l, n->in[1]);
	arg_i(l, KA_INT, idx->dtype);
	arg_i(l, KA_INT, x->rank);
	arg_array(l, "xd", x->dim, x->rank);
	arg_array(l, "id", idx->dim, idx->rank);
	arg_i(l, KA_INT, axis_arg(l, n, AT_GATHER_ELEMENTS_AXIS, x->rank));
	arg_i(l, KA_SIZE, dt_size[x->dtype]);
	call(l, n, kernel_name(l, n), true);
}

static void
lower_lrn(Low *l, const Node *n)
{
	arg_val(l, n->out);
	arg_val(l, n->in[0]);
	arg_nc_inner(l, ty(l, n->in[0]));
	arg_i(l, KA_I64, ival(l, n, AT_LRN_SIZE));
	arg_f(l, KA_F32, ir_attr(l->g, n, AT_LRN_ALPHA)->f);
	arg_f(l, KA_F32, ir_attr(l->g, n, AT_LRN_BETA)->f);
	arg_f(l, KA_F32, ir_attr(l->g, n, AT_LRN_BIAS)->f);
	call(l, n, kernel_name(l, n), false);
}

static void
lower_instance_norm(Low *l, const Node *n)
{
	for (int k = -1; k < 3; k++)
		arg_val(l, k < 0 ? n->out : n->in[k]);
	arg_nc_inner(l, ty(l, n->in[0]));
	arg_f(l, KA_F32, ir_attr(l->g, n, AT_INSTANCE_NORM_EPSILON)->f);
	call(l, n, kernel_name(l, n), false);
}

static int64_t
prod(const int64_t *dim, int from, int to)
{
	int64_t p = 1;
	for (int d = from; d < to; d++)
		p *= dim[d];
	return p;
}

/* x as [batch, dims indexed, inner], idx as [batch, ntuple, m]. */
static void
lower_gather_nd(Low *l, const Node *n)
{
	const Type *x = ty(l, n->in[0]), *idx = ty(l, n->in[1]);
	int b = (int)ival(l, n, AT_GATHER_ND_BATCH_DIMS);
	int m = (int)idx->dim[idx->rank - 1];
	arg_val(l, n->out);
	arg_val(l, n->in[0]);
	arg_val(l, n->in[1]);
	arg_i(l, KA_INT, idx->dtype);
	arg_i(l, KA_I64, prod(x->dim, 0, b));
	arg_i(l, KA_I64, prod(idx->dim, b, idx->rank - 1));
	arg_i(l, KA_INT, m);
	arg_array(l, "dim", x->dim + b, m);
	arg_i(l, KA_I64, prod(x->dim, b + m, x->rank));
	arg_i(l, KA_SIZE, dt_size[x->dtype]);
	call(l, n, kernel_name(l, n), true);
}

static int
reduction_arg(Low *l, const Node *n, int id)
{
	return shape_choice(ir_attr(l->g, n, id)->s, shape_scatter_reduction);
}

/* scatter_nd and scatter_elements begin alike: (y, x, idx, its dtype,
 * updates, their dtype). */
static void
scatter_args(Low *l, const Node *n)
{
	arg_val(l, n->out);
	arg_val(l, n->in[0]);
	arg_val(l, n->in[1]);
	arg_i(l, KA_INT, ty(l, n->in[1])->dtype);
	arg_val(l, n->in[2]);
	arg_i(l, KA_INT, ty(l, n->in[0])->dtype);
}

static void
lower_scatter_nd(Low *l, const Node *n)
{
	const Type *x = ty(l, n->in[0]), *idx = ty(l, n->in[1]);
	int m = (int)idx->dim[idx->rank - 1];
	scatter_args(l, n);
	arg_i(l, KA_INT, reduction_arg(l, n, AT_SCATTER_ND_REDUCTION));
	arg_i(l, KA_I64, prod(idx->dim, 0, idx->rank - 1));
	arg_i(l, KA_INT, m);
	arg_array(l, "dim", x->dim, m);
	arg_i(l, KA_I64, prod(x->dim, m, x->rank));
	call(l, n, kernel_name(l, n), true);
}

static void
lower_scatter_elements(Low *l, const Node *n)
{
	const Type *x = ty(l, n->in[0]), *idx = ty(l, n->in[1]);
	scatter_args(l, n);
	arg_i(l, KA_INT, reduction_arg(l, n, AT_SCATTER_ELEMENTS_REDUCTION));
	arg_i(l, KA_INT, x->rank);
	arg_array(l, "xd", x->dim, x->rank);
	arg_array(l, "id", idx->dim, idx->rank);
	arg_i(l, KA_INT, axis_arg(l, n, AT_SCATTER_ELEMENTS_AXIS, x->rank));
	call(l, n, kernel_name(l, n), true);
}

/* topk_values and topk_indices: one kernel, told which result to write. */
static void
lower_topk(Low *l, const Node *n)
{
	const Type *x = ty(l, n->in[0]);
	bool val = n->op == OP_TOPK_VALUES;
	int axis = axis_arg(l, n, val ? AT_TOPK_VALUES_AXIS :
	                               AT_TOPK_INDICES_AXIS, x->rank);
	int64_t outer, inner;
	type_outer_inner(x, axis, &outer, &inner);
	arg_val(l, n->out);
	arg_val(l, n->in[0]);
	arg_i(l, KA_INT, x->dtype);
	arg_i(l, KA_I64, outer);
	arg_i(l, KA_I64, x->dim[axis]);
	arg_i(l, KA_I64, inner);
	arg_i(l, KA_I64, ival(l, n, val ? AT_TOPK_VALUES_K : AT_TOPK_INDICES_K));
	arg_i(l, KA_INT, ival(l, n, val ? AT_TOPK_VALUES_LARGEST :
	                            AT_TOPK_INDICES_LARGEST));
	arg_i(l, KA_INT, !val);
	call(l, n, kernel_name(l, n), false);
}

/* relu_grad: kernel(dx, dy, x, n) over operands of one shape. */
static void
lower_relu_grad(Low *l, const Node *n)
{
	arg_val(l, n->out);
	arg_val(l, n->in[0]);
	arg_val(l, n->in[1]);
	arg_i(l, KA_I64, type_numel(ty(l, n->out)));
	call(l, n, kernel_name(l, n), false);
}

/* The window gradients: conv2d_grad_w(x, dy), conv3d_grad_w(x, dy),
 * maxpool2d_grad(dy, x), maxpool3d_grad(dy, x), avgpool2d_grad(dy),
 * avgpool3d_grad(dy).  p holds the forward op's parameters for its input
 * (x, or for the average pools dx, which has x's shape), the output
 * sizes from dy (and the convolutions' kernel from the attribute); then
 * kernel(result, the operands..., &p). */
static void
lower_window_grad(Low *l, const Node *n)
{
	bool conv = n->op == OP_CONV2D_GRAD_W || n->op == OP_CONV3D_GRAD_W;
	bool avg = n->op == OP_AVGPOOL2D_GRAD || n->op == OP_AVGPOOL3D_GRAD;
	const KData *p = conv ?
	    conv_params(l, n, ty(l, n->in[0]), named_ints(l, n, "kernel"),
	                ty(l, n->in[1])) :
	    pool_params(l, n, ty(l, avg ? n->out : n->in[1]), ty(l, n->in[0]));
	arg_val(l, n->out);
	arg_val(l, n->in[0]);
	if (!avg)
		arg_val(l, n->in[1]);
	arg_data(l, p);
	call(l, n, kernel_name(l, n), false);
}

/* dropout_train(x, t): the step is read from its scalar operand. */
static void
lower_dropout_train(Low *l, const Node *n)
{
	arg_val(l, n->out);
	arg_val(l, n->in[0]);
	arg_i(l, KA_I64, type_numel(ty(l, n->out)));
	arg_f(l, KA_F32, ir_attr(l->g, n, AT_DROPOUT_TRAIN_RATE)->f);
	arg_i(l, KA_U64, ival(l, n, AT_DROPOUT_TRAIN_SEED));
	push(l, KA_STEP)->v = n->in[1];
	call(l, n, kernel_name(l, n), false);
}

/* softmax_cross_entropy and its gradient (which adds dloss): the run stops
 * with the kernel's status when a label is out of range. */
static void
lower_xent(Low *l, const Node *n)
{
	const Type *z = ty(l, n->in[0]);
	bool grad = n->op == OP_SOFTMAX_CROSS_ENTROPY_GRAD;
	arg_val(l, n->out);
	arg_val(l, n->in[0]);
	arg_val(l, n->in[1]);
	arg_i(l, KA_INT, ty(l, n->in[1])->dtype);
	if (grad)
		arg_val(l, n->in[2]);
	arg_i(l, KA_I64, z->dim[0]);
	arg_i(l, KA_I64, z->dim[1]);
	arg_f(l, KA_F32, ir_attr(l->g, n, grad ?
	        AT_SOFTMAX_CROSS_ENTROPY_GRAD_LABEL_SMOOTHING :
	        AT_SOFTMAX_CROSS_ENTROPY_LABEL_SMOOTHING)->f);
	call(l, n, kernel_name(l, n), true);
}

/* A fused node: its result then its operands, for the backend's loop. */
static void
lower_fused(Low *l, const Node *n)
{
	arg_val(l, n->out);
	for (int k = 0; k < n->nin; k++)
		arg_val(l, n->in[k]);
	call(l, n, NULL, false);
}

/* The one switch over op kinds. */
static void
lower(Low *l, const Node *n)
{
	switch (n->op) {
	case OP_GEMM: lower_gemm(l, n); break;
	case OP_MATMUL: lower_matmul(l, n); break;
	case OP_CONV2D:
	case OP_CONV3D:
	case OP_CONV2D_TRANSPOSE:
	case OP_CONV3D_TRANSPOSE: lower_conv(l, n); break;
	case OP_MAXPOOL2D:
	case OP_MAXPOOL2D_INDICES:
	case OP_AVGPOOL2D:
	case OP_MAXPOOL3D:
	case OP_AVGPOOL3D: lower_pool(l, n); break;
	case OP_ADD:
	case OP_SUB:
	case OP_MUL:
	case OP_DIV:
	case OP_POW:
	case OP_MAX:
	case OP_MIN:
	case OP_MOD:
	case OP_BITSHIFT:
	case OP_EQUAL:
	case OP_LESS:
	case OP_LESS_EQUAL:
	case OP_GREATER:
	case OP_GREATER_EQUAL:
	case OP_AND:
	case OP_OR:
	case OP_XOR: lower_binary(l, n); break;
	case OP_WHERE: lower_where(l, n); break;
	case OP_CAST: lower_cast(l, n); break;
	case OP_SOFTMAX: lower_axis3(l, n, AT_SOFTMAX_AXIS); break;
	case OP_LOG_SOFTMAX: lower_axis3(l, n, AT_LOG_SOFTMAX_AXIS); break;
	case OP_HARDMAX: lower_axis3(l, n, AT_HARDMAX_AXIS); break;
	case OP_REDUCE_SUM:
	case OP_REDUCE_MEAN:
	case OP_REDUCE_MAX:
	case OP_REDUCE_MIN:
	case OP_REDUCE_PROD: lower_reduce(l, n); break;
	case OP_RANDOM_NORMAL: lower_random(l, n); break;
	case OP_DROPOUT:        /* the identity at inference */
	case OP_RESHAPE:
	case OP_FLATTEN:
		arg_val(l, n->out);
		arg_val(l, n->in[0]);
		arg_i(l, KA_SIZE, type_bytes(ty(l, n->out)));
		call(l, n, kernel_name(l, n), false);
		break;
	case OP_TRANSPOSE: lower_transpose(l, n); break;
	case OP_SLICE: lower_slice(l, n); break;
	case OP_CONCAT: lower_concat(l, n); break;
	case OP_GATHER: lower_gather(l, n); break;
	case OP_PAD: lower_pad(l, n); break;
	case OP_RESIZE: lower_resize(l, n); break;
	case OP_BATCHNORM: lower_batchnorm(l, n); break;
	case OP_LAYERNORM: lower_layernorm(l, n); break;
	case OP_EXPAND: lower_expand(l, n); break;
	case OP_DEPTH_TO_SPACE:
	case OP_SPACE_TO_DEPTH: lower_space(l, n); break;
	case OP_TILE: lower_tile(l, n); break;
	case OP_ARGMAX:
	case OP_ARGMIN:
	case OP_CUMSUM: lower_axis_op(l, n); break;
	case OP_TRILU: lower_trilu(l, n); break;
	case OP_GATHER_ELEMENTS: lower_gather_elements(l, n); break;
	case OP_LRN: lower_lrn(l, n); break;
	case OP_INSTANCE_NORM: lower_instance_norm(l, n); break;
	case OP_GATHER_ND: lower_gather_nd(l, n); break;
	case OP_SCATTER_ND: lower_scatter_nd(l, n); break;
	case OP_SCATTER_ELEMENTS: lower_scatter_elements(l, n); break;
	case OP_TOPK_VALUES:
	case OP_TOPK_INDICES: lower_topk(l, n); break;
	case OP_RELU_GRAD: lower_relu_grad(l, n); break;
	case OP_CONV2D_GRAD_W:
	case OP_CONV3D_GRAD_W:
	case OP_MAXPOOL2D_GRAD:
	case OP_MAXPOOL3D_GRAD:
	case OP_AVGPOOL2D_GRAD:
	case OP_AVGPOOL3D_GRAD: lower_window_grad(l, n); break;
	case OP_DROPOUT_TRAIN: lower_dropout_train(l, n); break;
	case OP_SOFTMAX_CROSS_ENTROPY:
	case OP_SOFTMAX_CROSS_ENTROPY_GRAD: lower_xent(l, n); break;
	case OP_FUSED: lower_fused(l, n); break;
	default:
		if (op_get(n->op)->cls == ELTWISE && op_get(n->op)->maxin == 1) {
			lower_unary(l, n);
			break;
		}
		diag_error(n->loc, "%s: the backends have no code for this op",
		           op_get(n->op)->name);
	}
}

void
lower_node(Graph *g, const Node *n, KCall **calls, int *ncall, int *cap)
{
	Low l = {.g = g, .a = g->mod->arena, .calls = calls, .ncall = ncall,
	         .cap = cap};
	lower(&l, n);
}

Lowered *
lower_graph(Graph *g)
{
	Arena *a = g->mod->arena;
	if (g->workspace < 0)
		die("graph '%s' is not planned", g->name);
	Lowered *lw = arena_alloc(a, sizeof *lw);
	*lw = (Lowered){.g = g};
	lw->woff = arena_alloc(a, MAX(g->nval, 1) * sizeof *lw->woff);
	lw->wsize = blob_layout(g, lw->woff);
	lw->inpos = arena_alloc(a, MAX(g->nval, 1) * sizeof *lw->inpos);
	lw->outpos = arena_alloc(a, MAX(g->nval, 1) * sizeof *lw->outpos);
	for (int i = 0; i < g->nval; i++)
		lw->inpos[i] = lw->outpos[i] = -1;
	for (int i = 0; i < g->ninput; i++)
		lw->inpos[g->input[i]] = i;
	/* a temporary output is computed directly into the caller's buffer
	 * of the first output it is */
	for (int i = 0; i < g->noutput; i++) {
		int v = g->output[i];
		if (g->val[v].kind == VK_TEMP && lw->outpos[v] < 0)
			lw->outpos[v] = i;
	}
	int cap = 0;
	for (int i = 0; i < g->nnode; i++)
		if (!g->node[i].dead)
			lower_node(g, &g->node[i], &lw->call, &lw->ncall, &cap);
	/* then every other output is copied into its buffer */
	Low l = {.g = g, .a = a, .calls = &lw->call, .ncall = &lw->ncall,
	         .cap = &cap};
	for (int i = 0; i < g->noutput; i++) {
		int v = g->output[i];
		if (lw->outpos[v] == i)
			continue;
		push(&l, KA_OUT)->i = i;
		arg_val(&l, v);
		arg_i(&l, KA_SIZE, type_bytes(&g->val[v].type));
		call(&l, NULL, "kiln_copy", false);
	}
	return lw;
}

void
lower_loop_space(Graph *g, const Node *n, KSpace *sp)
{
	const Type *y = &g->val[n->out].type;
	int64_t st[IR_MAXIN][IR_MAXRANK];
	for (int x = 0; x < n->nin; x++)
		type_bcast_strides(&g->val[n->in[x]].type, y, st[x]);
	sp->rank = 0;
	for (int d = 0; d < y->rank; d++) {
		if (y->dim[d] == 1)
			continue;
		int r = sp->rank;
		bool merge = r > 0;
		for (int x = 0; x < n->nin && merge; x++)
			merge = sp->st[x][r - 1] == st[x][d] * y->dim[d];
		if (merge)
			sp->dim[--r] *= y->dim[d];
		else
			sp->dim[r] = y->dim[d];
		for (int x = 0; x < n->nin; x++)
			sp->st[x][r] = st[x][d];
		sp->rank = r + 1;
	}
}

KLoc
lower_loc(const Lowered *l, int v)
{
	if (v < 0)
		return (KLoc){LOC_NULL, 0};
	const Value *val = &l->g->val[v];
	switch (val->kind) {
	case VK_INPUT:
		return (KLoc){LOC_INPUT, l->inpos[v]};
	case VK_PARAM:
	case VK_CONST:
		return (KLoc){LOC_WEIGHTS, l->woff[v]};
	default:
		if (l->outpos[v] >= 0)
			return (KLoc){LOC_OUTPUT, l->outpos[v]};
		if (val->offset < 0)
			die("value '%s' has no workspace offset", val->name);
		return (KLoc){LOC_WORKSPACE, val->offset};
	}
}
