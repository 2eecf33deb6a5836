/* kiln.h: the kiln runtime, the only header a deployment needs.
 *
 * Generated model code (NAME.c/NAME.h from `kiln build --emit=c`) calls the
 * kernels declared here and nothing else; a standalone executable adds
 * kiln_main() for its command line.  This header includes nothing from the
 * compiler, and the runtime never exits or prints on the caller's behalf,
 * except kiln_main(), which is the command-line front of an executable.
 *
 * Kernels take raw pointers plus dimensions.  Tensors are dense, row-major
 * (C order).  No kernel allocates memory.
 *
 * Dimension legend: n batch, c channels, h/w height/width, oc output
 * channels, kh/kw kernel height/width, oh/ow output height/width,
 * m/n/k matrix rows, columns and inner dimension.
 */
#ifndef KILN_H
#define KILN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define KILN_MAXRANK 8       /* largest tensor rank anywhere in kiln */
#define KILN_ALIGN 64        /* alignment of workspace and weight blobs */

typedef enum kiln_status {
	KILN_OK = 0,
	KILN_ERR_IO,         /* a file could not be opened, read or written */
	KILN_ERR_FORMAT,     /* a file is not in the expected format */
	KILN_ERR_DTYPE,      /* element type differs from the expected one */
	KILN_ERR_SHAPE,      /* shape differs from the expected one */
	KILN_ERR_UNSUPPORTED,/* valid input this runtime does not handle */
	KILN_ERR_ARG,        /* bad argument */
	KILN_ERR_NOMEM,      /* out of memory (setup only, never in a run) */
	KILN_ERR_RANGE,      /* an index tensor holds an out-of-range index */
	KILN_ERR_NONFINITE,  /* a training step computed a NaN or infinity */
} kiln_status;

/* Element types, in the same order as the compiler's DT_ constants. */
typedef enum kiln_dtype {
	KILN_F32, KILN_F64, KILN_I64, KILN_I32, KILN_I8, KILN_U8, KILN_BOOL,
	KILN_F16, KILN_BF16, KILN_I16, KILN_U16, KILN_U32, KILN_U64,
	KILN_NDTYPE
} kiln_dtype;

const char *kiln_dtype_name(kiln_dtype t); /* "f32", "f64", ... */
size_t kiln_dtype_size(kiln_dtype t);      /* bytes per element */
const char *kiln_status_str(kiln_status s);

/* Writes a tensor type the way every kiln message does, f32[1,28,28]
 * (f32[] for a scalar), into buf (truncated to len bytes); returns buf. */
const char *kiln_type_name(char *buf, size_t len, kiln_dtype t, int rank,
                           const int64_t *dim);

/* The error path of the runtime functions that say why they failed:
 * writes "PATH: " (when path is not NULL) and the formatted reason into
 * msg, truncated to msglen bytes (msg may be NULL when msglen is 0), and
 * returns s. */
#ifdef __GNUC__
__attribute__((format(printf, 5, 6)))
#endif
kiln_status kiln_fail(char *msg, size_t msglen, kiln_status s,
                      const char *path, const char *fmt, ...);

/* ---- runtime/threads.c -------------------------------------------------
 * The thread pool of the heavy kernels: the matrix products (gemm.c), the
 * 2-D convolution and its transpose (conv.c) and conv2d's weight gradient
 * (train_ops.c).  They split their outputs so that every element is
 * computed by the same operations whatever the number of threads: results
 * are bitwise identical with one thread or many.
 *
 * kiln_set_threads(n) sets the number of threads, the caller's included:
 * n from 1 (no thread is ever created) to KILN_MAXTHREADS; n < 1 returns
 * to the default, the environment variable KILN_NUM_THREADS, else the
 * number of online CPUs.  kiln_threads() is the number in effect.
 *
 * kiln_parallel_for(n, fn, ctx) calls fn(ctx, lo, hi) on contiguous
 * ranges covering [0, n), one per thread (fewer when n is small), the
 * calling thread running the first, and returns when all have returned.
 * Called from inside fn, or while another thread's call runs, it calls
 * fn(ctx, 0, n) in the calling thread.  The threads are created on the
 * first call that needs them, with 4 MB stacks; where that fails, the
 * work runs on fewer threads.  The pool allocates nothing per call; it
 * is not carried across fork().  The kernels split only calls of more
 * than KILN_PARALLEL_MIN multiply-adds, as waking threads costs time. */
#define KILN_MAXTHREADS 1024
#define KILN_PARALLEL_MIN ((int64_t)1 << 20)
void kiln_set_threads(int n);
int kiln_threads(void);
void kiln_parallel_for(int64_t n,
                       void (*fn)(void *ctx, int64_t lo, int64_t hi),
                       void *ctx);

/* ---- runtime/epilogue.c ------------------------------------------------
 * A fused epilogue: what the conv and GEMM kernels' *_ep_f32 forms apply
 * to each result element v after its bias, y = act(v + r), r the residual
 * element at the same position (or 0 when res is NULL).  The activations
 * are kiln_scalar.h's, so a fused epilogue gives the bits the separate
 * add and activation kernels give.  alpha and beta: clip's lo and hi,
 * leaky_relu's alpha, hardsigmoid's alpha and beta. */
enum kiln_act { KILN_ACT_NONE, KILN_ACT_RELU, KILN_ACT_CLIP,
	KILN_ACT_LEAKY_RELU, KILN_ACT_SIGMOID, KILN_ACT_TANH,
	KILN_ACT_HARDSWISH, KILN_ACT_HARDSIGMOID, KILN_ACT_GELU,
	KILN_ACT_GELU_TANH, KILN_ACT_SILU };
struct kiln_epilogue {
	int act;                  /* enum kiln_act */
	float alpha, beta;
	const float *res;         /* residual with y's layout, or NULL */
};
/* y[i] = act(y[i] + res[off + i]) for i < n (e != NULL). */
void kiln_epilogue_f32(float *y, int64_t n, int64_t off,
                       const struct kiln_epilogue *e);

/* ---- runtime/gemm.c ----------------------------------------------------
 * y[m,n] = alpha * op(a) @ op(b) + beta * c
 * op(a) is a[m,k], or a[k,m] transposed when trans_a; op(b) is b[k,n], or
 * b[n,k] transposed when trans_b.  c may be NULL; otherwise element (i,j)
 * of c is c[i*c_rs + j*c_cs], so strides of 0 broadcast a row, a column or
 * a scalar. */
void kiln_gemm_f32(float *y, const float *a, const float *b, const float *c,
                   int64_t m, int64_t n, int64_t k, int trans_a, int trans_b,
                   float alpha, float beta, int64_t c_rs, int64_t c_cs);

/* kiln_gemm_f32 on matrices inside larger ones, as BLAS sgemm: row r of
 * the stored a (a[m,k], or a[k,m] when trans_a) starts at a + r*lda, of b
 * (b[k,n], or b[n,k] when trans_b) at b + r*ldb, of y at y + r*ldy, and
 * y = alpha * op(a) @ op(b) + beta * y, y not read when beta is 0.  The
 * convolutions multiply pieces of their operands in place with it.
 * Both are blocked and packed, with about 224 KB of stack and no
 * allocation; each element's sum runs in an order fixed by the shapes,
 * so results depend on the inputs alone. */
void kiln_gemm_ld_f32(float *y, int64_t ldy, const float *a, int64_t lda,
                      const float *b, int64_t ldb, int64_t m, int64_t n,
                      int64_t k, int trans_a, int trans_b, float alpha,
                      float beta);

/* The name of the micro-kernel set the products use: "avx512", "avx2"
 * or "generic", the best the CPU has, or the one the environment
 * variable KILN_ISA names if the CPU has it. */
const char *kiln_gemm_isa_name(void);

/* y[p,m,n] = a[p,m,k] @ b[p,k,n] for p < batch, where matrix p of a starts
 * at a + p*a_bs and of b at b + p*b_bs (a stride of 0 broadcasts). */
void kiln_matmul_f32(float *y, const float *a, const float *b, int64_t batch,
                     int64_t m, int64_t n, int64_t k, int64_t a_bs,
                     int64_t b_bs);

