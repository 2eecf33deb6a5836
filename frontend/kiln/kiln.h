/* kiln.h: the .kiln model language frontend, the map of frontend/kiln/.
 *
 * lex.c turns the text into tokens with locations, parse.c builds the AST
 * below (one Decl per model or block, from the file and the files it
 * includes), check.c checks its names, callees and arguments, lower.c
 * expands every model into one Graph, inlining each block or model call
 * and unrolling loops, and layers.c, layers2.c and recurrent.c hold the
 * built-in functions (layers, pools, range).  Every other callable is a
 * registry op (ir/ops.def), a block or a model.  train.c checks a
 * model's train section and records it in the Graph.  The language is
 * described in docs/language.md.
 */
#ifndef KILN_KL_H
#define KILN_KL_H

#include "ir.h"

/* T(id, spelling): punctuation and keywords are lexed from their spelling;
 * for the other kinds it is what messages call them. */
#define TOKENS \
	T(EOF, "end of file") T(IDENT, "identifier") T(INT, "integer") \
	T(FLOAT, "number") T(STR, "string") \
	T(LPAREN, "(") T(RPAREN, ")") T(LBRACK, "[") T(RBRACK, "]") \
	T(LBRACE, "{") T(RBRACE, "}") T(COMMA, ",") T(EQ, "=") T(COLON, ":") \
	T(PLUS, "+") T(MINUS, "-") T(STAR, "*") T(SLASH, "/") T(AT, "@") \
	T(MODEL, "model") T(BLOCK, "block") T(INPUT, "input") \
	T(OUTPUT, "output") T(RETURN, "return") T(SEED, "seed") \
	T(TRUE, "true") T(FALSE, "false") T(REPEAT, "repeat") T(FOR, "for") \
	T(IN, "in") T(INCLUDE, "include")

enum TokKind {
#define T(id, s) TK_##id,
	TOKENS
#undef T
	NTOK
};
enum { TK_PUNCT0 = TK_LPAREN, TK_KEYWORD0 = TK_MODEL };

typedef struct Token Token;
typedef struct Expr Expr;
typedef struct Arg Arg;
typedef struct Stmt Stmt;
typedef struct Param Param;
typedef struct Entry Entry;
typedef struct Decl Decl;
typedef struct Program Program;

struct Token {
	int kind;                   /* TK_ */
	Loc loc;
	const char *p;              /* spelling in the source */
	int len;
	const char *s;              /* TK_IDENT name, TK_STR contents */
	int64_t i;                  /* TK_INT */
	double f;                   /* TK_FLOAT */
};

/* EX_CALL and EX_NEG come first: the parser's token-to-kind table uses 0
 * for "starts no primary". */
enum ExprKind { EX_CALL, EX_NEG, EX_INT, EX_FLOAT, EX_STR, EX_BOOL, EX_NAME,
	EX_LIST };

/* Infix operators are calls to the registry op they name (a + b is
 * add(a, b)); op keeps the token so numbers can be folded. */
struct Expr {
	int kind;                   /* EX_ */
	Loc loc;                    /* literal, name, callee, operator or [ */
	int64_t i;                  /* EX_INT value, EX_BOOL 0 or 1 */
	double f;                   /* EX_FLOAT */
	const char *s;              /* EX_STR text; EX_NAME, EX_CALL name */
	int op;                     /* TK_ of an infix operator, else 0 */
	Arg *arg;                   /* EX_CALL arguments, EX_LIST elements, */
	int narg;                   /* EX_NEG operand */
};

struct Arg {
	const char *key;            /* keyword, or NULL when positional */
	Loc loc;                    /* keyword, or the value when positional */
	Expr *e;
};

enum StmtKind { ST_INPUT, ST_ASSIGN, ST_OUTPUT, ST_SEED, ST_RETURN,
	ST_REPEAT, ST_FOR, ST_TRAIN };

struct Stmt {
	int kind;                   /* ST_ */
	Loc loc;                    /* the defined name, or the keyword */
	const char *name;           /* NULL for return, seed and repeat; the
	                               loop variable of for */
	Type type;                  /* ST_INPUT, with N already the batch */
	int64_t seed;               /* ST_SEED */
	Expr *e;                    /* NULL for input, seed and `output NAME`;
	                               the count of repeat, the list of for */
	Stmt *body;                 /* ST_REPEAT, ST_FOR */
	int nbody;
	Entry *train;               /* ST_TRAIN: the section */
};

/* An entry of a train section (train.c): `key = e`, `label name: type`
 * or `step name { ... }`; the section itself is the entry "train". */
