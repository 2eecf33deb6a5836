/* run.c: `kiln run`, which builds a model, runs it and checks its outputs.
 *
 *   kiln run MODEL [--input [NAME=]FILE]... [--expect [NAME=]FILE]...
 *
 * With the LLVM backend (the default when kiln is built with LLVM) the
 * model is compiled by the LLVM JIT into this process and run on buffers
 * in memory: no C compiler, no temporary files, no cache.  With the C
 * backend the executable is made by the same functions as `kiln build
 * --emit=exe` (drv_load, drv_build_exe in kiln.c) and kept in a build
 * cache, so a second run of an unchanged model only runs it; .pb inputs
 * are converted to .npy in a private temporary directory, because the
 * executable's command line reads .npy only, and its outputs come back as
 * .npy.  Inputs and expected outputs are .npy files or ONNX TensorProto
 * .pb files (the ONNX test data format); outputs are compared with
 * numpy.allclose's rule.  The exit status is 0 when every expected output
 * matches, else 1.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "driver.h"
#include "backend.h"            /* llvm_jit */
#include "kiln.h"               /* the runtime's .npy reader and writer */

extern char **environ;

enum { NSHOW = 5 };             /* differing elements printed per output */

/* A model input or output as the executable names it. */
typedef struct {
	const char *name;
	Type type;
	const char *file;           /* bound file (inputs), or NULL */
	void *data;                 /* a bound .pb input's data, else NULL */
	const char *expect;         /* expected-value file (outputs), or NULL */
} Port;

/* The model's interface, copied before the passes renumber values. */
typedef struct {
	Port *in, *out;
	int nin, nout;
} Ports;

/* A tensor read from a file. */
typedef struct {
	const char *name;           /* a .pb's stored name, "" for .npy */
	Type type;
	void *data;
} Tensor;

static char tmpdir[PATH_MAX];   /* removed at exit; not in the arena,
                                 * which is freed before atexit runs */

/* ---- flags ---------------------------------------------------------- */

static const char *
flag_value(char **argv, int *i, const char *flag)
{
	const char *arg = argv[*i];
	size_t n = strlen(flag);
	if (strcmp(arg, flag) == 0) {
		if (!argv[*i + 1])
			fatal("%s needs a value", flag);
		return argv[++*i];
	}
	if (strncmp(arg, flag, n) == 0 && arg[n] == '=')
		return arg + n + 1;
	return NULL;
}

static double
tolerance(const char *flag, const char *s)
{
	char *end;
	errno = 0;
	double x = strtod(s, &end);
	if (!*s || *end || errno || !(x >= 0) || isinf(x))
		fatal("%s needs a non-negative number, got '%s'", flag, s);
	return x;
}

bool
run_flag(Opts *o, Arena *a, char **argv, int *i)
{
	RunOpts *r = &o->run;
	const char *v;
	if ((v = flag_value(argv, i, "--input")))
		APUSH(a, r->input, r->ninput, r->capinput, v);
	else if ((v = flag_value(argv, i, "--expect")))
		APUSH(a, r->expect, r->nexpect, r->capexpect, v);
	else if ((v = flag_value(argv, i, "--rtol")))
		r->rtol = tolerance("--rtol", v);
	else if ((v = flag_value(argv, i, "--atol")))
		r->atol = tolerance("--atol", v);
	else if ((v = flag_value(argv, i, "--save")))
		r->save = v;
	else if (strcmp(argv[*i], "-v") == 0)
		r->verbose = true;
	else
		return false;
	return true;
}

/* ---- the temporary directory ---------------------------------------- */

static void
remove_tmpdir(void)
{
	DIR *d = tmpdir[0] ? opendir(tmpdir) : NULL;
	if (!d)
		return;
	char path[PATH_MAX + 256];
	for (struct dirent *e; (e = readdir(d)); ) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		snprintf(path, sizeof path, "%s/%s", tmpdir, e->d_name);
		unlink(path);
	}
	closedir(d);
	rmdir(tmpdir);
	tmpdir[0] = 0;
}

static void
make_tmpdir(void)
{
	const char *t = getenv("TMPDIR");
	int n = snprintf(tmpdir, sizeof tmpdir, "%s/kiln-run-XXXXXX",
	                 t && *t ? t : "/tmp");
	if (n < 0 || n >= (int)sizeof tmpdir || !mkdtemp(tmpdir)) {
		tmpdir[0] = 0;
		fatal("cannot make a temporary directory: %s", strerror(errno));
	}
	atexit(remove_tmpdir);
}

