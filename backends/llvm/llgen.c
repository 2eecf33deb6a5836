/* llgen.c: the LLVM backend.  Builds, with the LLVM C API, the module
 * whose C backends/c/cgen.c writes, from the same lowered calls
 * (lower.h): PREFIX_run calls the runtime's kernels in schedule order on
 * the caller's buffers, the workspace and the weights (a constant in the
 * module rather than a linked file); a fused node is a loop nest built
 * here; PREFIX_model describes the inputs and outputs, and an executable
 * gets main() over kiln_main().  LLVM's own pipeline then optimizes the
 * module for the target CPU, which vectorizes the loops of simple ops.
 *
 * Kernels are C functions, so calls follow the C ABI of an LP64 target:
 * an int is an i32 marked signext (RISC-V's ABI extends it to 64 bits),
 * constant data is a struct with C's natural alignment, and only 64-bit
 * targets are accepted.  The output is deterministic: every name comes
 * from the graph or the schedule.
 */
#include <llvm-c/Analysis.h>
#include <llvm-c/Target.h>
#include <llvm-c/Transforms/PassBuilder.h>
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "llgen.h"

typedef struct {
	Graph *g;
	const Lowered *l;
	const char *prefix;
	Arena *a;
	LLVMContextRef c;
	LLVMModuleRef m;
	LLVMBuilderRef b;
	LLVMTypeRef i8, i16, i32, i64, f32, f64, ptr, void_;
	char *cpu, *features;       /* the target machine's, for functions */
	LLVMValueRef run;           /* PREFIX_run, being built */
	LLVMBasicBlockRef entry;    /* its first block: the allocas */
	LLVMValueRef wt, ws;        /* the weights; the workspace in use */
	LLVMValueRef *in, *out;     /* the caller's buffers, by index */
} Gen;

/* ---- the target machine */

static void
init_targets(void)
{
	static bool done;
	if (done)
		return;
	LLVMInitializeAllTargetInfos();
	LLVMInitializeAllTargets();
	LLVMInitializeAllTargetMCs();
	LLVMInitializeAllAsmPrinters();
	LLVMInitializeAllAsmParsers();
	done = true;
}

/* Whether normalized triples a and b name the same architecture and
 * operating system (components 0 and 2 of arch-vendor-os-env): then the
 * host's CPU and features apply. */
static bool
same_machine(const char *a, const char *b)
{
	for (int k = 0; k < 3; k++) {
		size_t na = strcspn(a, "-"), nb = strcspn(b, "-");
		if (k != 1 && (na != nb || strncmp(a, b, na) != 0))
			return false;
		a += na + (a[na] == '-');
		b += nb + (b[nb] == '-');
	}
	return true;
}

/* LLVM only warns, on stderr, of a CPU or feature it does not know, then
 * builds for a default subtarget (or crashes compiling: x86-64 code for
 * a CPU without 64-bit mode).  So the target machine is made with stderr
 * going to a temporary file, and such a warning becomes an error; any
 * other text is passed on. */
static LLVMTargetMachineRef
machine(LLVMTargetRef t, const char *triple, const char *cpu,
        const char *features, LLVMCodeGenOptLevel level)
{
	fflush(stderr);
	FILE *tmp = tmpfile();
	int saved = tmp ? dup(2) : -1;
	if (saved >= 0 && dup2(fileno(tmp), 2) < 0) {
		close(saved);
		saved = -1;
	}
	LLVMTargetMachineRef tm = LLVMCreateTargetMachine(t, triple, cpu, features,
		level, LLVMRelocPIC, LLVMCodeModelDefault);
	if (saved < 0) {
		if (tmp)
			fclose(tmp);
		return tm;
	}
	dup2(saved, 2);
	close(saved);
	char said[1024];
	rewind(tmp);
	size_t n = fread(said, 1, sizeof said - 1, tmp);
	fclose(tmp);
	said[n] = '\0';
	const char *bad = strstr(said, "is not a recognized");
	if (bad) {      /* "'x' is not a recognized processor for this target
	                 * (ignoring processor)" */
		const char *line = bad;
		while (line > said && line[-1] != '\n')
			line--;
		fatal("target %s: %.*s; `llc -mtriple=%s -mcpu=help` lists the "
		      "CPUs and features LLVM knows", triple,
		      (int)strcspn(line, "(\n") - 1, line, triple);
	}
	fputs(said, stderr);
	return tm;
}

bool
llgen_is_host(const char *triple)
{
	init_targets();
	char *host = LLVMGetDefaultTargetTriple();
	char *t = LLVMNormalizeTargetTriple(triple);
	bool same = same_machine(t, host);
	LLVMDisposeMessage(host);
	LLVMDisposeMessage(t);
	return same;
}

