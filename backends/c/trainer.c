/* trainer.c: the C backend for `kiln build --train`.  Emits one C file
 * holding the training pass's two graphs as functions over arrays, the
 * trainer's state layout and a struct kiln_train_desc, with main() over
 * kiln_train_main() (runtime/train.c) under -DKILN_MAIN.
 *
 * The state is every param of @m.step (a superset of @m.eval's: the
 * optimizer's slots are the step's own), each 64-byte aligned, in the
 * step graph's order; both functions address params there by name, so
 * what the step updates the evaluation sees.  The blob NAME.c links
 * holds the initial state, then the step's and the eval's constants.
 */
#include <string.h>
#include "cgen.h"

typedef struct {
	Graph *step, *eval, *model;
	const CgenOpts *o;
	FILE *f;
	int64_t *soff[2], *woff[2];     /* per graph: state and blob offsets */
	int64_t state_bytes, size;      /* state bytes, blob bytes */
} Tg;

static int64_t
place(Tg *t, Graph *g, int v)
{
	if (!g->val[v].data && g->val[v].init == INIT_DATA)
		diag_error(g->val[v].loc, "'%s': its data was elided from this "
		           "IR; give it with --weights FILE", g->val[v].name);
	ir_materialize(g, v);
	int64_t at = t->size;
	t->size = ALIGNUP(t->size + type_bytes(&g->val[v].type), 64);
	return at;
}

static void
layout(Tg *t)
{
	Graph *gs[2] = {t->step, t->eval};
	Arena *a = t->step->mod->arena;
	for (int k = 0; k < 2; k++) {
		t->soff[k] = arena_alloc(a, (gs[k]->nval + 1) * sizeof *t->soff[k]);
		t->woff[k] = arena_alloc(a, (gs[k]->nval + 1) * sizeof *t->woff[k]);
		for (int v = 0; v < gs[k]->nval; v++)
			t->soff[k][v] = t->woff[k][v] = -1;
	}
	for (int v = 0; v < t->step->nval; v++)
		if (t->step->val[v].kind == VK_PARAM)
			t->soff[0][v] = place(t, t->step, v);
	t->state_bytes = t->size;
	for (int v = 0; v < t->eval->nval; v++) {
		const Value *val = &t->eval->val[v];
		if (val->kind != VK_PARAM)
			continue;
		int s = ir_find_value(t->step, val->name);
		if (s < 0 || t->step->val[s].kind != VK_PARAM)
			die("trainer: eval's param '%s' is not in the step", val->name);
		t->soff[1][v] = t->soff[0][s];
	}
	for (int k = 0; k < 2; k++)
		for (int v = 0; v < gs[k]->nval; v++)
			if (gs[k]->val[v].kind == VK_CONST)
				t->woff[k][v] = place(t, gs[k], v);
}

static unsigned char *
trainer_blob(Tg *t)
{
	unsigned char *p = arena_alloc(t->step->mod->arena, (size_t)t->size + 1);
	Graph *gs[2] = {t->step, t->eval};
	memset(p, 0, (size_t)t->size);
	for (int k = 0; k < 2; k++)
		for (int v = 0; v < gs[k]->nval; v++) {
			/* the eval's params are the step's, in the same state */
			bool param = gs[k]->val[v].kind == VK_PARAM;
			int64_t off = param ? (k ? -1 : t->soff[k][v]) : t->woff[k][v];
			if (off >= 0)
				memcpy(p + off, gs[k]->val[v].data,
				       (size_t)type_bytes(&gs[k]->val[v].type));
		}
	return p;
}

/* The step's checks before it commits: the loss (output 0) and then
 * every new value of a float state tensor must be finite, or the step
 * returns with *bad saying which (the index in the desc's state[], the
 * step graph's params in order) and the state as it was. */
static void
emit_checks(Gen *s, Graph *g)
{
	int *sidx = arena_alloc(g->mod->arena, (g->nval + 1) * sizeof *sidx);
	for (int v = 0, n = 0; v < g->nval; v++)
		sidx[v] = g->val[v].kind == VK_PARAM ? n++ : -1;
	for (int i = -1; i < g->nupdate; i++) {
		int v = i < 0 ? g->output[0] : g->update[i].src;
		const Type *ty = &g->val[v].type;
		if (ty->dtype != DT_F32 && ty->dtype != DT_F64)
			continue;
		fprintf(s->f, "\tif (!kiln_finite(%s, %s, %lld)) {\n\t\t*bad = %d;\n"
		        "\t\treturn KILN_ERR_NONFINITE;\n\t}\n", ptr(s, v),
		        kdtype[ty->dtype], (long long)type_numel(ty),
		        i < 0 ? -1 : sidx[g->update[i].dst]);
	}
}