/* ---- tensors in files ----------------------------------------------- */

static bool
is_pb(const char *path)
{
	size_t n = strlen(path);
	return n > 3 && strcmp(path + n - 3, ".pb") == 0;
}

/* The type of a .npy file, without reading its data. */
static Type
npy_type(const char *path)
{
	struct kiln_npy_info info;
	char msg[1024];
	if (kiln_npy_info(path, &info, msg, sizeof msg))
		fatal("%s", msg);
	Type t = {.dtype = info.dtype, .rank = info.rank};
	memcpy(t.dim, info.dim, sizeof info.dim);
	return t;
}

/* Reads a whole .npy or .pb file. */
static Tensor
read_tensor(Arena *a, const char *path)
{
	Tensor x = {.name = ""};
	if (is_pb(path)) {
		onnx_load_tensor(a, path, &x.name, &x.type, &x.data);
		return x;
	}
	char msg[1024];
	x.type = npy_type(path);
	x.data = arena_alloc(a, type_bytes(&x.type));
	if (kiln_npy_load(path, path, x.type.dtype, x.type.rank, x.type.dim,
	                  x.data, msg, sizeof msg))
		fatal("%s", msg);
	return x;
}

static void
write_npy(const char *path, const Tensor *x)
{
	char msg[1024];
	if (kiln_npy_save(path, x->type.dtype, x->type.rank, x->type.dim,
	                  x->data, msg, sizeof msg))
		fatal("cannot write '%s': %s", path, msg);
}

/* ---- binding files to inputs and outputs ---------------------------- */

/* The port whose name, followed by '=', starts arg; the longest wins, as
 * in the executable's own command line (runtime/main.c). */
static int
find_named(const Port *p, int n, const char *arg)
{
	size_t best = 0;
	int k = -1;
	for (int i = 0; i < n; i++) {
		size_t len = strlen(p[i].name);
		if (len >= best && strncmp(arg, p[i].name, len) == 0 &&
		    arg[len] == '=') {
			best = len;
			k = i;
		}
	}
	return k;
}

static int
find_name(const Port *p, int n, const char *name)
{
	for (int i = 0; i < n; i++)
		if (strcmp(p[i].name, name) == 0)
			return i;
	return -1;
}

static _Noreturn void
unknown_name(Arena *a, const char *what, const char *arg, const Port *p,
             int n)
{
	const char *list = n ? "" : "none";
	for (int i = 0; i < n; i++)
		list = arena_printf(a, "%s%s'%s'", list, i ? ", " : "", p[i].name);
	fatal("unknown %s '%.*s' in '%s' (the model's %ss: %s)", what,
	      (int)(strcspn(arg, "=")), arg, arg, what, list);
}

/* Splits [NAME=]FILE: returns the named port, or -1 with *file = arg.
 * A prefix that names no port is an error unless arg is a file. */
static int
split_arg(Arena *a, const char *what, const char *arg, const Port *p, int n,
          const char **file)
{
	int k = find_named(p, n, arg);
	if (k >= 0) {
		*file = arg + strlen(p[k].name) + 1;
		return k;
	}
	*file = arg;
	if (strchr(arg, '=') && access(arg, F_OK) != 0)
		unknown_name(a, what, arg, p, n);
	return -1;
}

/* A u16 tensor where a bf16 one is expected holds its bits: .npy has no
 * bfloat16 (kiln writes bf16 as '<u2'), and ONNX's test data stores
 * bfloat16 tensors as uint16. */
static void
as_bf16(Type *t, const Type *want)
{
	if (t->dtype == DT_U16 && want->dtype == DT_BF16)
		t->dtype = DT_BF16;
}

/* An ONNX input whose dims the model leaves open gets them from --shape
 * (else 1), so a dims-only mismatch there gets a hint. */
static void
check_input_type(Arena *a, const Opts *o, const Port *p, const Type *t,
                 const char *file)
{
	if (type_eq(&p->type, t))
		return;
	diag_error_begin((Loc){0}, "input '%s': expected %s, got %s in %s",
	                 p->name, type_str(a, &p->type), type_str(a, t), file);
	size_t n = strlen(o->model);
	if (n > 5 && strcmp(o->model + n - 5, ".onnx") == 0 &&
	    p->type.dtype == t->dtype && p->type.rank == t->rank) {
		const char *ty = type_str(a, t);
		diag_note((Loc){0}, "if the model leaves those dims open, give "
		          "them with --shape %s=%.*s", p->name,
		          (int)(strlen(ty) - strcspn(ty, "[") - 2),
		          ty + strcspn(ty, "[") + 1);
	}
	diag_exit();
}

