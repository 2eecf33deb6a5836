/* main.c: kiln_main(), the command line of a standalone model executable.
 *
 * The generated main() passes its model description here.  kiln_main()
 * parses the options, allocates one aligned buffer per input and output and
 * the workspace (the only allocation; the run itself allocates nothing),
 * loads inputs from .npy files, runs the model once or benchmarks it, and
 * only then writes the requested outputs.  Errors are printed as
 * `PROG: error: ...`; the exit status is 0, 1 for a failure, 2 for a usage
 * error.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kiln.h"

#ifdef __GNUC__
#define PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define PRINTF(f, a)
#endif

/* The parsed command line. */
struct cli {
	const char *prog;                  /* basename of argv[0] */
	const struct kiln_model_desc *m;
	const char **in, **out;            /* file per input/output, or NULL */
	bool describe, help;
	long bench;                        /* timed runs; 0: run once */
	long threads;                      /* --threads; 0: the default */
};

/* One buffer per tensor, and the workspace. */
struct bufs {
	void **in, **out;
	void *ws;
};

static PRINTF(2, 3) void
error(const struct cli *c, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: error: ", c->prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static void
usage(const struct cli *c)
{
	const char *p = c->prog;

	printf("usage: %s --input NAME=FILE.npy ... [--output NAME=FILE.npy ...]"
	       "\n       %s --bench N [--input NAME=FILE.npy ...]"
	       "\n       %s --describe\n", p, p, p);
	printf("Runs the model '%s'.\n"
	       "  --input NAME=FILE   read input NAME from a .npy file\n"
	       "  --output NAME=FILE  write output NAME to a .npy file after a\n"
	       "                      successful run (others are not written;\n"
	       "                      with no --output, outputs are printed)\n"
	       "  --describe          print inputs and outputs as JSON\n"
	       "  --bench N           time N runs after one warm-up; inputs\n"
	       "                      not given are zeros\n"
	       "  --threads N         run the kernels on N threads (default:\n"
	       "                      KILN_NUM_THREADS, else the cores); the\n"
	       "                      results are the same with any N\n"
	       "  -h, --help          show this help\n",
	       c->m->name ? c->m->name : "");
}

/* ---- options ------------------------------------------------------- */

/* The tensor whose name, followed by '=', starts arg; the longest wins,
 * so a name may itself contain '='.  Returns -1 if there is none. */
static int
find(const struct kiln_tensor_desc *t, int n, const char *arg)
{
	size_t best = 0;
	int k = -1;

	for (int i = 0; i < n; i++) {
		size_t len = strlen(t[i].name);
		if (len >= best && !strncmp(arg, t[i].name, len) &&
		    arg[len] == '=') {
			best = len;
			k = i;
		}
	}
	return k;
}

static void
list_names(const struct kiln_tensor_desc *t, int n)
{
	for (int i = 0; i < n; i++)
		fprintf(stderr, "%s%s", i ? ", " : "", t[i].name);
	if (n == 0)
		fprintf(stderr, "none");
}

/* --input/--output NAME=FILE: records FILE in files[] at NAME's index. */
static int
name_file(struct cli *c, const char *opt, const char *arg, bool input)
{
	const char *eq = arg ? strchr(arg, '=') : NULL;
	const struct kiln_tensor_desc *t = input ? c->m->inputs : c->m->outputs;
	int n = input ? c->m->ninputs : c->m->noutputs;
	const char **files = input ? c->in : c->out;
	const char *what = input ? "input" : "output";
	int i = eq ? find(t, n, arg) : -1;

	if (!eq || eq == arg || (i >= 0 && !arg[strlen(t[i].name) + 1])) {
		error(c, "%s expects NAME=FILE, got '%s'", opt, arg ? arg : "");
		return 2;
	}
	if (i < 0) {
		fprintf(stderr, "%s: error: unknown %s '%.*s' (%ss: ", c->prog,
		        what, (int)(eq - arg), arg, what);
		list_names(t, n);
		fprintf(stderr, ")\n");
		return 2;
	}
	if (files[i]) {
		error(c, "%s '%s' given twice", what, t[i].name);
		return 2;
	}
	files[i] = arg + strlen(t[i].name) + 1;
	return 0;
}

static int
bench_count(struct cli *c, const char *arg)
{
	char *end;

	errno = 0;
	c->bench = arg ? strtol(arg, &end, 10) : 0;
	if (!arg || *end || errno || c->bench < 1 || c->bench > 1000000000) {
		error(c, "--bench expects a positive count, got '%s'",
		      arg ? arg : "");
		return 2;
	}
	return 0;
}

static int
thread_count(struct cli *c, const char *arg)
{
	char *end;

	errno = 0;
	c->threads = arg ? strtol(arg, &end, 10) : 0;
	if (!arg || *end || errno || c->threads < 1 ||
	    c->threads > KILN_MAXTHREADS) {
		error(c, "--threads expects an integer from 1 to %d, got '%s'",
		      KILN_MAXTHREADS, arg ? arg : "");
		return 2;
	}
	return 0;
}

/* Returns 0, or 2 after printing a usage error. */
static int
parse_args(struct cli *c, int argc, char **argv)
{
	int r = 0;

	for (int i = 1; i < argc && !r; i++) {
		const char *a = argv[i];
		const char *next = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			c->help = true;
		} else if (!strcmp(a, "--describe")) {
			c->describe = true;
		} else if (!strcmp(a, "--input") || !strcmp(a, "--output")) {
			r = name_file(c, a, next, a[2] == 'i');
			i++;
		} else if (!strcmp(a, "--bench")) {
			r = bench_count(c, next);
			i++;
		} else if (!strcmp(a, "--threads")) {
			r = thread_count(c, next);
			i++;
		} else {
			error(c, "unknown argument '%s' (try --help)", a);
			r = 2;
		}
	}
	return r;
}