/* kiln_gemm_f32 and kiln_matmul_f32 followed by the epilogue e (NULL for
 * none) over y. */
void kiln_gemm_ep_f32(float *y, const float *a, const float *b,
                      const float *c, int64_t m, int64_t n, int64_t k,
                      int trans_a, int trans_b, float alpha, float beta,
                      int64_t c_rs, int64_t c_cs,
                      const struct kiln_epilogue *e);
void kiln_matmul_ep_f32(float *y, const float *a, const float *b,
                        int64_t batch, int64_t m, int64_t n, int64_t k,
                        int64_t a_bs, int64_t b_bs,
                        const struct kiln_epilogue *e);

/* ---- runtime/conv.c ----------------------------------------------------
 * 2-D convolution (cross-correlation, as ONNX Conv), NCHW.
 * x[n,c,h,w], w[oc,c/group,kh,kw], b[oc] or NULL, y[n,oc,oh,ow]:
 * y[n,o,i,j] = b[o] + sum_{q,u,v} x[n, g*c/group + q, i*sh - pt + u*dh,
 *              j*sw - pl + v*dw] * w[o,q,u,v],  g = o / (oc/group),
 * where taps outside the input read as zero. */
struct kiln_conv2d {
	int64_t n, c, h, w;       /* input */
	int64_t oc, kh, kw;       /* weights */
	int64_t oh, ow;           /* output */
	int64_t sh, sw;           /* strides */
	int64_t pt, pl;           /* top and left padding (bottom/right implied) */
	int64_t dh, dw;           /* dilations */
	int64_t group;
};
void kiln_conv2d_f32(float *y, const float *x, const float *w, const float *b,
                     const struct kiln_conv2d *p);
/* kiln_conv2d_f32 with the epilogue e (NULL for none), applied to each
 * piece of the output while it is in cache. */
void kiln_conv2d_ep_f32(float *y, const float *x, const float *w,
                        const float *b, const struct kiln_conv2d *p,
                        const struct kiln_epilogue *e);
/* kiln_conv2d_f32 and kiln_conv2d_ep_f32 with the weights in panels, as
 * kiln_conv2d_pack_weights() lays them out: the matrix product reads
 * them as they are, where the plain forms pack them on every call.
 * kiln_conv2d_pack_weights(wp, w, p): per group, the weights as the
 * matrix w[og, K] (og = oc/group, K = c/group*kh*kw) cut into panels of
 * P = kiln_conv2d_wpanel(p) rows, the last one og % P rows when that is
 * not 0; a panel of r rows is stored column by column, [K][r]:
 *   wp[g*og*K + q*P*K + t*r + i] = w[g*og + q*P + i][t]
 * for row q*P + i of the group, t < K.  The same elements as w,
 * reordered: no padding.  P is KILN_CONV_PANEL, or KILN_CONV_CPANEL for
 * the convs with few output positions and many channels whose product
 * runs along the channels (runtime/conv.c), chosen from p's shapes
 * alone (the input's and output's planes, channels, kernel, strides,
 * padding, dilations and groups; not the batch). */
#define KILN_CONV_PANEL 12
#define KILN_CONV_CPANEL 32
int kiln_conv2d_wpanel(const struct kiln_conv2d *p);
void kiln_conv2d_pack_weights(float *wp, const float *w,
                              const struct kiln_conv2d *p);
void kiln_conv2d_pk_f32(float *y, const float *x, const float *wp,
                        const float *b, const struct kiln_conv2d *p);
void kiln_conv2d_pk_ep_f32(float *y, const float *x, const float *wp,
                           const float *b, const struct kiln_conv2d *p,
                           const struct kiln_epilogue *e);

/* Transposed convolution (ONNX ConvTranspose), NCHW, with the same
 * parameters: x[n,c,h,w], w[c,oc/group,kh,kw], b[oc] or NULL,
 * y[n,oc,oh,ow]; y starts as b, then for every input element and tap
 * y[n, g*oc/group + o, i*sh - pt + u*dh, j*sw - pl + v*dw] +=
 * x[n,c,i,j] * w[c,o,u,v] (c in group g) where that lies inside y. */
void kiln_conv2d_transpose_f32(float *y, const float *x, const float *w,
                               const float *b, const struct kiln_conv2d *p);

/* The im2col pieces the 2-D kernels, and conv2d's weight gradient
 * (runtime/train_ops.c), multiply by.  Group g of image n has the im2col
 * matrix col[K, oh*ow], K = c/group*kh*kw, whose row (q*kh + u)*kw + v,
 * column i*ow + j holds x[n, g*c/group + q, i*sh - pt + u*dh, j*sw - pl +
 * v*dw], or 0 in the padding.  Kernels hold at most KILN_CONV_COLBUF
 * floats of it, on the stack (with the product's, about 350 KB in all).
 * kiln_conv2d_chunks picks the piece size for a rows x cols matrix: nr
 * rows by nc columns, all rows when possible.  kiln_conv2d_im2col writes
 * rows k0..k0+kn-1, columns j0..j0+jn-1 of it, taking x from xg = x +
 * (n*c + g*c/group)*h*w, into col[kn,jn] and returns col with *ld = jn;
 * for a 1x1 kernel of stride 1 without padding the piece is x itself and
 * it returns that, with *ld = h*w, writing nothing. */
#define KILN_CONV_COLBUF 32768
void kiln_conv2d_chunks(const struct kiln_conv2d *p, int64_t rows,
                        int64_t cols, int64_t *nr, int64_t *nc);
const float *kiln_conv2d_im2col(float *col, int64_t *ld, const float *xg,
                                int64_t k0, int64_t kn, int64_t j0,
                                int64_t jn, const struct kiln_conv2d *p);

/* 3-D convolution and transposed convolution, NCDHW: x[n,c,d,h,w],
 * w[oc,c/group,kd,kh,kw] (transposed: w[c,oc/group,kd,kh,kw]), b[oc] or
 * NULL, y[n,oc,od,oh,ow].  hw holds n, c, oc, group and the height and
 * width parameters, exactly as for the 2-D kernels; the depth adds an
 * axis in front of the height with the same rules (pf = front padding,
 * back padding implied by od). */
struct kiln_conv3d {
	struct kiln_conv2d hw;    /* all but the depth */
	int64_t d, kd, od;        /* input, kernel and output depth */
	int64_t sd, pf, dd;       /* depth stride, front padding, dilation */
};
void kiln_conv3d_f32(float *y, const float *x, const float *w, const float *b,
                     const struct kiln_conv3d *p);
void kiln_conv3d_transpose_f32(float *y, const float *x, const float *w,
                               const float *b, const struct kiln_conv3d *p);

/* ---- runtime/pool.c ----------------------------------------------------
 * 2-D max and average pooling, NCHW, x[n,c,h,w] -> y[n,c,oh,ow].
 * Max pooling ignores padded taps.  Average pooling divides by kh*kw when
 * count_include_pad, else by the number of taps inside the input. */
struct kiln_pool2d {
	int64_t n, c, h, w;
	int64_t oh, ow;
	int64_t kh, kw;
	int64_t sh, sw;
	int64_t pt, pl;
	int64_t dh, dw;           /* dilations */
	int count_include_pad;    /* average pooling */
};
void kiln_maxpool2d_f32(float *y, const float *x, const struct kiln_pool2d *p);
/* runtime/pool2.c: max pooling of integers; a window wholly in the
 * padding gives the type's minimum. */
void kiln_maxpool2d_u8(uint8_t *y, const uint8_t *x,
                       const struct kiln_pool2d *p);
void kiln_maxpool2d_i8(int8_t *y, const int8_t *x,
                       const struct kiln_pool2d *p);
void kiln_maxpool2d_i32(int32_t *y, const int32_t *x,
                        const struct kiln_pool2d *p);
void kiln_maxpool2d_i64(int64_t *y, const int64_t *x,
                        const struct kiln_pool2d *p);
/* Where each max of kiln_maxpool2d_f32 is in x: nc*H*W + h*W + w, or
 * nc*H*W + w*H + h when col_major; -1 for a window wholly in the padding. */
void kiln_maxpool2d_indices_f32(int64_t *y, const float *x,
                                const struct kiln_pool2d *p, int col_major);