/* Binds one --input; a .pb is read whole (its name may bind it). */
static void
bind_input(Arena *a, const Opts *o, Ports *io, const char *arg,
           int *nunnamed)
{
	const char *file;
	int k = split_arg(a, "input", arg, io->in, io->nin, &file);
	int pos = k < 0 ? (*nunnamed)++ : -1;
	Tensor x = {.name = ""};
	if (is_pb(file))
		x = read_tensor(a, file);
	else
		x.type = npy_type(file);
	if (k < 0)
		k = find_name(io->in, io->nin, x.name);
	if (k < 0 && pos >= io->nin)
		fatal("--input %s: the model has only %d input%s", arg, io->nin,
		      io->nin == 1 ? "" : "s");
	if (k < 0)
		k = pos;
	Port *p = &io->in[k];
	if (p->file)
		fatal("input '%s' given twice", p->name);
	as_bf16(&x.type, &p->type);
	check_input_type(a, o, p, &x.type, file);
	p->file = file;
	p->data = x.data;
}

static void
bind_expect(Arena *a, Ports *io, const char *arg, int *nunnamed)
{
	const char *file;
	int k = split_arg(a, "output", arg, io->out, io->nout, &file);
	if (k < 0 && (k = (*nunnamed)++) >= io->nout)
		fatal("--expect %s: the model has only %d output%s", arg,
		      io->nout, io->nout == 1 ? "" : "s");
	if (io->out[k].expect)
		fatal("expected values for output '%s' given twice",
		      io->out[k].name);
	if (access(file, R_OK) != 0)
		fatal("cannot read '%s': %s", file, strerror(errno));
	io->out[k].expect = file;
}

static void
bind_all(Arena *a, const Opts *o, Ports *io)
{
	const RunOpts *r = &o->run;
	int nin = 0, nexp = 0;
	for (int i = 0; i < r->ninput; i++)
		bind_input(a, o, io, r->input[i], &nin);
	for (int i = 0; i < r->nexpect; i++)
		bind_expect(a, io, r->expect[i], &nexp);
	const char *miss = NULL;
	for (int i = 0; i < io->nin; i++)
		if (!io->in[i].file)
			miss = arena_printf(a, "%s%s'%s'", miss ? miss : "",
			                    miss ? ", " : "", io->in[i].name);
	if (miss)
		fatal("missing input %s (give each with --input [NAME=]FILE)",
		      miss);
}

static Port *
copy_ports(Arena *a, const Graph *g, const int *v, int n)
{
	Port *p = arena_alloc(a, (n + 1) * sizeof *p);
	for (int i = 0; i < n; i++)
		p[i] = (Port){.name = g->val[v[i]].name, .type = g->val[v[i]].type};
	return p;
}

/* ---- the build cache ------------------------------------------------
 * Hand-written FNV-1a: a cache key needs no cryptographic strength (a
 * collision costs a wrong cache hit on one's own machine, not security),
 * and the compiler links no hashing library. */

static uint64_t
fnv(uint64_t h, const void *p, size_t n)
{
	const unsigned char *b = p;
	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 0x100000001b3ULL;
	return h;
}

/* Strings end in their NUL, so "ab","c" and "a","bc" differ. */
static uint64_t
fnv_str(uint64_t h, const char *s)
{
	return fnv(h, s ? s : "(null)", strlen(s ? s : "(null)") + 1);
}

static uint64_t
fnv_file(uint64_t h, const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		fatal("cannot read '%s': %s", path, strerror(errno));
	unsigned char buf[65536];
	size_t n;
	while ((n = fread(buf, 1, sizeof buf, f)) > 0)
		h = fnv(h, buf, n);
	bool bad = ferror(f);
	fclose(f);
	if (bad)
		fatal("cannot read '%s'", path);
	return fnv_str(h, "<eof>");
}

/* A file's identity without its bytes: path, size, modification time. */
static uint64_t
fnv_identity(uint64_t h, const char *path)
{
	struct stat st;
	h = fnv_str(h, path);
	if (stat(path, &st) != 0)
		return fnv_str(h, "<missing>");
	int64_t id[] = {st.st_size, st.st_mtim.tv_sec, st.st_mtim.tv_nsec};
	return fnv(h, id, sizeof id);
}

/* The loaded module, printed, plus every tensor's data: this covers what
 * the model's own bytes do not, such as .kiln includes and ONNX external
 * data. */
