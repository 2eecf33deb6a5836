/* ort_bench.c: times ONNX Runtime on one ONNX model, for the benchmark
 * suite, which runs it round by round against kiln's executables and
 * PyTorch.
 *
 *   ort_bench MODEL.onnx [--threads T] [--runs N] [--warmup W] [--lib PATH]
 *
 * Every model input gets its declared shape (symbolic or unknown dims set
 * to 1) and a fixed pseudo-random fill: f32 uniform in [-1, 1), i64 0 or
 * 1 (valid token ids and mask values for any vocabulary).  After W
 * warm-up runs it times N runs of OrtApi::Run one by one with
 * CLOCK_MONOTONIC and prints one JSON line on stdout:
 *   {"min_ms":..,"median_ms":..,"runs":N,"threads":T,"ort_version":"1.31.1"}
 * The median of an even count is the mean of the middle two, as in the
 * `--bench` of kiln's executables.  Only Run is timed; the outputs ORT
 * allocates in it are released after the clock stops.
 *
 * The session: T intra-op threads, 1 inter-op thread, sequential
 * execution, every graph optimization (ORT_ENABLE_ALL), the CPU
 * provider.  Spinning is left at ORT's default: with T = 1 ORT starts no
 * pool thread (the calling thread runs every node; check_threads() checks
 * it, and the process uses no more CPU time than wall time), so nothing
 * spins; with T = 2 its one worker spins between parallel sections, as
 * ORT users get it.  (kiln's workers sleep on a condition variable.)
 *
 * No ONNX Runtime headers are available (the npm package ships only the
 * library), so this file declares what it uses.  The library exports
 * OrtGetApiBase; everything else is an entry of the OrtApi table, an
 * array of function pointers that only ever grows at the end (one API
 * version per release, older entries frozen).  The indices in ORT_API
 * below were counted in include/onnxruntime/core/session/
 * onnxruntime_c_api.h of microsoft/onnxruntime (a copy with
 * ORT_API_VERSION 13) and agree with the static_asserts of
 * onnxruntime/core/session/onnxruntime_c_api.cc (ReleaseCustomOpDomain is
 * entry 101, the end of version 1; ReleaseModelMetadata 118).  Every
 * entry used is in version 1, so we ask GetApi for version 1, which every
 * release still serves (1.30 and 1.31 alike).  The enum values are from
 * the same header.  A wrong index must fail loudly instead of timing the
 * wrong thing, so check_api() tests the table at start-up (a status made
 * by CreateStatus gives back its code and text; the enum setters refuse
 * a value outside their enum), Run itself checks every input name, type
 * and shape against the model, and check_threads() counts the threads
 * the session starts: T - 1 pool workers.  Shifting any index by one
 * made ort_bench fail (an error or a crash) in a test, except 24 <-> 25
 * at T = 1, where ORT's default on this machine is also 1 thread; T = 2
 * catches that one.
 */
#define _GNU_SOURCE  /* dladdr */

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define API_VERSION 1

/* Opaque ONNX Runtime objects. */
typedef struct OrtStatus OrtStatus;
typedef struct OrtEnv OrtEnv;
typedef struct OrtSession OrtSession;
typedef struct OrtSessionOptions OrtSessionOptions;
typedef struct OrtRunOptions OrtRunOptions;
typedef struct OrtValue OrtValue;
typedef struct OrtTypeInfo OrtTypeInfo;
typedef struct OrtTensorTypeAndShapeInfo OrtTensorTypeAndShapeInfo;
typedef struct OrtMemoryInfo OrtMemoryInfo;
typedef struct OrtAllocator OrtAllocator;

/* Enum values from onnxruntime_c_api.h. */
enum {
	ORT_LOGGING_LEVEL_WARNING = 2,  /* OrtLoggingLevel */
	ORT_NOT_IMPLEMENTED = 9,        /* OrtErrorCode */
	ORT_SEQUENTIAL = 0,             /* ExecutionMode */
	ORT_ENABLE_ALL = 99,            /* GraphOptimizationLevel */
	ORT_ARENA_ALLOCATOR = 1,        /* OrtAllocatorType */
	ORT_MEM_TYPE_DEFAULT = 0,       /* OrtMemType */
	ORT_FLOAT = 1,                  /* ONNXTensorElementDataType */
	ORT_INT64 = 7,
};

struct OrtApiBase {
	const void *(*GetApi)(uint32_t version);  /* the OrtApi table */
	const char *(*GetVersionString)(void);
};

/* The OrtApi entries used: index in the table, return type, name,
 * parameters.  Most return a status, NULL on success. */