void kiln_avgpool2d_f32(float *y, const float *x, const struct kiln_pool2d *p);

/* 3-D max and average pooling, NCDHW, x[n,c,d,h,w] -> y[n,c,od,oh,ow]:
 * hw as for 2-D, plus the depth axis in front of the height.  Average
 * pooling with count_include_pad divides by kd*kh*kw. */
struct kiln_pool3d {
	struct kiln_pool2d hw;    /* all but the depth */
	int64_t d, od, kd;        /* input, output and kernel depth */
	int64_t sd, pf, dd;       /* depth stride, front padding, dilation */
};
void kiln_maxpool3d_f32(float *y, const float *x, const struct kiln_pool3d *p);
void kiln_avgpool3d_f32(float *y, const float *x, const struct kiln_pool3d *p);

/* ---- runtime/eltwise.c -------------------------------------------------
 * Binary ops with numpy broadcasting: y has rank dims ydim[]; element at
 * index vector i reads a[sum i[d]*as[d]] and b[sum i[d]*bs[d]], where a
 * broadcast dimension has stride 0.  rank may be 0 (scalars). */
void kiln_add_f32(float *y, const float *a, const float *b, int rank,
                  const int64_t *ydim, const int64_t *as, const int64_t *bs);
void kiln_sub_f32(float *y, const float *a, const float *b, int rank,
                  const int64_t *ydim, const int64_t *as, const int64_t *bs);
void kiln_mul_f32(float *y, const float *a, const float *b, int rank,
                  const int64_t *ydim, const int64_t *as, const int64_t *bs);
void kiln_div_f32(float *y, const float *a, const float *b, int rank,
                  const int64_t *ydim, const int64_t *as, const int64_t *bs);

/* Unary ops over n elements; y may equal x. */
void kiln_relu_f32(float *y, const float *x, int64_t n);
void kiln_sigmoid_f32(float *y, const float *x, int64_t n);
void kiln_tanh_f32(float *y, const float *x, int64_t n);

/* Softmax over the middle axis of x[outer,len,inner]: numerically stable
 * (subtracts the maximum); y may equal x. */
void kiln_softmax_f32(float *y, const float *x, int64_t outer, int64_t len,
                      int64_t inner);

/* Copies nbytes (reshape and flatten); does nothing when y == x. */
void kiln_copy(void *y, const void *x, size_t nbytes);

/* ---- runtime/act.c, reduce.c, random.c ---------------------------------
 * More unary ops over n elements, y = f(x); y may equal x.  Formulas as
 * in ir/ops.def (docs/ops.md); the arguments after n are the op's
 * attributes in registry order.  gelu: approximate 0 is the exact erf
 * form, 1 the tanh approximation.  clip: hi wins when lo > hi; NaN stays
 * NaN. */
void kiln_exp_f32(float *y, const float *x, int64_t n);
void kiln_log_f32(float *y, const float *x, int64_t n);
void kiln_sqrt_f32(float *y, const float *x, int64_t n);
void kiln_neg_f32(float *y, const float *x, int64_t n);
void kiln_abs_f32(float *y, const float *x, int64_t n);
void kiln_leaky_relu_f32(float *y, const float *x, int64_t n, float alpha);
void kiln_elu_f32(float *y, const float *x, int64_t n, float alpha);
void kiln_selu_f32(float *y, const float *x, int64_t n, float alpha,
                   float gamma);
void kiln_gelu_f32(float *y, const float *x, int64_t n, int approximate);
void kiln_silu_f32(float *y, const float *x, int64_t n);
void kiln_hardswish_f32(float *y, const float *x, int64_t n);
void kiln_hardsigmoid_f32(float *y, const float *x, int64_t n, float alpha,
                          float beta);
void kiln_clip_f32(float *y, const float *x, int64_t n, float lo, float hi);
/* runtime/eltwise2.c: clip of f64 and the integers; for integers the
 * bounds are ceil(lo) and floor(hi), limited to the type's range (a NaN
 * bound is none). */
#define KILN_CLIP(dt, T) \
	void kiln_clip_##dt(T *y, const T *x, int64_t n, double lo, double hi);
KILN_CLIP(f64, double)
KILN_CLIP(i64, int64_t)
KILN_CLIP(i32, int32_t)
KILN_CLIP(i8, int8_t)
KILN_CLIP(u8, uint8_t)
KILN_CLIP(i16, int16_t)
KILN_CLIP(u16, uint16_t)
KILN_CLIP(u32, uint32_t)
KILN_CLIP(u64, uint64_t)
#undef KILN_CLIP

/* Reductions of x[dim[0],...,dim[rank-1]] over the dims d whose bit
 * (1u << d) is set in mask; y holds one element per index of the kept
 * dims, in order (keeping reduced dims as size 1 or not does not change
 * the layout).  mask 0 copies x; rank may be 0.  Sums are taken in
 * double.  max is NaN when any reduced element is.  y must not overlap x. */
void kiln_reduce_sum_f32(float *y, const float *x, int rank,
                         const int64_t *dim, unsigned mask);
void kiln_reduce_mean_f32(float *y, const float *x, int rank,
                          const int64_t *dim, unsigned mask);
void kiln_reduce_max_f32(float *y, const float *x, int rank,
                         const int64_t *dim, unsigned mask);

/* Log-softmax over the middle axis of x[outer,len,inner]:
 * y = x - max - ln(sum e^(x - max)); y may equal x. */
void kiln_log_softmax_f32(float *y, const float *x, int64_t outer,
                          int64_t len, int64_t inner);

/* Fills y[0..n) with mean + scale * z, z standard normal: splitmix64 from
 * seed and Box-Muller (runtime/random.c gives the exact recipe).  Element
 * i depends only on seed and i; every call gives the same values. */
void kiln_random_normal_f32(float *y, int64_t n, float mean, float scale,
                            uint64_t seed);

/* ---- runtime/layout.c --------------------------------------------------
 * Element moves for any dtype, on esize-byte elements.
 *
 * Strided copy (transpose, slice): y is dense with rank dims ydim[]; the
 * element at index vector i is x[xoff + sum_d i[d]*xst[d]] (offset and
 * strides in elements; strides may be negative).  rank may be 0. */
void kiln_strided_copy(void *y, const void *x, size_t esize, int rank,
                       const int64_t *ydim, const int64_t *xst, int64_t xoff);

/* Concatenation along the middle axis: x[k] is [outer, len[k], inner] for
 * k < nx, y is [outer, sum len, inner]. */
void kiln_concat(void *y, const void *const *x, int nx, const int64_t *len,
                 int64_t outer, int64_t inner, size_t esize);

/* y[o,j,i] = x[o, idx[j], i] for x[outer,len,inner], y[outer,nidx,inner];
 * idx holds nidx indices of idx_dtype (KILN_I64 or KILN_I32), and one in
 * [-len, 0) counts from the end.  If an index lies outside [-len, len),
 * returns KILN_ERR_RANGE before writing anything. */
kiln_status kiln_gather(void *y, const void *x, const void *idx,
                        kiln_dtype idx_dtype, int64_t outer, int64_t len,
                        int64_t nidx, int64_t inner, size_t esize);

/* Padding, f32: y.dim[d] = before[d] + xdim[d] + after[d].  Negative
 * pads crop x first; then the new elements are value (constant), the
 * mirror image of the cropped x without its edge element (reflect; pads
 * less than the cropped dim) or its nearest edge element (edge). */
enum kiln_pad_mode { KILN_PAD_CONSTANT, KILN_PAD_REFLECT, KILN_PAD_EDGE };
struct kiln_pad {
	int rank;
	int64_t xdim[KILN_MAXRANK];
	int64_t before[KILN_MAXRANK], after[KILN_MAXRANK];  /* signed pads */
	int mode;                      /* kiln_pad_mode */
	float value;                   /* constant mode */
};
void kiln_pad_f32(float *y, const float *x, const struct kiln_pad *p);
/* Any dtype, esize-byte elements: the constant-mode fill is the element
 * at value (p->value is not read). */
void kiln_pad(void *y, const void *x, size_t esize, const void *value,
              const struct kiln_pad *p);

