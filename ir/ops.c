/* ops.c: the op registry, expanded from ops.def.
 *
 * op_info[] and attr_info[] are the tables every layer reads: the .kir
 * parser and printer, the .kiln lowering, the verifier and the backends.
 * An op's attributes are the contiguous attr_info[] rows after its OP row;
 * attr0/nattr are filled in on first use.
 */
#include <string.h>
#include "ir.h"

const AttrInfo attr_info[NATTRID] = {
#define OP(...)
#define ATTR(op, id, name, kind, def) [AT_##op##_##id] = {OP_##op, name, AK_##kind, def},
#include "ops.def"
#undef OP
#undef ATTR
};

static OpInfo op_info[NOP] = {
#define OP(id, name, minin, maxin, cls, types, idx, shape, kernel) \
	[OP_##id] = {name, minin, maxin, cls, types, idx, shape, kernel, 0, 0},
#define ATTR(...)
#include "ops.def"
#undef OP
#undef ATTR
};

static void
fill(void)
{
	static bool done;
	if (done)
		return;
	for (int i = NATTRID - 1; i >= 0; i--) {
		OpInfo *o = &op_info[attr_info[i].op];
		o->attr0 = i;
		o->nattr++;
	}
	done = true;
}

const OpInfo *
op_get(int op)
{
	if (op < 0 || op >= NOP)
		die("bad op %d", op);
	fill();
	return &op_info[op];
}

int
op_lookup(const char *name)
{
	for (int i = 0; i < NOP; i++)
		if (strcmp(op_info[i].name, name) == 0)
			return i;
	return -1;
}

int
op_attr_lookup(int op, const char *name)
{
	const OpInfo *o = op_get(op);
	for (int i = o->attr0; i < o->attr0 + o->nattr; i++)
		if (strcmp(attr_info[i].name, name) == 0)
			return i;
	return -1;
}
