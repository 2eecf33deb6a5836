# lit configuration for kiln's tests (MLIR style).  Loaded from the
# lit.site.cfg.py that meson writes into BUILD/tests, which sets
# config.kiln_bindir, config.kiln_srcdir and config.kiln_cc.
import os

import lit.formats

config.name = 'kiln'
config.test_format = lit.formats.ShTest(execute_external=False)
config.suffixes = ['.kir', '.kiln', '.test']
config.excludes = ['Inputs', 'lit.cfg.py', 'corpus']
config.test_source_root = os.path.dirname(os.path.abspath(__file__))
config.test_exec_root = os.path.join(config.kiln_bindir, 'tests')

llvm_bin = '/usr/lib/llvm-19/bin'
config.environment['PATH'] = os.pathsep.join(
    [llvm_bin, os.environ.get('PATH', '/usr/bin:/bin')])
config.environment['FILECHECK_OPTS'] = (
    '-enable-var-scope --allow-unused-prefixes=false')
config.environment['CC'] = config.kiln_cc
for var in ['TMPDIR', 'HOME']:
    if var in os.environ:
        config.environment[var] = os.environ[var]
config.environment['ASAN_OPTIONS'] = 'detect_leaks=1:abort_on_error=0'
config.environment['UBSAN_OPTIONS'] = 'halt_on_error=1:print_stacktrace=1'

# tests/onnx/real_models.test needs PyTorch and torchvision; say so when
# they are missing rather than skipping in silence.
import subprocess
if subprocess.run(['/usr/bin/python3', '-c', 'import torch, torchvision'],
                  capture_output=True).returncode == 0:
    config.available_features.add('torch')
else:
    lit_config.note('onnx/real_models.test is skipped: /usr/bin/python3 '
                    'cannot import torch and torchvision (Debian packages '
                    'python3-torch, python3-torchvision)')

# tests/onnx/conformance.test needs Debian's libonnx-testdata.
if os.path.isdir('/usr/share/libonnx-testdata/data/node'):
    config.available_features.add('onnx-testdata')

# The sanitizer build skips tests/onnx/olevels.test (the plain build runs
# it), to keep the suite's time in bounds.
if '-fsanitize' in config.kiln_cflags:
    config.available_features.add('sanitizers')

import shutil

# The fuzz targets (meson -Dfuzz=true, the sanitizer build of
# scripts/test.sh): tests/fuzz/*.test run each for KILN_FUZZ_SECONDS
# (default 30) with these libFuzzer flags; a finding's input is written
# to the test's %t directory.
if getattr(config, 'kiln_fuzz', False):
    config.available_features.add('fuzz')
    seconds = int(os.environ.get('KILN_FUZZ_SECONDS', '30'))
    config.substitutions.append(('%fuzz_flags', ' '.join([
        '-max_total_time=%d' % seconds, '-timeout=25', '-rss_limit_mb=2560',
        '-close_fd_mask=3', '-print_final_stats=1', '-seed=1'])))

# kiln built with LLVM (llvm-19-dev): the LLVM backend and kiln run's JIT.
if config.kiln_llvm:
    config.available_features.add('llvm')
else:
    lit_config.note('the LLVM backend tests are skipped: kiln was built '
                    'without LLVM (Debian package llvm-19-dev)')

# tests/backends/llvm/cross_run.test runs an AArch64 build under qemu-user.
if shutil.which('aarch64-linux-gnu-gcc') and shutil.which('qemu-aarch64'):
    config.available_features.add('aarch64-cross')
else:
    lit_config.note('backends/llvm/cross_run.test is skipped: it needs '
                    'qemu-aarch64 and aarch64-linux-gnu-gcc (Debian packages '
                    'qemu-user, gcc-aarch64-linux-gnu, libc6-dev-arm64-cross)')

# tests/ir/format_dot_render.test renders with Graphviz's dot.
if shutil.which('dot'):
    config.available_features.add('graphviz')
else:
    lit_config.note('ir/format_dot_render.test is skipped: no Graphviz dot '
                    '(Debian package graphviz)')

# tests/runtime/train_fashion.test reads Debian's dataset-fashion-mnist.
if os.path.isdir('/usr/share/datasets/fashion-mnist'):
    config.available_features.add('fashion-mnist')
else:
    lit_config.note('runtime/train_fashion.test is skipped: no '
                    '/usr/share/datasets/fashion-mnist (Debian package '
                    'dataset-fashion-mnist)')

config.substitutions.append(
    ('%kiln', os.path.join(config.kiln_bindir, 'tools', 'kiln')))
config.substitutions.append(('%bindir', config.kiln_bindir))
config.substitutions.append(('%srcdir', config.kiln_srcdir))
config.substitutions.append(('%python', '/usr/bin/python3'))
# %cc compiles generated code the way kiln does: same compiler and
# sanitizers, the runtime's header and library (zlib for trainers).
config.substitutions.append(('%cc', ' '.join([
    config.kiln_cc, config.kiln_cflags, '-std=c11',
    '-I' + os.path.join(config.kiln_srcdir, 'runtime')])))
config.substitutions.append(('%runtime_lib', os.path.join(
    config.kiln_bindir, 'runtime', 'libkiln_runtime.a') + ' -lz -lm -pthread'))