LLVMTargetMachineRef
llgen_target(const LlvmOpts *lo)
{
	init_targets();
	char *host = LLVMGetDefaultTargetTriple();
	char *triple = LLVMNormalizeTargetTriple(lo->triple ? lo->triple : host);
	bool native = same_machine(triple, host);
	LLVMDisposeMessage(host);
	LLVMTargetRef t;
	char *err = NULL;
	if (LLVMGetTargetFromTriple(triple, &t, &err)) {
		char msg[512];
		snprintf(msg, sizeof msg, "%s", err);
		LLVMDisposeMessage(err);
		fatal("unknown target '%s': %s", lo->triple ? lo->triple : triple,
		      msg);
	}
	/* The host's features go with the host's CPU; a CPU given has its
	 * own, and another machine's generic CPU its target's defaults. */
	bool host_cpu = native && !lo->cpu;
	char *hcpu = host_cpu ? LLVMGetHostCPUName() : NULL;
	char *hfeat = host_cpu ? LLVMGetHostCPUFeatures() : NULL;
	const char *cpu = lo->cpu ? lo->cpu : host_cpu ? hcpu : "";
	const char *features = lo->features ? lo->features : host_cpu ? hfeat :
	                       strncmp(triple, "riscv64", 7) == 0 ?
	                       "+m,+a,+f,+d,+c" : "";
	static const LLVMCodeGenOptLevel level[] = {LLVMCodeGenLevelNone,
		LLVMCodeGenLevelLess, LLVMCodeGenLevelDefault,
		LLVMCodeGenLevelAggressive};
	if (lo->opt < 0 || lo->opt > 3)
		die("LLVM optimization level %d", lo->opt);
	LLVMTargetMachineRef tm = machine(t, triple, cpu, features,
	                                  level[lo->opt]);
	LLVMDisposeMessage(hcpu);
	LLVMDisposeMessage(hfeat);
	/* The runtime's structs and size_t arguments are laid out for LP64. */
	LLVMTargetDataRef td = LLVMCreateTargetDataLayout(tm);
	unsigned bits = 8 * LLVMPointerSize(td);
	LLVMDisposeTargetData(td);
	if (bits != 64) {
		char name[256];
		snprintf(name, sizeof name, "%s", triple);
		LLVMDisposeMessage(triple);
		LLVMDisposeTargetMachine(tm);
		fatal("target %s has %u-bit pointers: the LLVM backend builds for "
		      "64-bit targets only", name, bits);
	}
	LLVMDisposeMessage(triple);
	return tm;
}

/* ---- values and constant data */

static LLVMValueRef
i32c(Gen *s, int64_t x)
{
	return LLVMConstInt(s->i32, (unsigned long long)x, 1);
}

static LLVMValueRef
i64c(Gen *s, int64_t x)
{
	return LLVMConstInt(s->i64, (unsigned long long)x, 1);
}

/* The type elements of dtype dt are loaded as (f16, bf16: raw bits). */
static LLVMTypeRef
dtype_type(Gen *s, int dt)
{
	switch (dt) {
	case DT_F32: return s->f32;
	case DT_F64: return s->f64;
	case DT_I64:
	case DT_U64: return s->i64;
	case DT_I32:
	case DT_U32: return s->i32;
	case DT_F16:
	case DT_BF16:
	case DT_I16:
	case DT_U16: return s->i16;
	default: return s->i8;      /* i8, u8, bool */
	}
}

static LLVMValueRef
offset(Gen *s, LLVMValueRef base, int64_t at, const char *name)
{
	LLVMValueRef i = i64c(s, at);
	return LLVMBuildInBoundsGEP2(s->b, s->i8, base, &i, 1, name);
}

/* A pointer to the data of value v (null for v < 0). */
static LLVMValueRef
value_ptr(Gen *s, int v)
{
	KLoc loc = lower_loc(s->l, v);
	switch (loc.kind) {
	case LOC_NULL: return LLVMConstPointerNull(s->ptr);
	case LOC_INPUT: return s->in[loc.at];
	case LOC_OUTPUT: return s->out[loc.at];
	case LOC_WEIGHTS: return offset(s, s->wt, loc.at, s->g->val[v].name);
	case LOC_WORKSPACE: return offset(s, s->ws, loc.at, s->g->val[v].name);
	}
	die("value %d has no location", v);
}

/* Value v's first element converted as C's (uint64_t)*p does. */
static LLVMValueRef
step_value(Gen *s, int v)
{
	int dt = s->g->val[v].type.dtype;
	LLVMValueRef x = LLVMBuildLoad2(s->b, dtype_type(s, dt), value_ptr(s, v),
	                                "step");
	switch (dt) {
	case DT_F32:
	case DT_F64: return LLVMBuildFPToUI(s->b, x, s->i64, "");
	case DT_I64:
	case DT_U64: return x;
	case DT_I32:
	case DT_I16:
	case DT_I8: return LLVMBuildSExt(s->b, x, s->i64, "");
	default: return LLVMBuildZExt(s->b, x, s->i64, "");
	}
}

static LLVMTypeRef
kind_type(Gen *s, KFieldKind kind)
{
	switch (kind) {
	case KF_INT: return s->i32;
	case KF_I64: return s->i64;
	case KF_U8: return s->i8;
	case KF_F32: return s->f32;
	case KF_F64: return s->f64;
	case KF_PTR: return s->ptr;
	}
	die("field kind %d", kind);
}

/* The type of field f: a scalar when it has one element, unless it is
 * the element of an array. */
static LLVMTypeRef
field_type(Gen *s, const KField *f, bool array)
{
	if (f->n < 1)
		die("constant data with an empty field");
	LLVMTypeRef t = kind_type(s, f->kind);
	return f->n == 1 && !array ? t : LLVMArrayType2(t, (uint64_t)f->n);
}

/* A struct type called name (NULL: a literal one) with fields ft; the
 * same name for another layout also gets a literal type. */
