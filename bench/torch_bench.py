"""PyTorch eager inference latency for the benchmark suite (bench/suite.py,
docs/benchmarks.md).

usage: torch_bench.py --model NAME --threads T --runs N --warmup W

Builds the model NAME with random weights in eval mode, runs W untimed
calls, then N calls on one batch-1 input under torch.inference_mode(),
each timed with time.perf_counter_ns, and prints one JSON line in
ort_bench's format:
{"min_ms":..,"median_ms":..,"runs":N,"threads":T,"torch_version":".."}

mlp, lenet and lstm are written here to match bench/models/*.kiln and
examples/mlp.kiln layer for layer (their softmax included, as the kiln
executables compute it); resnet18, mobilenet_v2 and squeezenet1_1 are
torchvision's, as scripts/gen-real-models.py exports them to ONNX.
bench/torch_train.py imports build() from here, so each network is
defined once.  Needs Debian's python3-torch (and python3-torchvision for
the last three); run with /usr/bin/python3.
"""
import argparse
import json
import statistics
import sys
import time

import torch
from torch import nn

# name -> the input's shape at batch 1
SHAPES = {
    'mlp': (1, 784),
    'lenet': (1, 1, 28, 28),
    'lstm': (1, 28, 28),
    'resnet18': (1, 3, 224, 224),
    'mobilenet_v2': (1, 3, 224, 224),
    'squeezenet1_1': (1, 3, 224, 224),
}


class MLP(nn.Module):
    """examples/mlp.kiln: 784 -> 256 -> 128 -> 10."""

    def __init__(self):
        super().__init__()
        self.h1 = nn.Linear(784, 256)
        self.h2 = nn.Linear(256, 128)
        self.out = nn.Linear(128, 10)

    def logits(self, x):
        x = torch.relu(self.h1(x))
        x = torch.relu(self.h2(x))
        return self.out(x)

    def forward(self, x):
        return torch.softmax(self.logits(x), dim=1)


class LeNet(nn.Module):
    """bench/models/lenet.kiln: conv 6 5x5 "same", pool, conv 16 5x5
    valid, pool, 400 -> 120 -> 84 -> 10."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(1, 6, 5, padding=2)
        self.c2 = nn.Conv2d(6, 16, 5)
        self.h1 = nn.Linear(400, 120)
        self.h2 = nn.Linear(120, 84)
        self.out = nn.Linear(84, 10)

    def logits(self, x):
        x = nn.functional.max_pool2d(torch.relu(self.c1(x)), 2)
        x = nn.functional.max_pool2d(torch.relu(self.c2(x)), 2)
        x = torch.flatten(x, 1)
        x = torch.relu(self.h1(x))
        x = torch.relu(self.h2(x))
        return self.out(x)

    def forward(self, x):
        return torch.softmax(self.logits(x), dim=1)


class RowLSTM(nn.Module):
    """bench/models/lstm.kiln: an LSTM of 128 units over the 28 rows of
    the image, its last state to a dense layer of 10."""

    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(28, 128, batch_first=True)
        self.out = nn.Linear(128, 10)

    def logits(self, x):
        _, (h, _) = self.lstm(x)
        return self.out(h[-1])

    def forward(self, x):
        return torch.softmax(self.logits(x), dim=1)


def keras_init(model):
    """Initializes the layers as kiln does (docs/language.md, section 10):
    He uniform (bound sqrt(6 / fan_in)) for a layer a relu follows,
    Glorot uniform for the last one, zero biases, so that training starts
    from the same distribution as kiln's trainer."""
    layers = [m for m in model.modules()
              if isinstance(m, (nn.Linear, nn.Conv2d))]
    for k, m in enumerate(layers):
        if k < len(layers) - 1:
            nn.init.kaiming_uniform_(m.weight, nonlinearity='relu')
        else:
            nn.init.xavier_uniform_(m.weight)
        nn.init.zeros_(m.bias)


def build(name):
    """The model NAME with random weights, in eval mode."""
    torch.manual_seed(0)
    if name in ('mlp', 'lenet', 'lstm'):
        model = {'mlp': MLP, 'lenet': LeNet, 'lstm': RowLSTM}[name]()
        if name != 'lstm':
            keras_init(model)
    else:
        import torchvision
        model = getattr(torchvision.models, name)(weights=None)
    return model.eval()


def bench(name, runs, warmup):
    """Per-call latencies in ms: warmup untimed calls, then runs timed."""
    model = build(name)
    x = torch.randn(*SHAPES[name], generator=torch.Generator().manual_seed(1))
    times = []
    with torch.inference_mode():
        for _ in range(warmup):
            model(x)
        for _ in range(runs):
            t0 = time.perf_counter_ns()
            model(x)
            times.append((time.perf_counter_ns() - t0) / 1e6)
    return times


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--model', required=True, choices=sorted(SHAPES))
    p.add_argument('--threads', type=int, required=True)
    p.add_argument('--runs', type=int, required=True)
    p.add_argument('--warmup', type=int, default=10)
    a = p.parse_args()
    if a.threads < 1 or a.runs < 1 or a.warmup < 0:
        p.error('--threads and --runs must be positive, --warmup >= 0')
    torch.set_num_threads(a.threads)
    times = bench(a.model, a.runs, a.warmup)
    print(json.dumps({'min_ms': min(times),
                      'median_ms': statistics.median(times),
                      'runs': a.runs, 'threads': a.threads,
                      'torch_version': torch.__version__}))
    return 0


if __name__ == '__main__':
    sys.exit(main())