/* ---- runtime/resize.c --------------------------------------------------
 * Resizing, f32, as ONNX Resize, over any dims: x[xdim] -> y[ydim].  Along
 * dim d (n = xdim[d], s = scale[d], len = olen[d], lo/hi = roi[d],
 * roi[rank+d]) output index o reads input coordinate
 *   (o + 0.5)/s - 0.5   half_pixel; pytorch_half_pixel too, but -0.5 if len = 1
 *   (o + 0.5)/s         tf_half_pixel_for_nn
 *   o/s                 asymmetric
 *   o*(n-1)/(len-1)     align_corners; 0 if len = 1
 *   lo*(n-1) + o*(hi-lo)*(n-1)/(len-1)   tf_crop_and_resize; if len = 1,
 *                       (lo+hi)/2*(n-1); a coordinate outside [0, n-1]
 *                       makes the element extrapolation
 * Nearest mode rounds the coordinate by nearest; linear interpolates its
 * two neighbours; cubic its four with Keys' kernel of coefficient cubic_a.
 * Neighbours past the ends read the edge, or with exclude_outside (linear,
 * cubic) get weight 0 and the others are rescaled to sum to 1. */
enum kiln_resize_mode { KILN_RESIZE_NEAREST, KILN_RESIZE_LINEAR,
	KILN_RESIZE_CUBIC };
enum kiln_resize_coord { KILN_COORD_HALF_PIXEL, KILN_COORD_PYTORCH_HALF_PIXEL,
	KILN_COORD_ASYMMETRIC, KILN_COORD_ALIGN_CORNERS,
	KILN_COORD_TF_HALF_PIXEL_FOR_NN, KILN_COORD_TF_CROP_AND_RESIZE };
enum kiln_round { KILN_ROUND_PREFER_FLOOR, KILN_ROUND_PREFER_CEIL,
	KILN_ROUND_FLOOR, KILN_ROUND_CEIL };
struct kiln_resize {
	int rank;
	int64_t xdim[KILN_MAXRANK], ydim[KILN_MAXRANK];
	double scale[KILN_MAXRANK];    /* the scale given, else ydim / xdim */
	double olen[KILN_MAXRANK];     /* xdim * the scale given, else ydim */
	double roi[2 * KILN_MAXRANK];  /* tf_crop_and_resize: starts, then ends */
	int mode;                      /* kiln_resize_mode */
	int coord;                     /* kiln_resize_coord */
	int nearest;                   /* kiln_round, nearest mode */
	double cubic_a;                /* cubic mode's coefficient, ONNX -0.75 */
	int exclude_outside;           /* 0 or 1 */
	float extrapolation;           /* tf_crop_and_resize's outside value */
};
void kiln_resize_f32(float *y, const float *x, const struct kiln_resize *p);

/* ---- runtime/norm.c ----------------------------------------------------
 * Batch normalization, inference form, x[n,c,inner]:
 * y = (x - mean[c]) / sqrt(var[c] + eps) * scale[c] + bias[c]. */
void kiln_batchnorm_f32(float *y, const float *x, const float *scale,
                        const float *bias, const float *mean,
                        const float *var, int64_t n, int64_t c, int64_t inner,
                        float eps);

/* Layer normalization of each row of x[outer,len]: y = (x - mean) /
 * sqrt(var + eps) * scale + bias, mean and biased variance over the row;
 * scale[len], bias[len] or NULL. */
void kiln_layernorm_f32(float *y, const float *x, const float *scale,
                        const float *bias, int64_t outer, int64_t len,
                        float eps);

/* ---- runtime/npy.c -----------------------------------------------------
 * NumPy .npy files, format versions 1.0, 2.0 and 3.0, little-endian,
 * C order, every kiln dtype (bf16 as '<u2', its raw bits). */
struct kiln_npy_info {
	kiln_dtype dtype;
	int rank;
	int64_t dim[KILN_MAXRANK];
	int64_t data_offset;      /* byte offset of the data in the file */
};

/* Reads and checks the header of path.  On failure returns a status and
 * writes a one-line reason (no trailing newline) to msg. */
kiln_status kiln_npy_info(const char *path, struct kiln_npy_info *info,
                          char *msg, size_t msglen);

/* Loads the tensor called name (used only in messages) from path into dst,
 * which holds exactly the expected tensor.  The file's dtype and shape must
 * equal dtype and dim[0..rank); the file must hold exactly the data its
 * header announces.  On failure writes, for example,
 *   input 'x': expected f32[1,784], got f32[1,28,28] in x.npy
 * to msg and leaves dst unspecified. */
kiln_status kiln_npy_load(const char *path, const char *name, kiln_dtype dtype,
                          int rank, const int64_t *dim, void *dst, char *msg,
                          size_t msglen);

/* Writes a version 1.0 .npy file.  The data goes to a temporary file in
 * the same directory, renamed over path only when complete, so path is
 * written whole or not at all. */
kiln_status kiln_npy_save(const char *path, kiln_dtype dtype, int rank,
                          const int64_t *dim, const void *src, char *msg,
                          size_t msglen);
/* Its first half, for files written as a set (an executable's outputs):
 * writes the file to a new temporary file next to path, named in tmp
 * (tmplen bytes, at least strlen(path) + 32), for the caller to rename
 * to path or to remove.  Messages name path; a directory at path is an
 * error here, not at the rename. */
kiln_status kiln_npy_save_temp(const char *path, char *tmp, size_t tmplen,
                               kiln_dtype dtype, int rank, const int64_t *dim,
                               const void *src, char *msg, size_t msglen);

/* ---- runtime/main.c ----------------------------------------------------
 * What a standalone executable needs to know about its model; the
 * generated code fills one of these and main() calls kiln_main(). */
struct kiln_tensor_desc {
	const char *name;
	kiln_dtype dtype;
	int rank;
	int64_t dim[KILN_MAXRANK];
};
struct kiln_model_desc {
	const char *name;
	int ninputs, noutputs;
	const struct kiln_tensor_desc *inputs, *outputs;
	size_t workspace_bytes;
	/* Runs the model: in[i] and out[i] point at tensor i's data, in the
	 * order of inputs/outputs; workspace holds workspace_bytes, aligned to
	 * KILN_ALIGN.  Returns KILN_OK, or the failing kernel's status
	 * (KILN_ERR_RANGE: a gather index out of range). */
	kiln_status (*run)(const void *const *in, void *const *out,
	                   void *workspace);
};

/* The command line of a standalone executable:
 *   PROG --input NAME=FILE.npy ... --output NAME=FILE.npy ...
 *   PROG --describe        one JSON object: inputs and outputs
 *   PROG --bench N         N timed runs (inputs from --input or zeros)
 *   PROG --threads N       with any of these: threads for the kernels
 *   PROG --help
 * Prints errors to stderr and returns the process exit status. */
int kiln_main(int argc, char **argv, const struct kiln_model_desc *m);
/* Prints a tensor as kiln_main does an output when no --output is given:
 * `probs f32[1,10]: 0.1 0.2 ...`, at most 64 elements, floats to 6
 * significant digits, then a newline, on stdout. */
void kiln_print_tensor(const char *name, kiln_dtype t, int rank,
                       const int64_t *dim, const void *data);

/* ---- runtime/train_ops.c: the training ops ---------------------------
 * Gradients, training-mode dropout and softmax cross-entropy, f32 (the
 * training section of ir/ops.def).  Each kernel writes its whole result:
 * a gradient here is a fresh tensor, not an accumulator.
 *
 * relu's gradient over n elements: dx[i] = x[i] > 0 ? dy[i] : 0. */
void kiln_relu_grad_f32(float *dx, const float *dy, const float *x,
                        int64_t n);

/* conv2d's weight gradient, with kiln_conv2d_f32's parameters (oc, kh, kw
 * of the weights, oh, ow of dy): x[n,c,h,w], dy[n,oc,oh,ow],
 * dw[oc,c/group,kh,kw], dw[o,q,u,v] = sum_{n,i,j} dy[n,o,i,j] *
 * x[n, g*c/group + q, i*sh - pt + u*dh, j*sw - pl + v*dw], g = o /
 * (oc/group), taps outside the input reading as zero. */
void kiln_conv2d_grad_w_f32(float *dw, const float *x, const float *dy,
                            const struct kiln_conv2d *p);