static uint64_t
fnv_module(uint64_t h, const Module *m)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	if (!f)
		fatal("out of memory");
	ir_print(f, m, &(PrintOpts){0});
	fclose(f);
	h = fnv(h, buf, len);
	free(buf);
	for (int i = 0; i < m->ngraph; i++)
		for (int k = 0; k < m->graph[i]->nval; k++) {
			const Value *v = &m->graph[i]->val[k];
			if (v->data)
				h = fnv(h, v->data, type_bytes(&v->type));
		}
	return h;
}

static uint64_t
cache_key(const Opts *o, const Module *m)
{
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
	self[n > 0 ? n : 0] = 0;
	const char *cc = getenv("CC");
	uint64_t h = 0xcbf29ce484222325ULL;
	h = fnv_str(h, "kiln run cache 1 " KILN_VERSION " " KILN_SANITIZE);
	h = fnv_identity(h, self);
	h = fnv_identity(h, KILN_RUNTIME_LIB);
	h = fnv_identity(h, KILN_RUNTIME_INC "/kiln.h");
	h = fnv_str(h, cc && *cc ? cc : "cc");
	h = fnv_str(h, strrchr(o->model, '.'));    /* picks the frontend */
	h = fnv_file(h, o->model);
	h = fnv_file(fnv_str(h, "weights"), o->weights ? o->weights : "/dev/null");
	h = fnv_str(h, o->graph);
	h = fnv(h, &o->olevel, sizeof o->olevel);   /* picks the pipeline */
	h = fnv(h, &o->fo.batch, sizeof o->fo.batch);
	for (int i = 0; i < o->fo.nshape; i++) {
		const FeShape *s = &o->fo.shape[i];
		h = fnv_str(h, s->name);
		h = fnv(h, s->type.dim, s->type.rank * sizeof s->type.dim[0]);
	}
	return fnv_module(h, m);
}

/* mkdir -p; an existing directory (made by a concurrent run) is fine. */
static void
make_dirs(Arena *a, const char *dir)
{
	char *p = arena_strdup(a, dir);
	for (char *s = p + 1; ; s++) {
		if (*s != '/' && *s)
			continue;
		char c = *s;
		*s = 0;
		if (mkdir(p, 0777) != 0 && errno != EEXIST)
			fatal("cannot make the cache directory '%s': %s", p,
			      strerror(errno));
		if (!(*s = c))
			break;
	}
}

static const char *
cache_dir(Arena *a)
{
	const char *d = getenv("KILN_CACHE"), *x = getenv("XDG_CACHE_HOME"),
	           *home = getenv("HOME");
	if (d && *d)
		return d;
	if (x && *x)
		return arena_printf(a, "%s/kiln", x);
	if (home && *home)
		return arena_printf(a, "%s/.cache/kiln", home);
	fatal("no cache directory: set KILN_CACHE, XDG_CACHE_HOME or HOME");
}

/* The model's base name without its suffix, to name things after. */
static const char *
model_stem(Arena *a, const char *model)
{
	const char *b = strrchr(model, '/');
	b = b ? b + 1 : model;
	const char *dot = strrchr(b, '.');
	return arena_strndup(a, b, dot && dot != b ? (size_t)(dot - b)
	                                           : strlen(b));
}

/* The cached executable for the model, built first if it is not there.
 * drv_build_exe writes a temporary and renames it, so concurrent runs
 * never see a half-written file; the last of two identical builds wins. */
static const char *
cached_exe(const Opts *o, Arena *a, Graph *g)
{
	const char *dir = cache_dir(a);
	uint64_t key = cache_key(o, g->mod);
	const char *exe = arena_printf(a, "%s/%s-%016llx", dir,
	                               model_stem(a, o->model),
	                               (unsigned long long)key);
	const PassOpts *po = &o->po;
	bool dumps = po->print_after_all;
	for (int i = 0; i < NPASS; i++)
		dumps |= po->print_before[i] || po->print_after[i];
	if (!dumps && access(exe, X_OK) == 0) {    /* dumps need the passes run */
		if (o->run.verbose)
			fprintf(stderr, "%s: using cached %s\n", prog_name, exe);
		return exe;
	}
	if (o->run.verbose)
		fprintf(stderr, "%s: building %s\n", prog_name, exe);
	make_dirs(a, dir);
	drv_build_exe(g, o, exe);
	return exe;
}

/* ---- running -------------------------------------------------------- */

