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

/* What the command line decides about how a model is read. */
typedef struct {
	int64_t batch;              /* the batch size N of .kiln inputs (--batch) */
} FeOpts;

/* frontend/load.c */
Module *fe_load(Arena *a, const char *path, const FeOpts *o);

/* frontend/kiln/: the .kiln model language (docs/language.md) */
Module *kl_parse(Arena *a, const char *file, const char *text,
                 const FeOpts *o);

/* frontend/weights.c: safetensors weight files (docs/weights.md) */
void weights_load(Module *m, const char *path);  /* diag_error on failure */
void weights_save(Module *m, const char *path);  /* all params, atomically */

#endif
