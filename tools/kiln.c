/* kiln.c: the kiln command.
 *
 *   kiln build MODEL [-o OUT] [--emit=exe|c|weights] ...   compile a model
 *   kiln build MODEL --backend=llvm [--emit=exe|obj|asm|llvm] [--target=T]
 *   kiln build MODEL --train [-o OUT] [--emit=exe|c]       compile a trainer
 *   kiln ir MODEL [-ON] [--after=PASS] [--format=dot|json]  print its IR
 *   kiln opt FILE.kir --passes=a,b,...                     run passes
 *   kiln run MODEL [--input F]... [--expect F]...          run and check
 *   kiln export MODEL [-o OUT.onnx]                        write ONNX
 *   kiln gradcheck MODEL [--eps E] [--tol T] ...           check gradients
 *   kiln train MODEL [TRAINER OPTIONS]                     build and train
 *
 * MODEL is a .kiln or .kir file (`-` reads .kir from standard input).  The
 * flow is one way: frontend (fe_load), passes (pass_run), backend (cgen,
 * or llgen when kiln has LLVM), then the system C compiler links the
 * runtime.  Every file kiln writes
 * goes through a temporary and a rename, so a failure leaves what was
 * there before.
 */
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "driver.h"
#include "backend.h"

extern char **environ;

/* OBJ, ASM and LLVM are the LLVM backend's only. */
enum { EMIT_EXE, EMIT_C, EMIT_WEIGHTS, EMIT_OBJ, EMIT_ASM, EMIT_LLVM };
static const char *const emit_name[] = {"exe", "c", "weights", "obj", "asm",
                                        "llvm"};

static Arena *arena;
static bool backend_set;        /* --backend was given */
static char *made_dir[4];       /* temp_dir()'s, for cleanup() */
static int nmade;

static void remove_dir(const char *dir, const char *b);

/* Also after an error: the temporary directories go (with what a build
 * put in them; rmdir leaves one that still holds anything else). */
static void
cleanup(void)
{
	for (int i = 0; i < nmade; i++)
		remove_dir(made_dir[i], "model");
	nmade = 0;
	arena_free(arena);
	arena = NULL;
}

static void
usage(FILE *f)
{
	fputs("usage: kiln build MODEL [-o OUT] [--emit=exe|c|weights] "
	      "[--weights FILE] [--stats]\n"
	      "       kiln build MODEL --backend=llvm [-o OUT] "
	      "[--emit=exe|obj|asm|llvm]\n"
	      "               [--target=TRIPLE] [--cpu=CPU] [--features=F]\n"
	      "       kiln build MODEL --train [-o OUT] [--emit=exe|c]\n"
	      "       kiln ir MODEL [-O0|-O1|-O2] [--after=PASS] "
	      "[--format=kir|dot|json]\n"
	      "               [--train] [--weights FILE] [-o FILE]\n"
	      "       kiln opt FILE.kir [--passes=P1,P2,...] [--print-memplan] "
	      "[-o FILE]\n"
	      "       kiln run MODEL [--input [NAME=]FILE]... "
	      "[--expect [NAME=]FILE]...\n"
	      "                [--rtol R] [--atol A] [--save DIR] [-v] "
	      "[--backend=llvm|c]\n"
	      "       kiln export MODEL [-o OUT.onnx] [--weights FILE]\n"
	      "       kiln gradcheck MODEL [--eps E] [--tol T] [--samples N] "
	      "[--seed S]\n"
	      "       kiln train [--batch N] MODEL [TRAINER OPTIONS]   (build "
	      "the trainer, run it)\n"
	      "       kiln --help | --version\n\n"
	      "MODEL is a .kiln model or .kir IR file; - reads .kir from stdin.\n\n"
	      "build:\n"
	      "  -o OUT              output (default: the model's base name)\n"
	      "  --emit=exe          a standalone executable (default)\n"
	      "  --emit=c            OUT.c, OUT.h and OUT.weights to embed\n"
	      "  --emit=weights      the parameters as a safetensors file\n"
	      "  --backend=c|llvm    generate C and compile it with cc (c, the\n"
	      "                      default), or build the code with LLVM\n"
	      "  --emit=obj          LLVM: OUT.o (weights included) and OUT.h\n"
	      "  --emit=asm          LLVM: assembly, OUT.s\n"
	      "  --emit=llvm         LLVM: the optimized module's IR, OUT.ll\n"
	      "  --target=TRIPLE     LLVM: the machine to build for (default: this\n"
	      "                      one), e.g. aarch64-linux-gnu, with --emit=obj,\n"
	      "                      asm or llvm (an executable links this\n"
	      "                      machine's runtime)\n"
	      "  --cpu=CPU, --features=+F1,-F2,...\n"
	      "                      LLVM: the CPU and its features (default:\n"
	      "                      this machine's, or the target's generic CPU)\n"
	      "  --stats             print op counts, FLOPs, parameter bytes and\n"
	      "                      the memory plan's figures\n"
	      "  --train             a trainer for the model's train section\n"
	      "                      (docs/training.md); its batch is the\n"
	      "                      section's unless --batch is given\n"
	      "ir:\n"
	      "  -O0, -O1, -O2       the IR after that level's whole pipeline, as\n"
	      "                      the backend receives it (without -O: as\n"
	      "                      the frontend made it)\n"
	      "  --after=PASS        the IR after the level's pipeline (-O2 unless\n"
	      "                      given) up to PASS's first run\n"
	      "  --format=FORMAT     kir (default), dot (Graphviz) or json\n"
	      "  --train             with the training step and evaluation graphs\n"
	      "run (docs/onnx.md):\n"
	      "  --input [NAME=]FILE   an input from .npy or ONNX .pb; without\n"
	      "                        NAME, the .pb's name or the next input\n"
	      "  --expect [NAME=]FILE  compare an output with FILE (allclose);\n"
	      "                        without NAME, the next output\n"
	      "  --rtol R, --atol A    tolerances (default 1e-3 and 1e-5)\n"
	      "  --save DIR            write output K to DIR/output_K.npy\n"
	      "  -v                    say how the model ran (JIT, or whether\n"
	      "                        the cached build was used)\n"
	      "  --backend=llvm|c      compile the model in memory with LLVM's\n"
	      "                        JIT (the default when kiln has LLVM), or\n"
	      "                        build a cached executable with C\n"
	      "common:\n"
	      "  -O0, -O1, -O2       optimization level (build, ir, run, train,\n"
	      "                      gradcheck; default -O2; docs/passes.md);\n"
	      "                      LLVM's pipeline runs at the same level\n"
	      "  --weights FILE      parameter data from a safetensors file\n"
	      "  --model NAME        the model to use when a file has several\n"
	      "  --batch N           the batch size N of a .kiln model's inputs\n"
	      "                      (default 1)\n"
	      "  --shape NAME=D0,D1,...  the shape of an ONNX model's input\n"
	      "  --print-constants   print all parameter data in IR dumps\n"
	      "  --print-ir-after-all, --print-ir-after=PASS, "
	      "--print-ir-before=PASS\n"
	      "                      dump the IR to stderr around passes\n"
	      "  --verify-each       verify the IR after every pass (the default\n"
	      "                      unless kiln is built with NDEBUG)\n\n"
	      "passes:\n", f);
	for (int i = 0; i < NPASS; i++)
		fprintf(f, "  %-10s %s\n", pass_info[i].name, pass_info[i].desc);
}