static int
spawn(const char *path, char **argv)
{
	pid_t pid;
	int rc = posix_spawn(&pid, path, NULL, NULL, argv, environ);
	if (rc != 0)
		fatal("cannot run '%s': %s", path, strerror(rc));
	int st;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			fatal("waiting for '%s': %s", path, strerror(errno));
	if (WIFSIGNALED(st))
		fatal("the model executable was killed by signal %d",
		      WTERMSIG(st));
	return WEXITSTATUS(st);
}

/* Runs exe on the bound inputs; with outputs, it writes output K to
 * tmpdir/outK.npy.  Returns its exit status. */
static int
run_exe(Arena *a, const char *exe, const char *stem, Ports *io, bool outputs)
{
	char **argv = arena_alloc(a, (2 * (io->nin + io->nout) + 2) *
	                             sizeof *argv);
	int n = 0;
	argv[n++] = (char *)stem;    /* the executable's name in its messages */
	for (int i = 0; i < io->nin; i++) {
		argv[n++] = "--input";
		argv[n++] = arena_printf(a, "%s=%s", io->in[i].name, io->in[i].file);
	}
	for (int i = 0; outputs && i < io->nout; i++) {
		/* Two outputs may be one value; the executable takes each name
		 * once, so a repeated one shares the first one's file. */
		if (find_name(io->out, i, io->out[i].name) >= 0)
			continue;
		argv[n++] = "--output";
		argv[n++] = arena_printf(a, "%s=%s/out%d.npy", io->out[i].name,
		                         tmpdir, i);
	}
	argv[n] = NULL;
	fflush(stdout);
	return spawn(exe, argv);
}

/* Output K as the executable wrote it, tmpdir/outK.npy (a repeated
 * output: the first one's file); data NULL when there is no file. */
static Tensor *
read_outputs(Arena *a, const Ports *io)
{
	Tensor *got = arena_alloc(a, (io->nout + 1) * sizeof *got);
	for (int i = 0; i < io->nout; i++) {
		int first = find_name(io->out, io->nout, io->out[i].name);
		const char *file = arena_printf(a, "%s/out%d.npy", tmpdir, first);
		if (access(file, R_OK) == 0)
			got[i] = read_tensor(a, file);
	}
	return got;
}

/* The C backend: the cached executable runs on the bound inputs, .pb
 * ones converted to .npy.  Returns its outputs, or NULL when there is
 * nothing to compare or save and the executable printed them. */
static Tensor *
run_cc(Arena *a, const Opts *o, Graph *g, Ports *io)
{
	make_tmpdir();
	for (int i = 0; i < io->nin; i++) {
		Port *p = &io->in[i];
		if (!p->data)
			continue;
		p->file = arena_printf(a, "%s/in%d.npy", tmpdir, i);
		write_npy(p->file, &(Tensor){.type = p->type, .data = p->data});
	}
	const char *exe = cached_exe(o, a, g);
	bool outputs = o->run.nexpect > 0 || o->run.save;
	int rc = run_exe(a, exe, model_stem(a, o->model), io, outputs);
	if (rc != 0)
		fatal("the model executable failed with status %d", rc);
	return outputs ? read_outputs(a, io) : NULL;
}

/* ---- comparing ------------------------------------------------------ */

/* Element i of x as a double (exact for every integer kiln compares,
 * up to 2^53). */
static double
elem(const Tensor *x, int64_t i)
{
	const void *p = x->data;
	double v;
	switch (x->type.dtype) {
	case DT_F32: return ((const float *)p)[i];
	case DT_F64: return ((const double *)p)[i];
	case DT_I64: return (double)((const int64_t *)p)[i];
	case DT_I32: return ((const int32_t *)p)[i];
	case DT_I8: return ((const int8_t *)p)[i];
	case DT_I16: return ((const int16_t *)p)[i];
	case DT_U16: return ((const uint16_t *)p)[i];
	case DT_U32: return ((const uint32_t *)p)[i];
	case DT_U64: return (double)((const uint64_t *)p)[i];
	case DT_F16:
	case DT_BF16:    /* the runtime's conversion, exact when widening */
		kiln_cast(&v, KILN_F64, (const uint16_t *)p + i,
		          (kiln_dtype)x->type.dtype, 1);
		return v;
	default: return ((const uint8_t *)p)[i];
	}
}

static bool
exact_equal(const Tensor *x, const Tensor *y, int64_t i)
{
	/* beyond 2^53 a double rounds */
	if (x->type.dtype == DT_I64 || x->type.dtype == DT_U64)
		return ((const int64_t *)x->data)[i] == ((const int64_t *)y->data)[i];
	return elem(x, i) == elem(y, i);
}

