/* onnx_call.c: onnx(path, x, output="", trainable=false), an ONNX model
 * (or its part up to one tensor) as a layer of a .kiln model, with its
 * weights: transfer learning puts a new head on an imported backbone.
 *
 * The file is imported by the ONNX frontend with its one input shaped
 * as x, then its graph is copied into the model being lowered: the input
 * becomes x, each initializer a parameter NS.NAME (NS the layer's name)
 * holding its data, each node a node, the tensor `output` (else the
 * model's first output) the layer's result; only what that tensor needs
 * is copied (a backbone cut before its old head leaves the head out).
 * With trainable=false
 * (the default) every imported parameter is listed as non_trainable, so
 * training leaves it as imported; the train pass then runs the
 * backbone's BatchNorms on their running statistics.  With
 * trainable=true they are fine-tuned, BatchNorm's statistics excepted.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include "kiln.h"
#include "frontend.h"

/* path as written, relative to the directory of the .kiln file that
 * calls onnx(): as for include, it may not be absolute, climb out of that
 * directory, or lead out of the model's directory through a link. */
static const char *
resolve(Lower *L, const char *path, Loc loc)
{
	const char *norm = kl_normalize(L->a, path);
	if (!path[0] || path[0] == '/')
		diag_error(loc, "onnx: path \"%s\" must be relative to the "
		           "directory of this file", path);
	if (strcmp(norm, "..") == 0 || strncmp(norm, "../", 3) == 0)
		diag_error(loc, "onnx: path \"%s\" leaves the directory of this "
		           "file", path);
	const char *slash = loc.file ? strrchr(loc.file, '/') : NULL;
	const char *file = !slash ? norm :
		arena_printf(L->a, "%.*s/%s", (int)(slash - loc.file), loc.file,
		             norm);
	const char *top = strrchr(L->prog->file, '/');
	const char *dir = !top ? "" :
		arena_strndup(L->a, L->prog->file, top - L->prog->file + 1);
	if (kl_linked_out(dir, file))
		diag_error(loc, "onnx: path \"%s\" leaves the model's directory "
		           "(through a link)", path);
	return file;
}

static const char *
string_arg(const Val *v, const char *what)
{
	if (v->kind != VAL_STR)
		diag_error(v->loc, "onnx: '%s' must be a string, got %s", what,
		           kl_kind(v));
	return v->s;
}

/* The imported graph, its input shaped as x. */
static Graph *
import(Lower *L, const char *path, int x, Loc loc)
{
	int n;
	bool *tensor;
	const char **names = onnx_input_names(L->a, path, &n, &tensor);
	if (n != 1 || !tensor[0])
		diag_error(loc, "onnx: %s has %d inputs; onnx() feeds one tensor, "
		           "x, to a model of one tensor input", path, n);
	FeShape sh = {.name = names[0], .type = L->g->val[x].type};
	FeOpts o = {.shape = &sh, .nshape = 1, .batch = 1};
	Graph *g = onnx_load(L->a, path, &o)->graph[0];
	const Type *in = &g->val[g->input[0]].type, *xt = &L->g->val[x].type;
	if (!type_eq(in, xt))
		diag_error(loc, "onnx: %s takes %s, x is %s", path,
		           type_str(L->a, in), type_str(L->a, xt));
	return g;
}

/* A copy of param or const v of src, NS.NAME, with its data. */
static int
copy_global(Lower *L, const char *ns, const Value *v, bool trainable,
            Loc loc)
{
	int c = ir_add_value(L->g, kl_fresh(L, ns, v->name), v->kind, v->type,
	                     loc);
	Value *d = &L->g->val[c];
	d->init = v->init;
	d->data = v->data;
	if (v->kind == VK_PARAM && !trainable)
		kl_non_trainable(L, c, loc);
	return c;
}

/* A copy of node n of src, operands mapped by vmap, its result named. */
static int
copy_node(Lower *L, const Graph *src, const Node *n, const int *vmap,
          const char *name, Loc loc)
{
	int in[IR_MAXIN];
	for (int k = 0; k < n->nin; k++)
		in[k] = n->in[k] < 0 ? -1 : vmap[n->in[k]];
	int c = ir_add_node(L->g, n->op, loc, in, n->nin);
	const OpInfo *o = op_get(n->op);
	for (int k = 0; k < o->nattr; k++)
		L->g->attr[L->g->node[c].attr + k] = src->attr[n->attr + k];
	/* BatchNorm's running statistics are never trained by gradient */
	if (n->op == OP_BATCHNORM)
		for (int k = 3; k < 5 && k < n->nin; k++)
			if (in[k] >= 0 && L->g->val[in[k]].kind == VK_PARAM)
				kl_non_trainable(L, in[k], loc);
	return kl_result(L, c, name);
}

/* need[v]: value v of src is on the way to res (nodes are in order). */
static bool *
needed(Lower *L, const Graph *src, int res)
{
	bool *need = arena_alloc(L->a, (src->nval + 1) * sizeof *need);
	memset(need, 0, (src->nval + 1) * sizeof *need);
	need[res] = true;
	for (int i = src->nnode - 1; i >= 0; i--) {
		const Node *n = &src->node[i];
		for (int k = 0; !n->dead && need[n->out] && k < n->nin; k++)
			if (n->in[k] >= 0)
				need[n->in[k]] = true;
	}
	return need;
}

int
kl_onnx(Lower *L, const Expr *call, Val *arg, Name nm)
{
	static const char fn[] = "onnx";
	const char *path = resolve(L, string_arg(&arg[0], "path"), arg[0].loc);
	/* stat, not open: a FIFO would block, a device never end */
	struct stat st;
	if (stat(path, &st) != 0)
		diag_error(arg[0].loc, "onnx: cannot read '%s': %s", path,
		           strerror(errno));
	if (!S_ISREG(st.st_mode))
		diag_error(arg[0].loc, "onnx: '%s' is not a regular file", path);
	int x = kl_tensor(&arg[1], fn, "x");
	const char *out = arg[2].kind == VAL_NONE ? NULL :
	                  string_arg(&arg[2], "output");
	bool trainable = kl_bool(&arg[3], fn, "trainable", false);
	Graph *src = import(L, path, x, call->loc);
	int res = out ? ir_find_value(src, out) : src->output[0];
	if (res < 0 || src->val[res].kind != VK_TEMP)
		diag_error(arg[2].loc, "onnx: %s has no tensor '%s' made by a node",
		           path, out);
	bool *need = needed(L, src, res);
	int *vmap = arena_alloc(L->a, (src->nval + 1) * sizeof *vmap);
	for (int v = 0; v < src->nval; v++) {
		const Value *val = &src->val[v];
		vmap[v] = need[v] && (val->kind == VK_PARAM ||
		                      val->kind == VK_CONST) ?
		          copy_global(L, nm.ns, val, trainable, call->loc) : -1;
	}
	vmap[src->input[0]] = x;
	for (int i = 0; i < src->nnode; i++) {
		const Node *n = &src->node[i];
		if (n->dead || !need[n->out])
			continue;
		const char *name = n->out == res ? nm.result :
		                   kl_fresh(L, nm.ns, src->val[n->out].name);
		vmap[n->out] = copy_node(L, src, n, vmap, name, call->loc);
	}
	return vmap[res];
}