static const char *
value_of(const char *arg, const char *flag)
{
	size_t n = strlen(flag);
	return strncmp(arg, flag, n) == 0 && arg[n] == '=' ? arg + n + 1 : NULL;
}

static int
need_pass(const char *name)
{
	int id = pass_lookup(name);
	if (id < 0)
		fatal("unknown pass '%s' (see kiln --help)", name);
	return id;
}

/* --shape NAME=D0,D1,...: the name ends at the last '=', since dims
 * never hold one. */
static void
shape_flag(Opts *o, const char *arg)
{
	const char *eq = strrchr(arg, '=');
	if (!eq || eq == arg)
		fatal("--shape needs NAME=D0,D1,..., got '%s'", arg);
	FeShape s = {.name = arena_strndup(arena, arg, eq - arg)};
	for (const char *p = eq + 1; *p; ) {
		char *end;
		errno = 0;
		long long d = strtoll(p, &end, 10);
		if (end == p || (*end && *end != ',') || errno || d < 1 ||
		    d > INT32_MAX || s.type.rank == IR_MAXRANK)
			fatal("--shape %s: dims must be up to %d positive integers "
			      "separated by commas", arg, IR_MAXRANK);
		s.type.dim[s.type.rank++] = d;
		p = end + (*end == ',');
	}
	for (int i = 0; i < o->fo.nshape; i++)
		if (strcmp(o->fo.shape[i].name, s.name) == 0)
			fatal("--shape %s given twice", s.name);
	int cap = o->fo.nshape;     /* FeOpts keeps no capacity: grow each time */
	APUSH(arena, o->fo.shape, o->fo.nshape, cap, s);
}

static int64_t
batch_size(const char *s)
{
	char *end;
	errno = 0;
	long long n = strtoll(s, &end, 10);
	if (!*s || *end || errno || n < 1 || n > INT32_MAX)
		fatal("--batch needs a positive integer, got '%s'", s);
	return n;
}

/* Flags every command takes; returns false when arg is not one. */
static bool
common_flag(Opts *o, char **argv, int *i)
{
	const char *arg = argv[*i], *v;
	if (strcmp(arg, "--batch") == 0) {
		if (!argv[*i + 1])
			fatal("%s needs a value", arg);
		o->fo.batch = batch_size(argv[++*i]);
		o->batch_set = true;
	} else if ((v = value_of(arg, "--batch"))) {
		o->fo.batch = batch_size(v);
		o->batch_set = true;
	}
	else if (strcmp(arg, "--shape") == 0) {
		if (!argv[*i + 1])
			fatal("%s needs a value", arg);
		shape_flag(o, argv[++*i]);
	} else if ((v = value_of(arg, "--shape")))
		shape_flag(o, v);
	else if (strcmp(arg, "-o") == 0 || strcmp(arg, "--weights") == 0 ||
	    strcmp(arg, "--model") == 0) {
		if (!argv[*i + 1])
			fatal("%s needs a value", arg);
		const char **dst = arg[1] == 'o' ? &o->out :
		                   arg[2] == 'w' ? &o->weights : &o->graph;
		*dst = argv[++*i];
	} else if ((v = value_of(arg, "--weights")))
		o->weights = v;
	else if ((v = value_of(arg, "--model")))
		o->graph = v;
	else if ((v = value_of(arg, "--print-ir-after")))
		o->po.print_after[need_pass(v)] = true;
	else if ((v = value_of(arg, "--print-ir-before")))
		o->po.print_before[need_pass(v)] = true;
	else if (strcmp(arg, "--print-ir-after-all") == 0)
		o->po.print_after_all = true;
	else if (strcmp(arg, "--verify-each") == 0)
		o->po.verify_each = true;
	else if (strcmp(arg, "--print-constants") == 0)
		o->po.print.constants = true;
	else
		return false;
	return true;
}

/* -O0, -O1, -O2: the level whose pipeline runs (passes/pipeline.c). */
static void
olevel_flag(Opts *o, const char *arg)
{
	if (arg[2] < '0' || arg[2] > '0' + PASS_MAXLEVEL || arg[3])
		fatal("unknown optimization level '%s' (-O0 to -O%d)", arg,
		      PASS_MAXLEVEL);
	o->olevel = arg[2] - '0';
	o->olevel_set = true;
}

