"""The benchmark suite: kiln against ONNX Runtime and PyTorch eager, in one
run, round by round (docs/benchmarks.md says what each number means).

usage: /usr/bin/python3 bench/suite.py [--build DIR] [--out DIR]
       [--rounds R] [--threads 1,2] [--models LIST] [--no-train]
       [--train-rounds R] [--quick]

Steps, in order: build the bench tools (ninja in --build), check that
PyTorch runs on OpenBLAS, find or install ONNX Runtime's library, make
the models (ONNX files and kiln executables), count their flops, then
for each round and each model and thread count run kiln's executable,
ort_bench and torch_bench.py in turn, each under peakrss; the machine's
peak (peak_flops) is measured before the first round and after each.
Then, unless --no-train, one epoch of Fashion-MNIST training of lenet
and mlp with kiln's trainer and torch_train.py, alternating.  Writes
OUT/results.json (everything) and OUT/results.md (the tables), and
prints the tables.  A tool that fails on one model is recorded as an
error and the rest goes on; the exit status is 1 only if nothing at all
could be measured (2 for a usage error or a missing prerequisite).
"""
import argparse
import datetime
import json
import math
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import time

BENCH = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCH)
sys.path.insert(0, BENCH)
import flops  # noqa: E402  (bench/flops.py, found through the line above)

# Debian's python3-torch is installed for the system python only.
PYTHON = '/usr/bin/python3'
MODELS = ['mlp', 'lenet', 'lstm', 'resnet18', 'mobilenet_v2', 'squeezenet1_1']
# models written in .kiln; the others come from torchvision through
# scripts/gen-real-models.py as ONNX
KILN_SOURCES = {'mlp': 'examples/mlp.kiln', 'lenet': 'bench/models/lenet.kiln',
                'lstm': 'bench/models/lstm.kiln'}
TRAIN_MODELS = ['lenet', 'mlp']
TOOLS = ['kiln', 'ort', 'torch']
TOOL_NAMES = {'kiln': 'kiln', 'ort': 'ONNX Runtime', 'torch': 'PyTorch'}
BENCH_TOOLS = ['ort_bench', 'peakrss', 'peak_flops']
ORT_LIB_DIR = 'ort/node_modules/onnxruntime-node/bin/napi-v6/linux/x64'
DATA = '/usr/share/datasets/fashion-mnist'
OPENBLAS_PKG = 'libopenblas0-pthread'
BLAS_ALTERNATIVE = 'libblas.so.3-x86_64-linux-gnu'
TIMEOUT = 600          # seconds for any one command, then it is an error

# Loads torch in a fresh python, runs a matrix product and lists the BLAS
# and LAPACK libraries mapped into the process: what torch really uses,
# whatever the alternatives say.
BLAS_PROBE = r'''
import json, torch
a = torch.randn(256, 256)
(a @ a).sum()
libs = sorted({l.split()[-1] for l in open("/proc/self/maps")
               if l.split()[-1].startswith("/") and "blas" in l.split()[-1]})
try:
    import torchvision
    tv = torchvision.__version__
except ImportError:
    tv = None
print(json.dumps({"torch": torch.__version__, "torchvision": tv, "blas": libs}))
'''


class Stop(Exception):
    """A missing prerequisite: the suite cannot go on.  Its message says
    what to do."""


def log(msg):
    print(f'suite: {msg}', file=sys.stderr, flush=True)


def run(cmd, env=None, timeout=TIMEOUT, cwd=None):
    """Runs cmd; returns (status, stdout, stderr).  A command that cannot
    start or times out gives status -1 and says why in stderr."""
    try:
        p = subprocess.run([str(c) for c in cmd], env=env, cwd=cwd,
                           capture_output=True, text=True, timeout=timeout)
        return p.returncode, p.stdout, p.stderr
    except FileNotFoundError as e:
        return -1, '', f'cannot run {cmd[0]}: {e.strerror}'
    except subprocess.TimeoutExpired:
        return -1, '', f'{os.path.basename(str(cmd[0]))}: timed out after {timeout} s'


def failure(status, out, err):
    """A one-line reason for a failed command: its last line of output."""
    lines = [ln for ln in (err + '\n' + out).splitlines() if ln.strip()
             and not ln.startswith('peakrss:')]
    return f'exit {status}: {lines[-1][:300] if lines else "no output"}'


def env_threads(threads, extra=None):
    """The environment of a timed run: every library's thread count set to
    the run's, so none starts a pool of its own size."""
    env = dict(os.environ)
    for k in ('KILN_NUM_THREADS', 'OMP_NUM_THREADS', 'OPENBLAS_NUM_THREADS',
              'MKL_NUM_THREADS'):
        env[k] = str(threads)
    env.update(extra or {})
    return env


# ---- set-up -----------------------------------------------------------

