/* onnx.h: the ONNX frontend's own map (frontend/onnx/).
 *
 * read.c decodes the protobuf (protoc-c code generated from the system's
 * onnx.proto) and TensorProto data; import.c walks the graph, binding
 * ONNX tensor names to IR values; ops.c holds one translation per ONNX op
 * type, listed in onnx.def; fold.c evaluates the shape-computing nodes
 * whose operands are all known at build time, since kiln's shapes are
 * static.
 */
#ifndef KILN_ONNX_H
#define KILN_ONNX_H

#include "frontend.h"
#include "onnx.pb-c.h"

enum { ONNX_MAXIO = 64 };       /* inputs or outputs of one ONNX node */
enum { ONNX_MAXFOLD = 100000000 };  /* elements of a tensor made at build
                                     * time (folded, or a constant) */
enum { ONNX_MAXSTEPS = 10000 }; /* time steps a recurrence is unrolled to */

typedef struct Imp Imp;
typedef struct ONode ONode;

/* One import: the graph being built and the name bindings. */
struct Imp {
	Arena *a;
	Graph *g;
	const char *file;           /* the model's path, for diagnostics */
	const char *dir;            /* its directory, for external data */
	int64_t opset;              /* opset of the default domain */
	const FeOpts *fo;
	const char **key;           /* hash table: ONNX name -> IR value */
	int *val;
	int cap, n;
	bool *baked;                /* per value: its data was read at build
	                             * time (an attribute came from it) */
	int nbaked;
};

/* One ONNX node being translated. */
struct ONode {
	Imp *m;
	const Onnx__NodeProto *p;
	Loc loc;                    /* the model file and the node's name */
	int in[ONNX_MAXIO];         /* IR values of the inputs; -1 = absent */
	int nin;
};

/* A translation: binds every output of the node (onnx_bind) or calls
 * diag_error.  The table is onnx.def. */
typedef void OnnxFn(ONode *o);

typedef struct {
	const char *name;           /* ONNX op type */
	int op;                     /* IR op, or -1 when fn builds it all */
	OnnxFn *fn;
	int since;                  /* first opset these semantics hold for */
} OnnxOp;

/* frontend/onnx/read.c */
Onnx__ModelProto *onnx_read_model(Arena *a, const char *path); /* or fatal */
int onnx_from_dtype(int dt);     /* ONNX data type of a DT_, 0 if none */
/* Decodes t into *type and *data (arena); dir is where external data may
 * be read from (NULL: none).  Returns an error message or NULL. */
const char *onnx_tensor(Arena *a, const Onnx__TensorProto *t,
                        const char *dir, Type *type, void **data);
int onnx_dtype(int onnx_type);  /* DT_, or -1 when kiln has no such type */
const char *onnx_dtype_name(int onnx_type);

/* frontend/onnx/import.c */
int onnx_lookup(Imp *m, const char *name);          /* IR value or -1 */
void onnx_bind(Imp *m, const char *name, int v);
int onnx_const(Imp *m, const char *name, Type t, const void *data, Loc loc);
void onnx_freeze(Imp *m, int v);    /* input v becomes a known constant */

/* frontend/onnx/ops.c: the translations, and helpers for them */
const OnnxOp *onnx_op_lookup(const char *name);
const Onnx__AttributeProto *onnx_attr(const ONode *o, const char *name);
int64_t onnx_attr_int(const ONode *o, const char *name, int64_t def);
float onnx_attr_float(const ONode *o, const char *name, float def);
const char *onnx_attr_str(const ONode *o, const char *name, const char *def);
/* an INTS attribute into v (at most max): the count, or -1 if absent */
int onnx_attr_ints(const ONode *o, const char *name, int64_t *v, int max);
Type *onnx_type(const ONode *o, int v);
int onnx_operand(const ONode *o, int i);    /* input i, which is required */
/* Data of input i, which must be known at build time (an input value
 * given before the build is frozen into a constant), as raw data, or as
 * a list of integers or floats; the counts are returned. */
const void *onnx_const_data(ONode *o, int i, const char *what);
int onnx_const_ints(ONode *o, int i, const char *what, int64_t *v, int max);
int onnx_const_floats(ONode *o, int i, const char *what, double *v,
                      int max);
double onnx_const_number(ONode *o, int i, const char *what); /* one value */
int onnx_node(ONode *o, int op, const int *in, int nin);   /* an IR node */
/* The node's result, named after ONNX output k (k < 0: a temporary),
 * typed by the shape rule (diag_error on failure) and bound. */
int onnx_result(ONode *o, int node, int k);
int onnx_unary(ONode *o, int op, int x, int k);
int onnx_binary(ONode *o, int op, int a, int b, int k);
int onnx_reshape(ONode *o, int x, const int64_t *dim, int rank, int k);
int onnx_scalar(ONode *o, int dtype, double x);     /* a rank-0 constant */
_Noreturn void onnx_unsupported(const ONode *o, const char *what);

/* frontend/onnx/fold.c */
bool onnx_fold(ONode *o);       /* evaluated at build time, outputs bound */

/* frontend/onnx/rnn.c: the recurrent ops, unrolled over time */
void tr_lstm(ONode *o);
void tr_gru(ONode *o);
void tr_rnn(ONode *o);

/* frontend/onnx/index.c: the index ops */
void tr_gather_nd(ONode *o);
void tr_scatter_nd(ONode *o);
void tr_scatter_elements(ONode *o);
void tr_topk(ONode *o);
void tr_onehot(ONode *o);
void tr_compress(ONode *o);

#endif
