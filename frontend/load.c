/* load.c: reads a model file with the frontend its name calls for.
 *
 * `.kiln` goes to the model language, `.kir` (and `-`, standard input) to
 * the IR parser, `.onnx` to the ONNX importer.  Every graph that comes back has been verified.  The
 * options (the batch size) apply to .kiln only: a .kir file has its
 * shapes written out.
 */
#include <errno.h>
#include <string.h>
#include "frontend.h"

static bool
ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), k = strlen(suffix);
	return n >= k && strcmp(s + n - k, suffix) == 0;
}

Module *
fe_load(Arena *a, const char *path, const FeOpts *o)
{
	bool is_stdin = strcmp(path, "-") == 0;
	if (ends_with(path, ".onnx"))
		return onnx_load(a, path, o);
	if (!is_stdin && !ends_with(path, ".kiln") && !ends_with(path, ".kir"))
		fatal("%s: unknown model format (expected a .kiln, .kir or .onnx "
		      "file)", path);
	size_t len;
	char *text = read_file(a, path, &len);
	if (!text)
		fatal("cannot read '%s': %s", path, strerror(errno));
	if (strlen(text) != len)
		fatal("%s: file contains a NUL byte", is_stdin ? "<stdin>" : path);
	const char *file = is_stdin ? "<stdin>" : arena_strdup(a, path);
	if (ends_with(path, ".kiln"))
		return kl_parse(a, file, text, o);
	return ir_parse(a, file, text);
}
