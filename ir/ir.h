/* ir.h: kiln's graph IR, the map of the ir/ layer.
 *
 * A Module holds graphs.  A Graph owns flat arrays of values, nodes and
 * attributes and refers between them by integer index (indices survive
 * growth, print deterministically and make bounds checks trivial).  Every
 * tensor is a Value: a graph input, a parameter (trainable weight), a
 * constant, or a temporary produced by exactly one node (SSA).  Nodes have
 * one fixed shape; their attributes are a slice of g->attr holding every
 * attribute of the op in registry order (ir/ops.def).
 * Derived facts (uses, liveness) are recomputed by ir_fill_* when needed.
 */
#ifndef KILN_IR_H
#define KILN_IR_H

#include <stdio.h>
#include "util.h"

#define IR_MAXRANK 8    /* equals KILN_MAXRANK in runtime/kiln.h */
#define IR_MAXIN 32   /* operands of one node (concat is variadic) */

/* Element types; the order matches kiln_dtype in runtime/kiln.h.  The
 * ones after DT_BOOL came later, so they are appended: f16 and bf16 are
 * storage types (cast only, no arithmetic), i16 u16 u32 u64 have the
 * elementwise arithmetic and comparison families. */
enum DType { DT_F32, DT_F64, DT_I64, DT_I32, DT_I8, DT_U8, DT_BOOL,
	DT_F16, DT_BF16, DT_I16, DT_U16, DT_U32, DT_U64, NDTYPE };

/* Dtype masks for the types column of ops.def. */
enum {
	TY_F32 = 1 << DT_F32, TY_F64 = 1 << DT_F64, TY_BOOL = 1 << DT_BOOL,
	TY_FLOAT = TY_F32 | TY_F64,
	TY_INT = 1 << DT_I64 | 1 << DT_I32 | 1 << DT_I8 | 1 << DT_U8,
	TY_NUM = TY_FLOAT | TY_INT,                  /* every numeric dtype */
	TY_SIGNED = TY_NUM & ~(1 << DT_U8),          /* numeric, with a sign */
	TY_ANY = TY_NUM | TY_BOOL,                   /* the first seven dtypes */
	TY_HALF = 1 << DT_F16 | 1 << DT_BF16,        /* 16-bit floats */
	TY_XINT = 1 << DT_I16 | 1 << DT_U16 | 1 << DT_U32 | 1 << DT_U64,
	TY_UINT = 1 << DT_U8 | 1 << DT_U16 | 1 << DT_U32 | 1 << DT_U64,
	TY_ALL = (1 << NDTYPE) - 1,                  /* every dtype */
};
/* Operand roles for the idx column of ops.def (operand k counts from 1,
 * up to 15): an index operand is i64 or i32, a condition operand bool, a
 * label operand (class indices) i64, i32, i8 or u8, whatever the types
 * column says.  The other operands are data operands and share one dtype
 * from the types column. */
#define IN_INDEX(k) (1 << ((k) - 1))
#define IN_BOOL(k) (1 << ((k) + 15))
#define IN_LABEL(k) (IN_INDEX(k) | IN_BOOL(k))  /* both bits: a third role */
enum OpClass { PRIM, ELTWISE, COMPOSITE };
enum AttrKind { AK_NONE, AK_INT, AK_FLOAT, AK_STRING, AK_INTS, AK_FLOATS,
	AK_TENSOR };

enum OpKind {
#define OP(id, ...) OP_##id,
#define ATTR(...)
#include "ops.def"
#undef OP
#undef ATTR
	NOP
};

/* Global attribute ids, AT_<OP>_<NAME>; an op's ids are contiguous. */
enum AttrId {
#define OP(...)
#define ATTR(op, id, ...) AT_##op##_##id,
#include "ops.def"
#undef OP
#undef ATTR
	NATTRID
};

typedef struct Type Type;
typedef struct Value Value;
typedef struct Attr Attr;
typedef struct Node Node;
typedef struct Graph Graph;
typedef struct Module Module;
typedef struct OpInfo OpInfo;
typedef struct AttrInfo AttrInfo;
typedef struct Cfg Cfg;

struct Type {
	int dtype;                  /* DT_ */
	int rank;                   /* 0 for a scalar */
	int64_t dim[IR_MAXRANK];
};

