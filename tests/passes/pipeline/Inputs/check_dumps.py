"""check_dumps.py KILN DUMPS FINAL LEVEL: splits the --print-ir-after-all
output DUMPS at its `// ----- IR after NAME -----` lines; checks that
the dumps run from shape to memplan (every level's first and last pass),
that each reads back with `kiln opt --passes=` and prints unchanged, and
that the last equals FINAL, the printed result of LEVEL's pipeline."""
import re
import subprocess
import sys
import tempfile

kiln, dumps, final, level = sys.argv[1:5]
text = open(dumps).read()
parts = re.split(r'^// ----- IR after (\S+) -----\n', text, flags=re.M)
if parts[0].strip():
    sys.exit('text before the first dump: %r' % parts[0][:80])
names, bodies = parts[1::2], parts[2::2]
if not names or names[-1] != 'memplan' or names[0] != 'shape':
    sys.exit('%s: expected dumps from shape to memplan, got %s'
             % (level, names))
for name, body in zip(names, bodies):
    with tempfile.NamedTemporaryFile('w', suffix='.kir') as f:
        f.write(body)
        f.flush()
        p = subprocess.run([kiln, 'opt', '--passes=', f.name],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True)
    if p.returncode != 0:
        sys.exit('dump after %s does not read back:\n%s' % (name, p.stderr))
    if p.stdout != body:
        sys.exit('dump after %s prints differently when read back' % name)
if bodies[-1] != open(final).read():
    sys.exit('the last dump is not the final IR')
print('%d dumps ok: %s' % (len(names), ' '.join(names)))