/* numpy.allclose for one element, a got and b expected. */
static bool
close_enough(double a, double b, double rtol, double atol)
{
	if (isnan(a) || isnan(b))
		return isnan(a) && isnan(b);
	if (isinf(a) || isinf(b))
		return a == b;
	return fabs(a - b) <= atol + rtol * fabs(b);
}

static void
print_index(const Type *t, int64_t i)
{
	int64_t idx[IR_MAXRANK];
	for (int d = t->rank - 1; d >= 0; d--) {
		idx[d] = t->dim[d] ? i % t->dim[d] : 0;
		i = t->dim[d] ? i / t->dim[d] : 0;
	}
	printf("  at [");
	for (int d = 0; d < t->rank; d++)
		printf("%s%lld", d ? "," : "", (long long)idx[d]);
	printf("]: ");
}

static void
print_value(const Tensor *x, int64_t i)
{
	if (x->type.dtype == DT_F32 || x->type.dtype == DT_F16 ||
	    x->type.dtype == DT_BF16)
		printf("%.9g", elem(x, i));
	else if (x->type.dtype == DT_F64)
		printf("%.17g", elem(x, i));
	else if (x->type.dtype == DT_I64)
		printf("%lld", (long long)((const int64_t *)x->data)[i]);
	else if (x->type.dtype == DT_U64)
		printf("%llu", (unsigned long long)((const uint64_t *)x->data)[i]);
	else
		printf("%.0f", elem(x, i));
}

/* Prints the output's line and its first differing elements; returns
 * whether it matches. */
static bool
compare(Arena *a, const Port *p, const Tensor *got, const Tensor *want,
        const RunOpts *r)
{
	const char *ty = type_str(a, &got->type);
	if (!type_eq(&got->type, &want->type)) {
		printf("output '%s': %s: expected %s (%s): MISMATCH\n", p->name, ty,
		       type_str(a, &want->type), p->expect);
		return false;
	}
	int dt = got->type.dtype;
	bool isfloat = dt == DT_F32 || dt == DT_F64 || dt == DT_F16 ||
	               dt == DT_BF16;
	int64_t n = type_numel(&got->type), nbad = 0, bad[NSHOW];
	double maxabs = 0, maxrel = 0;
	for (int64_t i = 0; i < n; i++) {
		double g = elem(got, i), w = elem(want, i);
		bool ok = isfloat ? close_enough(g, w, r->rtol, r->atol)
		                  : exact_equal(got, want, i);
		if (!ok && nbad < NSHOW)
			bad[nbad] = i;
		nbad += !ok;
		if (isfinite(g) && isfinite(w)) {
			maxabs = MAX(maxabs, fabs(g - w));
			if (w != 0)
				maxrel = MAX(maxrel, fabs(g - w) / fabs(w));
		}
	}
	printf("output '%s': %s: max abs error %.2g, max rel error %.2g: %s",
	       p->name, ty, maxabs, maxrel, nbad ? "MISMATCH" : "ok");
	if (nbad)
		printf(" (%lld of %lld elements differ)", (long long)nbad,
		       (long long)n);
	putchar('\n');
	for (int64_t k = 0; k < MIN(nbad, NSHOW); k++) {
		print_index(&got->type, bad[k]);
		printf("got ");
		print_value(got, bad[k]);
		printf(", expected ");
		print_value(want, bad[k]);
		putchar('\n');
	}
	return nbad == 0;
}

/* Compares every output that has an expected file with got[] (data
 * NULL: the executable wrote none); returns the number that are off or
 * missing. */
static int
check_outputs(Arena *a, const Ports *io, Tensor *got, const RunOpts *r)
{
	int nbad = 0;
	for (int i = 0; i < io->nout; i++) {
		const Port *p = &io->out[i];
		if (!p->expect)
			continue;
		if (!got[i].data) {
			printf("output '%s': missing (the executable wrote no file)\n",
			       p->name);
			nbad++;
			continue;
		}
		Tensor want = read_tensor(a, p->expect);
		as_bf16(&got[i].type, &p->type);
		as_bf16(&want.type, &p->type);
		nbad += !compare(a, p, &got[i], &want, r);
	}
	return nbad;
}

/* --save DIR: writes output K to DIR/output_K.npy (the ONNX test data's
 * naming), so another run can --expect them. */