struct Entry {
	const char *key;
	Loc loc;                    /* the key */
	const char *name;           /* a label's or a step's, else NULL */
	Loc nameloc;
	Type type;                  /* a label's, with N already the batch */
	Expr *e;                    /* the value of `key = e`, else NULL */
	Entry *body;                /* a step's or the section's entries */
	int nbody;
};

struct Param {
	const char *name;
	Loc loc;
	Expr *def;                  /* default, or NULL when required */
};

enum DeclKind { DECL_MODEL, DECL_BLOCK };

struct Decl {
	int kind;                   /* DECL_ */
	const char *name;
	Loc loc;                    /* the name */
	Param *param;               /* blocks */
	int nparam;
	Stmt *stmt;                 /* a block's last statement is its return */
	int nstmt;
};

struct Program {
	const char *file;           /* the file given to kiln */
	Decl *decl;                 /* in file order, an include's in place */
	int ndecl, capdecl;
	const char **files;         /* every file read, as a normalized path
	                               relative to the directory of file */
	int nfiles, capfiles;
};

/* What lowering an expression gives: a tensor or a compile-time value. */
enum ValTag { VAL_NONE, VAL_TENSOR, VAL_INT, VAL_FLOAT, VAL_STR, VAL_BOOL,
	VAL_LIST };

typedef struct Val Val;
struct Val {
	int kind;                   /* VAL_; VAL_NONE is an absent argument */
	Loc loc;                    /* the expression it came from */
	int v;                      /* VAL_TENSOR: value index in the graph */
	int64_t i;                  /* VAL_INT, VAL_BOOL */
	double f;                   /* VAL_FLOAT */
	const char *s;              /* VAL_STR; on a VAL_LIST made by l1(),
	                               l2() or l1_l2(), "regularizer" */
	Val *elem;                  /* VAL_LIST */
	int n;
};

/* A name visible where a model or block is lowered, and its value. */
typedef struct {
	const char *name;           /* as written, without the prefix */
	Val val;
} Binding;

/* How to name what an expression creates (docs/language.md, "Names"). */
typedef struct {
	const char *ns;             /* prefix for the names it makes */
	const char *result;         /* its value's name; NULL: pick ns.callee */
	bool own;                   /* ns belongs to this expression alone */
} Name;

/* Where lowering is, for the notes after an error: a block or model
 * call, or a loop iteration. */
typedef struct {
	Loc loc;                    /* the call, or the loop's keyword */
	const char *what;           /* "in block 'b' called here" */
} Frame;

/* The state of checking and lowering a program (check.c, lower.c);
 * layers.c uses g and a. */
typedef struct {
	Arena *a;
	Program *prog;
	Module *m;
	Graph *g;                   /* the model being lowered */
	uint64_t seed;              /* its `seed = N`, or 0; in a model call,
	                               the called model's */
	const char **taken;         /* every name handed out in g */
	int ntaken, captaken;
	struct Count *count;        /* numbering of assigned names (lower.c) */
	int ncount, capcount;
	const char *inst;           /* innermost model call: its namespace, */
	const char *callee;         /*   and the model (its params' prefix) */
	int *shared;                /* params made by model calls, in g */
	int nshared, capshared;
	Frame *frame;               /* calls and iterations being lowered */
	int nframe, capframe;
} Lower;

/* A parameter slot of a callable; name NULL = positional only. */
typedef struct {
	const char *name;
	bool req;
} Slot;

enum { KL_MAXSLOT = 16 };
enum { KL_MAXLOOP = 10000 };    /* iterations of a loop, values of range() */
/* Levels of nesting in one declaration (parentheses, calls, lists, unary
 * minus, each operator of a chain, loops, steps), and in all with the
 * blocks and models called inlined: the parser and lowering recurse. */
enum { KL_MAXNEST = 256, KL_MAXDEPTH = 1024 };

/* parse.c: path without "." parts and "dir/.." (a leading ".." stays);
 * whether path, inside dir ("" for the current directory) by its name,
 * leads out of it through a symbolic link.  include and onnx() use them
 * to keep a model's paths inside its directory. */
char *kl_normalize(Arena *a, const char *path);
bool kl_linked_out(const char *dir, const char *path);

/* A built-in function: lower() gets the bound arguments (VAL_NONE when
 * absent) and returns the result's value index; a compile-time function
 * has value() instead, which returns the value itself. */
typedef struct {
	const char *name;
	int (*lower)(Lower *L, const Expr *call, Val *arg, Name nm);
	Val (*value)(Lower *L, const Expr *call, Val *arg);
	bool layer;                 /* owns the namespace ns of its call,
	                               where it makes its parameters */
	Slot slot[KL_MAXSLOT];      /* ends at the first NULL name */
} Builtin;

enum { CALL_BLOCK, CALL_MODEL, CALL_BUILTIN, CALL_OP };