#define ORT_API(X) \
	X(0, OrtStatus *, CreateStatus, (int code, const char *msg)) \
	X(1, int, GetErrorCode, (const OrtStatus *s)) \
	X(2, const char *, GetErrorMessage, (const OrtStatus *s)) \
	X(3, OrtStatus *, CreateEnv, (int level, const char *logid, \
	                              OrtEnv **out)) \
	X(7, OrtStatus *, CreateSession, (const OrtEnv *env, const char *path, \
	                                  const OrtSessionOptions *o, \
	                                  OrtSession **out)) \
	X(9, OrtStatus *, Run, (OrtSession *s, const OrtRunOptions *ro, \
	                        const char *const *in_names, \
	                        const OrtValue *const *in, size_t nin, \
	                        const char *const *out_names, size_t nout, \
	                        OrtValue **out)) \
	X(10, OrtStatus *, CreateSessionOptions, (OrtSessionOptions **out)) \
	X(13, OrtStatus *, SetSessionExecutionMode, (OrtSessionOptions *o, \
	                                             int mode)) \
	X(23, OrtStatus *, SetSessionGraphOptimizationLevel, \
	  (OrtSessionOptions *o, int level)) \
	X(24, OrtStatus *, SetIntraOpNumThreads, (OrtSessionOptions *o, int n)) \
	X(25, OrtStatus *, SetInterOpNumThreads, (OrtSessionOptions *o, int n)) \
	X(30, OrtStatus *, SessionGetInputCount, (const OrtSession *s, \
	                                          size_t *out)) \
	X(31, OrtStatus *, SessionGetOutputCount, (const OrtSession *s, \
	                                           size_t *out)) \
	X(33, OrtStatus *, SessionGetInputTypeInfo, (const OrtSession *s, \
	                                             size_t i, \
	                                             OrtTypeInfo **out)) \
	X(36, OrtStatus *, SessionGetInputName, (const OrtSession *s, size_t i, \
	                                         OrtAllocator *a, char **out)) \
	X(37, OrtStatus *, SessionGetOutputName, (const OrtSession *s, \
	                                          size_t i, OrtAllocator *a, \
	                                          char **out)) \
	X(49, OrtStatus *, CreateTensorWithDataAsOrtValue, \
	  (const OrtMemoryInfo *mi, void *data, size_t nbytes, \
	   const int64_t *shape, size_t rank, int type, OrtValue **out)) \
	X(55, OrtStatus *, CastTypeInfoToTensorInfo, \
	  (const OrtTypeInfo *ti, const OrtTensorTypeAndShapeInfo **out)) \
	X(60, OrtStatus *, GetTensorElementType, \
	  (const OrtTensorTypeAndShapeInfo *t, int *out)) \
	X(61, OrtStatus *, GetDimensionsCount, \
	  (const OrtTensorTypeAndShapeInfo *t, size_t *out)) \
	X(62, OrtStatus *, GetDimensions, (const OrtTensorTypeAndShapeInfo *t, \
	                                   int64_t *dim, size_t rank)) \
	X(69, OrtStatus *, CreateCpuMemoryInfo, (int type, int mem_type, \
	                                         OrtMemoryInfo **out)) \
	X(76, OrtStatus *, AllocatorFree, (OrtAllocator *a, void *p)) \
	X(78, OrtStatus *, GetAllocatorWithDefaultOptions, \
	  (OrtAllocator **out)) \
	X(92, void, ReleaseEnv, (OrtEnv *p)) \
	X(93, void, ReleaseStatus, (OrtStatus *p)) \
	X(94, void, ReleaseMemoryInfo, (OrtMemoryInfo *p)) \
	X(95, void, ReleaseSession, (OrtSession *p)) \
	X(96, void, ReleaseValue, (OrtValue *p)) \
	X(98, void, ReleaseTypeInfo, (OrtTypeInfo *p)) \
	X(100, void, ReleaseSessionOptions, (OrtSessionOptions *p))

#define FIELD(i, ret, name, params) ret (*name) params;
static struct {
	ORT_API(FIELD)
} ort;
#undef FIELD

struct opts {
	const char *model;
	const char *lib;                 /* path of libonnxruntime.so */
	int threads;
	long runs, warmup;
};

/* The model's inputs and outputs, as Run takes them. */
struct io {
	size_t nin, nout;
	char **in_name, **out_name;      /* from ORT's default allocator */
	OrtValue **in;
	void **buf;                      /* data of in[i], ours */
	OrtValue **out;                  /* made by each Run */
};

static const char *model = "";   /* for error messages */

