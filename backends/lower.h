/* lower.h: a planned graph as runtime calls, what both code generators
 * emit (backends/ only).
 *
 * backends/lower.c holds the one switch over op kinds: for each live node
 * the runtime kernel it calls and that call's arguments, described
 * without any target language (a pointer to a value, an int, a float, a
 * pointer to constant data laid out as a C struct or array).  The C
 * backend (c/cgen.c) prints the calls as C; the LLVM backend
 * (llvm/llgen.c) builds them with the LLVM C API.  A fused node is no
 * call: each backend generates its loop from the node's expression.
 */
#ifndef KILN_LOWER_H
#define KILN_LOWER_H

#include "backend.h"

/* A field of constant data: n elements (n = 1: a scalar) of one kind.
 * Data is laid out as the C compiler lays out a struct of these fields
 * (natural alignment, an LP64 target), which is how the runtime's
 * parameter structs (runtime/kiln.h) are declared. */
typedef enum {
	KF_INT,         /* int:      i[] */
	KF_I64,         /* int64_t:  i[] */
	KF_U8,          /* uint8_t:  i[] (raw bytes) */
	KF_F32,         /* float:    f[] */
	KF_F64,         /* double:   f[] */
	KF_PTR,         /* const void *: the data of values v[] (-1: NULL) */
} KFieldKind;

typedef struct {
	KFieldKind kind;
	int n;                  /* n > 1: a C array member */
	int nest;               /* > 0: this field and the nest - 1 after it
	                         * are a nested struct in C (the 3-D window
	                         * params' 2-D part); laid out as if flat, which
	                         * is the same here since the nested part ends
	                         * on an 8-byte boundary or before an 8-byte
	                         * field */
	const int64_t *i;
	const double *f;
	const int *v;
} KField;

/* Constant data passed by pointer: a runtime struct (ctype "struct
 * kiln_conv2d", fields in declaration order, arrays written out in full)
 * or, with array set, a C array of ctype (one field).  Data holding a
 * KF_PTR is built on each run; other data is a read-only constant. */
typedef struct {
	const char *name;       /* a readable C name: "p", "yd" */
	const char *ctype;
	bool array;
	const KField *field;
	int nfield;
} KData;

typedef enum {
	KA_VAL,         /* T *: the data of value v (-1: NULL) */
	KA_OUT,         /* void *: the caller's buffer of output i */
	KA_INT,         /* int (and enums such as kiln_dtype): i */
	KA_I64,         /* int64_t: i */
	KA_U64,         /* uint64_t: (uint64_t)i */
	KA_SIZE,        /* size_t: i */
	KA_F32,         /* float: f */
	KA_F64,         /* double: f */
	KA_STEP,        /* uint64_t: value v's first element converted, as C's
	                 * (uint64_t)*p does */
	KA_MIX,         /* uint64_t: kiln_splitmix64((uint64_t)i, KA_STEP of v) */
	KA_DATA,        /* const T *: constant data d */
} KArgKind;

typedef struct {
	KArgKind kind;
	int v;
	int64_t i;
	double f;
	const KData *d;
} KArg;

/* One runtime call, or a fused node's loop (kernel NULL; its arguments
 * are then the result then the operands, each KA_VAL). */
typedef struct {
	const Node *node;       /* what it computes; NULL: an output copy */
	const char *kernel;     /* the runtime function, or NULL */
	const KArg *arg;
	int narg;
	bool status;            /* returns kiln_status: the run returns it
	                         * unless it is KILN_OK */
} KCall;

/* Where the data of a value lives in the generated run function (KLoc:
 * ir.h has Loc, a source location). */
typedef enum {
	LOC_NULL,       /* v < 0 */
	LOC_INPUT,      /* caller's input buffer at: index */
	LOC_OUTPUT,     /* caller's output buffer at: index (a temporary
	                 * computed directly into the output) */
	LOC_WEIGHTS,    /* weights blob at: byte offset */
	LOC_WORKSPACE,  /* workspace at: byte offset */
} KLocKind;

typedef struct {
	KLocKind kind;
	int64_t at;
} KLoc;

typedef struct {
	Graph *g;
	int64_t *woff;          /* blob offset of each param/const, else -1 */
	int64_t wsize;          /* blob bytes */
	int *inpos;             /* input index of each input value, else -1 */
	int *outpos;            /* output a temporary is computed into, or -1 */
	KCall *call;            /* the schedule, then the output copies */
	int ncall;
} Lowered;

/* The iteration space of a fused node's loop: the result's dims without
 * those of size 1, a dim merged into the one before it when every
 * operand steps over both as over one (as the runtime's binary kernels
 * do), so operands of the result's shape and scalars give one flat loop
 * and only real broadcasting keeps nested loops. */
typedef struct {
	int rank;
	int64_t dim[IR_MAXRANK];
	int64_t st[IR_MAXIN][IR_MAXRANK];   /* per operand, 0: broadcast */
} KSpace;
void lower_loop_space(Graph *g, const Node *n, KSpace *sp);

/* The planned graph g as calls (g's arena); a node no backend can run is
 * a diagnostic at its location. */
Lowered *lower_graph(Graph *g);
/* The calls of one node, for callers that place values themselves (the
 * C trainer): appended to *calls (arena-grown, *cap elements). */
void lower_node(Graph *g, const Node *n, KCall **calls, int *ncall, int *cap);
KLoc lower_loc(const Lowered *l, int v);

#endif
