"""Data sets for experiments and tests: the embedded default (digits) and real files in standard formats.

Everything is returned as NumPy arrays; batches are drawn by a deterministic function of (seed, step), so a run
resumed from a checkpoint at step k sees exactly the batches an uninterrupted run would.
"""

from __future__ import annotations

import gzip
import os
import struct
from typing import NamedTuple

import numpy as np


class Dataset(NamedTuple):
  x_train: np.ndarray  # float32 images (N, H, W, C) in [0, 1], or features (N, d)
  y_train: np.ndarray  # int32 labels
  x_test: np.ndarray
  y_test: np.ndarray
  num_classes: int


def _split(x, y, test_fraction, seed, num_classes):
  perm = np.random.RandomState(seed).permutation(len(x))
  n_test = int(round(test_fraction * len(x)))
  test, train = perm[:n_test], perm[n_test:]
  return Dataset(x[train], y[train], x[test], y[test], num_classes)


def load_digits(test_fraction: float = 0.2, seed: int = 0) -> Dataset:
  """scikit-learn's bundled 8x8 digits (1,797 images, 10 classes), no download; images (N, 8, 8, 1)."""
  from sklearn.datasets import load_digits as sk_digits
  d = sk_digits()
  x = (d.images / 16.0).astype(np.float32)[..., None]
  return _split(x, d.target.astype(np.int32), test_fraction, seed, 10)


def _read_idx(path):
  opener = gzip.open if path.endswith('.gz') else open
  with opener(path, 'rb') as f:
    magic = f.read(4)
    if magic[:2] != b'\x00\x00' or magic[2] != 0x08:
      raise ValueError(f'{path} is not an unsigned-byte IDX file')
    ndim = magic[3]
    shape = struct.unpack('>' + 'I' * ndim, f.read(4 * ndim))
    return np.frombuffer(f.read(), dtype=np.uint8).reshape(shape)


def _find(data_dir, stem):
  for name in (stem, stem + '.gz'):
    path = os.path.join(data_dir, name)
    if os.path.exists(path):
      return path
  return None


def load_mnist(data_dir: str, test_fraction: float = 0.2, seed: int = 0) -> Dataset:
  """MNIST from IDX files in ``data_dir`` (gzipped or not); images (N, 28, 28, 1) in [0, 1].

  Uses the training split if ``train-images-idx3-ubyte`` is there, else splits the test split (the only one in
  ``../shared/data/mnist``) into train and test parts by ``test_fraction``.
  """
  test_x, test_y = _find(data_dir, 't10k-images-idx3-ubyte'), _find(data_dir, 't10k-labels-idx1-ubyte')
  if test_x is None or test_y is None:
    raise FileNotFoundError(f'no MNIST IDX files (t10k-images-idx3-ubyte[.gz]) in data_dir={data_dir!r}')
  xt = (_read_idx(test_x) / 255.0).astype(np.float32)[..., None]
  yt = _read_idx(test_y).astype(np.int32)
  train_x, train_y = _find(data_dir, 'train-images-idx3-ubyte'), _find(data_dir, 'train-labels-idx1-ubyte')
  if train_x and train_y:
    x = (_read_idx(train_x) / 255.0).astype(np.float32)[..., None]
    return Dataset(x, _read_idx(train_y).astype(np.int32), xt, yt, 10)
  return _split(xt, yt, test_fraction, seed, 10)


def load_images(data_dir: str | None = None, seed: int = 0) -> Dataset:
  """The image classification set of a config: MNIST IDX files from ``data_dir``, or the embedded digits."""
  return load_mnist(data_dir, seed=seed) if data_dir else load_digits(seed=seed)