static void
die(const char *fmt, ...)
	__attribute__((format(printf, 1, 2), noreturn));

static void
die(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "ort_bench: %s: ", model);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

/* Dies with ORT's message if s is an error. */
static void
check(OrtStatus *s, const char *what)
{
	if (!s)
		return;
	die("%s: %s", what, ort.GetErrorMessage(s));
}

static void *
xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size);

	if (!p)
		die("out of memory");
	return p;
}

static void
usage(void)
{
	fprintf(stderr, "usage: ort_bench MODEL.onnx [--threads T] [--runs N] "
	        "[--warmup W] [--lib PATH]\n"
	        "  defaults: --lib $ORT_LIB, T 1, N 100, W 10\n");
	exit(1);
}

static long
number(const char *flag, const char *s, long lo, long hi)
{
	char *end;
	long v;

	errno = 0;
	v = s ? strtol(s, &end, 10) : 0;
	if (!s || *end || errno || v < lo || v > hi) {
		fprintf(stderr, "ort_bench: %s expects a number from %ld to %ld, "
		        "got '%s'\n", flag, lo, hi, s ? s : "");
		exit(1);
	}
	return v;
}

static struct opts
parse_args(int argc, char **argv)
{
	struct opts o = {.lib = getenv("ORT_LIB"), .threads = 1, .runs = 100,
	                 .warmup = 10};

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (a[0] != '-' && !o.model) {
			o.model = a;
			continue;
		}
		if (!strcmp(a, "--threads"))
			o.threads = (int)number(a, v, 1, 1024);
		else if (!strcmp(a, "--runs"))
			o.runs = number(a, v, 1, 100000000);
		else if (!strcmp(a, "--warmup"))
			o.warmup = number(a, v, 0, 100000000);
		else if (!strcmp(a, "--lib") && v)
			o.lib = v;
		else
			usage();
		i++;            /* the flag's value */
	}
	if (!o.model)
		usage();
	if (!o.lib || !*o.lib) {
		fprintf(stderr, "ort_bench: no ONNX Runtime library: give --lib "
		        "PATH or set ORT_LIB\n");
		exit(1);
	}
	return o;
}

/* ---- the API table ------------------------------------------------- */

/* Entries 13 and 23 take an enum and must refuse a value outside it,
 * which their neighbours (setters of a log level or a thread count)
 * accept.  Their valid values are tested when the real options are set. */
static void
check_setters(void)
{
	OrtSessionOptions *so;
	OrtStatus *s;

	check(ort.CreateSessionOptions(&so), "session options");
	s = ort.SetSessionGraphOptimizationLevel(so, 12345);
	if (!s)
		die("OrtApi self-test failed: entry 23 accepts an optimization "
		    "level of 12345");
	ort.ReleaseStatus(s);
	s = ort.SetSessionExecutionMode(so, 12345);
	if (!s)
		die("OrtApi self-test failed: entry 13 accepts an execution "
		    "mode of 12345");
	ort.ReleaseStatus(s);
	ort.ReleaseSessionOptions(so);
}

/* Every entry used must be a function of the library itself, not a hole
 * or what lies past a shorter table.  A status made by CreateStatus must
 * give back its code and text, which fails unless entries 0, 1 and 2 are
 * what we think. */
static void
check_api(const void *const *tab, const void *base)
{
	static const int used[] = {
#define INDEX(i, ret, name, params) i,
		ORT_API(INDEX)
#undef INDEX
	};
	const char *msg = "kiln ort_bench self-test";
	OrtStatus *s;
	Dl_info di;

	for (size_t k = 0; k < sizeof used / sizeof used[0]; k++)
		if (!tab[used[k]] || !dladdr(tab[used[k]], &di) ||
		    di.dli_fbase != base)
			die("OrtApi entry %d is not a function of the library; "
			    "the table is not laid out as ort_bench expects",
			    used[k]);
	s = ort.CreateStatus(ORT_NOT_IMPLEMENTED, msg);
	if (!s || ort.GetErrorCode(s) != ORT_NOT_IMPLEMENTED ||
	    strcmp(ort.GetErrorMessage(s), msg))
		die("OrtApi self-test failed: CreateStatus, GetErrorCode and "
		    "GetErrorMessage are not entries 0, 1 and 2");
	ort.ReleaseStatus(s);
	check_setters();
}

/* Threads of this process, or -1 without /proc. */
static int
count_threads(void)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;
	int n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

/* A session with T intra-op threads runs on the caller and T - 1 pool
 * workers (sequential execution makes no inter-op pool), so it must have
 * started exactly T - 1 threads since `before` was counted.  This tests
 * SetIntraOpNumThreads, which would otherwise fail silently, leaving ORT
 * to pick its own count. */