static void
save_outputs(Arena *a, const Ports *io, const Tensor *got, const char *dir)
{
	if (mkdir(dir, 0777) != 0 && errno != EEXIST)
		fatal("cannot make '%s': %s", dir, strerror(errno));
	for (int i = 0; i < io->nout; i++) {
		if (!got[i].data)
			fatal("output '%s': missing (the executable wrote no file)",
			      io->out[i].name);
		write_npy(arena_printf(a, "%s/output_%d.npy", dir, i), &got[i]);
	}
}

/* ---- running in this process (LLVM) ---------------------------------- */

/* Prints the outputs as a model executable does when given no --output
 * (the runtime's kiln_print_tensor). */
static void
print_outputs(const Ports *io, const Tensor *got)
{
	for (int i = 0; i < io->nout; i++)
		kiln_print_tensor(io->out[i].name, (kiln_dtype)got[i].type.dtype,
		                  got[i].type.rank, got[i].type.dim, got[i].data);
}

#if KILN_HAVE_LLVM
/* The LLVM level of the JIT's code: the C backend's executables are
 * compiled with cc -O2. */
enum { JIT_OPT = 2 };

/* n zeroed bytes aligned to KILN_ALIGN, as a model executable allocates
 * its tensors and workspace. */
static void *
aligned(Arena *a, size_t n)
{
	uintptr_t p = (uintptr_t)arena_alloc(a, n + KILN_ALIGN);
	return (void *)ALIGNUP(p, KILN_ALIGN);
}

/* A bound input's data: a .pb's as read when bound, else its .npy's. */
static void *
load_input(Arena *a, const Port *p)
{
	size_t n = type_bytes(&p->type);
	void *x = aligned(a, n);
	char msg[1024];
	if (p->data)
		memcpy(x, p->data, n);
	else if (kiln_npy_load(p->file, p->name, p->type.dtype, p->type.rank,
	                       p->type.dim, x, msg, sizeof msg))
		fatal("%s", msg);
	return x;
}

static bool
same_type(const struct kiln_tensor_desc *t, const Port *p)
{
	return strcmp(t->name, p->name) == 0 && (int)t->dtype == p->type.dtype &&
	       t->rank == p->type.rank &&
	       memcmp(t->dim, p->type.dim, t->rank * sizeof t->dim[0]) == 0;
}

/* The buffers are sized from the ports, so the compiled model must take
 * exactly those tensors. */
static void
check_desc(const struct kiln_model_desc *m, const Ports *io)
{
	if (m->ninputs != io->nin || m->noutputs != io->nout)
		die("the JIT's model has %d inputs and %d outputs, not %d and %d",
		    m->ninputs, m->noutputs, io->nin, io->nout);
	for (int i = 0; i < io->nin; i++)
		if (!same_type(&m->inputs[i], &io->in[i]))
			die("the JIT's model differs in input %d", i);
	for (int i = 0; i < io->nout; i++)
		if (!same_type(&m->outputs[i], &io->out[i]))
			die("the JIT's model differs in output %d", i);
}

/* The LLVM backend: g, after the pipeline, compiled into this process and
 * run on buffers in memory.  Returns the outputs. */
static Tensor *
run_jit(Arena *a, const Opts *o, Graph *g, const Ports *io)
{
	if (o->run.verbose)
		fprintf(stderr, "%s: running through the LLVM JIT\n", prog_name);
	const void **in = arena_alloc(a, (io->nin + 1) * sizeof *in);
	for (int i = 0; i < io->nin; i++)
		in[i] = load_input(a, &io->in[i]);
	Tensor *got = arena_alloc(a, (io->nout + 1) * sizeof *got);
	void **out = arena_alloc(a, (io->nout + 1) * sizeof *out);
	for (int i = 0; i < io->nout; i++) {
		got[i] = (Tensor){.name = "", .type = io->out[i].type};
		out[i] = got[i].data = aligned(a, type_bytes(&got[i].type));
	}
	int n;
	const int *ids = pass_pipeline(o->olevel, &n);
	pass_run(g->mod, ids, n, &o->po);
	const void *desc;
	LlvmJit *j = llvm_jit(g, &(CgenOpts){.prefix = "model",
	                      .source = o->model}, JIT_OPT, &desc);
	const struct kiln_model_desc *m = desc;
	check_desc(m, io);
	kiln_status s = m->run(in, out, aligned(a, m->workspace_bytes));
	llvm_jit_free(j);
	if (s != KILN_OK)
		fatal("the model's run failed: %s (status %d)", kiln_status_str(s),
		      (int)s);
	return got;
}
#else
/* kiln.c refuses --backend=llvm when kiln has no LLVM. */
static Tensor *
run_jit(Arena *a, const Opts *o, Graph *g, const Ports *io)
{
	(void)a, (void)o, (void)g, (void)io;
	die("no LLVM JIT in this kiln");
}
#endif