/* runtime/conv.c: the adjoint of one tap of the 3-D kernels' plane code,
 * the sum over the output plane dyp[oh,ow] of dy times the input plane
 * xp[h,w] seen through tap (u,v) (conv3d's weight gradient sums them). */
float kiln_conv2d_tap_dot(const float *dyp, const float *xp, int64_t u,
                          int64_t v, const struct kiln_conv2d *p);

/* maxpool2d's gradient: dx[n,c,h,w] starts at 0, then each dy[n,c,i,j]
 * is added where kiln_maxpool2d_argmax_f32 puts the max of its window;
 * x is the pooled input. */
void kiln_maxpool2d_grad_f32(float *dx, const float *dy, const float *x,
                             const struct kiln_pool2d *p);
/* runtime/pool.c: where in the plane xp[h,w] the max of the window of
 * output (i,j) lies, as kiln_maxpool2d_indices_f32 reports it: the first
 * tap holding the maximum in window order (row by row; padded taps
 * never), or with no tap above -inf (all -inf or NaN) the first tap
 * inside the input, as ih*w + iw (iw*h + ih when col_major); -1 for a
 * window wholly in the padding. */
int64_t kiln_maxpool2d_argmax_f32(const float *xp, int64_t i, int64_t j,
                                  const struct kiln_pool2d *p, int col_major);

/* Training-mode dropout over n elements: y[i] = u(i) >= rate ? x[i] * s :
 * 0, s = 1.0f / (1.0f - rate), u(i) = (kiln_splitmix64(kiln_splitmix64(
 * seed, t), i) >> 11) * 2^-53 in [0, 1).  The mask is a function of
 * (seed, t, i) alone, so the same call on dy gives the gradient.
 * 0 <= rate < 1; y may equal x. */
void kiln_dropout_train_f32(float *y, const float *x, int64_t n, float rate,
                            uint64_t seed, int64_t t);
/* runtime/random.c: output j (from 0) of splitmix64 from state seed,
 * mix(seed + (j + 1) * 0x9e3779b97f4a7c15): the stream random_normal and
 * dropout draw from. */
uint64_t kiln_splitmix64(uint64_t seed, uint64_t j);

/* Softmax cross-entropy of the logits z[n,c] (n rows, c classes) against
 * labels[n], class indices of label_type (KILN_I64, KILN_I32, KILN_I8 or
 * KILN_U8, else KILN_ERR_DTYPE): *loss = -1/n sum_{r,k} q[r,k] *
 * log_softmax(z[r])[k], q[r] = (1 - ls) * onehot(labels[r]) + ls / c,
 * ls = label_smoothing; stable (the row max is subtracted), summed in
 * double.  If a label lies outside [0, c), returns KILN_ERR_RANGE before
 * writing anything. */
kiln_status kiln_softmax_cross_entropy_f32(float *loss, const float *z,
                                           const void *labels,
                                           kiln_dtype label_type, int64_t n,
                                           int64_t c, float label_smoothing);
/* Its gradient scaled by the scalar *dloss: dz[r,k] = (softmax(z[r])[k] -
 * q[r,k]) * *dloss / n, labels checked the same way. */
kiln_status kiln_softmax_cross_entropy_grad_f32(float *dz, const float *z,
                                                const void *labels,
                                                kiln_dtype label_type,
                                                const float *dloss, int64_t n,
                                                int64_t c,
                                                float label_smoothing);

/* ---- runtime/grad_ops.c: gradients of the pools and of conv3d --------
 * f32, with the forward kernels' parameter structs (p describes the
 * forward op: x is its input, dy has its output's shape).  Each writes its
 * whole result.
 *
 * Average pooling: dx starts at 0, then each window with m > 0 taps
 * counted adds dy / m to each of its taps inside x; m is kh*kw (3-D:
 * kd*kh*kw) when count_include_pad, else the taps inside x, as the forward
 * kernels divide. */
void kiln_avgpool2d_grad_f32(float *dx, const float *dy,
                             const struct kiln_pool2d *p);
void kiln_avgpool3d_grad_f32(float *dx, const float *dy,
                             const struct kiln_pool3d *p);
/* 3-D max pooling: dx starts at 0, then each dy is added at the first tap
 * of its window (depth, rows, columns) holding the maximum of x there, or
 * with nothing above -inf the first tap inside x; a window wholly in the
 * padding adds nothing. */
void kiln_maxpool3d_grad_f32(float *dx, const float *dy, const float *x,
                             const struct kiln_pool3d *p);
/* conv3d's weight gradient, with kiln_conv3d_f32's parameters:
 * x[n,c,d,h,w], dy[n,oc,od,oh,ow], dw[oc,c/group,kd,kh,kw],
 * dw[o,q,a,u,v] = sum_{n,k,i,j} dy[n,o,k,i,j] * x[n, g*c/group + q,
 * k*sd - pf + a*dd, i*sh - pt + u*dh, j*sw - pl + v*dw], g = o /
 * (oc/group), taps outside the input reading as zero. */
void kiln_conv3d_grad_w_f32(float *dw, const float *x, const float *dy,
                            const struct kiln_conv3d *p);

/* ---- runtime/gradcheck.c: `kiln gradcheck`'s program -----------------
 * loss maps the inputs to L (f32[]); grad to L and then dL/dx for inputs
 * x, its outputs named "d.NAME".  Compares them with central finite
 * differences at seeded random inputs; prints one line per input and a
 * total; returns the exit status (0 all ok, 1 a mismatch, 2 usage).
 * Options: --eps E (relative step, 1e-2), --tol T (2e-2), --samples N
 * (elements per input, 64), --seed S. */
int kiln_gradcheck_main(int argc, char **argv,
                        const struct kiln_model_desc *loss,
                        const struct kiln_model_desc *grad);

/* ---- runtime/train.c, runtime/dataset.c: the trainer executable -------
 * `kiln build MODEL --train` compiles one training step (forward, loss,
 * backward and optimizer update) and the model in inference mode plus its
 * loss (for evaluation), both on batches of `batch` samples, and fills a
 * kiln_train_desc; main() calls kiln_train_main().
 *
 * The trainer's persistent state is one buffer of state_bytes: every
 * parameter, every running statistic (BatchNorm's) and every optimizer
 * slot (Adam's moments, momentum buffers), each at its offset (a multiple
 * of KILN_ALIGN).  step() and eval() read and write the state in place;
 * nothing else does. */
enum kiln_state_kind {
	KILN_STATE_PARAM,     /* a trained parameter: saved with the weights */
	KILN_STATE_BUFFER,    /* a running statistic: saved with the weights */
	KILN_STATE_FROZEN,    /* a parameter not trained: saved with the weights */
	KILN_STATE_SLOT,      /* optimizer state: in checkpoints only */
};
struct kiln_state_desc {
	const char *name;     /* the parameter's name ("h1.w"); a slot's is the
	                       * parameter's plus ".m", ".v", ".momentum" */
	int kind;             /* enum kiln_state_kind */
	kiln_dtype dtype;
	int rank;
	int64_t dim[KILN_MAXRANK];
	size_t offset;        /* bytes from the start of the state */
};
#define KILN_MAXSTEPS 8        /* steps of multi-step training */

/* Learning-rate schedules (the train section's `schedule`): the rate of
 * epoch e, counted from 0, with lr the base rate (--lr) and the sched_
 * fields of kiln_train_desc as gamma, step_size, ... */
