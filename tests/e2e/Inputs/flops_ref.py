"""flops_ref.py LEVEL < stats: checks `kiln build --stats` for
Inputs/flops.kir against the FLOP rules of docs/passes.md worked out by
hand from that file's shapes: a multiply-add is two FLOPs, a bias add
or an elementwise op one per result element, a pooling window one per
tap, softmax four per element, a flatten none.  At -O0 the dead sigmoid
is still there (8 ops of 8); -O2 deletes it and fuses the relu into the
conv2d as its epilogue, whose FLOPs still count (6 of 8)."""
import re
import sys

level = sys.argv[1]
n, c, h, w, o, k = 2, 3, 8, 8, 4, 3
conv = 2 * (n * o * h * w) * (c * k * k) + n * o * h * w   # + bias
relu = n * o * h * w
pool = (n * o * 4 * 4) * (2 * 2)
gemm = 2 * n * 5 * 64 + n * 5                                # + c
sigmoid = n * 5
matmul = 2 * n * 7 * 5
softmax = 4 * n * 7
flops = conv + relu + pool + gemm + matmul + softmax
ops = 6
if level == '-O0':
    flops += sigmoid
    ops += 2
params = 4 * (o * c * k * k + o + 64 * 5 + 5 + 5 * 7)

text = sys.stdin.read()
head = re.search(r'model flops: (\d+) ops at (-O\d), (\d+) before', text)
got = {'ops': int(head.group(1)), 'level': head.group(2),
       'before': int(head.group(3)),
       'flops': int(re.search(r'flops +(\d+)\n', text).group(1)),
       'params': int(re.search(r'parameters +(\d+) bytes', text).group(1))}
want = {'ops': ops, 'level': level, 'before': 8, 'flops': flops,
        'params': params}
print(got)
sys.exit(0 if got == want else 'expected %s' % want)