/* static kiln_status P_NAME_run(in, out, state, ws[, bad]): graph k's
 * nodes, its outputs, then (the step) its checks and its updates copied
 * into the state. */
static void
emit_fn(Tg *t, int k, const char *name)
{
	Graph *g = k ? t->eval : t->step;
	Arena *a = g->mod->arena;
	Gen s = {.g = g, .o = t->o, .f = t->f, .woff = t->woff[k],
	         .soff = t->soff[k]};
	name_fields(&s);
	s.inpos = arena_alloc(a, (g->nval + 1) * sizeof *s.inpos);
	for (int i = 0; i < g->ninput; i++)
		s.inpos[g->input[i]] = i;
	fprintf(t->f, "static kiln_status\n%s_%s_run(const void *const *in, "
	        "void *const *out,\n\tunsigned char *state, unsigned char *ws%s)"
	        "\n{\n\tconst unsigned char *wt = %s_weights;\n\t(void)in;\n"
	        "\t(void)state;\n\t(void)ws;\n\t(void)wt;\n\n", t->o->prefix,
	        name, k ? "" : ", int *bad", t->o->prefix);
	for (int i = 0; i < g->nnode; i++)
		if (!g->node[i].dead)
			emit_node(&s, &g->node[i]);
	for (int i = 0; i < g->noutput; i++) {
		int v = g->output[i];
		if (s.outpos[v] != i)
			fprintf(t->f, "\tkiln_copy(out[%d], %s, %lld);\n", i, ptr(&s, v),
			        (long long)type_bytes(&g->val[v].type));
	}
	if (!k)
		emit_checks(&s, g);
	for (int i = 0; i < g->nupdate; i++) {
		int d = g->update[i].dst, v = g->update[i].src;
		fprintf(t->f, "\tkiln_copy(state + %lld, %s, %lld);\n",
		        (long long)s.soff[d], ptr(&s, v),
		        (long long)type_bytes(&g->val[v].type));
	}
	fputs("\treturn KILN_OK;\n}\n\n", t->f);
}

static void
emit_tensor(FILE *f, const Value *v)
{
	fputs("{", f);
	cstring(f, v->name);
	fprintf(f, ", %s, %d, {", kdtype[v->type.dtype], v->type.rank);
	for (int k = 0; k < v->type.rank; k++)
		fprintf(f, "%s%lld", k ? ", " : "", (long long)v->type.dim[k]);
	fputs("}}", f);
}

static void
emit_tensors(Tg *t, const char *what, const int *vals, int n)
{
	fprintf(t->f, "static const struct kiln_tensor_desc %s_%s[] = {\n",
	        t->o->prefix, what);
	for (int i = 0; i < n; i++) {
		fputc('\t', t->f);
		emit_tensor(t->f, &t->eval->val[vals[i]]);
		fputs(",\n", t->f);
	}
	if (n == 0)
		fputs("\t{0},\n", t->f);
	fputs("};\n", t->f);
}

static void
emit_state(Tg *t)
{
	Graph *g = t->step;
	int n = 0;
	fprintf(t->f, "static const struct kiln_state_desc %s_state[] = {\n",
	        t->o->prefix);
	for (int v = 0; v < g->nval; v++) {
		const Value *val = &g->val[v];
		if (val->kind != VK_PARAM)
			continue;
		int mv = ir_find_value(t->model, val->name);
		const Cfg *tr = t->model->train;
		const char *kind = mv < 0 ? "KILN_STATE_SLOT" :
		    cfg_listed(tr, "non_trainable", mv) ? "KILN_STATE_BUFFER" :
		    cfg_listed(tr, "freeze", mv) ? "KILN_STATE_FROZEN" :
		    "KILN_STATE_PARAM";
		fputs("\t{", t->f);
		cstring(t->f, val->name);
		fprintf(t->f, ", %s, %s, %d, {", kind, kdtype[val->type.dtype],
		        val->type.rank);
		for (int k = 0; k < val->type.rank; k++)
			fprintf(t->f, "%s%lld", k ? ", " : "",
			        (long long)val->type.dim[k]);
		fprintf(t->f, "}, %lld},\n", (long long)t->soff[0][v]);
		n++;
	}
	if (n == 0)
		fputs("\t{0},\n", t->f);
	fputs("};\n\n", t->f);
}