/* VK_LABEL: a training target, named only by the train section */
enum ValKind { VK_INPUT, VK_PARAM, VK_CONST, VK_TEMP, VK_LABEL };

/* How a parameter's data is made when it has none (ir/init.c). */
enum Init { INIT_DATA, INIT_ZEROS, INIT_ONES, INIT_HE_UNIFORM,
	INIT_GLOROT_UNIFORM };

struct Value {
	const char *name;           /* unique in its graph, kept from the source */
	Type type;
	int kind;                   /* VK_ */
	int def;                    /* producing node of a temporary, else -1 */
	Loc loc;                    /* declaration (inputs, params, consts) */
	int init;                   /* INIT_, for params and consts */
	int64_t fan_in, fan_out;    /* for the He and Glorot initializers */
	uint64_t seed;
	void *data;                 /* little-endian bytes, or NULL */
	bool elided;                /* data was elided from a printed .kir */
	int64_t offset;             /* workspace offset of a temporary, or -1 */
};

struct Attr {
	int kind;                   /* AK_; AK_NONE when an optional one is unset */
	int64_t i;                  /* AK_INT */
	double f;                   /* AK_FLOAT */
	const char *s;              /* AK_STRING */
	int n;                      /* element count of AK_INTS, AK_FLOATS */
	int64_t *ints;
	double *floats;
	Type type;                  /* AK_TENSOR */
	void *data;
};

/* The train section of a graph, recorded as written (the training
 * pipeline gives it meaning): a tree of blocks of `key = value` entries,
 * calls with positional and keyword arguments, lists, scalars and
 * references to values.  Labels are VK_LABEL values, each named by a
 * block entry with key "label". */
enum CfgKind { CFG_INT, CFG_FLOAT, CFG_STR, CFG_BOOL, CFG_IDENT, CFG_VALUE,
	CFG_LIST, CFG_CALL, CFG_BLOCK };

struct Cfg {
	int kind;                   /* CFG_ */
	Loc loc;                    /* where it was written; not printed */
	int64_t i;                  /* CFG_INT, CFG_BOOL */
	double f;                   /* CFG_FLOAT */
	const char *s;              /* STR, IDENT, a CALL's callee, a BLOCK's
	                             * name (NULL for the section itself) */
	int v;                      /* CFG_VALUE: the value */
	int n, cap;                 /* items */
	const char **key;           /* per item: BLOCK key, CALL keyword or NULL */
	Cfg **item;
};

struct Node {
	int op;                     /* OP_ */
	Loc loc;
	int in[IR_MAXIN], nin;      /* operand values; -1 = optional, absent */
	int out;                    /* result value */
	int attr;                   /* first of op_info[op].nattr attributes */
	bool dead;                  /* deleted; dropped by ir_compact() */
};

struct Graph {
	const char *name;
	Module *mod;
	Loc loc;
	Value *val;
	int nval, capval;
	Node *node;                 /* in schedule (topological) order */
	int nnode, capnode;
	Attr *attr;
	int nattr, capattr;
	int *input, ninput, capinput;       /* VK_INPUT values, in order */
	int *output, noutput, capoutput;    /* returned values, in order */
	/* State updates of a training step: after the graph has run, param
	 * update[i].dst takes the value of update[i].src (every read of the
	 * param during the run sees its old value).  `update $w = %v`. */
	struct { int dst, src; } *update;
	int nupdate, capupdate;
	int tempname;               /* counter for %tN names made by passes */
	int64_t workspace;          /* planned workspace bytes, -1 before */
	Cfg *train;                 /* the train section (CFG_BLOCK), or NULL */
};

struct Module {
	Arena *arena;
	const char *file;           /* source it was read from */
	Graph **graph;
	int ngraph, capgraph;
	bool training;              /* params are training state (the train
	                             * pass ran): passes keep their values */
};

/* Shape rules: set *out from the node's operand types and attributes, or
 * return a message (from the graph's arena) saying what is wrong. */
typedef const char *ShapeFn(Graph *g, const Node *n, Type *out);