static LLVMTypeRef
struct_type(Gen *s, const char *name, LLVMTypeRef *ft, int n)
{
	LLVMTypeRef t = name ? LLVMGetTypeByName2(s->c, name) : NULL;
	bool same = t && (int)LLVMCountStructElementTypes(t) == n;
	for (int i = 0; same && i < n; i++)
		same = LLVMStructGetTypeAtIndex(t, i) == ft[i];
	if (same)
		return t;
	if (t || !name)
		return LLVMStructTypeInContext(s->c, ft, n, 0);
	t = LLVMStructCreateNamed(s->c, name);
	LLVMStructSetBody(t, ft, n, 0);
	return t;
}

/* d's type: an array, or a non-packed struct (named after a C struct
 * tag), which LLVM lays out as C does. */
static LLVMTypeRef
data_type(Gen *s, const KData *d)
{
	if (d->array)
		return field_type(s, &d->field[0], true);
	LLVMTypeRef *ft = arena_alloc(s->a, d->nfield * sizeof *ft);
	for (int i = 0; i < d->nfield; i++)
		ft[i] = field_type(s, &d->field[i], false);
	const char *tag = strncmp(d->ctype, "struct ", 7) == 0 ? d->ctype + 7 :
	                  NULL;
	return struct_type(s, tag ? arena_printf(s->a, "struct.%s", tag) : NULL,
	                   ft, d->nfield);
}

/* Field f as a constant (its pointers null). */
static LLVMValueRef
const_field(Gen *s, const KField *f, bool array)
{
	LLVMTypeRef t = kind_type(s, f->kind);
	LLVMValueRef *e = arena_alloc(s->a, f->n * sizeof *e);
	for (int j = 0; j < f->n; j++) {
		switch (f->kind) {
		case KF_INT:
		case KF_I64:
		case KF_U8: e[j] = LLVMConstInt(t, (unsigned long long)f->i[j], 1); break;
		case KF_F32: e[j] = LLVMConstReal(t, (float)f->f[j]); break;
		case KF_F64: e[j] = LLVMConstReal(t, f->f[j]); break;
		case KF_PTR: e[j] = LLVMConstPointerNull(t); break;
		}
	}
	return f->n == 1 && !array ? e[0] : LLVMConstArray2(t, e, f->n);
}

static LLVMValueRef
const_data(Gen *s, const KData *d, LLVMTypeRef t)
{
	if (d->array)
		return const_field(s, &d->field[0], true);
	LLVMValueRef *e = arena_alloc(s->a, d->nfield * sizeof *e);
	for (int i = 0; i < d->nfield; i++)
		e[i] = const_field(s, &d->field[i], false);
	return LLVMConstNamedStruct(t, e, d->nfield);
}

static LLVMValueRef
private_const(Gen *s, LLVMValueRef init, const char *name, bool unnamed)
{
	LLVMValueRef gv = LLVMAddGlobal(s->m, LLVMTypeOf(init), name);
	LLVMSetInitializer(gv, init);
	LLVMSetGlobalConstant(gv, 1);
	LLVMSetLinkage(gv, LLVMPrivateLinkage);
	if (unnamed)
		LLVMSetUnnamedAddress(gv, LLVMGlobalUnnamedAddr);
	return gv;
}

/* An alloca at the start of the run's entry block, where LLVM's passes
 * expect one. */
static LLVMValueRef
entry_alloca(Gen *s, LLVMTypeRef t, const char *name)
{
	LLVMBuilderRef b = LLVMCreateBuilderInContext(s->c);
	LLVMValueRef first = LLVMGetFirstInstruction(s->entry);
	if (first)
		LLVMPositionBuilderBefore(b, first);
	else
		LLVMPositionBuilderAtEnd(b, s->entry);
	LLVMValueRef p = LLVMBuildAlloca(b, t, name);
	LLVMDisposeBuilder(b);
	return p;
}

/* Pointer fields hold the data of values, known only while running, so
 * such data is filled in on the stack before each call. */
static LLVMValueRef
fill_data(Gen *s, const KData *d, LLVMTypeRef t)
{
	LLVMValueRef p = entry_alloca(s, t, d->name);
	for (int i = 0; i < d->nfield; i++) {
		const KField *f = &d->field[i];
		LLVMValueRef fp = d->array ? p : LLVMBuildStructGEP2(s->b, t, p, i, "");
		if (f->kind != KF_PTR) {
			LLVMBuildStore(s->b, const_field(s, f, d->array), fp);
			continue;
		}
		LLVMTypeRef ft = field_type(s, f, d->array);
		for (int j = 0; j < f->n; j++) {
			LLVMValueRef ep = fp, idx[2] = {i64c(s, 0), i64c(s, j)};
			if (f->n > 1 || d->array)
				ep = LLVMBuildInBoundsGEP2(s->b, ft, fp, idx, 2, "");
			LLVMBuildStore(s->b, value_ptr(s, f->v[j]), ep);
		}
	}
	return p;
}

/* A pointer to d, an argument of kernel. */
static LLVMValueRef
data_arg(Gen *s, const char *kernel, const KData *d)
{
	LLVMTypeRef t = data_type(s, d);
	for (int i = 0; i < d->nfield; i++)
		if (d->field[i].kind == KF_PTR)
			return fill_data(s, d, t);
	return private_const(s, const_data(s, d, t),
	                     arena_printf(s->a, "%s.%s", kernel, d->name), true);
}