enum kiln_schedule {
	KILN_SCHED_CONSTANT,
	KILN_SCHED_STEP,      /* lr * gamma^floor(e / step_size) */
	KILN_SCHED_EXPONENTIAL, /* lr * gamma^e */
	KILN_SCHED_COSINE,    /* min_lr + (lr - min_lr) * (1 + cos(pi e / E)) / 2
	                       * with E = epochs (the run's when 0), e <= E */
	KILN_SCHED_PLATEAU,   /* times factor, but not below min_lr, once the
	                       * validation loss (the training loss without a
	                       * validation split) has not improved for more
	                       * than patience epochs in a row */
};
struct kiln_train_desc {
	const char *name;
	int64_t batch;        /* samples per step; dim 0 of every input, label
	                       * and prediction */
	int ninputs, nlabels;  /* nlabels 0: the losses compare the model's
	                        * outputs with its inputs (an autoencoder) */
	const struct kiln_tensor_desc *inputs;  /* the model's, batch first */
	const struct kiln_tensor_desc *labels;  /* the targets, batch first */
	/* The first loss's prediction ([batch, classes] for a classifier),
	 * which step() and eval() write for the metrics; rank 0 and name
	 * NULL when there is none, and then they get pred NULL. */
	struct kiln_tensor_desc pred;
	int classify;         /* 1: the loss is a cross-entropy, label 0 holds
	                       * class indices, pred holds scores per class */
	int nstate;
	const struct kiln_state_desc *state;
	size_t state_bytes;
	const unsigned char *state_init;   /* the initial state, state_bytes */
	size_t workspace_bytes;            /* enough for step() and eval() */
	/* One training step on a batch: in[i] are the inputs, in[ninputs + j]
	 * the labels; lr the learning rate, t the step number from 1 (Adam's
	 * bias correction, the dropout masks).  Updates the state; writes the
	 * batch's mean loss and the prediction.  When the loss or a new value
	 * of a state tensor has a NaN or an infinity, it changes no state and
	 * returns KILN_ERR_NONFINITE with *bad the index in state[] of the
	 * first such tensor, or -1 for the loss. */
	kiln_status (*step)(const void *const *in, float lr, int64_t t,
	                    void *state, void *workspace, float *loss,
	                    void *pred, int *bad);
	/* The model in inference mode (no dropout, running statistics) on a
	 * batch with the current state: the mean loss and the prediction;
	 * with several steps, each step's mean loss, loss[0..nsteps), and
	 * no prediction. */
	kiln_status (*eval)(const void *const *in, void *state,
	                    void *workspace, float *loss, void *pred);
	/* Training in several steps (a GAN's discriminator and generator):
	 * nsteps step functions as step, named step_names[], run in this
	 * order on each batch with the same t, each with its own loss and
	 * its own parameters; step is steps[0] and pred is empty.  0 or 1:
	 * step alone. */
	int nsteps;
	kiln_status (*const *steps)(const void *const *in, float lr, int64_t t,
	                            void *state, void *workspace, float *loss,
	                            void *pred, int *bad);
	const char *const *step_names;
	/* FGSM adversarial examples of a batch with the current state (in
	 * as for eval()): adv[i] (the shape of input i) gets input i plus eps
	 * times the sign of the loss's gradient with respect to it, an input
	 * that is not float or does not reach the loss its copy.  NULL when
	 * the trainer has none (several steps, no float input). */
	kiln_status (*attack)(const void *const *in, float eps, void *state,
	                      void *workspace, void *const *adv);
	/* Defaults from the train section, which the command line overrides. */
	int epochs;
	double lr;
	uint64_t seed;
	double validation_split;
	int schedule;         /* enum kiln_schedule */
	double sched_gamma, sched_min_lr, sched_factor;
	int64_t sched_step_size, sched_epochs, sched_patience;
	const char *sched_monitor;  /* plateau's: "val_loss" when NULL */
	/* Early stopping (the train section's early_stopping(...)): off when
	 * es_monitor is NULL.  Stops after es_patience epochs in a row in
	 * which the monitored metric ("loss", "accuracy", "mse", "mae", with
	 * "val_" or "test_" in front for those splits) did not improve on
	 * the best by more than es_min_delta; with es_restore_best the
	 * weights end as they were after the best epoch. */
	const char *es_monitor;
	int64_t es_patience;
	double es_min_delta;
	int es_restore_best;
};

/* The trainer's command line (docs/training.md):
 *   PROG --data DIR|FILE [--epochs N] [--batch N (must equal the compiled
 *        batch)] [--lr X] [--seed N] [--validation-split X] [--log FILE]
 *        [--save FILE] [--weights FILE] [--checkpoint PATH]
 *        [--checkpoint-every STEPS] [--resume CKPT] [--skip-nonfinite]
 *        [--attack fgsm:EPS] [--adversarial-training fgsm:EPS]
 *        [--threads N] [--eval] [--quiet] [--help]
 * Prints progress on stderr and one line per epoch on stdout; returns the
 * process exit status: 0, 1 for a failure, 2 for a usage error, 128 plus
 * the signal when SIGINT or SIGTERM stopped it (after a checkpoint, with
 * --checkpoint).  It installs handlers for those two.  Without labels
 * the only metric is the loss.  A d that is not valid
 * (a tensor whose dim 0 is not batch, a classifier without labels, whose
 * pred is not [batch, classes] or with more than one label per sample, a
 * state tensor outside state_bytes, epochs < 1, schedule parameters out
 * of range) is refused with status 1. */
int kiln_train_main(int argc, char **argv, const struct kiln_train_desc *d);
/* 1 when the n elements of x (f32 or f64; other dtypes always pass) are
 * all finite: the generated step()'s check before it commits. */
int kiln_finite(const void *x, kiln_dtype t, int64_t n);

/* runtime/dataset.c: a trainer's data, loaded whole before training.
 * Its columns are the trainer's tensors, inputs then labels: sample i of
 * a split has size[k] values of dtype[k] (the tensor's dtype, without
 * its batch dimension) at element i*size[k] of col[k]. */
#define KILN_MAXDATA 8        /* inputs plus labels a trainer may read */
struct kiln_split {
	int64_t n;            /* samples; 0 when the split is absent */
	void *col[KILN_MAXDATA];
};
struct kiln_dataset {
	int ncols;            /* d->ninputs + d->nlabels */
	int64_t size[KILN_MAXDATA];
	kiln_dtype dtype[KILN_MAXDATA];
	struct kiln_split train, test;
};

/* Loads the data at path for the trainer d (docs/training.md, "Data"):
 * a directory holding train-images-idx3-ubyte[.gz] and
 * train-labels-idx1-ubyte[.gz] (plus the optional t10k-* test split);
 * or train_x.npy and train_y.npy (plus test_x.npy, test_y.npy); or for
 * any number of inputs and labels, train_NAME.npy per tensor NAME (plus
 * test_NAME.npy); or train.csv (plus test.csv); or one training file of
 * these kinds: a features file, whose labels file has the same name with
 * images and idx3 replaced by labels and idx1, or x.npy by y.npy, or a
 * .csv file.  Without labels (d->nlabels == 0) only the features are
 * read.  IDX bytes become f32 in [0, 1]; a float tensor's .npy must have
 * its dtype, an integer tensor's any integer dtype; labels are converted
 * to the label's dtype.  Samples must have as many values per batch row
 * as their tensor, and a classifier's labels (the first label tensor)
 * must be integers in [0, d->pred.dim[1]).  On failure writes why to msg
 * and leaves ds empty. */
kiln_status kiln_dataset_load(struct kiln_dataset *ds, const char *path,
                              const struct kiln_train_desc *d, char *msg,
                              size_t msglen);
void kiln_dataset_free(struct kiln_dataset *ds);

/* runtime/safetensors.c: the weights as a safetensors file
 * (docs/weights.md), which `kiln build --weights` reads: the n state
 * tensors s[] whose kind is PARAM, BUFFER or FROZEN (never SLOT), by
 * name.  s[] must describe state validly (kiln_train_main checks it).
 * Saving writes them in the order of s[] to a temporary file renamed
 * over path when complete, so path is written whole or not at all.
 * Loading copies each of them from the file into state, checking dtype
 * and shape; every one must be in the file, and tensors that are not
 * among them are ignored. */
kiln_status kiln_weights_save(const char *path,
                              const struct kiln_state_desc *s, int n,
                              const void *state, char *msg, size_t msglen);
kiln_status kiln_weights_load(const char *path,
                              const struct kiln_state_desc *s, int n,
                              void *state, char *msg, size_t msglen);
/* What they are made of, for checkpoints (runtime/checkpoint.c): with all
 * set, every tensor of s[] whatever its kind (offsets from state); meta,
 * the members of the header's __metadata__ object as JSON text.  Loading
 * fills *meta (when not NULL) with the strings of those keys it has. */