static void
check_threads(int before, int threads)
{
	int now = count_threads();

	if (before >= 0 && now >= 0 && now - before != threads - 1)
		die("the session started %d threads for %d intra-op threads, "
		    "expected %d; is OrtApi entry 24 SetIntraOpNumThreads?",
		    now - before, threads, threads - 1);
}

/* Loads the library and fills `ort`; returns the version string and the
 * dlopen handle through *dl. */
static const char *
load_api(const char *lib, void **dl)
{
	const struct OrtApiBase *(*get_base)(void);
	const struct OrtApiBase *b;
	const void *const *tab;
	void *sym;
	Dl_info di;

	*dl = dlopen(lib, RTLD_NOW | RTLD_LOCAL);
	if (!*dl)
		die("cannot load ONNX Runtime: %s", dlerror());
	sym = dlsym(*dl, "OrtGetApiBase");
	if (!sym || !dladdr(sym, &di))
		die("%s: no OrtGetApiBase", lib);
	/* memcpy: C has no conversion from a data pointer to a function
	 * pointer, but POSIX guarantees they have the same representation. */
	memcpy(&get_base, &sym, sizeof get_base);
	b = get_base();
	tab = b ? b->GetApi(API_VERSION) : NULL;
	if (!tab)
		die("%s does not serve OrtApi version %d", lib, API_VERSION);
#define LOAD(i, ret, name, params) \
	memcpy(&ort.name, &tab[i], sizeof ort.name);
	ORT_API(LOAD)
#undef LOAD
	check_api(tab, di.dli_fbase);
	return b->GetVersionString();
}

/* ---- inputs and outputs ------------------------------------------- */

/* Next value of a 32-bit linear congruential generator (Numerical
 * Recipes constants): a fixed, cheap pattern, not statistics. */
static uint32_t
lcg(uint32_t *state)
{
	*state = *state * 1664525u + 1013904223u;
	return *state;
}

static void
fill(void *buf, int type, size_t n, uint32_t seed)
{
	for (size_t k = 0; k < n; k++) {
		uint32_t r = lcg(&seed) >> 8;  /* the high 24 bits */
		if (type == ORT_FLOAT)
			((float *)buf)[k] = (float)r / (1 << 23) - 1.0f;
		else
			((int64_t *)buf)[k] = r & 1;
	}
}

/* Input i as a tensor of its declared type and shape, in io->buf[i]. */
static void
make_input(OrtSession *s, const OrtMemoryInfo *mi, struct io *io, size_t i)
{
	const OrtTensorTypeAndShapeInfo *t;
	OrtTypeInfo *ti;
	int64_t dim[64];
	size_t rank, n = 1, esize;
	int type;

	check(ort.SessionGetInputTypeInfo(s, i, &ti), "input type");
	check(ort.CastTypeInfoToTensorInfo(ti, &t), "input type");
	if (!t)
		die("input '%s' is not a tensor", io->in_name[i]);
	check(ort.GetTensorElementType(t, &type), "input element type");
	check(ort.GetDimensionsCount(t, &rank), "input rank");
	if (rank > sizeof dim / sizeof dim[0])
		die("input '%s' has rank %zu", io->in_name[i], rank);
	check(ort.GetDimensions(t, dim, rank), "input shape");
	ort.ReleaseTypeInfo(ti);
	if (type != ORT_FLOAT && type != ORT_INT64)
		die("input '%s' has ONNX element type %d; ort_bench fills "
		    "f32 (1) and i64 (7) inputs only", io->in_name[i], type);
	for (size_t k = 0; k < rank; k++) {
		if (dim[k] < 0)      /* symbolic or unknown */
			dim[k] = 1;
		if (dim[k] > 0 && n > (SIZE_MAX >> 4) / (size_t)dim[k])
			die("input '%s' is too large", io->in_name[i]);
		n *= (size_t)dim[k];
	}
	esize = type == ORT_FLOAT ? sizeof(float) : sizeof(int64_t);
	io->buf[i] = xcalloc(n, esize);
	fill(io->buf[i], type, n, (uint32_t)i + 1);
	check(ort.CreateTensorWithDataAsOrtValue(mi, io->buf[i], n * esize, dim,
	                                         rank, type, &io->in[i]),
	      "input tensor");
}