/* ---- --describe ---------------------------------------------------- */

static void
json_string(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		if (ch == '"' || ch == '\\')
			printf("\\%c", ch);
		else if (ch == '\n')
			printf("\\n");
		else if (ch == '\t')
			printf("\\t");
		else if (ch < 0x20)
			printf("\\u%04x", ch);
		else
			putchar(ch);  /* UTF-8 passes through */
	}
	putchar('"');
}

static void
json_tensors(const char *key, const struct kiln_tensor_desc *t, int n)
{
	printf("\"%s\":[", key);
	for (int i = 0; i < n; i++) {
		printf("%s{\"name\":", i ? "," : "");
		json_string(t[i].name);
		printf(",\"dtype\":\"%s\",\"shape\":[",
		       kiln_dtype_name(t[i].dtype));
		for (int d = 0; d < t[i].rank; d++)
			printf("%s%lld", d ? "," : "", (long long)t[i].dim[d]);
		printf("]}");
	}
	printf("]");
}

static void
describe(const struct kiln_model_desc *m)
{
	printf("{\"name\":");
	json_string(m->name ? m->name : "");
	printf(",");
	json_tensors("inputs", m->inputs, m->ninputs);
	printf(",");
	json_tensors("outputs", m->outputs, m->noutputs);
	printf("}\n");
}

/* ---- setup --------------------------------------------------------- */

/* Bytes of tensor t, or SIZE_MAX when the description is invalid. */
static size_t
tensor_bytes(const struct kiln_tensor_desc *t)
{
	size_t n;

	if (!t->name || (unsigned)t->dtype >= KILN_NDTYPE || t->rank < 0 ||
	    t->rank > KILN_MAXRANK)
		return SIZE_MAX;
	n = kiln_dtype_size(t->dtype);
	for (int i = 0; i < t->rank; i++) {
		if (t->dim[i] < 0 || (t->dim[i] > 0 &&
		    n > (SIZE_MAX / 2) / (size_t)t->dim[i]))
			return SIZE_MAX;
		n *= (size_t)t->dim[i];
	}
	return n;
}

static bool
valid_desc(const struct kiln_model_desc *m)
{
	if (!m->run || m->ninputs < 0 || m->noutputs < 0 ||
	    (m->ninputs > 0 && !m->inputs) || (m->noutputs > 0 && !m->outputs))
		return false;
	for (int i = 0; i < m->ninputs; i++)
		if (tensor_bytes(&m->inputs[i]) == SIZE_MAX)
			return false;
	for (int i = 0; i < m->noutputs; i++)
		if (tensor_bytes(&m->outputs[i]) == SIZE_MAX)
			return false;
	return m->workspace_bytes < SIZE_MAX / 2;
}

/* Zeroed memory aligned to KILN_ALIGN; never NULL for a size of 0. */
static void *
alloc(size_t n)
{
	size_t r = n ? (n + KILN_ALIGN - 1) / KILN_ALIGN * KILN_ALIGN
	             : KILN_ALIGN;
	void *p = aligned_alloc(KILN_ALIGN, r);

	if (p)
		memset(p, 0, r);
	return p;
}

static void
free_bufs(const struct kiln_model_desc *m, struct bufs *b)
{
	for (int i = 0; b->in && i < m->ninputs; i++)
		free(b->in[i]);
	for (int i = 0; b->out && i < m->noutputs; i++)
		free(b->out[i]);
	free(b->in);
	free(b->out);
	free(b->ws);
}

