/* cfg.c: the train section of a graph, kept as a tree (see Cfg in ir.h).
 *
 * The frontends record the section as written; the training pipeline will
 * read it.  Values it names (outputs for losses, labels, parameters to
 * freeze) count as uses, so dead-code elimination keeps them, and are
 * renumbered with the graph.  The printer writes the canonical text that
 * ir/parse.c reads back (docs/ir.md, "Train sections").
 */
#include <string.h>
#include "ir.h"

Cfg *
cfg_new(Arena *a, int kind, Loc loc)
{
	Cfg *c = arena_alloc(a, sizeof *c);
	c->kind = kind;
	c->loc = loc;
	c->v = -1;
	return c;
}

void
cfg_add(Arena *a, Cfg *c, const char *key, Cfg *item)
{
	int cap = c->cap;
	arena_grow(a, (void **)&c->key, &cap, c->n + 1, sizeof *c->key);
	cap = c->cap;
	arena_grow(a, (void **)&c->item, &cap, c->n + 1, sizeof *c->item);
	c->cap = cap;
	c->key[c->n] = key;
	c->item[c->n++] = item;
}

const Cfg *
cfg_get(const Cfg *block, const char *key)
{
	for (int i = 0; block && i < block->n; i++)
		if (block->key[i] && strcmp(block->key[i], key) == 0)
			return block->item[i];
	return NULL;
}

const Cfg *
cfg_kwarg(const Cfg *call, const char *key)
{
	for (int i = 0; call && i < call->n; i++)
		if (call->key[i] && strcmp(call->key[i], key) == 0)
			return call->item[i];
	return NULL;
}

bool
cfg_listed(const Cfg *block, const char *key, int v)
{
	for (int i = 0; block && v >= 0 && i < block->n; i++) {
		if (!block->key[i] || strcmp(block->key[i], key) != 0)
			continue;
		const Cfg *l = block->item[i];
		for (int k = 0; l->kind == CFG_LIST && k < l->n; k++)
			if (l->item[k]->kind == CFG_VALUE && l->item[k]->v == v)
				return true;
	}
	return false;
}

void
cfg_fill_uses(const Cfg *c, int *use)
{
	if (!c)
		return;
	if (c->kind == CFG_VALUE)
		use[c->v]++;
	for (int i = 0; i < c->n; i++)
		cfg_fill_uses(c->item[i], use);
}

void
cfg_remap(Cfg *c, const int *vmap)
{
	if (!c)
		return;
	if (c->kind == CFG_VALUE)
		c->v = vmap[c->v];
	for (int i = 0; i < c->n; i++)
		cfg_remap(c->item[i], vmap);
}

void
cfg_verify(const Graph *g, const Cfg *c)
{
	if (!c)
		return;
	if (c->kind == CFG_VALUE && (c->v < 0 || c->v >= g->nval))
		die("train section names value %d of %d", c->v, g->nval);
	for (int i = 0; i < c->n; i++)
		cfg_verify(g, c->item[i]);
}

static void print_block(FILE *f, const Graph *g, const Cfg *c, int indent);

static void
print_value(FILE *f, const Graph *g, const Cfg *c)
{
	const Value *v = &g->val[c->v];
	bool global = v->kind == VK_PARAM || v->kind == VK_CONST;
	ir_print_name(f, global ? '$' : '%', v->name);
}

/* value := int | float | string | true | false | ident | %v | $v
 *        | ident '(' [arg {',' arg}] ')' | '[' [value {',' value}] ']' */
static void
print_cfg(FILE *f, const Graph *g, const Cfg *c)
{
	switch (c->kind) {
	case CFG_INT: fprintf(f, "%lld", (long long)c->i); return;
	case CFG_FLOAT: ir_print_float(f, c->f, false); return;
	case CFG_STR: ir_print_string(f, c->s); return;
	case CFG_BOOL: fputs(c->i ? "true" : "false", f); return;
	case CFG_IDENT: fputs(c->s, f); return;
	case CFG_VALUE: print_value(f, g, c); return;
	case CFG_BLOCK: die("a block is not a value");
	}
	if (c->kind == CFG_CALL)
		fputs(c->s, f);
	fputc(c->kind == CFG_CALL ? '(' : '[', f);
	for (int i = 0; i < c->n; i++) {
		fputs(i ? ", " : "", f);
		if (c->key[i])
			fprintf(f, "%s=", c->key[i]);
		print_cfg(f, g, c->item[i]);
	}
	fputc(c->kind == CFG_CALL ? ')' : ']', f);
}

/* entry := 'label' %name ':' type | key '=' value
 *        | key [string] '{' NL {entry} '}' */
static void
print_entry(FILE *f, const Graph *g, const char *key, const Cfg *c, int ind)
{
	fprintf(f, "%*s", ind, "");
	if (strcmp(key, "label") == 0 && c->kind == CFG_VALUE &&
	    g->val[c->v].kind == VK_LABEL) {
		fputs("label ", f);
		ir_print_name(f, '%', g->val[c->v].name);
		fputs(": ", f);
		ir_print_type(f, &g->val[c->v].type);
		fputc('\n', f);
		return;
	}
	fputs(key, f);
	if (c->kind == CFG_BLOCK) {
		if (c->s) {
			fputc(' ', f);
			ir_print_string(f, c->s);
		}
		print_block(f, g, c, ind);
		return;
	}
	fputs(" = ", f);
	print_cfg(f, g, c);
	fputc('\n', f);
}

static void
print_block(FILE *f, const Graph *g, const Cfg *c, int indent)
{
	fputs(" {\n", f);
	for (int i = 0; i < c->n; i++)
		print_entry(f, g, c->key[i], c->item[i], indent + 2);
	fprintf(f, "%*s}\n", indent, "");
}

void
cfg_print(FILE *f, const Graph *g)
{
	if (!g->train)
		return;
	fputs("\ntrain ", f);
	ir_print_name(f, '@', g->name);
	print_block(f, g, g->train, 0);
}