/* --emit=KIND, in the order of the EMIT_ constants. */
static void
emit_flag(Opts *o, const char *v)
{
	for (o->emit = 0; o->emit < countof(emit_name); o->emit++)
		if (strcmp(v, emit_name[o->emit]) == 0)
			return;
	fatal("unknown --emit kind '%s' (exe, c, weights, obj, asm or llvm)", v);
}

/* --backend, --target, --cpu and --features (build and run). */
static bool
backend_flag(Opts *o, const char *arg)
{
	const char *v;
	if ((v = value_of(arg, "--backend"))) {
		if (strcmp(v, "c") == 0)
			o->backend = BACKEND_C;
		else if (strcmp(v, "llvm") == 0)
			o->backend = BACKEND_LLVM;
		else
			fatal("unknown backend '%s' (c or llvm)", v);
		backend_set = true;
		if (o->backend == BACKEND_LLVM && !KILN_HAVE_LLVM)
			fatal("kiln was built without LLVM: only --backend=c is "
			      "available (Debian's llvm-19-dev brings LLVM)");
		return true;
	}
	const char **dst = (v = value_of(arg, "--target")) ? &o->triple :
	                   (v = value_of(arg, "--cpu")) ? &o->cpu :
	                   (v = value_of(arg, "--features")) ? &o->features : NULL;
	if (!dst)
		return false;
	if (!*v)
		fatal("%.*s needs a value", (int)(v - arg - 1), arg);
	*dst = v;
	return true;
}

static bool
command_flag(Opts *o, const char *arg)
{
	const char *v;
	if ((v = value_of(arg, "--emit")) && strcmp(o->cmd, "build") == 0)
		emit_flag(o, v);
	else if (strcmp(arg, "--stats") == 0 && strcmp(o->cmd, "build") == 0)
		o->stats = true;
	else if (strcmp(arg, "--train") == 0 && (strcmp(o->cmd, "build") == 0 ||
	                                         strcmp(o->cmd, "ir") == 0))
		o->train = true;
	else if ((v = value_of(arg, "--after")) && strcmp(o->cmd, "ir") == 0)
		o->after = v;
	else if (arg[0] == '-' && arg[1] == 'O' && strcmp(o->cmd, "opt") != 0 &&
	         strcmp(o->cmd, "export") != 0)
		olevel_flag(o, arg);
	else if ((v = value_of(arg, "--format")) && (strcmp(o->cmd, "ir") == 0 ||
	                                             strcmp(o->cmd, "opt") == 0)) {
		if (strcmp(v, "kir") != 0 && strcmp(v, "dot") != 0 &&
		    strcmp(v, "json") != 0)
			fatal("unknown --format '%s' (kir, dot or json)", v);
		o->format = v;
	}
	else if ((v = value_of(arg, "--passes")) && strcmp(o->cmd, "opt") == 0)
		o->passes = v;
	else if (strcmp(arg, "--print-memplan") == 0 && strcmp(o->cmd, "opt") == 0)
		o->print_memplan = true;
	else if (strcmp(o->cmd, "gradcheck") == 0 && o->ncheck + 2 <= 8 &&
	         (strcmp(arg, "--eps") == 0 || strcmp(arg, "--tol") == 0 ||
	          strcmp(arg, "--samples") == 0 || strcmp(arg, "--seed") == 0))
		o->check[o->ncheck++] = arg;    /* its value follows */
	else
		return false;
	return true;
}

static void
parse_args(Opts *o, int argc, char **argv)
{
	o->cmd = argv[1];
	for (int i = 2; i < argc; i++) {
		bool run = strcmp(o->cmd, "run") == 0;
		if (common_flag(o, argv, &i) || command_flag(o, argv[i]) ||
		    ((run || strcmp(o->cmd, "build") == 0) &&
		     backend_flag(o, argv[i])) ||
		    (run && run_flag(o, arena, argv, &i)))
			continue;
		if (o->ncheck % 2) {            /* the value of a gradcheck flag */
			o->check[o->ncheck++] = argv[i];
			continue;
		}
		if (argv[i][0] == '-' && argv[i][1])
			fatal("unknown option '%s' for kiln %s", argv[i], o->cmd);
		if (o->model)
			fatal("unexpected argument '%s' (one model at a time)", argv[i]);
		o->model = argv[i];
	}
	if (!o->model)
		fatal("kiln %s: no model file given", o->cmd);
}

static Graph *
pick_graph(Module *m, const char *name)
{
	if (name) {
		for (int i = 0; i < m->ngraph; i++)
			if (strcmp(m->graph[i]->name, name) == 0)
				return m->graph[i];
		fatal("%s has no model '%s'", m->file, name);
	}
	if (m->ngraph != 1) {
		fprintf(stderr, "%s: error: %s has %d models; choose one with "
		        "--model NAME:", prog_name, m->file, m->ngraph);
		for (int i = 0; i < m->ngraph; i++)
			fprintf(stderr, " %s", m->graph[i]->name);
		fputc('\n', stderr);
		cleanup();
		exit(1);
	}
	return m->graph[0];
}

static Module *
load(const Opts *o)
{
	Module *m = fe_load(arena, o->model, &o->fo);
	if (!o->weights)
		return m;
	/* With --model, the file need hold only that model's tensors. */
	Module one = *m;
	if (o->graph) {
		one.graph = arena_alloc(arena, sizeof *one.graph);
		one.graph[0] = pick_graph(m, o->graph);
		one.ngraph = one.capgraph = 1;
	}
	weights_load(&one, o->weights);
	return m;
}

/* Writes what emit() prints to path (or stdout when path is NULL),
 * through a temporary file. */
static void
write_text(const char *path, void (*emit)(FILE *, void *), void *arg)
{
	if (!path) {
		emit(stdout, arg);
		if (fflush(stdout) != 0)
			fatal("writing standard output: %s", strerror(errno));
		return;
	}
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	if (!f)
		fatal("out of memory");
	emit(f, arg);
	fclose(f);
	int rc = write_file_atomic(path, buf, len);
	free(buf);
	if (rc != 0)
		fatal("cannot write '%s': %s", path, strerror(errno));
}

