"""stats_ok.py LIMIT < stats: checks `kiln build --stats` output, one block
per model (a trainer prints several): the arena is at least the lower
bound, at most LIMIT times it, and at most the naive total."""
import re
import sys


def check(text, limit):
    """Returns one message per model outside the limits (none: all ok)."""
    bad = []
    blocks = re.split(r"^(?=model )", text, flags=re.M)
    blocks = [b for b in blocks if b.startswith("model ")]
    if not blocks:
        return ["no model in the stats"]
    for b in blocks:
        name = b.split(":")[0][len("model "):]
        num = {k: int(re.search(k + r" +(\d+) bytes", b).group(1))
               for k in ("arena", "naive total", "lower bound")}
        print(name, num)
        if not (num["lower bound"] <= num["arena"] <= limit * num["lower bound"]
                and num["arena"] <= num["naive total"]):
            bad.append("%s: arena %d outside [bound %d, %g * bound]"
                       % (name, num["arena"], num["lower bound"], limit))
    return bad


if __name__ == "__main__":
    bad = check(sys.stdin.read(), float(sys.argv[1]))
    sys.exit("\n".join(bad) if bad else 0)
