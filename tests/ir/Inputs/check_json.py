"""check_json.py OUT.json IN.kir: checks kiln ir --format=json against
the canonical .kir text of the same module, read here with a small
parser of its own: the same graphs, inputs, outputs, parameters and
constants, and nodes with the same op, operands, result and type."""
import json
import re
import sys

NAME = r'(?:"(?:[^"\\]|\\.)*"|[A-Za-z0-9_.]+)'


def unquote(s):
    if not s.startswith('"'):
        return s
    return re.sub(r'\\([0-9a-fA-F]{2}|.)',
                  lambda m: chr(int(m.group(1), 16)) if len(m.group(1)) == 2
                  else m.group(1), s[1:-1])


def read_kir(path):
    graphs, g = [], None
    for line in open(path, encoding='utf-8'):
        line = line.strip()
        m = re.match(r'graph @(' + NAME + r')\((.*)\) \{$', line)
        if m:
            ins = re.findall(r'%(' + NAME + r'): (\w+\[[0-9,]*\])', m.group(2))
            g = {'name': unquote(m.group(1)), 'nodes': [], 'globals': {},
                 'inputs': [(unquote(n), t) for n, t in ins]}
            graphs.append(g)
            continue
        m = re.match(r'(param|const) \$(' + NAME + r'): (\S+) =', line)
        if m:
            g['globals'][unquote(m.group(2))] = (m.group(1), m.group(3))
            continue
        m = re.match(r'%(' + NAME + r') = (\w+) ?(.*?)(?: \{.*\})? : (\S+)$',
                     line)
        if m:
            ops = re.findall(r'[%$](' + NAME + r')|(_)', m.group(3))
            g['nodes'].append({
                'op': m.group(2), 'result': unquote(m.group(1)),
                'type': m.group(4),
                'operands': [None if u else unquote(n) for n, u in ops]})
            continue
        m = re.match(r'return (.*)$', line)
        if m:
            g['outputs'] = [unquote(n) for n in
                            re.findall(r'[%$](' + NAME + r')', m.group(1))]
    return graphs


def main():
    got = json.load(open(sys.argv[1]))['graphs']
    want = read_kir(sys.argv[2])
    assert [g['name'] for g in got] == [g['name'] for g in want], \
        'graph names differ'
    nnodes = 0
    for jg, kg in zip(got, want):
        vals = {v['name']: v for v in jg['values']}
        assert jg['inputs'] == [n for n, _ in kg['inputs']], jg['name']
        for n, t in kg['inputs']:
            assert vals[n]['kind'] == 'input' and vals[n]['type'] == t, n
        assert jg['outputs'] == kg['outputs'], (jg['outputs'], kg['outputs'])
        for n, (kind, t) in kg['globals'].items():
            assert vals[n]['kind'] == kind and vals[n]['type'] == t, n
        assert len(jg['nodes']) == len(kg['nodes']), jg['name']
        for jn, kn in zip(jg['nodes'], kg['nodes']):
            for key in ('op', 'result', 'operands'):
                assert jn[key] == kn[key], (key, jn[key], kn[key])
            v = vals[jn['result']]
            assert v['kind'] == 'temp' and v['type'] == kn['type'], v
            shape = [int(d) for d in re.findall(r'\d+', v['type'][3:])]
            dtype = v['type'].split('[')[0]
            assert v['shape'] == shape and v['dtype'] == dtype, v
        nnodes += len(jg['nodes'])
    print('%d graphs, %d nodes: ok' % (len(got), nnodes))


main()