static double
cfg_num(const Cfg *c, double def)
{
	if (!c)
		return def;
	return c->kind == CFG_FLOAT ? c->f : (double)c->i;
}

/* The desc's hyperparameter defaults, from the train section. */
static void
emit_defaults(Tg *t)
{
	const Cfg *tr = t->model->train, *opt = cfg_get(tr, "optimizer");
	const char *oname = opt ? opt->s : "adam";
	double lr = cfg_num(cfg_kwarg(opt, "lr"),
	                    strcmp(oname, "sgd") == 0 ? 0.01 : 0.001);
	fprintf(t->f, "\t.epochs = %lld,\n\t.lr = %.17g,\n\t.seed = %lluu,\n"
	        "\t.validation_split = %.17g,\n",
	        (long long)cfg_num(cfg_get(tr, "epochs"), 10), lr,
	        (unsigned long long)cfg_num(cfg_get(tr, "seed"), 0),
	        cfg_num(cfg_get(tr, "validation_split"), 0));
	const Cfg *es = cfg_get(tr, "early_stopping");
	if (es) {
		const Cfg *m = cfg_kwarg(es, "monitor");
		fputs("\t.es_monitor = ", t->f);
		cstring(t->f, m ? m->s : "val_loss");
		fprintf(t->f, ",\n\t.es_patience = %lld,\n\t.es_min_delta = %.17g,\n"
		        "\t.es_restore_best = %d,\n",
		        (long long)cfg_num(cfg_kwarg(es, "patience"), 0),
		        cfg_num(cfg_kwarg(es, "min_delta"), 0),
		        cfg_num(cfg_kwarg(es, "restore_best"), 1) != 0);
	}
	const Cfg *s = cfg_get(tr, "schedule");
	if (!s)
		return;
	const Cfg *m = cfg_kwarg(s, "monitor");
	if (m && m->kind == CFG_STR) {
		fputs("\t.sched_monitor = ", t->f);
		cstring(t->f, m->s);
		fputs(",\n", t->f);
	}
	static const char *const names[] = {"step", "exponential", "cosine",
	                                    "plateau"};
	static const char *const ids[] = {"KILN_SCHED_STEP",
	    "KILN_SCHED_EXPONENTIAL", "KILN_SCHED_COSINE", "KILN_SCHED_PLATEAU"};
	for (int i = 0; i < countof(names); i++)
		if (strcmp(s->s, names[i]) == 0)
			fprintf(t->f, "\t.schedule = %s,\n", ids[i]);
	fprintf(t->f, "\t.sched_gamma = %.17g,\n\t.sched_min_lr = %.17g,\n"
	        "\t.sched_factor = %.17g,\n\t.sched_step_size = %lld,\n"
	        "\t.sched_epochs = %lld,\n\t.sched_patience = %lld,\n",
	        cfg_num(cfg_kwarg(s, "gamma"), 0.1),
	        cfg_num(cfg_kwarg(s, "min_lr"), 0),
	        cfg_num(cfg_kwarg(s, "factor"), 0.1),
	        (long long)cfg_num(cfg_kwarg(s, "step_size"), 1),
	        (long long)cfg_num(cfg_kwarg(s, "epochs"), 0),  /* 0: the run's */
	        (long long)cfg_num(cfg_kwarg(s, "patience"), 10));
}

/* Whether the first loss is a cross-entropy over classes. */
static bool
classifier(const Graph *m)
{
	const Cfg *l = cfg_get(m->train, "loss");
	if (l && l->kind == CFG_LIST)
		l = l->n ? l->item[0] : NULL;
	return l && l->kind == CFG_CALL && (strcmp(l->s, "cross_entropy") == 0 ||
	                                    strcmp(l->s, "sparse_cross_entropy") == 0);
}