typedef struct {
	Module *m;
	const Opts *o;
} PrintArg;

static void
emit_ir(FILE *f, void *arg)
{
	PrintArg *p = arg;
	const char *fmt = p->o->format ? p->o->format : "kir";
	if (strcmp(fmt, "dot") == 0) {
		ir_print_dot(f, p->m);
		return;
	}
	if (strcmp(fmt, "json") == 0) {
		ir_print_json(f, p->m);
		return;
	}
	ir_print(f, p->m, &p->o->po.print);
	if (!p->o->print_memplan)
		return;
	for (int i = 0; i < p->m->ngraph; i++)
		memplan_print(f, p->m->graph[i]);
}

/* The module for --train: the model's graph, loaded with its train
 * section's batch unless --batch was given, and the train pass's
 * @NAME.step and @NAME.eval graphs beside it. */
static Graph *
load_train(Opts *o, Module **mp)
{
	Module *m = load(o);
	Graph *g = pick_graph(m, o->graph);
	if (!cfg_get(g->train, "loss") && !cfg_get(g->train, "step"))
		fatal("%s: model '%s' has no train section (docs/language.md, "
		      "section 14)", o->model, g->name);
	const Cfg *b = cfg_get(g->train, "batch");
	if (!o->batch_set && b && b->kind == CFG_INT && b->i != o->fo.batch) {
		o->fo.batch = b->i;
		m = load(o);
		g = pick_graph(m, o->graph);
	}
	pass_run(m, (int[]){PASS_train}, 1, &o->po);
	*mp = m;
	return g;
}

static Graph *
graph_named(Module *m, const char *name)
{
	for (int i = 0; i < m->ngraph; i++)
		if (strcmp(m->graph[i]->name, name) == 0)
			return m->graph[i];
	die("no graph '%s'", name);
}

static int
cmd_ir(Opts *o)
{
	Module *m;
	if (o->train)
		load_train(o, &m);
	else
		m = load(o);
	int n;
	const int *ids = pass_pipeline(o->olevel, &n);
	if (o->after) {
		int id = need_pass(o->after), k = 0;
		while (k < n && ids[k] != id)
			k++;
		if (k == n)
			fatal("pass '%s' is not in the pipeline of -O%d", o->after,
			      o->olevel);
		pass_run(m, ids, k + 1, &o->po);
	} else if (o->olevel_set)
		pass_run(m, ids, n, &o->po);
	write_text(o->out, emit_ir, &(PrintArg){m, o});
	return 0;
}

static int
cmd_opt(Opts *o)
{
	Module *m = load(o);
	int ids[256], n = 0;
	const char *p = o->passes ? o->passes : "";
	while (*p) {
		size_t len = strcspn(p, ",");
		if (n == countof(ids))
			fatal("too many passes");
		ids[n++] = need_pass(arena_strndup(arena, p, len));
		p += len + (p[len] == ',');
	}
	pass_run(m, ids, n, &o->po);
	write_text(o->out, emit_ir, &(PrintArg){m, o});
	return 0;
}

/* The pipeline of the chosen level (-O2 unless -O says otherwise). */
static void
optimize(Module *m, const Opts *o)
{
	int n;
	const int *ids = pass_pipeline(o->olevel, &n);
	pass_run(m, ids, n, &o->po);
}

static int
count_ops(const Graph *g)
{
	int nop = 0;
	for (int i = 0; i < g->nnode; i++)
		nop += !g->node[i].dead;
	return nop;
}

/* Each graph's op count before optimize(), for --stats. */
static int *
ops_before(const Module *m)
{
	int *n = arena_alloc(arena, (m->ngraph + 1) * sizeof *n);
	for (int i = 0; i < m->ngraph; i++)
		n[i] = count_ops(m->graph[i]);
	return n;
}

/* Bytes of parameters and constants: what the weights blob holds. */
static int64_t
param_bytes(const Graph *g)
{
	int64_t b = 0;
	for (int i = 0; i < g->nval; i++)
		if (g->val[i].kind == VK_PARAM || g->val[i].kind == VK_CONST)
			b += type_bytes(&g->val[i].type);
	return b;
}

static void
print_stats(Graph *g, const int *before, const Opts *o)
{
	int gi = 0;
	while (gi < g->mod->ngraph && g->mod->graph[gi] != g)
		gi++;
	MemStats s = memplan_stats(g);
	printf("model %s: %d ops at -O%d, %d before optimization\n", g->name,
	       count_ops(g), o->olevel, before[gi]);
	printf("  arena        %12lld bytes\n", (long long)s.arena);
	printf("  naive total  %12lld bytes\n", (long long)s.naive);
	printf("  lower bound  %12lld bytes\n", (long long)s.lower);
	printf("  arena/bound  %12.3f\n",
	       s.lower ? (double)s.arena / (double)s.lower : 1.0);
	printf("  flops        %12lld\n", (long long)ir_graph_flops(g));
	printf("  parameters   %12lld bytes\n", (long long)param_bytes(g));
}

/* The output path without a .c or .h suffix, for --emit=c. */
static const char *
stem(const char *path)
{
	size_t n = strlen(path);
	if (n > 2 && path[n - 2] == '.' && (path[n - 1] == 'c' || path[n - 1] == 'h'))
		return arena_strndup(arena, path, n - 2);
	return path;
}

static const char *
base_name(const char *path)
{
	const char *s = strrchr(path, '/');
	return s ? s + 1 : path;
}

/* Default output: the model's base name without its suffix, here. */
static const char *
default_out(const char *model)
{
	if (strcmp(model, "-") == 0)
		return "model";
	const char *b = base_name(model), *dot = strrchr(b, '.');
	return arena_strndup(arena, b, dot && dot != b ? (size_t)(dot - b) :
	                     strlen(b));
}

