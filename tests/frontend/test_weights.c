/* test_weights.c: drives frontend/weights.c for tests/frontend/weights/.
 *
 *   roundtrip DIR      save the demo module, reload, compare, recheck bytes
 *   save FILE          save the demo module (Inputs/check_saved.py reads it)
 *   save-elided FILE   save a module whose param was elided (an error)
 *   save-conflict FILE save two graphs that disagree on a param (an error)
 *   load FILE SPEC...  load FILE into a module made from SPECs and print
 *                      "NAME TYPE HEXDATA" for each, in order
 * SPEC is KIND:NAME:TYPE or @FILE of SPEC lines; KIND is param or const
 * (no data), or paramdata or constdata (all bytes 0xab); NAME uses \xNN.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "frontend.h"

static int failures;

static void
check(bool ok, const char *what, const char *name)
{
	if (!ok) {
		fprintf(stderr, "NOT OK: %s: %s\n", name, what);
		failures++;
	}
}

static Type
ty(int dt, int rank, const int64_t *dim)
{
	Type t = {.dtype = dt, .rank = rank};
	for (int i = 0; i < rank; i++)
		t.dim[i] = dim[i];
	return t;
}

/* Adds a value with data copied from p, or with no data when p is NULL. */
static int
add(Graph *g, const char *name, int kind, Type t, const void *p)
{
	int i = ir_add_value(g, name, kind, t, (Loc){.file = "demo.kir"});
	Value *v = &g->val[i];
	v->init = INIT_DATA;
	if (p) {
		v->data = arena_alloc(g->mod->arena, (size_t)type_bytes(&t));
		memcpy(v->data, p, (size_t)type_bytes(&t));
	} else {
		v->elided = true;
	}
	return i;
}

/* The demo module: every dtype, a scalar, an empty tensor, names that
 * need escaping, a param made by its initializer, a constant (never
 * saved) and a second graph sharing two params.  With data = false the
 * params are declared only, as in a .kir printed with data elided.
 * Inputs/check_saved.py knows the same values. */
static Module *
demo(Arena *a, bool data)
{
	static const float hw[12] = {-1, -.75, -.5, -.25, 0, .25, .5, .75, 1,
		1.25, 1.5, 1.75}, pi[2] = {3.14159274f, -0.0f}, wq[1] = {2.5f};
	static const float k[2] = {7, 8};
	static const double emb[6] = {0, 1 / 3.0, 2 / 3.0, 1, 4 / 3.0, 5 / 3.0};
	static const int64_t step = 1234567890123;
	static const int32_t idx[5] = {-2, -1, 0, 1, 2147483647}, io[2] = {5, 6};
	static const int8_t q[4] = {-128, -1, 0, 127};
	static const uint8_t u[3] = {0, 128, 255}, mask[4] = {1, 0, 0, 1};
	Module *m = ir_new_module(a, "demo.kir");
	Graph *g = ir_new_graph(m, "train", (Loc){0});
	add(g, "h.w", VK_PARAM, ty(DT_F32, 2, (int64_t[]){3, 4}), data ? hw : 0);
	int hb = add(g, "h.b", VK_PARAM, ty(DT_F32, 1, (int64_t[]){4}), NULL);
	add(g, "emb", VK_PARAM, ty(DT_F64, 2, (int64_t[]){2, 3}), data ? emb : 0);
	add(g, "step", VK_PARAM, ty(DT_I64, 0, NULL), data ? &step : 0);
	add(g, "idx", VK_PARAM, ty(DT_I32, 1, (int64_t[]){5}), data ? idx : 0);
	add(g, "q", VK_PARAM, ty(DT_I8, 1, (int64_t[]){4}), data ? q : 0);
	add(g, "u", VK_PARAM, ty(DT_U8, 1, (int64_t[]){3}), data ? u : 0);
	add(g, "mask", VK_PARAM, ty(DT_BOOL, 2, (int64_t[]){2, 2}),
	    data ? mask : 0);
	add(g, "zero", VK_PARAM, ty(DT_F32, 2, (int64_t[]){0, 3}), data ? k : 0);
	add(g, "w\"q\\\n\t", VK_PARAM, ty(DT_F32, 1, (int64_t[]){1}),
	    data ? wq : 0);
	add(g, "\xcf\x80.w", VK_PARAM, ty(DT_F32, 1, (int64_t[]){2}),
	    data ? pi : 0);
	add(g, "k", VK_CONST, ty(DT_F32, 1, (int64_t[]){2}), k);
	Graph *h = ir_new_graph(m, "infer", (Loc){0});
	add(h, "h.w", VK_PARAM, ty(DT_F32, 2, (int64_t[]){3, 4}), data ? hw : 0);
	int hb2 = add(h, "h.b", VK_PARAM, ty(DT_F32, 1, (int64_t[]){4}), NULL);
	add(h, "infer.only", VK_PARAM, ty(DT_I32, 1, (int64_t[]){2}),
	    data ? io : 0);
	if (data) {
		g->val[hb].init = h->val[hb2].init = INIT_ONES;
		g->val[hb].elided = h->val[hb2].elided = false;
	}
	return m;
}