struct kiln_st_meta {
	char format[32], model[256], crc32[16];
};
kiln_status kiln_st_save(const char *path, const struct kiln_state_desc *s,
                         int n, const void *state, int all, const char *meta,
                         char *msg, size_t msglen);
kiln_status kiln_st_load(const char *path, const struct kiln_state_desc *s,
                         int n, void *state, int all,
                         struct kiln_st_meta *meta, char *msg, size_t msglen);
/* runtime/checkpoint.c: a checkpoint, every tensor of s[] (offsets from
 * base) with model's name and a CRC-32 of the data.  Loading refuses a
 * file that is not a checkpoint, another model's, one whose tensors do
 * not match s[] and one whose data does not match its CRC; it may have
 * overwritten part of base when it fails. */
kiln_status kiln_checkpoint_save(const char *path,
                                 const struct kiln_state_desc *s, int n,
                                 const void *base, const char *model,
                                 char *msg, size_t msglen);
kiln_status kiln_checkpoint_load(const char *path,
                                 const struct kiln_state_desc *s, int n,
                                 void *base, const char *model, char *msg,
                                 size_t msglen);

/* ---- runtime/layout2.c, reduce2.c, reduce.c: data movement, index and
 * reduction ops for ONNX.  (expand, depth_to_space and space_to_depth
 * are kiln_strided_copy, with stride 0 along broadcast dims.)
 *
 * Tiling, any dtype of esize bytes: x has rank dims xdim[], y has dims
 * xdim[d] * reps[d] (reps[d] >= 1), and y[i] = x[i mod xdim] dim by dim.
 * rank may be 0. */
void kiln_tile(void *y, const void *x, size_t esize, int rank,
               const int64_t *xdim, const int64_t *reps);

/* Triangle of the last two dims of x[batch,rows,cols], any dtype:
 * y[b,i,j] = x[b,i,j] where j - i >= k (upper) or j - i <= k (lower, upper
 * 0), else zero bytes. */
void kiln_trilu(void *y, const void *x, size_t esize, int64_t batch,
                int64_t rows, int64_t cols, int upper, int64_t k);

/* y[i] = x[i with i[axis] replaced by idx[i]] for every index vector i of
 * idx, whose dims idim[] are those of y; x has dims xdim[], the same rank
 * (rank >= 1), and idim[d] <= xdim[d] for d != axis.  idx holds indices of
 * idx_dtype (KILN_I64 or KILN_I32); one in [-xdim[axis], 0) counts from
 * the end.  If an index lies outside [-xdim[axis], xdim[axis]), returns
 * KILN_ERR_RANGE before writing anything. */
kiln_status kiln_gather_elements(void *y, const void *x, const void *idx,
                                 kiln_dtype idx_dtype, int rank,
                                 const int64_t *xdim, const int64_t *idim,
                                 int axis, size_t esize);

/* Index of the largest (argmax) or smallest (argmin) element along the
 * middle axis of x[outer,len,inner], of any dtype (bool as 0/1), into
 * y[outer,inner]: the first such, or the last when select_last.  NaN
 * counts as larger and as smaller than any number (NumPy's rule). */
void kiln_argmax(int64_t *y, const void *x, kiln_dtype dtype, int64_t outer,
                 int64_t len, int64_t inner, int select_last);
void kiln_argmin(int64_t *y, const void *x, kiln_dtype dtype, int64_t outer,
                 int64_t len, int64_t inner, int select_last);

/* One-hot of argmax (first index) along the middle axis of
 * x[outer,len,inner]: 1 there, 0 elsewhere. */
void kiln_hardmax_f32(float *y, const float *x, int64_t outer, int64_t len,
                      int64_t inner);

/* Running sums along the middle axis of x[outer,len,inner], numeric
 * dtypes: y[o,j,i] = sum of x[o,l,i] over l <= j (l < j when exclusive;
 * l >= j, l > j when reverse).  Floats sum in double; integers wrap
 * around. */
void kiln_cumsum(void *y, const void *x, kiln_dtype dtype, int64_t outer,
                 int64_t len, int64_t inner, int exclusive, int reverse);

/* Local response normalization across the channels of x[n,c,inner]:
 * y = x / (bias + alpha/size * s)^beta, s the sum of x^2 over channels
 * [c - (size-1)/2, c + size/2] clipped to [0, c). */
void kiln_lrn_f32(float *y, const float *x, int64_t n, int64_t c,
                  int64_t inner, int64_t size, float alpha, float beta,
                  float bias);

/* Instance normalization of x[n,c,inner]: each of the n*c rows becomes
 * (x - mean) / sqrt(var + eps) * scale[c] + bias[c], with the mean and
 * the biased variance of the row. */
void kiln_instance_norm_f32(float *y, const float *x, const float *scale,
                            const float *bias, int64_t n, int64_t c,
                            int64_t inner, float eps);

/* Minimum (NaN if any element is) and product (in double) over the dims
 * in mask, as kiln_reduce_sum_f32 (runtime/reduce.c). */
void kiln_reduce_min_f32(float *y, const float *x, int rank,
                         const int64_t *dim, unsigned mask);
void kiln_reduce_prod_f32(float *y, const float *x, int rank,
                          const int64_t *dim, unsigned mask);

/* ---- runtime/eltwise2.c: elementwise ops over more dtypes --------------
 * Dtype suffixes name the element type: f32 float, f64 double, i64
 * int64_t, i32 int32_t, i8 int8_t, u8 uint8_t, i16 int16_t, u16
 * uint16_t, u32 uint32_t, u64 uint64_t, bool uint8_t holding 0 or
 * 1.  Integer arithmetic wraps around (two's complement); an integer
 * division or modulo by 0 gives 0, MIN / -1 gives MIN.  y must not overlap
 * an operand.
 *
 * Broadcasting binary ops take the arguments of kiln_add_f32:
 *   kiln_<op>_<dt>(y, a, b, rank, ydim, as, bs)
 *   add, sub, mul, div:   f64 i64 i32 i8 u8 i16 u16 u32 u64 (f32 in
 *                         eltwise.c); div of integers truncates toward 0
 *   max, min:             f32 f64 and the integers; NaN if either is NaN
 *   pow:                  f32 f64 (C pow)
 *   equal, less, less_equal, greater, greater_equal: f32 f64 and the
 *                         integers, and equal_bool; y is bool
 *   and, or, xor:         bool
 *   mod (one more argument, fmod): f32 f64 and the integers; fmod 0 gives
 *                         the sign of b (Python's %), 1 that of a (C)
 *   bitshift (one more argument, right): u8 u16 u32 u64; y = a << b, or
 *                         a >> b when right; a shift by b >= the width
 *                         gives 0 */
#define KILN_BINARY(op, dt, T, U)                                            \
	void kiln_##op##_##dt(U *y, const T *a, const T *b, int rank,            \
	                      const int64_t *ydim, const int64_t *as,            \
	                      const int64_t *bs);
#define KILN_BINARY_NUM(dt, T)                                        \
	KILN_BINARY(max, dt, T, T) KILN_BINARY(min, dt, T, T)                    \
	KILN_BINARY(equal, dt, T, uint8_t) KILN_BINARY(less, dt, T, uint8_t)     \
	KILN_BINARY(less_equal, dt, T, uint8_t)                                  \
	KILN_BINARY(greater, dt, T, uint8_t)                                     \
	KILN_BINARY(greater_equal, dt, T, uint8_t)                               \
	void kiln_mod_##dt(T *y, const T *a, const T *b, int rank,               \
	                   const int64_t *ydim, const int64_t *as,               \
	                   const int64_t *bs, int fmod);
#define KILN_BINARY_ARITH(dt, T)                                             \
	KILN_BINARY(add, dt, T, T) KILN_BINARY(sub, dt, T, T)                    \
	KILN_BINARY(mul, dt, T, T) KILN_BINARY(div, dt, T, T)                    \
	KILN_BINARY_NUM(dt, T)