/* ---- calls */

static void
add_attr(Gen *s, LLVMValueRef f, bool call, unsigned idx, const char *name)
{
	LLVMAttributeRef a = LLVMCreateEnumAttribute(s->c,
		LLVMGetEnumAttributeKindForName(name, strlen(name)), 0);
	if (call)
		LLVMAddCallSiteAttribute(f, idx, a);
	else
		LLVMAddAttributeAtIndex(f, idx, a);
}

/* Marks the int parameters and result of f (a function or a call, of
 * type t) signext, as a C compiler does for the RISC-V ABI. */
static void
mark_ints(Gen *s, LLVMValueRef f, bool call, LLVMTypeRef t)
{
	unsigned n = LLVMCountParamTypes(t);
	LLVMTypeRef *pt = arena_alloc(s->a, MAX(n, 1) * sizeof *pt);
	LLVMGetParamTypes(t, pt);
	if (LLVMGetReturnType(t) == s->i32)
		add_attr(s, f, call, LLVMAttributeReturnIndex, "signext");
	for (unsigned i = 0; i < n; i++)
		if (pt[i] == s->i32)
			add_attr(s, f, call, i + 1, "signext");
}

/* A function this module defines, for the target machine's CPU. */
static LLVMValueRef
define(Gen *s, const char *name, LLVMTypeRef t)
{
	LLVMValueRef f = LLVMAddFunction(s->m, name, t);
	mark_ints(s, f, false, t);
	add_attr(s, f, false, LLVMAttributeFunctionIndex, "nounwind");
	if (*s->cpu)
		LLVMAddTargetDependentFunctionAttr(f, "target-cpu", s->cpu);
	if (*s->features)
		LLVMAddTargetDependentFunctionAttr(f, "target-features",
		                                   s->features);
	return f;
}

/* A call of C function name (declared on first use) returning ret with
 * the n arguments av of types pt. */
static LLVMValueRef
call_c(Gen *s, const char *name, LLVMTypeRef ret, LLVMTypeRef *pt,
       LLVMValueRef *av, int n, const char *vname)
{
	LLVMTypeRef t = LLVMFunctionType(ret, pt, (unsigned)n, 0);
	LLVMValueRef f = LLVMGetNamedFunction(s->m, name);
	if (f && LLVMGlobalGetValueType(f) != t)
		die("%s is called with two signatures", name);
	if (!f) {
		f = LLVMAddFunction(s->m, name, t);
		mark_ints(s, f, false, t);
		add_attr(s, f, false, LLVMAttributeFunctionIndex, "nounwind");
	}
	LLVMValueRef c = LLVMBuildCall2(s->b, t, f, av, (unsigned)n,
	                                ret == s->void_ ? "" : vname);
	mark_ints(s, c, true, t);
	return c;
}

static LLVMTypeRef
arg_type(Gen *s, KArgKind kind)
{
	switch (kind) {
	case KA_VAL:
	case KA_OUT:
	case KA_DATA: return s->ptr;
	case KA_INT: return s->i32;
	case KA_F32: return s->f32;
	case KA_F64: return s->f64;
	default: return s->i64;     /* I64, U64, SIZE, STEP, MIX */
	}
}

static LLVMValueRef
arg_value(Gen *s, const KCall *k, const KArg *a)
{
	switch (a->kind) {
	case KA_VAL: return value_ptr(s, a->v);
	case KA_OUT: return s->out[a->i];
	case KA_INT: return i32c(s, a->i);
	case KA_I64:
	case KA_U64:
	case KA_SIZE: return i64c(s, a->i);
	case KA_F32: return LLVMConstReal(s->f32, (float)a->f);
	case KA_F64: return LLVMConstReal(s->f64, a->f);
	case KA_STEP: return step_value(s, a->v);
	case KA_MIX: {
		LLVMTypeRef pt[2] = {s->i64, s->i64};
		LLVMValueRef av[2] = {i64c(s, a->i), step_value(s, a->v)};
		return call_c(s, "kiln_splitmix64", s->i64, pt, av, 2, "mix");
	}
	case KA_DATA: return data_arg(s, k->kernel, a->d);
	}
	die("argument kind %d", a->kind);
}

static void emit_fused(Gen *s, const KCall *k);

/* One kernel call; one that returns a status other than KILN_OK ends
 * the run with it. */
static void
emit_call(Gen *s, const KCall *k)
{
	if (!k->kernel) {
		emit_fused(s, k);
		return;
	}
	LLVMTypeRef *pt = arena_alloc(s->a, MAX(k->narg, 1) * sizeof *pt);
	LLVMValueRef *av = arena_alloc(s->a, MAX(k->narg, 1) * sizeof *av);
	for (int i = 0; i < k->narg; i++) {
		pt[i] = arg_type(s, k->arg[i].kind);
		av[i] = arg_value(s, k, &k->arg[i]);
	}
	LLVMValueRef st = call_c(s, k->kernel, k->status ? s->i32 : s->void_,
	                         pt, av, k->narg, "st");
	if (!k->status)
		return;
	LLVMBasicBlockRef fail = LLVMAppendBasicBlockInContext(s->c, s->run,
	                                                       "fail");
	LLVMBasicBlockRef next = LLVMAppendBasicBlockInContext(s->c, s->run,
	                                                       "ok");
	LLVMBuildCondBr(s->b, LLVMBuildICmp(s->b, LLVMIntEQ, st, i32c(s, 0), ""),
	                next, fail);
	LLVMPositionBuilderAtEnd(s->b, fail);
	LLVMBuildRet(s->b, st);
	LLVMPositionBuilderAtEnd(s->b, next);
}