static unsigned char *
slurp(Arena *a, const char *path, size_t *n)
{
	unsigned char *p = (unsigned char *)read_file(a, path, n);
	if (!p) {
		perror(path);
		exit(1);
	}
	return p;
}

/* Every param and const of b has a's data, and the loaded ones are
 * marked as data. */
static void
compare(const Module *a, const Module *b)
{
	for (int i = 0; i < a->ngraph; i++) {
		const Graph *g = a->graph[i], *h = b->graph[i];
		for (int k = 0; k < g->nval; k++) {
			const Value *v = &g->val[k], *w = &h->val[k];
			size_t n = (size_t)type_bytes(&v->type);
			check(w->data && memcmp(v->data, w->data, n) == 0,
			      "data differs after reload", v->name);
			check(w->init == INIT_DATA && !w->elided,
			      "not marked as loaded data", v->name);
		}
	}
}

static int
roundtrip(const char *dir)
{
	Arena *a = arena_new();
	const char *pa = arena_printf(a, "%s/a.safetensors", dir);
	const char *pb = arena_printf(a, "%s/b.safetensors", dir);
	const char *pc = arena_printf(a, "%s/c.safetensors", dir);
	Module *m = demo(a, true), *m2 = demo(a, false);
	weights_save(m, pa);
	Graph *g2 = m2->graph[0];
	int old = ir_find_value(g2, "h.w");     /* stale data is replaced */
	g2->val[old].data = arena_alloc(a, 48);
	g2->val[old].elided = false;
	weights_load(m2, pa);
	compare(m, m2);
	weights_save(m2, pb);
	weights_save(m, pc);
	size_t na, nb, nc;
	unsigned char *fa = slurp(a, pa, &na), *fb = slurp(a, pb, &nb);
	unsigned char *fc = slurp(a, pc, &nc);
	check(na == nb && memcmp(fa, fb, na) == 0, "save differs after reload",
	      pb);
	check(na == nc && memcmp(fa, fc, na) == 0, "second save differs", pc);
	arena_free(a);
	if (!failures)
		printf("roundtrip ok\n");
	return failures != 0;
}

static int
save_elided(const char *path)
{
	Arena *a = arena_new();
	Module *m = ir_new_module(a, "elided.kir");
	Graph *g = ir_new_graph(m, "main", (Loc){0});
	Loc loc = {.file = "elided.kir"};
	int v = ir_add_value(g, "h.w", VK_PARAM, ty(DT_F32, 1, (int64_t[]){32}),
	                     loc);
	g->val[v].elided = true;
	weights_save(m, path);
	arena_free(a);
	return 0;
}

/* Two graphs whose params of one name hold different values. */
static int
save_conflict(const char *path)
{
	static const float one[1] = {1}, two[1] = {2};
	Arena *a = arena_new();
	Module *m = ir_new_module(a, "conflict.kir");
	Type t = ty(DT_F32, 1, (int64_t[]){1});
	add(ir_new_graph(m, "train", (Loc){0}), "h.w", VK_PARAM, t, one);
	add(ir_new_graph(m, "infer", (Loc){0}), "h.w", VK_PARAM, t, two);
	weights_save(m, path);
	arena_free(a);
	return 0;
}

/* ---- load: specs in, hex out ------------------------------------------ */

static char *
unescape_name(Arena *a, const char *s, size_t n)
{
	char *out = arena_alloc(a, n + 1), *o = out;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '\\' && i + 3 < n && s[i + 1] == 'x') {
			char hex[3] = {s[i + 2], s[i + 3], 0};
			*o++ = (char)strtol(hex, NULL, 16);
			i += 3;
		} else {
			*o++ = s[i];
		}
	}
	return out;
}