def load_libsvm(path: str, num_features: int | None = None) -> tuple[np.ndarray, np.ndarray]:
  """A LIBSVM text file (``label idx:val ...``, 1-based indices) as dense float32 X and labels y in {-1, +1}."""
  rows, labels = [], []
  with open(path) as f:
    for line in f:
      parts = line.split()
      if not parts:
        continue
      labels.append(float(parts[0]))
      rows.append([(int(k) - 1, float(v)) for k, v in (p.split(':') for p in parts[1:])])
  d = num_features or 1 + max((i for r in rows for i, _ in r), default=-1)
  x = np.zeros((len(rows), d), np.float32)
  for n, r in enumerate(rows):
    for i, v in r:
      x[n, i] = v
  y = np.asarray(labels)
  classes = np.unique(y)
  if len(classes) != 2:
    raise ValueError(f'{path}: expected binary labels, found {classes}')
  return x, np.where(y == classes.max(), 1.0, -1.0).astype(np.float32)


class CharCorpus(NamedTuple):
  train: np.ndarray  # int32 token ids
  val: np.ndarray
  vocab: str


EMBEDDED_TEXT = ('First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n\n'
                 'First Citizen:\nYou are all resolved rather to die than to famish?\n\nAll:\nResolved. resolved.\n'
                 ) * 40


def load_chars(path: str | None = None, val_fraction: float = 0.1) -> CharCorpus:
  """A character corpus from a plain-text file (tiny Shakespeare), or a small embedded text when ``path`` is None."""
  text = EMBEDDED_TEXT if path is None else open(path, encoding='utf-8').read()
  vocab = ''.join(sorted(set(text)))
  ids = np.frombuffer(text.encode('utf-32-le'), np.uint32)
  lookup = {ord(c): i for i, c in enumerate(vocab)}
  ids = np.vectorize(lookup.__getitem__, otypes=[np.int32])(ids)
  n_val = int(len(ids) * val_fraction)
  return CharCorpus(ids[:-n_val], ids[-n_val:], vocab)


def load_text(data_dir: str | None = None, val_fraction: float = 0.1) -> CharCorpus:
  """The character corpus of a config: ``data_dir`` is a folder holding ``input.txt`` (tiny Shakespeare) or a text
  file; empty or None gives the small embedded text."""
  if not data_dir:
    return load_chars(None, val_fraction)
  path = os.path.join(data_dir, 'input.txt') if os.path.isdir(data_dir) else data_dir
  if not os.path.exists(path):
    raise FileNotFoundError(f'no text at {path!r}: pass a folder with input.txt or a text file as data_dir')
  return load_chars(path, val_fraction)


def batch_indices(n: int, batch_size: int, step: int, seed: int = 0) -> np.ndarray:
  """Indices of the batch at ``step``: a pure function of (seed, step), so resumed runs see the same batches."""
  rng = np.random.default_rng([seed, step])
  return rng.choice(n, size=batch_size, replace=n < batch_size)


def char_batch(ids: np.ndarray, batch_size: int, block: int, step: int, seed: int = 0):
  """(inputs, targets) of shape (batch_size, block): random windows of the corpus, deterministic in (seed, step)."""
  rng = np.random.default_rng([seed, step])
  starts = rng.integers(0, len(ids) - block - 1, size=batch_size)
  idx = starts[:, None] + np.arange(block)
  return ids[idx], ids[idx + 1]


def dirichlet_split(labels: np.ndarray, num_workers: int, alpha: float, seed: int = 0) -> list[np.ndarray]:
  """Index sets per worker with label proportions drawn from Dirichlet(alpha) (alpha -> inf is i.i.d.)."""
  if alpha <= 0:
    raise ValueError(f'alpha must be positive, got {alpha}')
  rng = np.random.default_rng(seed)
  parts: list[list[int]] = [[] for _ in range(num_workers)]
  for c in np.unique(labels):
    idx = rng.permutation(np.flatnonzero(labels == c))
    cuts = (np.cumsum(rng.dirichlet(alpha * np.ones(num_workers))) * len(idx)).astype(int)[:-1]
    for w, chunk in enumerate(np.split(idx, cuts)):
      parts[w].extend(chunk.tolist())
  return [np.asarray(sorted(p), np.int64) for p in parts]
