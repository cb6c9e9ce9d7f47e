"""The two coherence experiments: m-coherence through training at several label-noise levels, and the
memorisation of corrupted labels under plain and robust (suppressed) gradient averaging."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from theory.coherence.data import corrupt_labels
from theory.coherence.training import train_with_coherence


def coherence_vs_label_noise(x: np.ndarray, y: np.ndarray, x_test: np.ndarray, y_test: np.ndarray,
                             fractions: Sequence[float] = (0.0, 0.5, 1.0), seed: int = 0,
                             **train_kw: Any) -> dict[str, Any]:
  """Plain SGD on labels with a ``fraction`` redrawn at random (0: real labels, 1: random labels), each from the
  same initialisation, with the m-coherence of a fixed training sample logged through training.

  Args:
    x, y, x_test, y_test: the data set (true labels).
    fractions: label-noise levels.
    seed: seed of the corruption, the initialisation and the batches.
    **train_kw: keyword arguments of :func:`train_with_coherence`.

  Returns:
    ``{'fractions', 'runs'}``: one :func:`train_with_coherence` output per fraction.
  """
  k = int(max(y.max(), y_test.max())) + 1
  runs = []
  for f in fractions:
    labels, wrong = corrupt_labels(y, f, k, seed)
    runs.append(train_with_coherence(x, labels, x_test, y_test, wrong, seed=seed, **train_kw))
  return {'fractions': np.asarray(fractions, float), 'runs': runs}


def suppression(x: np.ndarray, y: np.ndarray, x_test: np.ndarray, y_test: np.ndarray, fraction: float,
                variants: Mapping[str, Mapping[str, Any]], seed: int = 0, **train_kw: Any) -> dict[str, Any]:
  """The same corrupted data set trained with each gradient aggregation in ``variants``.

  Memorisation is the training accuracy on the examples whose label is wrong; generalisation is the test
  accuracy on true labels.

  Args:
    x, y, x_test, y_test: the data set (true labels).
    fraction: label-noise level of the training set.
    variants: name -> keyword arguments of :func:`train_with_coherence` (``aggregator``, ``c``, ``groups``,
      ``learning_rate``), e.g. ``{'sgd': {}, 'winsorized c=4': {'aggregator': 'winsorized', 'c': 4}}``.
    seed: seed of the corruption, the initialisation and the batches.
    **train_kw: keyword arguments shared by every variant.

  Returns:
    ``{'fraction', 'runs': {name: output}}``.
  """
  k = int(max(y.max(), y_test.max())) + 1
  labels, wrong = corrupt_labels(y, fraction, k, seed)
  runs = {name: train_with_coherence(x, labels, x_test, y_test, wrong, seed=seed, **{**train_kw, **kw})
          for name, kw in variants.items()}
  return {'fraction': fraction, 'runs': runs}