def build_tools(build):
    """ninja for the bench tools; returns {tool: path or None}."""
    paths = {}
    for t in BENCH_TOOLS:
        status, out, err = run(['ninja', '-C', build, f'bench/{t}'])
        path = os.path.join(build, 'bench', t)
        if status == 0 and os.access(path, os.X_OK):
            paths[t] = path
        else:
            log(f'building bench/{t} failed ({failure(status, out, err)})')
            paths[t] = None
    return paths


def probe_torch():
    status, out, err = run([PYTHON, '-c', BLAS_PROBE], timeout=120)
    if status != 0:
        return None, failure(status, out, err)
    return json.loads(out.strip().splitlines()[-1]), None


def check_blas():
    """Makes sure torch runs on OpenBLAS (installing it when root); returns
    the probe's {"torch", "torchvision", "blas"} or {"error"} when torch
    itself is missing (the torch columns then show errors)."""
    info, err = probe_torch()
    if info is None:
        log(f'PyTorch does not load: {err}')
        return {'error': f'PyTorch does not load ({err}); install it with '
                         'apt-get install python3-torch python3-torchvision'}
    if any('openblas' in p for p in info['blas']):
        return info
    log(f'PyTorch loads {", ".join(info["blas"]) or "no BLAS"}, not OpenBLAS')
    cmd = ['apt-get', 'install', '-y', OPENBLAS_PKG]
    if os.geteuid() != 0:
        raise Stop('PyTorch must run on OpenBLAS, not the reference BLAS; '
                   f'run: sudo {" ".join(cmd)}')
    env = dict(os.environ, DEBIAN_FRONTEND='noninteractive')
    log(' '.join(cmd))
    status, out, err = run(cmd, env=env)
    if status != 0:
        # a stale package list is the usual cause
        run(['apt-get', 'update'], env=env)
        status, out, err = run(cmd, env=env)
    if status != 0:
        raise Stop(f'{" ".join(cmd)} failed ({failure(status, out, err)})')
    info, err = probe_torch()
    if info is None or not any('openblas' in p for p in info['blas']):
        raise Stop(f'{OPENBLAS_PKG} is installed but PyTorch still loads '
                   f'{info and info["blas"]}; run: update-alternatives '
                   f'--auto {BLAS_ALTERNATIVE}')
    return info


def find_ort(out):
    """libonnxruntime.so.1: $ORT_LIB, else OUT/ort's, else npm installs the
    onnxruntime-node package there (its install script downloads things
    this machine cannot reach, hence --ignore-scripts: the library is in
    the package itself)."""
    lib = os.environ.get('ORT_LIB')
    if lib:
        if not os.path.exists(lib):
            raise Stop(f'ORT_LIB={lib} does not exist')
        return lib
    lib = os.path.join(out, ORT_LIB_DIR, 'libonnxruntime.so.1')
    if not os.path.exists(lib):
        prefix = os.path.join(out, 'ort')
        os.makedirs(prefix, exist_ok=True)
        cmd = ['npm', 'install', '--ignore-scripts', '--no-audit', '--no-fund',
               '--prefix', prefix, 'onnxruntime-node']
        log(' '.join(cmd))
        status, o, e = run(cmd)
        if status != 0 or not os.path.exists(lib):
            log(f'npm install failed ({failure(status, o, e)})')
            return None
    return lib


def ort_package_version(lib):
    """The onnxruntime-node version from its package.json, if lib is in one."""
    d = os.path.dirname(lib)
    for _ in range(6):
        p = os.path.join(d, 'package.json')
        if os.path.exists(p):
            with open(p) as f:
                return json.load(f).get('version')
        d = os.path.dirname(d)
    return None


def make_models(kiln, out, names):
    """ONNX files and kiln executables; returns {name: info}, each info with
    "onnx", "exe", sizes and "errors"."""
    mdir = os.path.join(out, 'models')
    edir = os.path.join(out, 'exe')
    os.makedirs(edir, exist_ok=True)
    info = {n: {'errors': []} for n in names}
    missing = [n for n in names if n not in KILN_SOURCES and not
               os.path.exists(os.path.join(mdir, n, 'model.onnx'))]
    if missing:
        log(f'exporting {", ".join(missing)} from torchvision')
        status, o, e = run([PYTHON, os.path.join(ROOT, 'scripts',
                                                 'gen-real-models.py'),
                            mdir] + missing, timeout=1800)
        if status != 0:
            log(f'gen-real-models.py failed ({failure(status, o, e)})')
    for n in names:
        m = info[n]
        onnx_path = os.path.join(mdir, n, 'model.onnx')
        src = os.path.join(ROOT, KILN_SOURCES[n]) if n in KILN_SOURCES else onnx_path
        m['source'] = os.path.relpath(src, ROOT) if n in KILN_SOURCES else onnx_path
        if n in KILN_SOURCES:
            os.makedirs(os.path.dirname(onnx_path), exist_ok=True)
            status, o, e = run([kiln, 'export', src, '-o', onnx_path])
            if status != 0:
                m['errors'].append(f'kiln export: {failure(status, o, e)}')
        if os.path.exists(onnx_path):
            m['onnx'] = onnx_path
            m['flops'] = count_flops(onnx_path, m)
        elif n not in KILN_SOURCES:
            m['errors'].append('no ONNX file (gen-real-models.py failed)')
        exe = os.path.join(edir, n)
        t0 = time.monotonic()
        status, o, e = run([kiln, 'build', src, '-o', exe]) \
            if os.path.exists(src) else (-1, '', f'{src} is missing')
        if status == 0:
            m['exe'] = exe
            m['build_seconds'] = round(time.monotonic() - t0, 2)
            m['exe_bytes'], m['exe_stripped_bytes'] = exe_sizes(exe)
            m['kiln_inputs'] = kiln_inputs(exe, m)
        else:
            m['errors'].append(f'kiln build: {failure(status, o, e)}')
    return info