typedef struct {
	Graph *g;
	CgenOpts co;
	FILE *h;
} CArg;

static void
write_bytes(const char *path, const void *p, size_t n)
{
	if (write_file_atomic(path, p, n) != 0)
		fatal("cannot write '%s': %s", path, strerror(errno));
}

/* The n files of one output (--emit=c's .weights, .h and .c, --emit=obj's
 * .o and .h), written as a set: each to a temporary file, and only when
 * all are written are they renamed into place, so that a failure (a full
 * disk, a directory in the way) leaves every one as it was.  Once the
 * checks are past, a rename fails only if the directory changes under
 * kiln. */
static void
write_files(int n, const char *const *path, const void *const *data,
            const size_t *len)
{
	char *tmp[4] = {NULL};
	int bad = -1, err = 0;      /* the file that failed, and why */
	if (n > countof(tmp))
		die("write_files: %d files", n);
	for (int i = 0; i < n && bad < 0; i++) {
		struct stat st;
		err = stat(path[i], &st) == 0 && S_ISDIR(st.st_mode) ? EISDIR : 0;
		if (!err && !(tmp[i] = write_file_temp(path[i], data[i], len[i])))
			err = errno;
		if (err)
			bad = i;
	}
	for (int i = 0; i < n && bad < 0; i++)
		if (rename(tmp[i], path[i]) != 0) {
			err = errno;
			bad = i;
		}
	for (int i = 0; i < n; i++) {
		if (bad >= 0 && tmp[i])
			unlink(tmp[i]);
		free(tmp[i]);
	}
	if (bad >= 0)
		fatal("cannot write '%s': %s", path[bad], strerror(err));
}

/* What build_exe compiles: a model, or with steps and eval a trainer. */
typedef struct {
	Graph *g, *eval, *attack;
	Graph *steps[TRAIN_MAXSTEPS];
	int nsteps;
	const char *source;
} Target;

/* The trainer of g: the train pass's @g.step, or its @g.step.NAME graphs
 * in order, @g.eval and @g.attack if there is one. */
static Target
train_target(Module *m, Graph *g, const char *source)
{
	Target t = {.g = g, .source = source};
	const char *one = arena_printf(arena, "%s.step", g->name);
	size_t n = strlen(one);
	for (int i = 0; i < m->ngraph && t.nsteps < TRAIN_MAXSTEPS; i++) {
		const char *name = m->graph[i]->name;
		if (!strcmp(name, one) || (!strncmp(name, one, n) && name[n] == '.'))
			t.steps[t.nsteps++] = m->graph[i];
	}
	if (t.nsteps == 0)
		die("no graph '%s'", one);
	t.eval = graph_named(m, arena_printf(arena, "%s.eval", g->name));
	const char *attack = arena_printf(arena, "%s.attack", g->name);
	for (int i = 0; i < m->ngraph; i++)
		if (!strcmp(m->graph[i]->name, attack))
			t.attack = m->graph[i];
	return t;
}

/* The C names of the files DIR/STEM.*: the prefix STEM (as an
 * identifier), the header STEM.h and the weights STEM + blob_ext. */
static CgenOpts
c_names(const char *dir_stem, const char *blob_ext, const char *source)
{
	const char *b = base_name(dir_stem);
	return (CgenOpts){
		.prefix = cgen_ident(arena, b),
		.header = arena_printf(arena, "%s.h", b),
		.weights = arena_printf(arena, "%s%s", b, blob_ext),
		.source = source,
	};
}

/* Writes DIR/STEM.c, .h and .weights for g. */
static void
write_c(Graph *g, const char *dir_stem, const char *source)
{
	CgenOpts co = c_names(dir_stem, ".weights", source);
	char *cbuf = NULL, *hbuf = NULL;
	size_t clen = 0, hlen = 0;
	FILE *c = open_memstream(&cbuf, &clen), *h = open_memstream(&hbuf, &hlen);
	if (!c || !h)
		fatal("out of memory");
	cgen_emit(g, &co, c, h);
	fclose(c);
	fclose(h);
	int64_t *off = arena_alloc(arena, g->nval * sizeof *off);
	int64_t size = blob_layout(g, off);
	unsigned char *blob = blob_build(g, off, size);
	const char *path[] = {arena_printf(arena, "%s.weights", dir_stem),
	                      arena_printf(arena, "%s.h", dir_stem),
	                      arena_printf(arena, "%s.c", dir_stem)};
	write_files(3, path, (const void *[]){blob, hbuf, cbuf},
	            (size_t[]){size, hlen, clen});
	free(cbuf);
	free(hbuf);
}

/* Writes DIR/STEM.c and .weights for a trainer. */
static void
write_trainer_c(const Target *t, const char *dir_stem)
{
	const char *b = base_name(dir_stem);
	CgenOpts co = {
		.prefix = cgen_ident(arena, b),
		.weights = arena_printf(arena, "%s.weights", b),
		.source = t->source,
	};
	char *cbuf = NULL;
	size_t clen = 0;
	FILE *c = open_memstream(&cbuf, &clen);
	if (!c)
		fatal("out of memory");
	int64_t size;
	unsigned char *blob = cgen_emit_trainer(t->steps, t->nsteps, t->eval,
	                                        t->attack, t->g, &co, c, &size);
	fclose(c);
	const char *path[] = {arena_printf(arena, "%s.weights", dir_stem),
	                      arena_printf(arena, "%s.c", dir_stem)};
	write_files(2, path, (const void *[]){blob, cbuf},
	            (size_t[]){size, clen});
	free(cbuf);
}

static void
write_target(const Target *t, const char *dir_stem)
{
	if (t->nsteps)
		write_trainer_c(t, dir_stem);
	else
		write_c(t->g, dir_stem, t->source);
}