/* ---- fused nodes: loops */

typedef struct {
	FusedExpr e;
	KSpace sp;
	int nx;                     /* operands */
	LLVMValueRef y, x[IR_MAXIN];
} Fused;

/* The element index sum(iv[d] * st[d]). */
static LLVMValueRef
index_of(Gen *s, const KSpace *sp, const int64_t *st, const LLVMValueRef *iv)
{
	LLVMValueRef at = NULL;
	for (int d = 0; d < sp->rank; d++) {
		if (st[d] == 0)
			continue;
		LLVMValueRef t = st[d] == 1 ? iv[d] :
		                 LLVMBuildNSWMul(s->b, iv[d], i64c(s, st[d]), "");
		at = at ? LLVMBuildNSWAdd(s->b, at, t, "") : t;
	}
	return at ? at : i64c(s, 0);
}

static LLVMValueRef
intrinsic(Gen *s, const char *name, LLVMValueRef x, const char *vname)
{
	unsigned id = LLVMLookupIntrinsicID(name, strlen(name));
	LLVMValueRef f = LLVMGetIntrinsicDeclaration(s->m, id, &s->f32, 1);
	return LLVMBuildCall2(s->b, LLVMIntrinsicGetType(s->c, id, &s->f32, 1),
	                      f, &x, 1, vname);
}

/* An op whose formula (ir/fused.c) is one call NAME($k.., @k..): that
 * call, operands as float, INT attributes as int, FLOAT ones as float. */
static LLVMValueRef
fused_call(Gen *s, const FusedTerm *ft, const LLVMValueRef *t,
           const char *vname)
{
	const OpInfo *o = op_get(ft->op);
	const char *c = ir_fused_formula(ft->op), *p = c;
	while (*p == '_' || isalnum((unsigned char)*p))
		p++;
	const char *name = arena_strndup(s->a, c, p - c);
	LLVMTypeRef pt[2 + FUSED_MAXATTR];
	LLVMValueRef av[2 + FUSED_MAXATTR];
	int n = 0;
	bool ok = p > c && *p == '(';
	while (ok && (*p == '(' || *p == ',')) {
		p += 1 + (p[1] == ' ');
		int k = p[1] - '0';
		ok = n < countof(av) && (*p == '$' || *p == '@') && k >= 0 &&
		     k < (*p == '$' ? ft->nin : o->nattr);
		if (!ok)
			break;
		if (*p == '$') {
			pt[n] = s->f32;
			av[n] = t[ft->in[k]];
		} else if (attr_info[o->attr0 + k].kind == AK_INT) {
			pt[n] = s->i32;
			av[n] = i32c(s, (int64_t)ft->a[k]);
		} else {
			pt[n] = s->f32;
			av[n] = LLVMConstReal(s->f32, (float)ft->a[k]);
		}
		n++;
		p += 2;
	}
	if (!ok || strcmp(p, ")") != 0)
		die("fused: the formula of %s, \"%s\", is not one call", o->name, c);
	return call_c(s, name, s->f32, pt, av, n, vname);
}

/* Op term ft over the earlier terms t: native IR with the semantics of
 * its C formula (ir/fused.c) for the ops that vectorize, else a call. */
static LLVMValueRef
fused_op(Gen *s, const FusedTerm *ft, const LLVMValueRef *t,
         const char *name)
{
	LLVMValueRef a = t[ft->in[0]], b = ft->nin > 1 ? t[ft->in[1]] : NULL;
	LLVMValueRef zero = LLVMConstReal(s->f32, 0.0);
	switch (ft->op) {
	case OP_ADD: return LLVMBuildFAdd(s->b, a, b, name);
	case OP_SUB: return LLVMBuildFSub(s->b, a, b, name);
	case OP_MUL: return LLVMBuildFMul(s->b, a, b, name);
	case OP_DIV: return LLVMBuildFDiv(s->b, a, b, name);
	case OP_NEG: return LLVMBuildFNeg(s->b, a, name);
	case OP_RECIPROCAL:
		return LLVMBuildFDiv(s->b, LLVMConstReal(s->f32, 1.0), a, name);
	case OP_MAX:        /* a > b || a != a ? a : b, and min with < */
	case OP_MIN: {
		LLVMValueRef lt = LLVMBuildFCmp(s->b, ft->op == OP_MAX ? LLVMRealOGT :
		                                LLVMRealOLT, a, b, "");
		LLVMValueRef nan = LLVMBuildFCmp(s->b, LLVMRealUNO, a, a, "");
		return LLVMBuildSelect(s->b, LLVMBuildOr(s->b, lt, nan, ""), a, b,
		                       name);
	}
	case OP_RELU:       /* x < 0 ? 0 : x */
		return LLVMBuildSelect(s->b,
			LLVMBuildFCmp(s->b, LLVMRealOLT, a, zero, ""), zero, a, name);
	case OP_ABS: return intrinsic(s, "llvm.fabs", a, name);
	case OP_SQRT: return intrinsic(s, "llvm.sqrt", a, name);
	default: return fused_call(s, ft, t, name);
	}
}

