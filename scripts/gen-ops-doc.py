"""gen-ops-doc.py: renders docs/ops.md from ir/ops.def, the op registry,
so the op reference never drifts from the code.

  /usr/bin/python3 scripts/gen-ops-doc.py          rewrite docs/ops.md
  /usr/bin/python3 scripts/gen-ops-doc.py --check  exit 1 if it is stale
"""
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OP = re.compile(r'^OP\(\s*(\w+),\s*"(\w+)",\s*(\d+),\s*(\d+),\s*(\w+),\s*'
                r'([\w| ]+?),\s*([\w()| ]+?),\s*(\w+),\s*(?:"(\w+)"|NULL)\)')
ATTR = re.compile(r'^ATTR\(\s*(\w+),\s*(\w+),\s*"(\w+)",\s*(\w+),\s*'
                  r'(?:"([^"]*)"|NULL)\)')
TYPES = {"TY_F32": "f32", "TY_ANY": "f32 f64 i64 i32 i8 u8 bool",
         "TY_FLOAT": "f32 f64", "TY_INT": "i64 i32 i8 u8",
         "TY_NUM": "f32 f64 i64 i32 i8 u8", "TY_SIGNED": "f32 f64 i64 i32 i8",
         "TY_BOOL": "bool", "TY_XINT": "i16 u16 u32 u64",
         "TY_UINT": "u8 u16 u32 u64", "TY_HALF": "f16 bf16", "TY_ALL": "any"}
ROLE = re.compile(r'(IN_INDEX|IN_BOOL|IN_LABEL)\((\d+)\)|(\d+)')
ROLES = {"IN_INDEX": "i64/i32", "IN_BOOL": "bool", "IN_LABEL": "i64/i32/i8/u8"}


def types(mask, idx):
    """The types column: the dtype mask, then each index, condition and
    label operand (idx: IN_INDEX(k) | IN_BOOL(k) | IN_LABEL(k) | a plain
    index bit mask)."""
    t = " ".join(TYPES.get(m.strip(), m.strip()) for m in mask.split("|"))
    roles = {}
    for m in ROLE.finditer(idx):
        if m[3]:
            for i in range(32):
                if int(m[3]) >> i & 1:
                    roles[i + 1] = "i64/i32"
        else:
            roles[int(m[2])] = ROLES[m[1]]
    for k in sorted(roles):
        t += f"; operand {k}: {roles[k]}"
    return t


def parse(text):
    """The OP rows in order, each with its attributes and semantics."""
    ops, comment = [], None
    for line in text.splitlines():
        m = OP.match(line)
        if m:
            ops.append({"name": m[2], "min": m[3], "max": m[4],
                        "cls": m[5], "types": types(m[6], m[7]),
                        "shape": m[8], "kernel": m[9], "attrs": [], "doc": []})
            comment = ops[-1]["doc"]
            continue
        m = ATTR.match(line)
        if m:
            ops[-1]["attrs"].append((m[3], m[4], m[5]))
            continue
        if comment is not None and ops:
            t = line.strip()
            if t.startswith("/*") or t.startswith("*"):
                t = t.lstrip("/*").rstrip("*/").strip()
                if t:
                    comment.append(t)
            else:
                comment = None
    return ops


def kernel(name):
    """A kernel family (a name ending in '_') as NAME_<dtype>; none (NULL)
    when the backends generate the op's code."""
    if name is None:
        return "(generated)"
    return name + "<dtype>" if name.endswith("_") else name


def render(ops):
    out = ["# Ops", "",
           "Generated from `ir/ops.def` by `scripts/gen-ops-doc.py`; do not "
           "edit.", "",
           "Every op has one result. Operands share one dtype; *types* "
           "says which, and names any index operand, which is i64 or i32 "
           "instead, any condition operand, which is bool, and any label "
           "operand (class indices), which is i64, i32, i8 or u8. A kernel "
           "ending in `<dtype>` is a family: one kernel per dtype, named "
           "after the op's. An attribute without a default is required.",
           "",
           "| op | operands | types | class | shape rule | kernel |",
           "|---|---|---|---|---|---|"]
    for o in ops:
        arity = o["min"] if o["min"] == o["max"] else f'{o["min"]}-{o["max"]}'
        out.append(f'| [`{o["name"]}`](#{o["name"]}) | {arity} | {o["types"]} '
                   f'| {o["cls"]} | `{o["shape"]}` | `{kernel(o["kernel"])}` |')
    for o in ops:
        out += ["", f'## {o["name"]}', "", "```", *o["doc"], "```"]
        if o["attrs"]:
            out += ["", "| attribute | kind | default |", "|---|---|---|"]
            for name, kind, default in o["attrs"]:
                d = (f"`{default}`" if default else
                     "empty" if default == "" else "required")
                out.append(f"| `{name}` | {kind.lower()} | {d} |")
    return "\n".join(out) + "\n"


def main():
    with open(os.path.join(ROOT, "ir", "ops.def")) as f:
        text = render(parse(f.read()))
    path = os.path.join(ROOT, "docs", "ops.md")
    if "--check" in sys.argv:
        with open(path) as f:
            if f.read() != text:
                sys.exit("docs/ops.md is stale: run scripts/gen-ops-doc.py")
        return
    with open(path, "w") as f:
        f.write(text)


if __name__ == "__main__":
    main()