static void
emit_desc(Tg *t)
{
	Graph *e = t->eval;
	const char *p = t->o->prefix;
	int ni = t->model->ninput, nl = e->ninput - ni;
	bool pred = e->noutput > 1;
	emit_tensors(t, "inputs", e->input, ni);
	emit_tensors(t, "labels", e->input + ni, nl);
	emit_state(t);
	fprintf(t->f, "static kiln_status\n%s_step(const void *const *in, float "
	        "lr, int64_t t, void *state,\n\tvoid *ws, float *loss, void *pred, "
	        "int *bad)\n{\n\tconst void *all[%d];\n"
	        "\tvoid *out[2] = {loss, pred};\n\n"
	        "\tfor (int i = 0; i < %d; i++)\n\t\tall[i] = in[i];\n"
	        "\tall[%d] = &lr;\n\tall[%d] = &t;\n\t(void)out;\n"
	        "\treturn %s_step_run(all, out, state, ws, bad);\n}\n\n", p,
	        ni + nl + 2, ni + nl, ni + nl, ni + nl + 1, p);
	fprintf(t->f, "static kiln_status\n%s_eval(const void *const *in, void "
	        "*state, void *ws,\n\tfloat *loss, void *pred)\n{\n"
	        "\tvoid *out[2] = {loss, pred};\n\n"
	        "\treturn %s_eval_run(in, out, state, ws);\n}\n\n", p, p);
	fprintf(t->f, "const struct kiln_train_desc %s_trainer = {\n\t.name = ", p);
	cstring(t->f, t->model->name);
	fprintf(t->f, ",\n\t.batch = %lld,\n\t.ninputs = %d,\n\t.nlabels = %d,\n"
	        "\t.inputs = %s_inputs,\n\t.labels = %s_labels,\n",
	        (long long)(ni ? e->val[e->input[0]].type.dim[0] : 1), ni, nl,
	        p, p);
	if (pred) {
		fputs("\t.pred = ", t->f);
		emit_tensor(t->f, &e->val[e->output[1]]);
		fputs(",\n", t->f);
	}
	int nstate = 0;
	for (int v = 0; v < t->step->nval; v++)
		nstate += t->step->val[v].kind == VK_PARAM;
	fprintf(t->f, "\t.classify = %d,\n\t.nstate = %d,\n\t.state = %s_state,\n"
	        "\t.state_bytes = %lld,\n\t.state_init = %s_weights,\n"
	        "\t.workspace_bytes = %lld,\n\t.step = %s_step,\n"
	        "\t.eval = %s_eval,\n", pred && classifier(t->model), nstate, p,
	        (long long)t->state_bytes, p,
	        (long long)MAX(MAX(t->step->workspace, t->eval->workspace), 1),
	        p, p);
	emit_defaults(t);
	fprintf(t->f, "};\n\n#ifdef KILN_MAIN\nint\nmain(int argc, char **argv)\n"
	        "{\n\treturn kiln_train_main(argc, argv, &%s_trainer);\n}\n"
	        "#endif\n", p);
}

unsigned char *
cgen_emit_trainer(Graph *step, Graph *eval, Graph *model, const CgenOpts *o,
                  FILE *c, int64_t *size)
{
	Tg t = {.step = step, .eval = eval, .model = model, .o = o, .f = c};
	if (step->workspace < 0 || eval->workspace < 0)
		die("cgen: the training graphs are not planned");
	layout(&t);
	fprintf(c, "/* %s.c: the trainer of model '%s', compiled by kiln from "
	        "%s.  Generated; do not\n * edit. */\n#include <math.h>\n"
	        "#include <stddef.h>\n#include <stdint.h>\n#include \"kiln.h\"\n\n",
	        o->prefix, model->name, o->source);
	const char *P = arena_printf(step->mod->arena, "%s", o->prefix);
	fprintf(c, "#ifndef %s_WEIGHTS_FILE\n#define %s_WEIGHTS_FILE \"%s\"\n"
	        "#endif\n__asm__(\".section .rodata\\n.balign 64\\n.local "
	        "%s_weights\\n%s_weights:\\n.incbin \\\"\" %s_WEIGHTS_FILE "
	        "\"\\\"\\n.previous\");\nextern const unsigned char %s_weights[];\n\n",
	        P, P, o->weights, P, P, P, P);
	emit_fn(&t, 0, "step");
	emit_fn(&t, 1, "eval");
	emit_desc(&t);
	*size = t.size;
	return trainer_blob(&t);
}