/* One element: each operand loaded, each term computed, the root stored
 * at the result's dense index. */
static void
fused_body(Gen *s, const Fused *f, const LLVMValueRef *iv)
{
	LLVMValueRef a[IR_MAXIN], *t = arena_alloc(s->a, f->e.n * sizeof *t);
	for (int x = 0; x < f->nx; x++) {
		LLVMValueRef i = index_of(s, &f->sp, f->sp.st[x], iv);
		LLVMValueRef p = LLVMBuildInBoundsGEP2(s->b, s->f32, f->x[x], &i, 1, "");
		a[x] = LLVMBuildLoad2(s->b, s->f32, p, arena_printf(s->a, "a%d", x));
	}
	for (int i = 0; i < f->e.n; i++) {
		const FusedTerm *ft = &f->e.t[i];
		if (ft->op == FT_OPERAND)
			t[i] = a[ft->operand];
		else if (ft->op == FT_LITERAL)
			t[i] = LLVMConstReal(s->f32, ft->a[0]);
		else
			t[i] = fused_op(s, ft, t, arena_printf(s->a, "t%d", i));
	}
	int64_t ys[IR_MAXRANK], step = 1;
	for (int d = f->sp.rank - 1; d >= 0; d--) {
		ys[d] = step;
		step *= f->sp.dim[d];
	}
	LLVMValueRef i = index_of(s, &f->sp, ys, iv);
	LLVMBuildStore(s->b, t[f->e.n - 1],
	               LLVMBuildInBoundsGEP2(s->b, s->f32, f->y, &i, 1, ""));
}

/* The loops from dim d in, each a do-while counting iv[d] from 0 to its
 * size (the IR has no empty dims: every dim is positive). */
static void
loop_nest(Gen *s, const Fused *f, int d, LLVMValueRef *iv)
{
	if (d == f->sp.rank) {
		fused_body(s, f, iv);
		return;
	}
	LLVMBasicBlockRef pre = LLVMGetInsertBlock(s->b);
	LLVMBasicBlockRef head = LLVMAppendBasicBlockInContext(s->c, s->run,
	                                                       "loop");
	LLVMBuildBr(s->b, head);
	LLVMPositionBuilderAtEnd(s->b, head);
	iv[d] = LLVMBuildPhi(s->b, s->i64, arena_printf(s->a, "i%d", d));
	loop_nest(s, f, d + 1, iv);
	LLVMValueRef next = LLVMBuildNSWAdd(s->b, iv[d], i64c(s, 1), "");
	LLVMValueRef done = LLVMBuildICmp(s->b, LLVMIntEQ, next,
	                                  i64c(s, f->sp.dim[d]), "");
	LLVMBasicBlockRef latch = LLVMGetInsertBlock(s->b);
	LLVMBasicBlockRef exit = LLVMAppendBasicBlockInContext(s->c, s->run,
	                                                       "done");
	LLVMBuildCondBr(s->b, done, exit, head);
	LLVMValueRef from[2] = {i64c(s, 0), next};
	LLVMBasicBlockRef via[2] = {pre, latch};
	LLVMAddIncoming(iv[d], from, via, 2);
	LLVMPositionBuilderAtEnd(s->b, exit);
}

/* A fused node (arguments: the result, then the operands). */
static void
emit_fused(Gen *s, const KCall *k)
{
	Fused f = {.nx = k->narg - 1};
	const char *err = ir_fused_parse(s->a,
		ir_attr(s->g, k->node, AT_FUSED_EXPR)->s, f.nx, &f.e);
	if (err)
		die("%s", err);
	lower_loop_space(s->g, k->node, &f.sp);
	f.y = value_ptr(s, k->arg[0].v);
	for (int x = 0; x < f.nx; x++)
		f.x[x] = value_ptr(s, k->arg[x + 1].v);
	LLVMValueRef iv[IR_MAXRANK];
	loop_nest(s, &f, 0, iv);
}

/* ---- the run function and the glue */

/* PREFIX_run(in, out, workspace): in and out are arrays of pointers,
 * which is how struct PREFIX_inputs and PREFIX_outputs are laid out, so
 * it is also the model descriptor's run. */
