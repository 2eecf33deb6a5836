/* frontend.h: reading models into the IR, the map of the frontend/ layer.
 *
 * Every frontend returns a verified Module whose value types are known.
 * fe_load() picks the reader from the file name: `.kiln` is the model
 * language (frontend/kiln/), `.kir` the IR text form (ir/parse.c).
 * Parameters may then take their data from a weights file.
 */
#ifndef KILN_FRONTEND_H
#define KILN_FRONTEND_H

#include "ir.h"

/* An input shape given on the command line: --shape NAME=1,3,224,224 */
typedef struct {
	const char *name;
	Type type;                  /* rank and dims; dtype unused */
} FeShape;

/* A tensor value known before the build: an input a translation may
 * freeze into a constant when it needs its data (a Reshape's shape that
 * an ONNX model takes as an input).  `kiln run` offers its inputs. */
typedef struct {
	const char *name;
	Type type;
	void *data;
} FeValue;

/* What the command line decides about how a model is read. */
typedef struct {
	int64_t batch;              /* the batch size N of .kiln inputs (--batch) */
	FeShape *shape;             /* ONNX input shapes (--shape) */
	int nshape;
	FeValue *known;             /* input values that may be frozen */
	int nknown;
} FeOpts;

/* frontend/load.c */
Module *fe_load(Arena *a, const char *path, const FeOpts *o);

/* frontend/kiln/: the .kiln model language (docs/language.md) */
Module *kl_parse(Arena *a, const char *file, const char *text,
                 const FeOpts *o);

/* frontend/onnx/: ONNX models (docs/onnx.md) */
Module *onnx_load(Arena *a, const char *path, const FeOpts *o);
/* The names of an ONNX model's inputs (initializers left out), in order;
 * (*tensor)[i] is false for a sequence, map or optional input. */
const char **onnx_input_names(Arena *a, const char *path, int *n,
                              bool **tensor);
/* Reads a TensorProto file (an ONNX test's input_0.pb); fatal() on error.
 * *name is the tensor's name field, "" when unset. */
void onnx_load_tensor(Arena *a, const char *path, const char **name,
                      Type *t, void **data);

/* frontend/weights.c: safetensors weight files (docs/weights.md) */
void weights_load(Module *m, const char *path);  /* diag_error on failure */
void weights_save(Module *m, const char *path);  /* all params, atomically */

#endif