/* Runs argv in directory dir; returns its exit status. */
static int
run_in(const char *dir, char **argv)
{
	pid_t pid = fork();
	if (pid < 0)
		fatal("cannot start %s: %s", argv[0], strerror(errno));
	if (pid == 0) {
		if (chdir(dir) != 0)
			_exit(127);
		execvp(argv[0], argv);
		fprintf(stderr, "%s: error: cannot run '%s': %s\n", prog_name,
		        argv[0], strerror(errno));
		_exit(127);
	}
	int st;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			fatal("waiting for %s: %s", argv[0], strerror(errno));
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static char *
absolute(const char *path)
{
	if (path[0] == '/')
		return arena_strdup(arena, path);
	char cwd[PATH_MAX];
	if (!getcwd(cwd, sizeof cwd))
		fatal("cannot get the current directory: %s", strerror(errno));
	return arena_printf(arena, "%s/%s", cwd, path);
}

/* The C compiler command: $CC split at spaces, else cc. */
static int
cc_words(char **argv, int max)
{
	const char *cc = getenv("CC");
	char *s = arena_strdup(arena, cc && *cc ? cc : "cc");
	int n = 0;
	for (char *w = strtok(s, " \t"); w && n < max; w = strtok(NULL, " \t"))
		argv[n++] = w;
	return n;
}

static void
remove_dir(const char *dir, const char *b)
{
	static const char *const ext[] = {".c", ".h", ".weights", ".o"};
	for (int i = 0; i < countof(ext); i++)
		unlink(arena_printf(arena, "%s/%s%s", dir, b, ext[i]));
	rmdir(dir);
}

static char *
temp_dir(void)
{
	const char *tmp = getenv("TMPDIR");
	char *dir = arena_printf(arena, "%s/kiln-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(dir))
		fatal("cannot make a temporary directory: %s", strerror(errno));
	if (nmade < countof(made_dir))
		made_dir[nmade++] = dir;
	return dir;
}

/* The C compiler makes out, atomically, from dir's model.c or model.o
 * (src) and the runtime library (and zlib for a trainer); dir goes
 * first either way.  The C flags are harmless when src is an object. */
static void
cc_exe(const char *dir, const char *src, bool trainer, const char *out)
{
	char *target = arena_printf(arena, "%s.tmpXXXXXX", absolute(out));
	int fd = mkstemp(target);
	if (fd < 0) {
		remove_dir(dir, "model");
		fatal("cannot write '%s': %s", out, strerror(errno));
	}
	/* mkstemp's 0600 would stay: the linker only adds the x bits */
	mode_t mask = umask(0);
	umask(mask);
	fchmod(fd, 0666 & ~mask);
	close(fd);
	char *argv[64];
	int n = cc_words(argv, 32);
	const char *flags[] = {"-std=c11", "-O2", "-DKILN_MAIN",
	                       "-I" KILN_RUNTIME_INC, "-o", target, src,
	                       KILN_RUNTIME_LIB, "-lm", "-pthread"};
	for (int i = 0; i < countof(flags); i++)
		argv[n++] = (char *)flags[i];
	if (trainer)
		argv[n++] = "-lz";      /* the trainer reads gzip'd datasets */
	if (strcmp(KILN_SANITIZE, "none") != 0)
		argv[n++] = "-fsanitize=" KILN_SANITIZE;
	argv[n] = NULL;
	int rc = run_in(dir, argv);
	remove_dir(dir, "model");
	if (rc != 0) {
		unlink(target);
		fatal("the C compiler (%s) failed with status %d", argv[0], rc);
	}
	if (rename(target, out) != 0) {
		int err = errno;
		unlink(target);
		fatal("cannot write '%s': %s", out, strerror(err));
	}
}

static void
build_exe(const Target *t, const char *out)
{
	char *dir = temp_dir();
	write_target(t, arena_printf(arena, "%s/model", dir));
	cc_exe(dir, "model.c", t->nsteps > 0, out);
}

/* ---- the LLVM backend */

/* path without the suffix ext, if it has it. */
static const char *
without(const char *path, const char *ext)
{
	size_t n = strlen(path), e = strlen(ext);
	if (n > e && strcmp(path + n - e, ext) == 0)
		return arena_strndup(arena, path, n - e);
	return path;
}

/* g compiled by LLVM as kind (malloc'd, *n bytes), its C names from
 * prefix. */
static unsigned char *
llvm_bytes(Graph *g, const Opts *o, const char *prefix, LlvmEmit kind,
           bool main, size_t *n)
{
#if KILN_HAVE_LLVM
	CgenOpts co = {.prefix = prefix, .source = o->model};
	LlvmOpts lo = {.triple = o->triple, .cpu = o->cpu,
	               .features = o->features, .opt = o->olevel, .main = main};
	return llgen_emit(g, &co, &lo, kind, n);
#else
	(void)g, (void)o, (void)prefix, (void)kind, (void)main, (void)n;
	die("the LLVM backend is not built in");
#endif
}

static void
write_llvm(Graph *g, const Opts *o, const char *prefix, LlvmEmit kind,
           const char *path)
{
	size_t n;
	unsigned char *p = llvm_bytes(g, o, prefix, kind, false, &n);
	write_bytes(path, p, n);
	free(p);
}

/* --emit=asm or llvm: the file -o names, else MODEL.s or MODEL.ll; the
 * C prefix is its base name without that suffix. */
static void
write_text_llvm(Graph *g, const Opts *o, const char *out)
{
	bool as = o->emit == EMIT_ASM;
	const char *ext = as ? ".s" : ".ll";
	const char *path = o->out ? out : arena_printf(arena, "%s%s", out, ext);
	write_llvm(g, o, cgen_ident(arena, base_name(without(path, ext))),
	           as ? LLVM_EMIT_ASM : LLVM_EMIT_IR, path);
}

/* --emit=obj: STEM.o and the C header STEM.h that declares its API. */
static void
write_obj(Graph *g, const Opts *o, const char *stem)
{
	CgenOpts co = c_names(stem, ".o", o->model);    /* it holds the weights */
	char *hbuf = NULL;
	size_t hlen = 0;
	FILE *h = open_memstream(&hbuf, &hlen);
	if (!h)
		fatal("out of memory");
	cgen_emit_header(g, &co, h);
	fclose(h);
	size_t n;
	unsigned char *obj = llvm_bytes(g, o, co.prefix, LLVM_EMIT_OBJ, false,
	                                &n);
	const char *path[] = {arena_printf(arena, "%s.o", stem),
	                      arena_printf(arena, "%s.h", stem)};
	write_files(2, path, (const void *[]){obj, hbuf}, (size_t[]){n, hlen});
	free(obj);
	free(hbuf);
}

/* An executable through an LLVM object with main(); the C compiler only
 * links, with the runtime library built for this machine. */
static void
build_llvm_exe(Graph *g, const Opts *o, const char *out)
{
#if KILN_HAVE_LLVM
	if (o->triple && !llgen_is_host(o->triple))
		fatal("--target=%s: an executable for another machine needs the "
		      "runtime built for it; write an object with --emit=obj and "
		      "link it there (docs/backend-llvm.md)", o->triple);
#endif
	size_t n;       /* first, so that an error leaves no directory */
	unsigned char *obj = llvm_bytes(g, o, "model", LLVM_EMIT_OBJ, true, &n);
	char *dir = temp_dir();
	write_bytes(arena_printf(arena, "%s/model.o", dir), obj, n);
	free(obj);
	cc_exe(dir, "model.o", false, out);
}

/* Whether a build uses the LLVM backend: --backend=llvm, or an output
 * only it makes (obj, asm, llvm); the flags must agree. */
static bool
use_llvm(const Opts *o)
{
	bool only = o->emit == EMIT_OBJ || o->emit == EMIT_ASM ||
	            o->emit == EMIT_LLVM;
	bool llvm = only || o->backend == BACKEND_LLVM;
	if (o->train && llvm)
		fatal("the LLVM backend builds inference models; trainers use the "
		      "C backend");
	if (only && backend_set && o->backend == BACKEND_C)
		fatal("--emit=%s is made by the LLVM backend, not --backend=c",
		      emit_name[o->emit]);
	if (o->emit == EMIT_C && o->backend == BACKEND_LLVM)
		fatal("--emit=c is the C backend's output; the LLVM backend "
		      "emits exe, obj, asm or llvm");
	if (llvm && !KILN_HAVE_LLVM)
		fatal("kiln was built without LLVM: --emit=%s needs it (Debian's "
		      "llvm-19-dev)", emit_name[o->emit]);
	if (!llvm && (o->triple || o->cpu || o->features))
		fatal("--target, --cpu and --features are for the LLVM backend "
		      "(--backend=llvm)");
	return llvm;
}

/* kiln gradcheck: the loss and gradient graphs (tools/gradcheck.c),
 * compiled with a main() over kiln_gradcheck_main and run. */
static int
cmd_gradcheck(Opts *o)
{
	if (o->ncheck % 2)
		fatal("%s needs a value", o->check[o->ncheck - 1]);
	Graph *g = drv_load(o);
	Graph **gs = gradcheck_graphs(g);
	optimize(g->mod, o);
	char *dir = temp_dir();
	write_c(gs[0], arena_printf(arena, "%s/loss", dir), o->model);
	write_c(gs[1], arena_printf(arena, "%s/grad", dir), o->model);
	static const char main_c[] = "#include \"loss.h\"\n#include \"grad.h\"\n"
	    "int\nmain(int argc, char **argv)\n{\n\treturn kiln_gradcheck_main("
	    "argc, argv, &loss_model, &grad_model);\n}\n";
	write_bytes(arena_printf(arena, "%s/main.c", dir), main_c,
	            sizeof main_c - 1);
	char *argv[64];
	int n = cc_words(argv, 32);
	const char *flags[] = {"-std=c11", "-O1", "-I", KILN_RUNTIME_INC, "-o",
	                       "check", "main.c", "loss.c", "grad.c",
	                       KILN_RUNTIME_LIB, "-lm", "-pthread"};
	for (int i = 0; i < countof(flags); i++)
		argv[n++] = (char *)flags[i];
	if (strcmp(KILN_SANITIZE, "none") != 0)
		argv[n++] = "-fsanitize=" KILN_SANITIZE;
	argv[n] = NULL;
	int rc = run_in(dir, argv);
	if (rc == 0) {
		fflush(stdout);
		char *run[12] = {"./check"};
		for (int i = 0; i < o->ncheck; i++)
			run[1 + i] = (char *)o->check[i];
		run[1 + o->ncheck] = NULL;
		rc = run_in(dir, run);
	} else {
		fprintf(stderr, "%s: error: the C compiler (%s) failed with status "
		        "%d\n", prog_name, argv[0], rc);
	}
	static const char *const files[] = {"loss.c", "loss.h", "loss.weights",
	    "grad.c", "grad.h", "grad.weights", "main.c", "check"};
	for (int i = 0; i < countof(files); i++)
		unlink(arena_printf(arena, "%s/%s", dir, files[i]));
	rmdir(dir);
	return rc;
}

static int
cmd_build(Opts *o)
{
	Module *m = load(o);
	Graph *g = pick_graph(m, o->graph);
	const char *out = o->out ? o->out : default_out(o->model);
	bool llvm = use_llvm(o);
	if (o->emit == EMIT_WEIGHTS) {
		if (!o->out)
			out = arena_printf(arena, "%s.safetensors", out);
		Module one = *m;    /* only the chosen model's parameters */
		one.graph = &g;
		one.ngraph = one.capgraph = 1;
		weights_save(&one, out);
		return 0;
	}
	int *before = ops_before(m);
	optimize(m, o);
	if (o->stats)
		print_stats(g, before, o);
	if (o->emit == EMIT_C)
		write_c(g, stem(out), o->model);
	else if (o->emit == EMIT_OBJ)
		write_obj(g, o, without(out, ".o"));
	else if (o->emit == EMIT_ASM || o->emit == EMIT_LLVM)
		write_text_llvm(g, o, out);
	else if (llvm)
		build_llvm_exe(g, o, out);
	else
		build_exe(&(Target){.g = g, .source = o->model}, out);
	return 0;
}

/* kiln train [KILN FLAGS] MODEL [TRAINER OPTIONS]: kiln build --train
 * into a temporary directory, then the trainer with the options after
 * the model (docs/training.md); returns its exit status. */
static int
cmd_train(int argc, char **argv)
{
	int m = 2;
	while (m < argc && argv[m][0] == '-')
		m += strcmp(argv[m], "--batch") == 0 || strcmp(argv[m], "--model") == 0 ||
		     strcmp(argv[m], "--weights") == 0 ? 2 : 1;
	if (m >= argc)
		fatal("kiln train: no model file given");
	Opts o = {.fo.batch = 1, .train = true, .olevel = PASS_DEFAULT_LEVEL};
	parse_args(&o, m + 1, argv);
	Module *mod;
	Graph *g = load_train(&o, &mod);
	Target t = train_target(mod, g, o.model);
	optimize(mod, &o);
	char *dir = temp_dir();
	char *exe = arena_printf(arena, "%s/%s_trainer", dir, g->name);
	build_exe(&t, exe);
	char **run = arena_alloc(arena, (size_t)(argc - m + 1) * sizeof *run);
	run[0] = exe;
	for (int i = m + 1; i < argc; i++)
		run[i - m] = argv[i];
	run[argc - m] = NULL;
	fflush(stdout);
	char cwd[PATH_MAX];
	if (!getcwd(cwd, sizeof cwd))
		fatal("cannot get the current directory: %s", strerror(errno));
	int rc = run_in(cwd, run);
	unlink(exe);
	rmdir(dir);
	return rc;
}

/* kiln build --train: the trainer executable (or its C with --emit=c),
 * by default named after the model with _trainer. */
static int
cmd_build_trainer(Opts *o)
{
	use_llvm(o);
	Module *m;
	Graph *g = load_train(o, &m);
	Target t = train_target(m, g, o->model);
	if (o->emit == EMIT_WEIGHTS)
		fatal("--train writes a trainer (--emit=exe or c); the trained "
		      "weights come from the trainer's --save");
	int *before = ops_before(m);
	optimize(m, o);
	if (o->stats) {
		for (int k = 0; k < t.nsteps; k++)
			print_stats(t.steps[k], before, o);
		print_stats(t.eval, before, o);
	}
	const char *out = o->out ? o->out :
	                  arena_printf(arena, "%s_trainer", default_out(o->model));
	if (o->emit == EMIT_C)
		write_trainer_c(&t, stem(out));
	else
		build_exe(&t, out);
	return 0;
}

/* The model as the frontend made it (no passes), as an ONNX file; by
 * default the model's base name with .onnx, which must not be the model
 * itself (kiln export model.onnx in the model's directory). */
static int
cmd_export(Opts *o)
{
	Graph *g = pick_graph(load(o), o->graph);
	const char *out = o->out;
	if (!out) {
		out = arena_printf(arena, "%s.onnx", default_out(o->model));
		struct stat a, b;
		if (stat(out, &a) == 0 && stat(o->model, &b) == 0 &&
		    a.st_dev == b.st_dev && a.st_ino == b.st_ino)
			fatal("kiln export: the default output '%s' is the model "
			      "itself; give another with -o", out);
	}
	onnx_export(g, out);
	return 0;
}

Graph *
drv_load(const Opts *o)
{
	return pick_graph(load(o), o->graph);
}

void
drv_build_exe(Graph *g, const Opts *o, const char *out)
{
	optimize(g->mod, o);
	build_exe(&(Target){.g = g, .source = o->model}, out);
}

int
main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		usage(stdout);
		return 0;
	}
	if (strcmp(argv[1], "--version") == 0) {
		printf("kiln %s\n", KILN_VERSION);
		return 0;
	}
	arena = arena_new();
	diag_atexit(cleanup);
	if (strcmp(argv[1], "train") == 0) {
		int rc = cmd_train(argc, argv);
		cleanup();
		return rc;
	}
	Opts o = {.fo.batch = 1, .run = {.rtol = 1e-3, .atol = 1e-5},
	          .olevel = PASS_DEFAULT_LEVEL};
	/* kiln run compiles in memory with LLVM's JIT when it can; kiln
	 * build writes C unless asked for LLVM */
	if (KILN_HAVE_LLVM && strcmp(argv[1], "run") == 0)
		o.backend = BACKEND_LLVM;
#ifndef NDEBUG
	o.po.verify_each = true;    /* as MLIR: verify after each pass */
#endif
	if (strcmp(argv[1], "build") != 0 && strcmp(argv[1], "ir") != 0 &&
	    strcmp(argv[1], "export") != 0 && strcmp(argv[1], "gradcheck") != 0 &&
	    strcmp(argv[1], "opt") != 0 && strcmp(argv[1], "run") != 0)
		fatal("unknown command '%s' (build, ir, opt, run or export; see "
		      "kiln --help)", argv[1]);
	parse_args(&o, argc, argv);
	int rc = strcmp(o.cmd, "build") == 0 && o.train ? cmd_build_trainer(&o) :
	         strcmp(o.cmd, "build") == 0 ? cmd_build(&o) :
	         strcmp(o.cmd, "export") == 0 ? cmd_export(&o) :
	         strcmp(o.cmd, "gradcheck") == 0 ? cmd_gradcheck(&o) :
	         strcmp(o.cmd, "ir") == 0 ? cmd_ir(&o) :
	         strcmp(o.cmd, "run") == 0 ? run_cmd(&o, arena) : cmd_opt(&o);
	cleanup();
	return rc;
}