static void
make_io(OrtSession *s, OrtAllocator *a, const OrtMemoryInfo *mi,
        struct io *io)
{
	check(ort.SessionGetInputCount(s, &io->nin), "input count");
	check(ort.SessionGetOutputCount(s, &io->nout), "output count");
	io->in_name = xcalloc(io->nin, sizeof *io->in_name);
	io->in = xcalloc(io->nin, sizeof *io->in);
	io->buf = xcalloc(io->nin, sizeof *io->buf);
	io->out_name = xcalloc(io->nout, sizeof *io->out_name);
	io->out = xcalloc(io->nout, sizeof *io->out);
	for (size_t i = 0; i < io->nin; i++) {
		check(ort.SessionGetInputName(s, i, a, &io->in_name[i]),
		      "input name");
		make_input(s, mi, io, i);
	}
	for (size_t i = 0; i < io->nout; i++)
		check(ort.SessionGetOutputName(s, i, a, &io->out_name[i]),
		      "output name");
}

static void
free_io(OrtAllocator *a, struct io *io)
{
	for (size_t i = 0; i < io->nin; i++) {
		ort.ReleaseValue(io->in[i]);
		free(io->buf[i]);
		check(ort.AllocatorFree(a, io->in_name[i]), "free");
	}
	for (size_t i = 0; i < io->nout; i++)
		check(ort.AllocatorFree(a, io->out_name[i]), "free");
	free(io->in_name);
	free(io->in);
	free(io->buf);
	free(io->out_name);
	free(io->out);
}

/* ---- timing -------------------------------------------------------- */

static double
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* One Run, its time in ms; Run fills io->out, released here. */
static double
run_once(OrtSession *s, struct io *io)
{
	double t0, t;

	t0 = now_ms();
	check(ort.Run(s, NULL, (const char *const *)io->in_name,
	              (const OrtValue *const *)io->in, io->nin,
	              (const char *const *)io->out_name, io->nout, io->out),
	      "run");
	t = now_ms() - t0;
	for (size_t i = 0; i < io->nout; i++) {
		if (!io->out[i])
			die("run gave no output %zu", i);
		ort.ReleaseValue(io->out[i]);
		io->out[i] = NULL;
	}
	return t;
}

static OrtSessionOptions *
session_options(int threads)
{
	OrtSessionOptions *so;

	check(ort.CreateSessionOptions(&so), "session options");
	check(ort.SetIntraOpNumThreads(so, threads), "intra-op threads");
	check(ort.SetInterOpNumThreads(so, 1), "inter-op threads");
	check(ort.SetSessionExecutionMode(so, ORT_SEQUENTIAL), "execution mode");
	check(ort.SetSessionGraphOptimizationLevel(so, ORT_ENABLE_ALL),
	      "optimization level");
	return so;
}

int
main(int argc, char **argv)
{
	struct opts o = parse_args(argc, argv);
	struct io io = {0};
	OrtEnv *env;
	OrtSessionOptions *so;
	OrtSession *s;
	OrtAllocator *a;
	OrtMemoryInfo *mi;
	const char *version;
	double *t, med;
	long n = o.runs;
	int nthreads;                    /* before the session */
	void *dl;

	model = o.model;
	version = load_api(o.lib, &dl);
	check(ort.CreateEnv(ORT_LOGGING_LEVEL_WARNING, "ort_bench", &env), "env");
	so = session_options(o.threads);
	nthreads = count_threads();
	check(ort.CreateSession(env, o.model, so, &s), "cannot load");
	check(ort.GetAllocatorWithDefaultOptions(&a), "allocator");
	check(ort.CreateCpuMemoryInfo(ORT_ARENA_ALLOCATOR, ORT_MEM_TYPE_DEFAULT,
	                              &mi), "memory info");
	make_io(s, a, mi, &io);

	t = xcalloc((size_t)n, sizeof *t);
	for (long i = 0; i < o.warmup; i++)
		run_once(s, &io);
	check_threads(nthreads, o.threads);
	for (long i = 0; i < n; i++)
		t[i] = run_once(s, &io);
	qsort(t, (size_t)n, sizeof *t, cmp_double);
	med = n % 2 ? t[n / 2] : (t[n / 2 - 1] + t[n / 2]) / 2;
	printf("{\"min_ms\":%.6f,\"median_ms\":%.6f,\"runs\":%ld,\"threads\":%d,"
	       "\"ort_version\":\"%s\"}\n", t[0], med, n, o.threads, version);

	free(t);
	free_io(a, &io);
	ort.ReleaseMemoryInfo(mi);
	ort.ReleaseSession(s);
	ort.ReleaseSessionOptions(so);
	ort.ReleaseEnv(env);
	dlclose(dl);
	return 0;
}
