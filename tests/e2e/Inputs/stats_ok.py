"""stats_ok.py LIMIT < stats: checks `kiln build --stats` output: the arena
is at least the lower bound, at most LIMIT times it, and at most the
naive total."""
import re
import sys

text = sys.stdin.read()
num = {k: int(re.search(k + r" +(\d+) bytes", text).group(1))
       for k in ("arena", "naive total", "lower bound")}
limit = float(sys.argv[1])
print(num)
ok = (num["lower bound"] <= num["arena"] <= limit * num["lower bound"]
      and num["arena"] <= num["naive total"])
sys.exit(0 if ok else "arena outside [bound, %g * bound]" % limit)