/* Allocates every buffer; returns false when memory ran out. */
static bool
alloc_bufs(const struct kiln_model_desc *m, struct bufs *b)
{
	b->in = calloc((size_t)m->ninputs + 1, sizeof *b->in);
	b->out = calloc((size_t)m->noutputs + 1, sizeof *b->out);
	b->ws = alloc(m->workspace_bytes);
	if (!b->in || !b->out || !b->ws)
		return false;
	for (int i = 0; i < m->ninputs; i++)
		if (!(b->in[i] = alloc(tensor_bytes(&m->inputs[i]))))
			return false;
	for (int i = 0; i < m->noutputs; i++)
		if (!(b->out[i] = alloc(tensor_bytes(&m->outputs[i]))))
			return false;
	return true;
}

/* Without --bench every input must be given; returns 2 if some are not. */
static int
check_missing(const struct cli *c)
{
	int nmiss = 0;

	for (int i = 0; i < c->m->ninputs; i++)
		nmiss += !c->in[i];
	if (c->bench || nmiss == 0)
		return 0;
	fprintf(stderr, "%s: error: missing input%s ", c->prog,
	        nmiss > 1 ? "s" : "");
	for (int i = 0, k = 0; i < c->m->ninputs; i++)
		if (!c->in[i])
			fprintf(stderr, "%s'%s'", k++ ? ", " : "",
			        c->m->inputs[i].name);
	fprintf(stderr, " (give each as --input NAME=FILE.npy)\n");
	return 2;
}

static int
load_inputs(const struct cli *c, struct bufs *b)
{
	char msg[1024];

	for (int i = 0; i < c->m->ninputs; i++) {
		const struct kiln_tensor_desc *t = &c->m->inputs[i];
		if (!c->in[i])
			continue;
		if (kiln_npy_load(c->in[i], t->name, t->dtype, t->rank, t->dim,
		                  b->in[i], msg, sizeof msg)) {
			error(c, "%s", msg);
			return 1;
		}
	}
	return 0;
}

/* ---- running ------------------------------------------------------- */

static int
run(const struct cli *c, struct bufs *b)
{
	kiln_status s = c->m->run((const void *const *)b->in,
	                          (void *const *)b->out, b->ws);

	if (s) {
		error(c, "model run failed: %s", kiln_status_str(s));
		return 1;
	}
	return 0;
}

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

/* Enough decimals for about three significant digits, without an
 * exponent: 12.3 ms, 0.0457 ms. */
static int
decimals(double ms)
{
	int d = 0;

	while (d < 9 && ms > 0 && ms < 100) {
		ms *= 10;
		d++;
	}
	return d > 0 ? d : 1;
}

/* One warm-up run, then c->bench timed ones. */
static int
bench(const struct cli *c, struct bufs *b)
{
	long n = c->bench;
	double *t = malloc((size_t)n * sizeof *t), med;

	if (!t) {
		error(c, "out of memory");
		return 1;
	}
	for (long i = -1; i < n; i++) {
		double t0 = now_ms();
		if (run(c, b)) {
			free(t);
			return 1;
		}
		if (i >= 0)
			t[i] = now_ms() - t0;
	}
	qsort(t, (size_t)n, sizeof *t, cmp_double);
	med = n % 2 ? t[n / 2] : (t[n / 2 - 1] + t[n / 2]) / 2;
	printf("min %.*f ms, median %.*f ms over %ld runs\n", decimals(t[0]),
	       t[0], decimals(med), med, n);
	free(t);
	return 0;
}

/* Element i of a tensor of type t as text. */
static void
print_elem(kiln_dtype t, const void *p, int64_t i)
{
	switch (t) {
	case KILN_F32: printf("%.6g", ((const float *)p)[i]); break;
	case KILN_F64: printf("%.6g", ((const double *)p)[i]); break;
	case KILN_I64: printf("%lld", (long long)((const int64_t *)p)[i]); break;
	case KILN_I32: printf("%ld", (long)((const int32_t *)p)[i]); break;
	case KILN_I8: printf("%d", ((const int8_t *)p)[i]); break;
	case KILN_I16: printf("%d", ((const int16_t *)p)[i]); break;
	case KILN_U16: printf("%u", ((const uint16_t *)p)[i]); break;
	case KILN_U32: printf("%lu", (unsigned long)((const uint32_t *)p)[i]); break;
	case KILN_U64:
		printf("%llu", (unsigned long long)((const uint64_t *)p)[i]);
		break;
	case KILN_F16:
	case KILN_BF16: {
		float v;
		kiln_cast(&v, KILN_F32, (const uint16_t *)p + i, t, 1);
		printf("%.6g", v);
		break;
	}
	default: printf("%u", ((const uint8_t *)p)[i]); break;
	}
}