def kiln_inputs(exe, m):
    """--input options giving each f32 input of the executable uniform
    values in [-1, 1), as ort_bench fills its inputs (without them
    --bench would run on zeros)."""
    import numpy as np
    status, o, e = run([exe, '--describe'])
    if status != 0:
        m['errors'].append(f'--describe: {failure(status, o, e)}')
        return []
    args = []
    rng = np.random.default_rng(1)
    for x in json.loads(o)['inputs']:
        if x['dtype'] != 'f32':
            continue
        path = f'{exe}.{x["name"]}.npy'
        np.save(path, rng.uniform(-1, 1, x['shape']).astype(np.float32))
        args += ['--input', f'{x["name"]}={path}']
    return args


def count_flops(path, m):
    try:
        c = flops.count(path)
    except Exception as e:     # any failure of onnx's loader or inference
        m['errors'].append(f'flops: {e}')
        return None
    m['flops_by_op'] = c['by_op']
    if c['errors']:
        m['errors'] += [f'flops: {e}' for e in c['errors']]
        return None
    return c['flops']


def exe_sizes(exe):
    """(bytes, bytes once stripped of symbols and debug information)."""
    stripped = exe + '.stripped'
    status, _, _ = run(['strip', '-o', stripped, exe])
    size = os.path.getsize(stripped) if status == 0 else None
    if os.path.exists(stripped):
        os.remove(stripped)
    return os.path.getsize(exe), size


# ---- timing -----------------------------------------------------------

KILN_BENCH = re.compile(r'min ([0-9.]+) ms, median ([0-9.]+) ms over (\d+) runs')


def parse_result(tool, out):
    """{"min_ms", "median_ms", "runs", ...} from a tool's stdout, or None."""
    if tool == 'kiln':
        m = KILN_BENCH.search(out)
        return m and {'min_ms': float(m[1]), 'median_ms': float(m[2]),
                      'runs': int(m[3])}
    for line in reversed(out.splitlines()):
        if line.startswith('{'):
            try:
                return json.loads(line)
            except ValueError:
                return None
    return None


def parse_rss(err):
    m = re.search(r'^peakrss: (\d+) KiB', err, re.M)
    return int(m[1]) if m else None


class Runner:
    """How to run each tool on a model, with its paths and options."""

    def __init__(self, tools, ort_lib):
        self.tools = tools
        self.ort_lib = ort_lib

    def command(self, tool, name, m, threads, runs, warmup):
        """The command line, or a reason why there is none."""
        if tool == 'kiln':
            if 'exe' not in m:
                return None, 'no kiln executable'
            return [m['exe'], '--bench', runs, '--threads', threads] + \
                m['kiln_inputs'], None
        if tool == 'ort':
            if not self.tools['ort_bench'] or not self.ort_lib:
                return None, ('no ort_bench' if not self.tools['ort_bench']
                              else 'no libonnxruntime.so.1')
            if 'onnx' not in m:
                return None, 'no ONNX file'
            return [self.tools['ort_bench'], m['onnx'], '--threads', threads,
                    '--runs', runs, '--warmup', warmup,
                    '--lib', self.ort_lib], None
        return [PYTHON, os.path.join(BENCH, 'torch_bench.py'), '--model', name,
                '--threads', threads, '--runs', runs, '--warmup', warmup], None

    def measure(self, tool, name, m, threads, runs, warmup, rss=True):
        """One measurement: {"min_ms", "median_ms", "runs", "rss_kib", ...}
        or {"error"}."""
        cmd, why = self.command(tool, name, m, threads, runs, warmup)
        if cmd is None:
            return {'error': why}
        if rss and self.tools['peakrss']:
            cmd = [self.tools['peakrss']] + cmd
        status, out, err = run(cmd, env=env_threads(threads))
        r = parse_result(tool, out) if status == 0 else None
        if r is None:
            return {'error': failure(status, out, err) if status else
                    f'unexpected output: {out.strip()[:200]!r}'}
        r['rss_kib'] = parse_rss(err)
        return r


