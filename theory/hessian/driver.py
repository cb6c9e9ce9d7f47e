"""``run``: every Hessian-spectrum experiment on synthetic k-cluster data, in the full or a notebook-sized setting."""

from __future__ import annotations

from typing import Any

from theory.hessian.batch_hessians import batch_sharpness
from theory.hessian.data import gaussian_clusters
from theory.hessian.decomposition import exact_decomposition
from theory.hessian.outliers import bulk_vs_width, outliers_vs_classes, spectrum_experiment
from theory.hessian.slq_error import slq_convergence


def run(small: bool = False, seed: int = 0) -> dict[str, Any]:
  """Every Hessian-spectrum experiment on synthetic k-cluster data.

  Args:
    small: a notebook-sized setting (a few seconds per part) instead of the full-size figures.
    seed: integer seed.

  Returns:
    ``{'spectrum', 'slq', 'classes', 'width', 'batch'}`` result dicts for the ``plot_*`` functions.
  """
  if small:
    n, dim, k, hidden, classes, widths, steps = 300, 10, 3, (16,), (2, 3, 4), (8, 16), (4, 16)
    batches, probes = (8, 32), (1, 4)
  else:
    n, dim, k, hidden, classes, widths, steps = 600, 20, 5, (24,), (2, 3, 4, 5, 6, 8, 10), (8, 16, 32, 64), (
        4, 8, 16, 32, 64, 128)
    batches, probes = (8, 16, 32, 64, 128, 256), (1, 4, 16)
  x, y = gaussian_clusters(seed, n, dim, k)
  spectrum = spectrum_experiment(x, y, k, hidden, seed=seed, random_label_baseline=not small)
  params = spectrum.pop('params')
  hessian = exact_decomposition(params, x, y).hessian
  return {
      'spectrum': spectrum,
      'slq': slq_convergence(params, x, y, spectrum['eig_hessian'], steps, probes, repeats=2 if small else 3,
                             seed=seed),
      'classes': outliers_vs_classes(classes, n, dim, hidden, seeds=(seed,), random_label_baseline=not small),
      'width': bulk_vs_width(widths, k, n, dim, seed=seed),
      'batch': batch_sharpness(params, x, y, hessian, batches, num_batches=3 if small else 10, seed=seed),
  }
