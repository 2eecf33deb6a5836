"""PyTorch eager training time for the benchmark suite (bench/suite.py,
docs/benchmarks.md): one epoch over Fashion-MNIST, to compare with kiln's
compiled trainer of the same model.

usage: torch_train.py --model lenet|mlp --threads T --epochs E --data DIR
       [--seed S]

Reads the IDX .gz files of DIR (train-images-idx3-ubyte.gz and the
others, as Debian's dataset-fashion-mnist installs them) with gzip and
numpy, and prepares them as kiln's trainer does (runtime/dataset.c):
pixels as f32 divided by 255, nothing else.  Training follows kiln's
trainer and the .kiln train section: batch 64, Adam with lr 0.001 and
eps 1e-7 (kiln's, Keras's default), cross-entropy from the logits, a
new shuffle each epoch, the last partial batch dropped; the layers are
initialized as kiln initializes them (torch_bench.keras_init).

Prints one JSON line {"seconds":..,"samples_per_s":..,"test_accuracy":..}.
"seconds" covers the training steps only, for all epochs: shuffling,
gathering each batch, forward, backward and the optimizer's step.  Not
timed: Python's start, reading and converting the data, building the
model, and the evaluation on the 10000 test images that gives
"test_accuracy".  samples_per_s is the samples trained on (full batches)
over those seconds.
"""
import argparse
import gzip
import json
import os
import sys
import time

import numpy as np
import torch
from torch import nn

from torch_bench import build

BATCH = 64
LR = 0.001
EPS = 1e-7


def read_idx(path):
    """An IDX file (gzipped) as a numpy array of its shape: magic 0 0 type
    rank, then rank big-endian u32 dims, then the data; only u8 data."""
    with gzip.open(path, 'rb') as f:
        raw = f.read()
    if raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise ValueError(f'{path}: not an IDX file of u8 data')
    rank = raw[3]
    dims = np.frombuffer(raw, dtype='>u4', count=rank, offset=4)
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * rank)
    return data.reshape(tuple(int(d) for d in dims))


def load(data, split, shape):
    """Images as f32 / 255 in the model's input shape (per sample), and
    labels as i64."""
    x = read_idx(os.path.join(data, f'{split}-images-idx3-ubyte.gz'))
    y = read_idx(os.path.join(data, f'{split}-labels-idx1-ubyte.gz'))
    x = torch.from_numpy(x.astype(np.float32) / 255.0)
    return x.reshape((x.shape[0],) + shape), torch.from_numpy(y.astype(np.int64))


def train(model, x, y, epochs, gen):
    """Trains in place; returns (seconds, samples trained on)."""
    opt = torch.optim.Adam(model.parameters(), lr=LR, eps=EPS)
    loss_fn = nn.CrossEntropyLoss()
    steps = x.shape[0] // BATCH
    model.train()
    t0 = time.perf_counter_ns()
    for _ in range(epochs):
        order = torch.randperm(x.shape[0], generator=gen)
        for k in range(steps):
            idx = order[k * BATCH:(k + 1) * BATCH]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model.logits(x[idx]), y[idx])
            loss.backward()
            opt.step()
    secs = (time.perf_counter_ns() - t0) / 1e9
    return secs, epochs * steps * BATCH


def accuracy(model, x, y):
    model.eval()
    correct = 0
    with torch.inference_mode():
        for k in range(0, x.shape[0], 1000):
            pred = model.logits(x[k:k + 1000]).argmax(dim=1)
            correct += int((pred == y[k:k + 1000]).sum())
    return correct / x.shape[0]


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--model', required=True, choices=['lenet', 'mlp'])
    p.add_argument('--threads', type=int, required=True)
    p.add_argument('--epochs', type=int, default=1)
    p.add_argument('--data', required=True)
    p.add_argument('--seed', type=int, default=0)
    a = p.parse_args()
    if a.threads < 1 or a.epochs < 1:
        p.error('--threads and --epochs must be positive')
    torch.set_num_threads(a.threads)
    shape = (784,) if a.model == 'mlp' else (1, 28, 28)
    xtr, ytr = load(a.data, 'train', shape)
    xte, yte = load(a.data, 't10k', shape)
    model = build(a.model)
    secs, samples = train(model, xtr, ytr, a.epochs,
                          torch.Generator().manual_seed(a.seed))
    print(json.dumps({'seconds': round(secs, 3),
                      'samples_per_s': round(samples / secs, 1),
                      'test_accuracy': accuracy(model, xte, yte),
                      'epochs': a.epochs, 'threads': a.threads,
                      'torch_version': torch.__version__}))
    return 0


if __name__ == '__main__':
    sys.exit(main())