def calibrate(runner, name, m, threads, target_s, min_runs):
    """Runs per measurement so that one takes about target_s, from a short
    run; returns {(tool, threads): (runs, warmup), or the error of the
    short run}."""
    plan = {}
    for t in threads:
        for tool in TOOLS:
            r = runner.measure(tool, name, m, t, 3, 1, rss=False)
            if 'error' in r:
                plan[tool, t] = r['error']
                log(f'{name} {tool} {t}T: {r["error"]}')
                continue
            runs = math.ceil(target_s * 1000 / max(r['median_ms'], 1e-4))
            runs = max(min_runs, min(runs, 1000000))
            # kiln's --bench warms up once; the others get a tenth of
            # their runs (allocations and first-call set-up happen there)
            plan[tool, t] = runs, max(1, min(runs // 10, 100))
    return plan


def peak(tools, threads):
    """{threads: GFLOP/s} from peak_flops, or {} without it."""
    if not tools['peak_flops']:
        return {}
    res = {}
    for t in threads:
        status, out, err = run([tools['peak_flops'], '--threads', t])
        r = parse_result('peak', out) if status == 0 else None
        if r:
            res[t] = r
        else:
            log(f'peak_flops --threads {t}: {failure(status, out, err)}')
    return res


def rounds(runner, models, threads, plans, nrounds, peaks):
    """The interleaved rounds; returns {name: {threads: {tool: [result per
    round]}}}.  Within a round the tools run one after the other for each
    model and thread count, so all three see the machine in the same
    state; their order rotates from round to round so that none is always
    first after another's run."""
    res = {n: {t: {tool: [] for tool in TOOLS} for t in threads} for n in models}
    for r in range(nrounds):
        order = TOOLS[r % 3:] + TOOLS[:r % 3]
        log(f'round {r + 1}/{nrounds} ({", ".join(order)})')
        for n in models:
            for t in threads:
                for tool in order:
                    plan = plans[n][tool, t]
                    if isinstance(plan, str):
                        res[n][t][tool].append({'error': plan})
                        continue
                    x = runner.measure(tool, n, models[n], t, *plan)
                    x['round'] = r + 1
                    res[n][t][tool].append(x)
                    log(f'  {n} {t}T {tool}: ' + (x['error'] if 'error' in x
                        else f'{x["median_ms"]:.4g} ms'))
        for t, p in peak(runner.tools, threads).items():
            peaks[t].append(p['gflops'])
    return res


def summarize(per_round):
    """Median over the rounds of each round's median, and the rest."""
    ok = [x for x in per_round if 'error' not in x]
    if not ok:
        errs = [x['error'] for x in per_round]
        return {'error': errs[-1] if errs else 'not run'}
    meds = [x['median_ms'] for x in ok]
    rss = [x['rss_kib'] for x in ok if x.get('rss_kib')]
    s = {'median_ms': statistics.median(meds), 'min_ms': min(x['min_ms'] for x in ok),
         'round_medians_ms': meds, 'runs_per_round': ok[0]['runs'],
         'rounds_ok': len(ok), 'rounds_failed': len(per_round) - len(ok),
         'rss_mib': statistics.median(rss) / 1024 if rss else None}
    for k in ('ort_version', 'torch_version'):
        if k in ok[0]:
            s[k] = ok[0][k]
    return s


def ratio(a, b):
    return a / b if a is not None and b else None


def derive(name, m, t, tools, peak_t):
    """A row of the latency table: the tools' summaries and the ratios."""
    k, o, p = (tools.get(x, {}) for x in TOOLS)
    row = {'model': name, 'threads': t, 'kiln': k, 'ort': o, 'torch': p,
           'kiln_ort': ratio(k.get('median_ms'), o.get('median_ms')),
           'kiln_torch': ratio(k.get('median_ms'), p.get('median_ms')),
           'rss_kiln_ort': ratio(k.get('rss_mib'), o.get('rss_mib'))}
    f = m.get('flops')
    for tool, s in zip(TOOLS, (k, o, p)):
        if f and s.get('median_ms'):
            s['gflops'] = f / (s['median_ms'] * 1e6)
            if peak_t:
                s['percent_of_peak'] = 100 * s['gflops'] / peak_t
    return row


# ---- training ---------------------------------------------------------

def read_log(path, key):
    """The last JSON line of a trainer's --log that has key."""
    try:
        with open(path) as f:
            lines = [json.loads(ln) for ln in f if ln.strip()]
    except (OSError, ValueError):
        return None
    hits = [x for x in lines if key in x]
    return hits[-1] if hits else None


def kiln_train(trainer, batch, work, seed):
    """One epoch with kiln's trainer on the whole data: the time of its
    training steps alone (the log's train_seconds, as torch_train.py
    measures) and the test accuracy it reports after the epoch."""
    lg, w = (os.path.join(work, f) for f in ('train.jsonl', 'weights.safetensors'))
    if os.path.exists(lg):
        os.remove(lg)
    status, o, e = run([trainer, '--data', DATA, '--epochs', 1, '--threads', 1,
                        '--quiet', '--seed', seed, '--log', lg, '--save', w],
                       env=env_threads(1))
    epoch = read_log(lg, 'epoch') if status == 0 else None
    if not epoch or 'train_seconds' not in epoch:
        return {'error': failure(status, o, e)}
    samples = 60000 // batch * batch
    return {'seconds': epoch['train_seconds'],
            'samples_per_s': samples / epoch['train_seconds'],
            'train_loss': epoch.get('loss'),
            'test_accuracy': epoch.get('test_accuracy')}


def torch_train(name, data, seed):
    status, o, e = run([PYTHON, os.path.join(BENCH, 'torch_train.py'), '--model',
                        name, '--threads', 1, '--epochs', 1, '--data', data,
                        '--seed', seed], env=env_threads(1))
    r = parse_result('torch', o) if status == 0 else None
    return r or {'error': failure(status, o, e)}


def training(kiln, out, names, nrounds):
    """{name: {"kiln": summary, "torch": summary, "ratio"}}: nrounds of
    one epoch each, the two alternating which goes first, seed = round."""
    if not os.path.exists(os.path.join(DATA, 'train-images-idx3-ubyte.gz')):
        err = f'{DATA} is missing (apt-get install dataset-fashion-mnist)'
        return {n: {'error': err} for n in names}
    res = {}
    for n in names:
        trainer = os.path.join(out, 'exe', f'{n}-trainer')
        status, o, e = run([kiln, 'build', os.path.join(ROOT, KILN_SOURCES[n]),
                            '--train', '-o', trainer])
        if status != 0:
            res[n] = {'error': f'kiln build --train: {failure(status, o, e)}'}
            continue
        _, o, _ = run([trainer, '--help'])
        m = re.search(r'compiled for batch (\d+)', o)
        batch = int(m[1]) if m else 64
        work = os.path.join(out, 'train', n)
        os.makedirs(work, exist_ok=True)
        runs = {'kiln': [], 'torch': []}
        for r in range(nrounds):
            for tool in (('kiln', 'torch') if r % 2 == 0 else ('torch', 'kiln')):
                x = (kiln_train(trainer, batch, work, r)
                     if tool == 'kiln' else torch_train(n, DATA, r))
                x['round'] = r + 1
                runs[tool].append(x)
                log(f'  train {n} {tool}: ' + (x['error'] if 'error' in x else
                    f'{x["seconds"]:.1f} s, test accuracy {x["test_accuracy"]}'))
        res[n] = {'batch': batch, 'rounds': runs}
        for tool in ('kiln', 'torch'):
            res[n][tool] = summarize_train(runs[tool])
        res[n]['kiln_torch'] = ratio(res[n]['kiln'].get('seconds'),
                                     res[n]['torch'].get('seconds'))
    return res


def summarize_train(xs):
    ok = [x for x in xs if 'error' not in x]
    if not ok:
        return {'error': xs[-1]['error'] if xs else 'not run'}
    accs = [x['test_accuracy'] for x in ok if x.get('test_accuracy') is not None]
    return {'seconds': statistics.median(x['seconds'] for x in ok),
            'samples_per_s': statistics.median(x['samples_per_s'] for x in ok),
            'test_accuracy': statistics.median(accs) if accs else None,
            'rounds_ok': len(ok)}


# ---- targets and tables -------------------------------------------------

def targets(rows, train, models):
    """The issue's targets: [(target, measured, verdict)]."""
    by = {(r['model'], r['threads']): r for r in rows}
    out = []

    def check(what, value, ok, fmt):
        out.append((what, fmt(value) if value is not None else 'not measured',
                    'not measured' if value is None else
                    'met' if ok(value) else 'NOT met'))

    for n in ('resnet18', 'mobilenet_v2', 'squeezenet1_1'):
        for t in (1, 2):
            if n in models:
                r = by.get((n, t), {})
                check(f'{n}, {t} thread{"s" * (t > 1)}: kiln/ORT <= 1.0',
                      r.get('kiln_ort'), lambda v: v <= 1.0, lambda v: f'{v:.2f}')
    for n in ('mlp', 'lenet'):
        if n in models:
            check(f'{n}, 1 thread: kiln/ORT <= 0.33',
                  by.get((n, 1), {}).get('kiln_ort'), lambda v: v <= 0.33,
                  lambda v: f'{v:.2f}')
    if 'resnet18' in models:
        check('resnet18, 1 thread: kiln >= 70% of single-core peak',
              by.get(('resnet18', 1), {}).get('kiln', {}).get('percent_of_peak'),
              lambda v: v >= 70, lambda v: f'{v:.1f}%')
    lt = train.get('lenet') if train else None
    if lt is not None:
        k, p = lt.get('kiln', {}), lt.get('torch', {})
        both = (lt.get('kiln_torch'), k.get('test_accuracy'), p.get('test_accuracy'))
        check('lenet training epoch, 1 thread: kiln/PyTorch <= 0.5, test '
              'accuracy >= PyTorch\'s', None if None in both else both,
              lambda v: v[0] <= 0.5 and v[1] >= v[2],
              lambda v: f'{v[0]:.2f}, accuracy {v[1]:.4f} vs {v[2]:.4f}')
    for n in models:
        rs = [by[n, t]['rss_kiln_ort'] for t in sorted({r['threads'] for r in rows})
              if by.get((n, t), {}).get('rss_kiln_ort') is not None]
        check(f'{n}: peak RSS kiln <= 0.5x ORT (worst thread count)',
              max(rs) if rs else None, lambda v: v <= 0.5, lambda v: f'{v:.2f}x')
    return out


def fmt_ms(s):
    if 'error' in s:
        return 'error'
    v = s['median_ms']
    if v >= 100:
        return f'{v:.0f}'
    return f'{v:.3g}' if v >= 1 else f'{v:.3f}' if v >= 0.01 else f'{v:.4f}'


def fmt_num(v, f='{:.2f}'):
    return f.format(v) if v is not None else '-'


def fmt_flops(f):
    return f'{f / 1e9:.3g} G' if f >= 1e9 else f'{f / 1e6:.3g} M'


def fmt_size(b):
    if b is None:
        return '-'
    return f'{b / 1048576:.1f} MiB' if b >= 1048576 else f'{b / 1024:.0f} KiB'


def table(header, rows):
    lines = ['| ' + ' | '.join(header) + ' |',
             '|' + '|'.join('---' for _ in header) + '|']
    lines += ['| ' + ' | '.join(str(c) for c in r) + ' |' for r in rows]
    return '\n'.join(lines)


def latency_table(rows, models):
    out = []
    for r in rows:
        m = models[r['model']]
        k = r['kiln']
        rss = (f'{fmt_num(k.get("rss_mib"), "{:.1f}")} / '
               f'{fmt_num(r["ort"].get("rss_mib"), "{:.1f}")}')
        size = (f'{fmt_size(m.get("exe_bytes"))} '
                f'({fmt_size(m.get("exe_stripped_bytes"))} stripped)'
                if m.get('exe_bytes') else 'error')
        out.append([r['model'], r['threads'], fmt_ms(k), fmt_ms(r['ort']),
                    fmt_ms(r['torch']), fmt_num(r['kiln_ort']),
                    fmt_num(r['kiln_torch']), fmt_num(k.get('gflops'), '{:.1f}'),
                    fmt_num(k.get('percent_of_peak'), '{:.1f}%'), rss, size])
    return table(['model', 'threads', 'kiln ms', 'ORT ms', 'PyTorch ms',
                  'kiln/ORT', 'kiln/PyTorch', 'kiln GFLOP/s', '% of peak',
                  'peak RSS kiln / ORT (MiB)', 'exe size'], out)


def train_table(train):
    out = []
    for n, r in train.items():
        if 'error' in r:
            out.append([n, 'error', '-', '-', '-', '-', '-', '-'])
            continue
        k, p = r['kiln'], r['torch']
        out.append([n, fmt_num(k.get('seconds'), '{:.1f}'),
                    fmt_num(p.get('seconds'), '{:.1f}'), fmt_num(r['kiln_torch']),
                    fmt_num(k.get('samples_per_s'), '{:.0f}'),
                    fmt_num(p.get('samples_per_s'), '{:.0f}'),
                    fmt_num(k.get('test_accuracy'), '{:.4f}'),
                    fmt_num(p.get('test_accuracy'), '{:.4f}')])
    return table(['model', 'kiln s', 'PyTorch s', 'kiln/PyTorch',
                  'kiln samples/s', 'PyTorch samples/s', 'kiln test accuracy',
                  'PyTorch test accuracy'], out)


def errors_list(res):
    out = []
    for n, m in res['models'].items():
        out += [f'- {n}: {e}' for e in m['errors']]
    for r in res['latency']:
        for tool in TOOLS:
            if 'error' in r[tool]:
                out.append(f'- {r["model"]}, {plural(r["threads"], "thread")}, '
                           f'{TOOL_NAMES[tool]}: {r[tool]["error"]}')
    for n, r in (res.get('training') or {}).items():
        if 'error' in r:
            out.append(f'- training {n}: {r["error"]}')
        for tool in ('kiln', 'torch'):
            if 'error' in r.get(tool, {}):
                out.append(f'- training {n}, {TOOL_NAMES[tool]}: {r[tool]["error"]}')
    return out


def plural(n, word):
    return f'{n} {word}{"s" * (n != 1)}'


def markdown(res):
    mc = res['machine']
    v = res['versions']
    peak_s = ', '.join(f'{t} thread{"s" * (int(t) > 1)} {p:.0f} GFLOP/s'
                       for t, p in res['peak_gflops'].items()) or 'not measured'
    parts = [
        f'Benchmarks of {res["date"]} on {mc["cpu"]} ({mc["cores"]} cores, '
        f'{mc["isa"]}), kiln {v.get("kiln")} ({v.get("commit") or "?"}), '
        f'ONNX Runtime {v.get("onnxruntime")}, PyTorch {v.get("torch")} '
        f'(BLAS: {v.get("blas")}).  Machine peak (peak_flops): {peak_s}.',
        '', '### Inference latency, batch 1', '',
        latency_table(res['latency'], res['models']), '',
        f'Each latency is the median over {plural(res["options"]["rounds"], "round")} '
        'of each round\'s median.  FLOPs of one inference (2 per '
        'multiply-add of Conv, Gemm, MatMul, LSTM): ' + ', '.join(
            f'{n} {fmt_flops(m["flops"])}' for n, m in res['models'].items()
            if m.get('flops')) + '.']
    if 'lstm' in res['models']:
        parts[-1] += ('  ONNX Runtime runs lstm as kiln exports it, its '
                      'recurrence unrolled into Gemm and elementwise ops; '
                      'PyTorch runs nn.LSTM.')
    if res.get('training'):
        parts += ['', '### Training: one epoch of Fashion-MNIST, 1 thread', '',
                  train_table(res['training']), '',
                  f'The median over {plural(res["options"]["train_rounds"], "round")} '
                  '(seed = round); seconds are the training steps only, '
                  'without loading the data or evaluating.']
    parts += ['', '### Targets', '',
              table(['target', 'measured', ''], res['targets'])]
    errs = errors_list(res)
    if errs:
        parts += ['', '### Errors', ''] + errs
    return '\n'.join(parts) + '\n'


# ---- the run ----------------------------------------------------------

def machine():
    _, out, _ = run(['lscpu'])
    name = re.search(r'^Model name:\s*(.+)$', out, re.M)
    flags = re.search(r'^Flags:\s*(.+)$', out, re.M)
    fl = flags[1].split() if flags else []
    isa = 'avx512' if 'avx512f' in fl else 'avx2' if 'avx2' in fl else 'other'
    return {'cpu': name[1].strip() if name else platform.processor(),
            'cores': os.cpu_count(), 'isa': isa, 'kernel': platform.release()}


def commit():
    """The checked-out commit, read from .git without running git."""
    try:
        with open(os.path.join(ROOT, '.git', 'HEAD')) as f:
            head = f.read().strip()
        if not head.startswith('ref: '):
            return head[:12]
        ref = head[5:]
        p = os.path.join(ROOT, '.git', ref)
        if os.path.exists(p):
            with open(p) as f:
                return f.read().strip()[:12]
        with open(os.path.join(ROOT, '.git', 'packed-refs')) as f:
            for ln in f:
                if ln.rstrip().endswith(' ' + ref):
                    return ln.split()[0][:12]
    except OSError:
        pass
    return None


def blas_name(paths, openblas_version):
    """OpenBLAS and its package's version, or the libraries' names."""
    if any('openblas' in p for p in paths):
        return f'OpenBLAS {openblas_version or "?"} ({OPENBLAS_PKG})'
    return ', '.join(os.path.basename(p) for p in paths) or None


def versions(kiln, torch_info, ort_lib, latency):
    _, out, _ = run([kiln, '--version'])
    _, cc, _ = run(['cc', '--version'])
    ort = next((r['ort']['ort_version'] for r in latency
                if r['ort'].get('ort_version')), None)
    _, pkg, _ = run(['dpkg-query', '-W', '-f', '${Version}', OPENBLAS_PKG])
    blas = torch_info.get('blas') or []
    return {'kiln': out.strip().split()[-1] if out.strip() else None,
            'commit': commit(), 'cc': cc.splitlines()[0] if cc else None,
            'onnxruntime': ort or (ort_lib and ort_package_version(ort_lib)),
            'onnxruntime_lib': ort_lib, 'torch': torch_info.get('torch'),
            'torchvision': torch_info.get('torchvision'),
            'blas': blas_name(blas, pkg.strip()),
            'blas_paths': blas,
            'python': platform.python_version()}


def options():
    p = argparse.ArgumentParser(
        description='kiln against ONNX Runtime and PyTorch, interleaved '
                    '(docs/benchmarks.md)')
    p.add_argument('--build', default='build',
                   help='meson build directory; kiln is BUILD/tools/kiln '
                        '(default: build)')
    p.add_argument('--out', default='bench-out',
                   help='where models, executables and results go '
                        '(default: bench-out)')
    p.add_argument('--rounds', type=int, help='rounds (default 5; --quick: 1)')
    p.add_argument('--threads', default='1,2',
                   help='thread counts, comma-separated (default: 1,2)')
    p.add_argument('--models', default=','.join(MODELS),
                   help='models, comma-separated (default: all six)')
    p.add_argument('--no-train', action='store_true', help='skip training')
    p.add_argument('--train-rounds', type=int,
                   help='training rounds per model (default 3; --quick: 1)')
    p.add_argument('--quick', action='store_true',
                   help='a smoke test: one round of short measurements')
    a = p.parse_args()
    try:
        a.threads = sorted({int(t) for t in a.threads.split(',')})
    except ValueError:
        p.error(f'--threads: expected numbers like 1,2, got {a.threads!r}')
    a.models = [m for m in a.models.split(',') if m]
    bad = [m for m in a.models if m not in MODELS]
    if bad or not a.models or min(a.threads) < 1:
        p.error(f'--models are among {",".join(MODELS)}; --threads positive')
    a.rounds = a.rounds or (1 if a.quick else 5)
    a.train_rounds = a.train_rounds or (1 if a.quick else 3)
    if a.rounds < 1 or a.train_rounds < 1:
        p.error('--rounds and --train-rounds must be positive')
    # one measurement lasts about this long (calibrated per tool)
    a.target_s, a.min_runs = (0.1, 3) if a.quick else (0.75, 5)
    a.build = os.path.abspath(a.build)
    a.out = os.path.abspath(a.out)
    return a


def suite(a):
    kiln = os.path.join(a.build, 'tools', 'kiln')
    if not os.access(kiln, os.X_OK):
        raise Stop(f'{kiln} is missing: build kiln first (meson setup '
                   f'{a.build} && ninja -C {a.build})')
    os.makedirs(a.out, exist_ok=True)
    tools = build_tools(a.build)
    torch_info = check_blas()
    ort_lib = find_ort(a.out)
    log(f'ONNX Runtime: {ort_lib}; PyTorch BLAS: {torch_info.get("blas")}')
    models = make_models(kiln, a.out, a.models)
    peaks = {t: [] for t in a.threads}
    for t, p in peak(tools, a.threads).items():
        peaks[t].append(p['gflops'])
    runner = Runner(tools, ort_lib)
    plans = {}
    for n in a.models:
        log(f'calibrating {n}')
        plans[n] = calibrate(runner, n, models[n], a.threads, a.target_s,
                             a.min_runs)
    per_round = rounds(runner, models, a.threads, plans, a.rounds, peaks)
    # noise only ever slows a peak loop down: its best run is the peak
    peak_best = {t: max(v) for t, v in peaks.items() if v}
    rows = []
    for n in a.models:
        for t in a.threads:
            s = {tool: summarize(per_round[n][t][tool]) for tool in TOOLS}
            rows.append(derive(n, models[n], t, s, peak_best.get(t)))
    train = None
    if not a.no_train:
        names = [n for n in TRAIN_MODELS if n in a.models]
        log(f'training {", ".join(names)}')
        train = training(kiln, a.out, names, a.train_rounds)
    res = {
        'date': datetime.datetime.now().astimezone().isoformat(timespec='seconds'),
        'machine': machine(),
        'versions': versions(kiln, torch_info, ort_lib, rows),
        'options': {'rounds': a.rounds, 'threads': a.threads, 'models': a.models,
                    'train_rounds': None if a.no_train else a.train_rounds,
                    'quick': a.quick, 'seconds_per_measurement': a.target_s},
        'peak_gflops': {str(t): p for t, p in peak_best.items()},
        'peak_gflops_all': {str(t): v for t, v in peaks.items()},
        'models': models,
        'calibration': {n: {f'{tool} {t}': p for (tool, t), p in plans[n].items()}
                        for n in a.models},
        'latency': rows,
        'rounds': {n: {str(t): v for t, v in per_round[n].items()}
                   for n in a.models},
        'training': train,
        'torch_error': torch_info.get('error'),
    }
    res['targets'] = targets(rows, train, a.models)
    with open(os.path.join(a.out, 'results.json'), 'w') as f:
        json.dump(res, f, indent=1)
    md = markdown(res)
    with open(os.path.join(a.out, 'results.md'), 'w') as f:
        f.write(md)
    print(md)
    print(f'(written to {os.path.join(a.out, "results.md")} and results.json)')
    measured = any('median_ms' in r[tool] for r in rows for tool in TOOLS)
    trained = any('seconds' in r.get(tool, {}) for r in (train or {}).values()
                  for tool in ('kiln', 'torch'))
    return 0 if measured or trained else 1


def main():
    a = options()
    try:
        return suite(a)
    except Stop as e:
        print(f'suite: error: {e}', file=sys.stderr)
        return 2


if __name__ == '__main__':
    sys.exit(main())
