"""Plots spell names out: every registered optimizer and transform has a readable name, and the main job's legend
and bars use it."""

import matplotlib
import pytest

from experiments.lib import compare
from experiments.lib.common import names
from optim import registry

matplotlib.use('Agg')


@pytest.mark.parametrize('reg', [registry.optimizers, registry.transforms], ids=lambda r: r.kind)
def test_every_registered_name_is_spelt_out(reg):
  assert set(reg.names()) <= set(names.READABLE), sorted(set(reg.names()) - set(names.READABLE))


def test_main_job_legend_and_bars_use_the_readable_names():
  import matplotlib.pyplot as plt
  rows = [{'optimizer': 'sgd_sai', 'curve': [(0, 2.0), (5, 1.0)], 'train_loss': 0.9},
          {'optimizer': 'dp_sgd', 'curve': [(0, 2.0), (5, 1.5)], 'train_loss': 1.4}]
  fig = compare.plot(rows)
  curves, bars = fig.axes
  assert [t.get_text() for t in curves.get_legend().get_texts()] == [
      'SGD-SaI (sgd_sai) (best)', 'DP-SGD (differentially private SGD) (dp_sgd)']
  assert [t.get_text() for t in bars.get_yticklabels()] == [
      'SGD-SaI (sgd_sai)', 'DP-SGD (differentially private SGD) (dp_sgd)']
  plt.close(fig)