static void
emit_run(Gen *s)
{
	Graph *g = s->g;
	LLVMTypeRef pt[3] = {s->ptr, s->ptr, s->ptr};
	s->run = define(s, arena_printf(s->a, "%s_run", s->prefix),
	                LLVMFunctionType(s->i32, pt, 3, 0));
	LLVMValueRef in = LLVMGetParam(s->run, 0), out = LLVMGetParam(s->run, 1);
	LLVMValueRef w = LLVMGetParam(s->run, 2);
	LLVMSetValueName2(in, "in", 2);
	LLVMSetValueName2(out, "out", 3);
	LLVMSetValueName2(w, "workspace", 9);
	s->entry = LLVMAppendBasicBlockInContext(s->c, s->run, "entry");
	LLVMPositionBuilderAtEnd(s->b, s->entry);

	LLVMTypeRef wst = LLVMArrayType2(s->i8, (uint64_t)MAX(g->workspace, 1));
	LLVMValueRef ws = LLVMAddGlobal(s->m, wst,
	                                arena_printf(s->a, "%s_ws", s->prefix));
	LLVMSetInitializer(ws, LLVMConstNull(wst));
	LLVMSetLinkage(ws, LLVMInternalLinkage);
	LLVMSetAlignment(ws, 64);   /* KILN_ALIGN */
	s->ws = LLVMBuildSelect(s->b, LLVMBuildIsNull(s->b, w, ""), ws, w, "ws");

	s->in = arena_alloc(s->a, MAX(g->ninput, 1) * sizeof *s->in);
	s->out = arena_alloc(s->a, MAX(g->noutput, 1) * sizeof *s->out);
	for (int i = 0; i < g->ninput + g->noutput; i++) {
		bool isin = i < g->ninput;
		int k = isin ? i : i - g->ninput;
		LLVMValueRef at = i64c(s, k);
		LLVMValueRef p = LLVMBuildInBoundsGEP2(s->b, s->ptr, isin ? in : out,
		                                       &at, 1, "");
		int v = isin ? g->input[k] : g->output[k];
		(isin ? s->in : s->out)[k] = LLVMBuildLoad2(s->b, s->ptr, p,
		                                            g->val[v].name);
	}
	for (int i = 0; i < s->l->ncall; i++)
		emit_call(s, &s->l->call[i]);
	LLVMBuildRet(s->b, i32c(s, 0));     /* KILN_OK */
}

/* A C string constant. */
static LLVMValueRef
cstr(Gen *s, const char *str)
{
	return private_const(s, LLVMConstStringInContext2(s->c, str, strlen(str),
	                     0), "str", true);
}

/* PREFIX_inputs_desc or _outputs_desc: struct kiln_tensor_desc of each
 * value (one zero entry when there is none, as the C backend writes). */
static LLVMValueRef
tensor_descs(Gen *s, LLVMTypeRef dt, const char *what, const int *vals,
             int n)
{
	LLVMValueRef *e = arena_alloc(s->a, MAX(n, 1) * sizeof *e);
	e[0] = LLVMConstNull(dt);
	for (int i = 0; i < n; i++) {
		const Type *t = &s->g->val[vals[i]].type;
		LLVMValueRef dim[IR_MAXRANK];
		for (int d = 0; d < IR_MAXRANK; d++)
			dim[d] = i64c(s, d < t->rank ? t->dim[d] : 0);
		LLVMValueRef f[4] = {cstr(s, s->g->val[vals[i]].name),
			i32c(s, t->dtype), i32c(s, t->rank),
			LLVMConstArray2(s->i64, dim, IR_MAXRANK)};
		e[i] = LLVMConstNamedStruct(dt, f, 4);
	}
	return private_const(s, LLVMConstArray2(dt, e, MAX(n, 1)),
	                     arena_printf(s->a, "%s_%s_desc", s->prefix, what),
	                     false);
}

/* PREFIX_model, the struct kiln_model_desc of runtime/kiln.h; returns
 * it. */
static LLVMValueRef
emit_model(Gen *s)
{
	Graph *g = s->g;
	LLVMTypeRef tf[4] = {s->ptr, s->i32, s->i32,
	                     LLVMArrayType2(s->i64, IR_MAXRANK)};
	LLVMTypeRef dt = struct_type(s, "struct.kiln_tensor_desc", tf, 4);
	LLVMTypeRef mf[7] = {s->ptr, s->i32, s->i32, s->ptr, s->ptr, s->i64,
	                     s->ptr};
	LLVMTypeRef mt = struct_type(s, "struct.kiln_model_desc", mf, 7);
	LLVMValueRef f[7] = {cstr(s, g->name), i32c(s, g->ninput),
		i32c(s, g->noutput),
		tensor_descs(s, dt, "inputs", g->input, g->ninput),
		tensor_descs(s, dt, "outputs", g->output, g->noutput),
		i64c(s, g->workspace), s->run};
	LLVMValueRef model = LLVMAddGlobal(s->m, mt,
	                                   arena_printf(s->a, "%s_model", s->prefix));
	LLVMSetInitializer(model, LLVMConstNamedStruct(mt, f, 7));
	LLVMSetGlobalConstant(model, 1);
	return model;
}

/* int main(int argc, char **argv) { return kiln_main(argc, argv, &model); } */
static void
emit_main(Gen *s, LLVMValueRef model)
{
	LLVMTypeRef pt[3] = {s->i32, s->ptr, s->ptr};   /* main's two, + &model */
	LLVMValueRef f = define(s, "main", LLVMFunctionType(s->i32, pt, 2, 0));
	LLVMPositionBuilderAtEnd(s->b, LLVMAppendBasicBlockInContext(s->c, f,
	                                                             "entry"));
	LLVMValueRef av[3] = {LLVMGetParam(f, 0), LLVMGetParam(f, 1), model};
	LLVMBuildRet(s->b, call_c(s, "kiln_main", s->i32, pt, av, 3, "rc"));
}

/* LLVM's default pipeline at level opt, with loop and SLP vectorization
 * from level 2 as clang has it. */