static void
print_name(const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p > 0x20 && *p < 0x7f && *p != '\\' && *p != ':')
			putchar(*p);
		else
			printf("\\x%02x", *p);
	}
}

/* TYPE = dtype '[' [ dim { ',' dim } ] ']' */
static Type
parse_type(const char *s)
{
	Type t = {0};
	const char *br = strchr(s, '[');
	char dt[16] = "";
	if (br && br - s < (int)sizeof dt)
		memcpy(dt, s, (size_t)(br - s));
	if (!br || (t.dtype = dt_lookup(dt)) < 0)
		fatal("bad type '%s'", s);
	for (const char *p = br + 1; *p && *p != ']'; p += *p == ',') {
		char *end;
		t.dim[t.rank++] = strtoll(p, &end, 10);
		p = end;
	}
	return t;
}

static void add_spec(Graph *g, const char *spec, int **order, int *n);

static void
add_spec_file(Graph *g, const char *path, int **order, int *n)
{
	size_t len;
	char *text = read_file(g->mod->arena, path, &len);
	if (!text)
		fatal("cannot read %s", path);
	for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n"))
		add_spec(g, line, order, n);
}

static void
add_spec(Graph *g, const char *spec, int **order, int *n)
{
	static const char *const kinds[] = {"param", "const", "paramdata",
		"constdata"};
	if (spec[0] == '@') {
		add_spec_file(g, spec + 1, order, n);
		return;
	}
	const char *c1 = strchr(spec, ':'), *c2 = strrchr(spec, ':');
	int kind = 0;
	while (kind < countof(kinds) && (!c1 || strlen(kinds[kind]) !=
	       (size_t)(c1 - spec) || strncmp(kinds[kind], spec, c1 - spec)))
		kind++;
	if (kind == countof(kinds) || c1 == c2)
		fatal("bad spec '%s'", spec);
	Type t = parse_type(c2 + 1);
	char *name = unescape_name(g->mod->arena, c1 + 1, (size_t)(c2 - c1 - 1));
	unsigned char *data = NULL;
	if (kind >= 2) {
		data = arena_alloc(g->mod->arena, (size_t)type_bytes(&t));
		memset(data, 0xab, (size_t)type_bytes(&t));
	}
	int v = add(g, name, kind % 2 ? VK_CONST : VK_PARAM, t, data);
	*order = xrealloc(*order, (size_t)(*n + 1) * sizeof **order);
	(*order)[(*n)++] = v;
}

static int
load(const char *path, int nspec, char **spec)
{
	Arena *a = arena_new();
	Module *m = ir_new_module(a, "specs");
	Graph *g = ir_new_graph(m, "main", (Loc){0});
	int n = 0, *order = NULL;
	for (int i = 0; i < nspec; i++)
		add_spec(g, spec[i], &order, &n);
	weights_load(m, path);
	for (int i = 0; i < n; i++) {
		const Value *v = &g->val[order[i]];
		const unsigned char *p = v->data;
		print_name(v->name);
		printf(" %s ", type_str(a, &v->type));
		for (int64_t k = 0; k < type_bytes(&v->type); k++)
			printf("%02x", p[k]);
		printf("%s\n", type_bytes(&v->type) ? "" : "-");
	}
	free(order);
	arena_free(a);
	return 0;
}

int
main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "roundtrip") == 0)
		return roundtrip(argv[2]);
	if (argc == 3 && strcmp(argv[1], "save") == 0) {
		Arena *a = arena_new();
		weights_save(demo(a, true), argv[2]);
		arena_free(a);
		return 0;
	}
	if (argc == 3 && strcmp(argv[1], "save-elided") == 0)
		return save_elided(argv[2]);
	if (argc == 3 && strcmp(argv[1], "save-conflict") == 0)
		return save_conflict(argv[2]);
	if (argc >= 3 && strcmp(argv[1], "load") == 0)
		return load(argv[2], argc - 3, argv + 3);
	fprintf(stderr, "usage: test_weights roundtrip DIR | save FILE | "
	        "save-elided FILE | save-conflict FILE | load FILE SPEC...\n");
	return 2;
}