void
kiln_print_tensor(const char *name, kiln_dtype t, int rank,
                  const int64_t *dim, const void *data)
{
	int64_t n = 1;
	printf("%s %s[", name, kiln_dtype_name(t));
	for (int k = 0; k < rank; k++) {
		printf("%s%lld", k ? "," : "", (long long)dim[k]);
		n *= dim[k];
	}
	printf("]:");
	for (int64_t k = 0; k < n && k < 64; k++) {
		putchar(' ');
		print_elem(t, data, k);
	}
	printf(n > 64 ? " ...\n" : "\n");
}

/* With no --output at all, a single run prints every output as text. */
static void
print_outputs(const struct cli *c, struct bufs *b)
{
	for (int i = 0; i < c->m->noutputs; i++) {
		const struct kiln_tensor_desc *t = &c->m->outputs[i];
		kiln_print_tensor(t->name, t->dtype, t->rank, t->dim, b->out[i]);
	}
}

/* The --output files, written as a set: each to a temporary file, then
 * all renamed into place, so that a failure (a missing directory, a full
 * disk) leaves every output file as it was. */
static int
write_outputs(const struct cli *c, struct bufs *b)
{
	char msg[1024];
	char (*tmp)[4096];
	bool any = false;
	int i, r = 0;

	for (i = 0; i < c->m->noutputs; i++)
		any |= c->out[i] != NULL;
	if (!any && !c->bench)
		print_outputs(c, b);
	if (!any)
		return 0;
	if (!(tmp = calloc((size_t)c->m->noutputs, sizeof *tmp))) {
		error(c, "out of memory");
		return 1;
	}
	for (i = 0; i < c->m->noutputs; i++) {
		const struct kiln_tensor_desc *t = &c->m->outputs[i];
		if (c->out[i] && kiln_npy_save_temp(c->out[i], tmp[i], sizeof *tmp,
		                                    t->dtype, t->rank, t->dim,
		                                    b->out[i], msg, sizeof msg)) {
			error(c, "output '%s': %s", t->name, msg);
			r = 1;
			break;
		}
	}
	for (int k = 0; k < c->m->noutputs && !r; k++)
		if (c->out[k] && rename(tmp[k], c->out[k])) {
			error(c, "output '%s': %s: cannot write: %s",
			      c->m->outputs[k].name, c->out[k], strerror(errno));
			r = 1;
		}
	for (int k = 0; r && k < i; k++)    /* the temporary files written */
		if (c->out[k])
			remove(tmp[k]);
	free(tmp);
	return r;
}

/* Everything after the command line is parsed: setup, run, outputs. */
static int
execute(const struct cli *c)
{
	struct bufs b = {0};
	int r = check_missing(c);

	if (r)
		return r;
	if (c->threads)
		kiln_set_threads((int)c->threads);
	if (!alloc_bufs(c->m, &b)) {
		error(c, "out of memory");
		free_bufs(c->m, &b);
		return 1;
	}
	r = load_inputs(c, &b);
	if (!r)
		r = c->bench ? bench(c, &b) : run(c, &b);
	if (!r)
		r = write_outputs(c, &b);
	free_bufs(c->m, &b);
	return r;
}

/* Flushes stdout and turns a failed write (a full disk, a closed pipe)
 * into exit status 1. */
static int
flush_stdout(const struct cli *c, int r)
{
	if (fflush(stdout) || ferror(stdout)) {
		error(c, "cannot write to standard output");
		return r ? r : 1;
	}
	return r;
}

int
kiln_main(int argc, char **argv, const struct kiln_model_desc *m)
{
	struct cli c = {.prog = argc > 0 && argv[0] ? argv[0] : "model"};
	const char *slash = strrchr(c.prog, '/');
	int r;

	if (slash && slash[1])
		c.prog = slash + 1;
	if (!m || !valid_desc(m)) {
		error(&c, "invalid model description");
		return 1;
	}
	c.m = m;
	c.in = calloc((size_t)m->ninputs + 1, sizeof *c.in);
	c.out = calloc((size_t)m->noutputs + 1, sizeof *c.out);
	if (!c.in || !c.out) {
		error(&c, "out of memory");
		r = 1;
	} else {
		r = parse_args(&c, argc, argv);
	}
	if (!r && c.help)
		usage(&c);
	else if (!r && c.describe)
		describe(m);
	else if (!r)
		r = execute(&c);
	free(c.in);
	free(c.out);
	return flush_stdout(&c, r);
}