struct OpInfo {
	const char *name;
	int minin, maxin;
	int cls;                    /* OpClass */
	int types;                  /* TY_ mask of allowed operand dtypes */
	int idx;                    /* operand roles: IN_INDEX, IN_BOOL bits */
	ShapeFn *shape;
	const char *kernel;         /* runtime symbol, or NULL */
	int attr0, nattr;           /* its attributes: attr_info[attr0 ...] */
};

struct AttrInfo {
	int op;
	const char *name;
	int kind;
	const char *def;            /* default in .kir syntax; NULL = required */
};

/* ir/ops.c */
extern const AttrInfo attr_info[NATTRID];
const OpInfo *op_get(int op);
int op_lookup(const char *name);            /* OP_, or -1 */
int op_attr_lookup(int op, const char *name); /* AttrId, or -1 */

/* ir/ir.c */
extern const char *const dt_name[NDTYPE];
extern const int dt_size[NDTYPE];
int dt_lookup(const char *name);            /* DT_, or -1 */
int64_t type_numel(const Type *t);
int64_t type_bytes(const Type *t);
bool type_fits(const Type *t);  /* numel * 8 fits an int64 */
bool type_eq(const Type *a, const Type *b);
void type_strides(const Type *t, int64_t *st);  /* dense, in elements */
/* strides of t broadcast to y (numpy rules): 0 along broadcast dims */
void type_bcast_strides(const Type *t, const Type *y, int64_t *st);
/* products of t's dims before and after axis */
void type_outer_inner(const Type *t, int axis, int64_t *outer,
                      int64_t *inner);
char *type_str(Arena *a, const Type *t);    /* "f32[1,784]" */
Module *ir_new_module(Arena *a, const char *file);
Graph *ir_new_graph(Module *m, const char *name, Loc loc);
int ir_add_value(Graph *g, const char *name, int kind, Type t, Loc loc);
int ir_add_input(Graph *g, const char *name, Type t, Loc loc);
void ir_add_output(Graph *g, int v);
void ir_add_update(Graph *g, int dst, int src);
int ir_add_node(Graph *g, int op, Loc loc, const int *in, int nin);
int ir_add_result(Graph *g, int node, const char *name);
const char *ir_temp_name(Graph *g);         /* a fresh %tN */
Attr *ir_attr(Graph *g, const Node *n, int id);
bool ir_attr_eq(const Attr *a, const Attr *b);
void ir_set_int(Graph *g, int node, int id, int64_t v);
void ir_set_float(Graph *g, int node, int id, double v);
void ir_set_ints(Graph *g, int node, int id, const int64_t *v, int n);
void ir_set_floats(Graph *g, int node, int id, const double *v, int n);
const char *ir_parse_default(Graph *g, Attr *a, const AttrInfo *ai);
const char *ir_infer(Graph *g, int node);   /* runs the shape rule */
int ir_data_operand(const Node *n);         /* first data operand, or -1 */
/* The fused epilogue of a conv2d, gemm or matmul (passes/fuse_epilogue.c):
 * false for an op that cannot hold one (no "act" attribute); else *act
 * is its activation, an index of shape_act (0: none), and *res the
 * residual it adds (its last operand) or -1. */
bool ir_epilogue(Graph *g, const Node *n, int *act, int *res);
int ir_find_value(const Graph *g, const char *name); /* index or -1 */
int *ir_fill_uses(Graph *g, Arena *a);      /* use count per value */
void ir_compact(Graph *g);                  /* drops dead nodes and values */

/* ir/shape.c */
#define OP(id, n, mi, ma, c, t, x, shape, k) ShapeFn shape;
#define ATTR(...)
#include "ops.def"
#undef OP
#undef ATTR
bool shape_broadcast(const Type *a, const Type *b, Type *out);
const char *shape_slice_params(Graph *g, const Node *n, int64_t *start,
                               int64_t *step, int64_t *count);
/* STRING attribute values, NULL-terminated, in the runtime enums' order */
extern const char *const shape_pad_mode[], *const shape_resize_mode[],
	*const shape_resize_coord[], *const shape_nearest_mode[];