static void
optimize(LLVMModuleRef m, LLVMTargetMachineRef tm, int opt)
{
	char passes[16];
	snprintf(passes, sizeof passes, "default<O%d>", opt);
	LLVMPassBuilderOptionsRef po = LLVMCreatePassBuilderOptions();
	LLVMPassBuilderOptionsSetLoopVectorization(po, opt >= 2);
	LLVMPassBuilderOptionsSetSLPVectorization(po, opt >= 2);
	LLVMPassBuilderOptionsSetLoopInterleaving(po, opt >= 2);
	LLVMPassBuilderOptionsSetLoopUnrolling(po, opt >= 2);
	LLVMErrorRef err = LLVMRunPasses(m, passes, tm, po);
	LLVMDisposePassBuilderOptions(po);
	if (err) {
		char *msg = LLVMGetErrorMessage(err);
		char buf[512];
		snprintf(buf, sizeof buf, "%s", msg);
		LLVMDisposeErrorMessage(msg);
		die("LLVM passes %s: %s", passes, buf);
	}
}

LLVMModuleRef
llgen_module(Graph *g, const CgenOpts *o, const LlvmOpts *lo,
               LLVMContextRef ctx, LLVMTargetMachineRef tm)
{
	Gen s = {.g = g, .prefix = o->prefix, .a = g->mod->arena, .c = ctx};
	s.l = lower_graph(g);
	s.i8 = LLVMInt8TypeInContext(ctx);
	s.i16 = LLVMInt16TypeInContext(ctx);
	s.i32 = LLVMInt32TypeInContext(ctx);
	s.i64 = LLVMInt64TypeInContext(ctx);
	s.f32 = LLVMFloatTypeInContext(ctx);
	s.f64 = LLVMDoubleTypeInContext(ctx);
	s.ptr = LLVMPointerTypeInContext(ctx, 0);
	s.void_ = LLVMVoidTypeInContext(ctx);
	s.cpu = LLVMGetTargetMachineCPU(tm);
	s.features = LLVMGetTargetMachineFeatureString(tm);

	/* The module's name is the prefix: no path of the build in it. */
	s.m = LLVMModuleCreateWithNameInContext(o->prefix, ctx);
	char *triple = LLVMGetTargetMachineTriple(tm);
	LLVMSetTarget(s.m, triple);
	LLVMTargetDataRef td = LLVMCreateTargetDataLayout(tm);
	LLVMSetModuleDataLayout(s.m, td);
	LLVMDisposeTargetData(td);
	/* gcc builds the RISC-V runtime for lp64d: floats in FP registers */
	if (strncmp(triple, "riscv64", 7) == 0)
		LLVMAddModuleFlag(s.m, LLVMModuleFlagBehaviorError, "target-abi", 10,
		                  LLVMMDStringInContext2(ctx, "lp64d", 5));
	LLVMDisposeMessage(triple);
	s.b = LLVMCreateBuilderInContext(ctx);

	unsigned char *blob = blob_build(g, s.l->woff, s.l->wsize);
	s.wt = private_const(&s, LLVMConstStringInContext2(ctx, (const char *)blob,
	                     (size_t)s.l->wsize, 1),
	                     arena_printf(s.a, "%s_weights", o->prefix), false);
	LLVMSetAlignment(s.wt, 64);
	emit_run(&s);
	LLVMValueRef model = emit_model(&s);
	if (lo->main)
		emit_main(&s, model);
	LLVMDisposeBuilder(s.b);
	LLVMDisposeMessage(s.cpu);
	LLVMDisposeMessage(s.features);

	char *msg = NULL;
	if (LLVMVerifyModule(s.m, LLVMReturnStatusAction, &msg)) {
		fputs(msg, stderr);
		die("llgen: the module of '%s' is not valid", g->name);
	}
	LLVMDisposeMessage(msg);
	optimize(s.m, tm, lo->opt);
	return s.m;
}

static unsigned char *
copy_out(const char *p, size_t n)
{
	unsigned char *out = xmalloc(MAX(n, 1));
	memcpy(out, p, n);
	return out;
}

unsigned char *
llgen_emit(Graph *g, const CgenOpts *o, const LlvmOpts *lo, LlvmEmit kind,
             size_t *n)
{
	LLVMTargetMachineRef tm = llgen_target(lo);
	LLVMContextRef ctx = LLVMContextCreate();
	LLVMModuleRef m = llgen_module(g, o, lo, ctx, tm);
	unsigned char *out;
	if (kind == LLVM_EMIT_IR) {
		char *text = LLVMPrintModuleToString(m);
		*n = strlen(text);
		out = copy_out(text, *n);
		LLVMDisposeMessage(text);
	} else {
		LLVMMemoryBufferRef buf;
		char *err = NULL;
		if (LLVMTargetMachineEmitToMemoryBuffer(tm, m, kind == LLVM_EMIT_OBJ ?
		    LLVMObjectFile : LLVMAssemblyFile, &err, &buf)) {
			char msg[512];
			snprintf(msg, sizeof msg, "%s", err);
			LLVMDisposeMessage(err);
			fatal("LLVM cannot generate code for '%s': %s", g->name, msg);
		}
		*n = LLVMGetBufferSize(buf);
		out = copy_out(LLVMGetBufferStart(buf), *n);
		LLVMDisposeMemoryBuffer(buf);
	}
	LLVMDisposeModule(m);
	LLVMContextDispose(ctx);
	LLVMDisposeTargetMachine(tm);
	return out;
}