KILN_BINARY_NUM(f32, float)
KILN_BINARY_ARITH(f64, double)
KILN_BINARY_ARITH(i64, int64_t)
KILN_BINARY_ARITH(i32, int32_t)
KILN_BINARY_ARITH(i8, int8_t)
KILN_BINARY_ARITH(u8, uint8_t)
KILN_BINARY_ARITH(i16, int16_t)
KILN_BINARY_ARITH(u16, uint16_t)
KILN_BINARY_ARITH(u32, uint32_t)
KILN_BINARY_ARITH(u64, uint64_t)
#define KILN_BITSHIFT(dt, T)                                                 \
	void kiln_bitshift_##dt(T *y, const T *a, const T *b, int rank,          \
	                        const int64_t *ydim, const int64_t *as,          \
	                        const int64_t *bs, int right);
KILN_BITSHIFT(u8, uint8_t)
KILN_BITSHIFT(u16, uint16_t)
KILN_BITSHIFT(u32, uint32_t)
KILN_BITSHIFT(u64, uint64_t)
#undef KILN_BITSHIFT
KILN_BINARY(pow, f32, float, float)
KILN_BINARY(pow, f64, double, double)
KILN_BINARY(equal, bool, uint8_t, uint8_t)
#undef KILN_BINARY
/* Spelled out: and, or, xor and not are operators to a C++ preprocessor. */
void kiln_and_bool(uint8_t *y, const uint8_t *a, const uint8_t *b, int rank,
                   const int64_t *ydim, const int64_t *as, const int64_t *bs);
void kiln_or_bool(uint8_t *y, const uint8_t *a, const uint8_t *b, int rank,
                  const int64_t *ydim, const int64_t *as, const int64_t *bs);
void kiln_xor_bool(uint8_t *y, const uint8_t *a, const uint8_t *b, int rank,
                   const int64_t *ydim, const int64_t *as, const int64_t *bs);
#undef KILN_BINARY_NUM
#undef KILN_BINARY_ARITH

/* y = cond ? a : b on esize-byte elements (1, 4 or 8), three-way
 * broadcasting: y is dense with rank dims ydim[], cs/as/bs are the element
 * strides of cond (bool), a and b (0 along broadcast dims). */
void kiln_where(void *y, const uint8_t *cond, const void *a, const void *b,
                size_t esize, int rank, const int64_t *ydim,
                const int64_t *cs, const int64_t *as, const int64_t *bs);

/* y[i] = x[i] converted from xtype to ytype, n elements, as ONNX Cast:
 * float to integer truncates toward zero and saturates at the integer's
 * range (NaN gives 0); integer to integer wraps around; to bool is
 * x != 0; bool to a number 0 or 1; other conversions round to nearest
 * (ties to even).  f16 and bf16 elements are uint16_t bit patterns;
 * narrowing to them overflows to infinity, as numpy's float16. */
void kiln_cast(void *y, kiln_dtype ytype, const void *x, kiln_dtype xtype,
               int64_t n);

/* Unary ops over n elements, y = f(x), formulas as in ir/ops.def; the
 * arguments after n are the op's attributes in registry order.  round
 * takes halves to even; isnan and isinf give bool. */
#define KILN_UNARY(op, dt, T, U) \
	void kiln_##op##_##dt(U *y, const T *x, int64_t n);
KILN_UNARY(neg, f64, double, double)
KILN_UNARY(neg, i64, int64_t, int64_t)
KILN_UNARY(neg, i32, int32_t, int32_t)
KILN_UNARY(neg, i8, int8_t, int8_t)
KILN_UNARY(abs, f64, double, double)
KILN_UNARY(abs, i64, int64_t, int64_t)
KILN_UNARY(abs, i32, int32_t, int32_t)
KILN_UNARY(abs, i8, int8_t, int8_t)
KILN_UNARY(sin, f32, float, float)
KILN_UNARY(cos, f32, float, float)
KILN_UNARY(tan, f32, float, float)
KILN_UNARY(asin, f32, float, float)
KILN_UNARY(acos, f32, float, float)
KILN_UNARY(atan, f32, float, float)
KILN_UNARY(sinh, f32, float, float)
KILN_UNARY(cosh, f32, float, float)
KILN_UNARY(asinh, f32, float, float)
KILN_UNARY(acosh, f32, float, float)
KILN_UNARY(atanh, f32, float, float)
KILN_UNARY(ceil, f32, float, float)
KILN_UNARY(floor, f32, float, float)
KILN_UNARY(round, f32, float, float)
KILN_UNARY(sign, f32, float, float)
KILN_UNARY(erf, f32, float, float)
KILN_UNARY(reciprocal, f32, float, float)
KILN_UNARY(softplus, f32, float, float)
KILN_UNARY(softsign, f32, float, float)
KILN_UNARY(isnan, f32, float, uint8_t)
KILN_UNARY(isnan, f64, double, uint8_t)
#undef KILN_UNARY
void kiln_not_bool(uint8_t *y, const uint8_t *x, int64_t n);
void kiln_celu_f32(float *y, const float *x, int64_t n, float alpha);
void kiln_thresholded_relu_f32(float *y, const float *x, int64_t n,
                               float alpha);
void kiln_shrink_f32(float *y, const float *x, int64_t n, float bias,
                     float lambd);
void kiln_isinf_f32(uint8_t *y, const float *x, int64_t n,
                    int detect_negative, int detect_positive);
void kiln_isinf_f64(uint8_t *y, const double *x, int64_t n,
                    int detect_negative, int detect_positive);

/* ---- runtime/index.c: gather_nd, scatter_nd, scatter_elements, topk ----
 * Index operands hold indices of idx_dtype (KILN_I64 or KILN_I32, else
 * KILN_ERR_DTYPE or KILN_ERR_ARG); one in [-len, 0) counts from the end
 * of its dim.  If any index lies outside [-len, len), these return
 * KILN_ERR_RANGE before writing anything.
 *
 * Gather of slices by index tuples: x is [batch, dim[0], ..., dim[m-1],
 * inner], idx is [batch, ntuple, m], y is [batch, ntuple, inner], and
 * y[b,t,:] = x[b, idx[b,t,0], ..., idx[b,t,m-1], :]. */
kiln_status kiln_gather_nd(void *y, const void *x, const void *idx,
                           kiln_dtype idx_dtype, int64_t batch,
                           int64_t ntuple, int m, const int64_t *dim,
                           int64_t inner, size_t esize);

/* How a scatter combines an update u with the element e it lands on:
 * e = u (NONE), e + u (ADD), e * u (MUL).  ADD and MUL need a numeric
 * dtype; integers wrap around.  Updates apply in index order, so with
 * NONE the last of duplicate indices wins. */
enum kiln_scatter_reduction { KILN_SCATTER_NONE, KILN_SCATTER_ADD,
	KILN_SCATTER_MUL };

/* Scatter of slices: y = x (x and y are [dim[0], ..., dim[m-1], inner],
 * and may be the same buffer), then for each t < ntuple the slice
 * y[idx[t,0], ..., idx[t,m-1], :] combines with upd[t, :] (upd is
 * [ntuple, inner]).  Elements are of dtype. */
kiln_status kiln_scatter_nd(void *y, const void *x, const void *idx,
                            kiln_dtype idx_dtype, const void *upd,
                            kiln_dtype dtype, int reduction, int64_t ntuple,
                            int m, const int64_t *dim, int64_t inner);

/* Scatter of elements: y = x (dims xdim[], rank >= 1; y may be x), then
 * for every index vector i of idx (dims idim[], the same rank, idim[d] <=
 * xdim[d] off the axis) the element y[i with i[axis] replaced by idx[i]]
 * combines with upd[i] (upd has idx's dims). */
kiln_status kiln_scatter_elements(void *y, const void *x, const void *idx,
                                  kiln_dtype idx_dtype, const void *upd,
                                  kiln_dtype dtype, int reduction, int rank,
                                  const int64_t *xdim, const int64_t *idim,
                                  int axis);

/* The k best elements along the middle axis of x[outer,len,inner], any
 * numeric dtype, 1 <= k <= len: the largest (or smallest when !largest)
 * first, equal elements in their order in x, NaN larger than any number.
 * y is [outer,k,inner]: the values (dtype), or when indices their
 * positions along the axis (int64_t). */
void kiln_topk(void *y, const void *x, kiln_dtype dtype, int64_t outer,
               int64_t len, int64_t inner, int64_t k, int largest,
               int indices);

#ifdef __cplusplus
}
#endif
#endif