extern const char *const shape_d2s_mode[]; /* depth_to_space: DCR, CRD */
extern const char *const shape_act[];      /* fused epilogues: kiln_act */
extern const char *const shape_scatter_reduction[]; /* none, add, mul */
int shape_choice(const char *s, const char *const *names); /* index or -1 */
/* The dims a reduce_* node reduces, bit d = dim d; or an error message. */
const char *shape_reduce_mask(Graph *g, const Node *n, unsigned *mask);
/* The runtime's parameters (runtime/kiln.h) of conv2d node n, whose
 * operands and output have their types. */
struct kiln_conv2d;
void shape_conv2d_params(Graph *g, const Node *n, struct kiln_conv2d *p);

/* ir/fused.c: the expression of a fused node (grammar in that file), as
 * terms in postorder, the root last.  An op term reads earlier terms. */
enum { FT_OPERAND = -1, FT_LITERAL = -2, FUSED_MAXATTR = 2 };
typedef struct {
	int op;                     /* OP_, or FT_OPERAND, FT_LITERAL */
	int in[2], nin;             /* an op's operand terms */
	int operand;                /* FT_OPERAND: the node's operand index */
	double a[FUSED_MAXATTR];    /* an op's attributes in registry order
	                             * (INT ones too); a literal's f32 value */
	int pos;                    /* offset in the text */
} FusedTerm;
typedef struct {
	FusedTerm *t;
	int n, cap;
} FusedExpr;
/* The C formula of op per element ($k operand, @k attribute), or NULL
 * when op cannot be in a fused expression. */
const char *ir_fused_formula(int op);
const char *ir_fused_parse(Arena *a, const char *s, int nin, FusedExpr *e);

/* ir/init.c */
void ir_materialize(Graph *g, int v);       /* fills data from its init */
/* The data of f32 param or const v, materialized if need be; NULL for any
 * other value (a temporary, data elided from a .kir). */
const float *ir_fixed_f32(Graph *g, int v);
/* A new param or const (as `like` is) of type t holding a copy of x,
 * named after like with suffix added (and _ until the name is free). */
int ir_new_global(Graph *g, int like, const char *suffix, const Type *t,
                  const void *x);

/* ir/cfg.c */
Cfg *cfg_new(Arena *a, int kind, Loc loc);
void cfg_add(Arena *a, Cfg *c, const char *key, Cfg *item);
const Cfg *cfg_get(const Cfg *block, const char *key); /* first entry */
const Cfg *cfg_kwarg(const Cfg *call, const char *key); /* keyword arg */
/* Whether value v is an item of a list entry key of block. */
bool cfg_listed(const Cfg *block, const char *key, int v);
void cfg_fill_uses(const Cfg *c, int *use);
void cfg_remap(Cfg *c, const int *vmap);
void cfg_verify(const Graph *g, const Cfg *c);
void cfg_print(FILE *f, const Graph *g);    /* `train @g {...}`, if any */

/* ir/verify.c */
void ir_verify(Graph *g);                   /* diag_error on a bad graph */

/* ir/print.c */
typedef struct {
	bool constants;             /* print all data, however large */
} PrintOpts;
enum { IR_ELIDE = 16 };         /* elide data of more elements than this */
void ir_print(FILE *f, const Module *m, const PrintOpts *o);
void ir_print_graph(FILE *f, const Graph *g, const PrintOpts *o);
bool ir_bare_name(const char *s);           /* needs no quotes after a sigil */
void ir_print_name(FILE *f, char sigil, const char *s); /* as .kir spells it */
void ir_print_float(FILE *f, double x, bool f32);
void ir_print_string(FILE *f, const char *s);
void ir_print_type(FILE *f, const Type *t);
/* ` {name=value, ...}`: n's attributes that differ from their default */
void ir_print_attrs(FILE *f, const Graph *g, const Node *n);

/* ir/dot.c and ir/json.c: the module as a Graphviz graph (ops with
 * their result types, fused ops as clusters, parameters dimmed) or as
 * JSON (graphs, values, nodes; docs/inspect.md) */
void ir_print_dot(FILE *f, const Module *m);
void ir_print_json(FILE *f, const Module *m);

/* ir/flops.c: the arithmetic an op does (a multiply-add counts two, an
 * elementwise op one per element, data movement zero), for --stats */
int64_t ir_flops(Graph *g, const Node *n);
int64_t ir_graph_flops(Graph *g);

/* ir/parse.c */
Module *ir_parse(Arena *a, const char *file, const char *text);

#endif