static bool
is_onnx(const char *path)
{
	size_t n = strlen(path);
	return n > 5 && strcmp(path + n - 5, ".onnx") == 0;
}

/* ONNX models may take values that kiln needs at build time (a Reshape's
 * shape, Resize's sizes) as graph inputs.  Every --input is offered to
 * the importer (FeOpts.known), which freezes into constants the ones it
 * needs; each argument is rewritten as NAME=FILE by the binding rules of
 * bind_input, so those frozen can be dropped after the load. */
static void
offer_inputs(Arena *a, Opts *o)
{
	int n, nunnamed = 0;
	bool *tensor;
	const char **names = onnx_input_names(a, o->model, &n, &tensor);
	Port *p = arena_alloc(a, (n + 1) * sizeof *p);
	for (int i = 0; i < n; i++)
		p[i].name = names[i];
	RunOpts *r = &o->run;
	const char **args = arena_alloc(a, (r->ninput + 1) * sizeof *args);
	o->fo.known = arena_alloc(a, (r->ninput + 1) * sizeof *o->fo.known);
	for (int i = 0; i < r->ninput; i++) {
		const char *arg = args[i] = r->input[i], *file = arg;
		int k = find_named(p, n, arg);
		if (k >= 0)
			file = arg + strlen(p[k].name) + 1;
		else if (strchr(arg, '=') && access(arg, F_OK) != 0)
			continue;       /* bind_all reports the unknown name */
		int pos = k < 0 ? nunnamed++ : -1;
		if ((k >= 0 && !tensor[k]) || (k < 0 && pos < n && !tensor[pos]))
			continue;       /* the import reports the input's type */
		Tensor x = read_tensor(a, file);
		if (k < 0)
			k = find_name(p, n, x.name);
		if (k < 0 && pos < n)
			k = pos;
		if (k < 0)
			continue;
		o->fo.known[o->fo.nknown++] = (FeValue){names[k], x.type, x.data};
		args[i] = arena_printf(a, "%s=%s", names[k], file);
	}
	r->input = args;
}

/* Drops the --input arguments of inputs the import froze. */
static void
drop_frozen(Opts *o, const Graph *g)
{
	RunOpts *r = &o->run;
	int n = 0;
	for (int i = 0; i < r->ninput; i++) {
		bool frozen = false;
		for (int k = 0; k < o->fo.nknown && !frozen; k++) {
			const char *name = o->fo.known[k].name;
			size_t len = strlen(name);
			bool input = false;
			for (int j = 0; j < g->ninput; j++)
				input |= strcmp(g->val[g->input[j]].name, name) == 0;
			frozen = !input && strncmp(r->input[i], name, len) == 0 &&
			         r->input[i][len] == '=';
		}
		if (!frozen)
			r->input[n++] = r->input[i];
	}
	r->ninput = n;
}

int
run_cmd(const Opts *opts, Arena *a)
{
	Opts copy = *opts, *o = &copy;
	bool jit = o->backend == BACKEND_LLVM;
	if (is_onnx(o->model))
		offer_inputs(a, o);
	if (!jit && strcmp(o->model, "-") == 0)
		fatal("run: the model must be a file, not standard input (it is "
		      "hashed for the build cache)");
	if (o->out)
		fatal("run: -o does not apply (%s)", jit ?
		      "the model runs inside kiln; --save DIR writes its outputs" :
		      "the executable is kept in the build cache");
	if (o->triple || o->cpu || o->features)
		fatal("run: --target, --cpu and --features do not apply (kiln run "
		      "runs the model on this machine)");
	Graph *g = drv_load(o);
	drop_frozen(o, g);
	Ports io = {
		.in = copy_ports(a, g, g->input, g->ninput), .nin = g->ninput,
		.out = copy_ports(a, g, g->output, g->noutput), .nout = g->noutput,
	};
	bind_all(a, o, &io);
	Tensor *got = jit ? run_jit(a, o, g, &io) : run_cc(a, o, g, &io);
	if (!got)
		return 0;       /* the executable printed the outputs */
	if (o->run.save)
		save_outputs(a, &io, got, o->run.save);
	if (o->run.nexpect > 0)
		return check_outputs(a, &io, got, &o->run) ? 1 : 0;
	if (!o->run.save)
		print_outputs(&io, got);
	return 0;
}
