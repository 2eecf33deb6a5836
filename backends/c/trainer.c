/* trainer.c: the C backend for `kiln build --train`.  Emits one C file
 * holding the training pass's graphs (its step graphs and @m.eval) as
 * functions over arrays, the trainer's state layout and a struct
 * kiln_train_desc, with main() over kiln_train_main() (runtime/train.c)
 * under -DKILN_MAIN.
 *
 * The state is every param of the step graphs (a superset of @m.eval's:
 * the optimizer's slots are the steps' own), each 64-byte aligned, in the
 * order of first appearance; a param several steps read (a GAN's
 * discriminator) is one state tensor.  Every function addresses params
 * there by name, so what a step updates the others and the evaluation
 * see.  The blob NAME.c links holds the initial state, then each graph's
 * constants.
 */
#include <string.h>
#include "cgen.h"

enum { MAXSTEPS = 8 };          /* passes/train.c's TRAIN_MAXSTEPS */

typedef struct {
	Graph *gs[MAXSTEPS + 2];        /* the steps, the eval, the attack */
	int nsteps, ng;
	Graph *eval, *attack, *model;
	const CgenOpts *o;
	FILE *f;
	/* per graph and value: state and blob offsets, index in the state */
	int64_t *soff[MAXSTEPS + 2], *woff[MAXSTEPS + 2];
	int *sidx[MAXSTEPS + 2];
	int *sg, *sv, nstate;           /* state tensor i: value sv[i] of gs[sg[i]] */
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

/* The state tensor named name, or -1. */
static int
state_named(const Tg *t, const char *name)
{
	for (int i = 0; i < t->nstate; i++)
		if (strcmp(t->gs[t->sg[i]]->val[t->sv[i]].name, name) == 0)
			return i;
	return -1;
}

/* Param v of graph k: the state tensor of its name, made when new. */
static void
place_param(Tg *t, int k, int v)
{
	int i = state_named(t, t->gs[k]->val[v].name);
	if (i < 0 && k >= t->nsteps)
		die("trainer: %s's param '%s' is in no step", t->gs[k]->name,
		    t->gs[k]->val[v].name);
	if (i < 0) {
		i = t->nstate++;
		t->sg[i] = k;
		t->sv[i] = v;
		t->soff[k][v] = place(t, t->gs[k], v);
	}
	t->sidx[k][v] = i;
	t->soff[k][v] = t->soff[t->sg[i]][t->sv[i]];
}

static void
layout(Tg *t)
{
	Arena *a = t->model->mod->arena;
	int ng = t->ng, nparam = 1;
	for (int k = 0; k < ng; k++) {
		Graph *g = t->gs[k];
		t->soff[k] = arena_alloc(a, (g->nval + 1) * sizeof *t->soff[k]);
		t->woff[k] = arena_alloc(a, (g->nval + 1) * sizeof *t->woff[k]);
		t->sidx[k] = arena_alloc(a, (g->nval + 1) * sizeof *t->sidx[k]);
		for (int v = 0; v < g->nval; v++) {
			t->soff[k][v] = t->woff[k][v] = -1;
			t->sidx[k][v] = -1;
			nparam += g->val[v].kind == VK_PARAM;
		}
	}
	t->sg = arena_alloc(a, nparam * sizeof *t->sg);
	t->sv = arena_alloc(a, nparam * sizeof *t->sv);
	for (int k = 0; k < ng; k++)
		for (int v = 0; v < t->gs[k]->nval; v++)
			if (t->gs[k]->val[v].kind == VK_PARAM)
				place_param(t, k, v);
	t->state_bytes = t->size;
	for (int k = 0; k < ng; k++)
		for (int v = 0; v < t->gs[k]->nval; v++)
			if (t->gs[k]->val[v].kind == VK_CONST)
				t->woff[k][v] = place(t, t->gs[k], v);
}

static unsigned char *
trainer_blob(Tg *t)
{
	unsigned char *p = arena_alloc(t->model->mod->arena,
	                               (size_t)t->size + 1);
	memset(p, 0, (size_t)t->size);
	for (int i = 0; i < t->nstate; i++) {
		const Value *v = &t->gs[t->sg[i]]->val[t->sv[i]];
		memcpy(p + t->soff[t->sg[i]][t->sv[i]], v->data,
		       (size_t)type_bytes(&v->type));
	}
	for (int k = 0; k < t->ng; k++)
		for (int v = 0; v < t->gs[k]->nval; v++)
			if (t->woff[k][v] >= 0)
				memcpy(p + t->woff[k][v], t->gs[k]->val[v].data,
				       (size_t)type_bytes(&t->gs[k]->val[v].type));
	return p;
}

/* The step's checks before it commits: the loss (output 0) and then
 * every new value of a float state tensor must be finite, or the step
 * returns with *bad saying which (its index in the desc's state[]) and
 * the state as it was. */
static void
emit_checks(Gen *s, Graph *g, const int *sidx)
{
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
	Graph *g = t->gs[k];
	bool step = k < t->nsteps;
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
	        name, step ? ", int *bad" : "", t->o->prefix);
	for (int i = 0; i < g->nnode; i++)
		if (!g->node[i].dead)
			emit_node(&s, &g->node[i]);
	for (int i = 0; i < g->noutput; i++) {
		int v = g->output[i];
		if (s.outpos[v] != i)
			fprintf(t->f, "\tkiln_copy(out[%d], %s, %lld);\n", i, ptr(&s, v),
			        (long long)type_bytes(&g->val[v].type));
	}
	if (step)
		emit_checks(&s, g, t->sidx[k]);
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
	fprintf(t->f, "static const struct kiln_state_desc %s_state[] = {\n",
	        t->o->prefix);
	for (int i = 0; i < t->nstate; i++) {
		const Value *val = &t->gs[t->sg[i]]->val[t->sv[i]];
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
		fprintf(t->f, "}, %lld},\n",
		        (long long)t->soff[t->sg[i]][t->sv[i]]);
	}
	if (t->nstate == 0)
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

/* Whether the first loss is a cross-entropy over classes whose
 * prediction is [batch, classes] and first label a class per sample, as
 * the trainer's metrics need (not one-hot labels, not sequences). */
static bool
classifier(const Tg *t)
{
	const Graph *e = t->eval;
	const Cfg *l = cfg_get(t->model->train, "loss");
	int ni = t->model->ninput;
	if (l && l->kind == CFG_LIST)
		l = l->n ? l->item[0] : NULL;
	if (!l || l->kind != CFG_CALL || e->noutput < 2 || e->ninput <= ni ||
	    (strcmp(l->s, "cross_entropy") && strcmp(l->s, "sparse_cross_entropy")))
		return false;
	const Type *p = &e->val[e->output[1]].type;
	const Type *y = &e->val[e->input[ni]].type;
	return p->rank == 2 && y->rank == 1 && y->dtype != DT_F32 &&
	       y->dtype != DT_F64;
}

/* Step k's function with the desc's signature, over its _run. */
static void
emit_step_wrapper(Tg *t, int k, int nin)
{
	const char *p = t->o->prefix;
	fprintf(t->f, "static kiln_status\n%s_step%d(const void *const *in, "
	        "float lr, int64_t t, void *state,\n\tvoid *ws, float *loss, "
	        "void *pred, int *bad)\n{\n\tconst void *all[%d];\n"
	        "\tvoid *out[2] = {loss, pred};\n\n"
	        "\tfor (int i = 0; i < %d; i++)\n\t\tall[i] = in[i];\n"
	        "\tall[%d] = &lr;\n\tall[%d] = &t;\n\t(void)out;\n"
	        "\treturn %s_step%d_run(all, out, state, ws, bad);\n}\n\n", p,
	        k, nin + 2, nin, nin, nin + 1, p, k);
}

/* eval() writes one loss per step (loss[] has max(nsteps, 1)), then
 * the prediction of a single step. */
static void
emit_eval_wrapper(Tg *t)
{
	const char *p = t->o->prefix;
	int nl = t->eval->noutput - (t->nsteps > 1 ? 0 : 1);
	fprintf(t->f, "static kiln_status\n%s_eval(const void *const *in, void "
	        "*state, void *ws,\n\tfloat *loss, void *pred)\n{\n"
	        "\tvoid *out[%d] = {", p, t->eval->noutput + 1);
	for (int i = 0; i < nl; i++)
		fprintf(t->f, "&loss[%d], ", i);
	fprintf(t->f, "pred};\n\n\t(void)pred;\n"
	        "\treturn %s_eval_run(in, out, state, ws);\n}\n\n", p);
}

/* attack(): the attack graph's adversarial inputs into adv[]. */
static void
emit_attack_wrapper(Tg *t, int nin)
{
	const char *p = t->o->prefix;
	fprintf(t->f, "static kiln_status\n%s_attack(const void *const *in, "
	        "float eps, void *state, void *ws,\n\tvoid *const *adv)\n{\n"
	        "\tconst void *all[%d];\n\n"
	        "\tfor (int i = 0; i < %d; i++)\n\t\tall[i] = in[i];\n"
	        "\tall[%d] = &eps;\n"
	        "\treturn %s_attack_run(all, adv, state, ws);\n}\n\n", p,
	        nin + 1, nin, nin, p);
}

/* With several steps: their functions and names, in order. */
static void
emit_steps(Tg *t)
{
	const char *p = t->o->prefix;
	fprintf(t->f, "static kiln_status (*const %s_steps[])(const void "
	        "*const *, float, int64_t,\n\tvoid *, void *, float *, void *, "
	        "int *) = {", p);
	for (int k = 0; k < t->nsteps; k++)
		fprintf(t->f, "%s%s_step%d", k ? ", " : "", p, k);
	fprintf(t->f, "};\nstatic const char *const %s_step_names[] = {", p);
	for (int k = 0; k < t->nsteps; k++) {
		const char *n = strrchr(t->gs[k]->name, '.');
		fputs(k ? ", " : "", t->f);
		cstring(t->f, n ? n + 1 : t->gs[k]->name);
	}
	fputs("};\n\n", t->f);
}

static void
emit_desc(Tg *t)
{
	Graph *e = t->eval;
	const char *p = t->o->prefix;
	int ni = t->model->ninput, nl = e->ninput - ni;
	bool pred = t->nsteps == 1 && e->noutput > 1;
	int64_t ws = 1;
	emit_tensors(t, "inputs", e->input, ni);
	emit_tensors(t, "labels", e->input + ni, nl);
	emit_state(t);
	for (int k = 0; k < t->nsteps; k++)
		emit_step_wrapper(t, k, ni + nl);
	emit_eval_wrapper(t);
	if (t->attack)
		emit_attack_wrapper(t, ni + nl);
	if (t->nsteps > 1)
		emit_steps(t);
	for (int k = 0; k < t->ng; k++)
		ws = MAX(ws, t->gs[k]->workspace);
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
	fprintf(t->f, "\t.classify = %d,\n\t.nstate = %d,\n\t.state = %s_state,\n"
	        "\t.state_bytes = %lld,\n\t.state_init = %s_weights,\n"
	        "\t.workspace_bytes = %lld,\n\t.step = %s_step0,\n"
	        "\t.eval = %s_eval,\n", pred && classifier(t), t->nstate, p,
	        (long long)t->state_bytes, p, (long long)ws, p, p);
	if (t->nsteps > 1)
		fprintf(t->f, "\t.nsteps = %d,\n\t.steps = %s_steps,\n"
		        "\t.step_names = %s_step_names,\n", t->nsteps, p, p);
	if (t->attack)
		fprintf(t->f, "\t.attack = %s_attack,\n", p);
	emit_defaults(t);
	fprintf(t->f, "};\n\n#ifdef KILN_MAIN\nint\nmain(int argc, char **argv)\n"
	        "{\n\treturn kiln_train_main(argc, argv, &%s_trainer);\n}\n"
	        "#endif\n", p);
}

unsigned char *
cgen_emit_trainer(Graph *const *steps, int nsteps, Graph *eval,
                  Graph *attack, Graph *model, const CgenOpts *o, FILE *c,
                  int64_t *size)
{
	Tg t = {.nsteps = nsteps, .eval = eval, .attack = attack,
	        .model = model, .o = o, .f = c};
	if (nsteps < 1 || nsteps > MAXSTEPS)
		die("cgen: %d training steps", nsteps);
	for (int k = 0; k < nsteps; k++)
		t.gs[k] = steps[k];
	t.gs[nsteps] = eval;
	t.ng = nsteps + 1;
	if (attack)
		t.gs[t.ng++] = attack;
	for (int k = 0; k < t.ng; k++)
		if (t.gs[k]->workspace < 0)
			die("cgen: the training graphs are not planned");
	layout(&t);
	fprintf(c, "/* %s.c: the trainer of model '%s', compiled by kiln from "
	        "%s.  Generated; do not\n * edit. */\n#include <math.h>\n"
	        "#include <stddef.h>\n#include <stdint.h>\n#include \"kiln.h\"\n"
	        "#include \"kiln_scalar.h\"\n\n",
	        o->prefix, model->name, o->source);
	const char *P = arena_printf(model->mod->arena, "%s", o->prefix);
	fprintf(c, "#ifndef %s_WEIGHTS_FILE\n#define %s_WEIGHTS_FILE \"%s\"\n"
	        "#endif\n__asm__(\".section .rodata\\n.balign 64\\n.local "
	        "%s_weights\\n%s_weights:\\n.incbin \\\"\" %s_WEIGHTS_FILE "
	        "\"\\\"\\n.previous\");\nextern const unsigned char %s_weights[];\n\n",
	        P, P, o->weights, P, P, P, P);
	for (int k = 0; k < nsteps; k++)
		emit_fn(&t, k, arena_printf(model->mod->arena, "step%d", k));
	emit_fn(&t, nsteps, "eval");
	if (attack)
		emit_fn(&t, nsteps + 1, "attack");
	emit_desc(&t);
	*size = t.size;
	return trainer_blob(&t);
}