/* What a name in call position refers to, with its parameter slots (a
 * model's are its inputs). */
typedef struct {
	int kind;                   /* CALL_ */
	const char *name;
	const Decl *decl;           /* CALL_BLOCK, CALL_MODEL */
	const Builtin *builtin;
	int op;
	const Slot *slot;           /* parameters, in positional order */
	int nslot;
} Callee;

/* lex.c */
extern const char *const tok_text[NTOK];
Token *kl_lex(Arena *a, const char *file, const char *text);

/* check.c */
void kl_check(Lower *L);                       /* diag_error on a problem */
bool kl_callee(Lower *L, const char *name, Callee *c); /* false if unknown */
const Arg **kl_bind(Lower *L, const Callee *c, const Expr *call);
const Stmt **kl_inputs(Lower *L, const Decl *model, int *n);
/* The candidate closest to s, if close enough to be a typo, or NULL. */
const char *kl_closest(const char *s, const char *const *cand, int n);

/* lower.c */
bool kl_is_number(const Val *v);              /* an int or a float */
double kl_num_value(const Val *v);            /* of a kl_is_number value */
Module *kl_lower(Arena *a, Program *p);
const char *kl_fresh(Lower *L, const char *ns, const char *base);
int kl_tensor(const Val *v, const char *fn, const char *what);
int64_t kl_int(const Val *v, const char *fn, const char *what, int64_t def);
bool kl_bool(const Val *v, const char *fn, const char *what, bool def);
int kl_ints(const Val *v, const char *fn, const char *what, int64_t *out,
            int max);
int kl_param(Lower *L, const char *ns, const char *suffix, Type t, Loc loc,
             int init, int64_t fan_in, int64_t fan_out);
int kl_result(Lower *L, int node, const char *name);
uint64_t kl_seed(uint64_t seed, const char *name);
const char *kl_kind(const Val *v);

/* layers.c */
const Builtin *kl_builtin(const char *name);   /* NULL if none */
const Builtin *kl_builtin_at(int i);           /* NULL past the last */
Type kl_input(Lower *L, const Val *v, const char *fn, int rank,
              const char *dims, const char *hint); /* x of that rank */
int64_t kl_positive(const Val *v, const char *fn, const char *what,
                    int64_t def);
int kl_activation(Lower *L, const Val *v, const char *fn); /* op or -1 */
double kl_number(const Val *v, const char *fn, const char *what, double def);
int kl_choice(Lower *L, const Val *v, const char *fn, const char *what,
              const char *const *names, int def); /* index in names */
int kl_initializer(Lower *L, const Val *v, const char *fn, const char *what,
                   int def);   /* INIT_ of "zeros", ...; def if absent */
void kl_fits(Loc loc, const char *fn, int k, const int64_t *f);

/* onnx_call.c: onnx(path, x, output, trainable), an imported model */
int kl_onnx(Lower *L, const Expr *call, Val *arg, Name nm);

void kl_non_trainable(Lower *L, int v, Loc loc);  /* not trained */

/* layers2.c: the lower() or value() of the other built-in layers, and
 * the regularizer arguments of layers with a kernel */
int kl_batchnorm(Lower *L, const Expr *call, Val *arg, Name nm);
int kl_layernorm(Lower *L, const Expr *call, Val *arg, Name nm);
int kl_embedding(Lower *L, const Expr *call, Val *arg, Name nm);
int kl_reduce(Lower *L, const Expr *call, Val *arg, Name nm);
int kl_swish(Lower *L, const Expr *call, Val *arg, Name nm);
int kl_dropout(Lower *L, const Expr *call, Val *arg, Name nm);
int kl_gaussian_noise(Lower *L, const Expr *call, Val *arg, Name nm);
int kl_sample(Lower *L, const Expr *call, Val *arg, Name nm);
int kl_kl_divergence(Lower *L, const Expr *call, Val *arg, Name nm);
Val kl_regularizer(Lower *L, const Expr *call, Val *arg);
void kl_regularize(Lower *L, const Val *r, int param, const char *fn,
                   const char *what); /* records it for param >= 0 */

/* recurrent.c: the lower() of simple_rnn, lstm, gru, multihead_attention,
 * transformer_encoder */
int kl_simple_rnn(Lower *L, const Expr *call, Val *arg, Name nm);
int kl_lstm(Lower *L, const Expr *call, Val *arg, Name nm);
int kl_gru(Lower *L, const Expr *call, Val *arg, Name nm);
int kl_attention(Lower *L, const Expr *call, Val *arg, Name nm);
int kl_transformer_encoder(Lower *L, const Expr *call, Val *arg, Name nm);

/* train.c */
void kl_train(Lower *L, const Stmt *s, const Binding *b, int n);

#endif
