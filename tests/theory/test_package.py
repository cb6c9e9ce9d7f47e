"""The shape of theory/: shared helpers (numerics, plotting), computation apart from plots, and the import rules."""

import ast
import importlib
import pathlib
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import theory
from theory import numerics, plotting

ROOT = pathlib.Path(theory.__file__).parent
FAMILIES = ('hessian', 'langevin', 'sgn', 'stability', 'coherence', 'oscillation', 'sgd_noise', 'last_iterate',
            'kernels', 'convex_relu', 'directional_sharpness')
PLOT_MODULES = {'plots.py', 'plotting.py'}


def _modules():
  return sorted(p for p in ROOT.rglob('*.py'))


def _imports(path):
  for node in ast.walk(ast.parse(path.read_text())):
    if isinstance(node, ast.Import):
      for alias in node.names:
        yield alias.name, None
    elif isinstance(node, ast.ImportFrom):
      for alias in node.names:
        yield node.module or '', alias.name


def test_float64_decorator_restores_the_callers_setting():
  previous = jax.config.jax_enable_x64
  try:
    jax.config.update('jax_enable_x64', False)
    assert numerics.float64(lambda: jnp.zeros(2).dtype)() == jnp.float64
    assert jnp.zeros(2).dtype == jnp.float32
    leaf = numerics.float64(numerics.tree_float64)({'a': (np.ones(2, np.float32),)})['a'][0]
    assert leaf.dtype == jnp.float64
  finally:
    jax.config.update('jax_enable_x64', previous)


def test_figure_axes_reuses_given_axes_and_makes_new_ones():
  import matplotlib
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt
  fig, ax = plotting.figure_axes()
  assert tuple(fig.get_size_inches()) == (5.5, 3.8)
  assert plotting.figure_axes(ax) == (fig, ax)
  fig2, axes = plotting.figure_axes(None, figsize=(10, 3.5), ncols=2, sharey=True)
  assert len(axes) == 2 and plotting.figure_axes(axes, ncols=2)[0] is fig2
  plt.close('all')


def test_importing_theory_does_not_load_matplotlib():
  code = 'import sys, theory; assert "matplotlib" not in sys.modules, "matplotlib imported"'
  subprocess.run([sys.executable, '-c', code], check=True)


@pytest.mark.parametrize('path', _modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_module_imports_follow_the_rules(path):
  for module, name in _imports(path):
    if path.name not in PLOT_MODULES:
      assert not module.startswith('matplotlib'), f'{path.name}: computation modules do not import matplotlib'
    assert not module.startswith('experiments'), 'packages never import experiments'
    assert module != 'theory' or path == ROOT / '__init__.py', 'no import of theory through its top'
    if module.startswith('theory') and name is not None:
      assert not name.startswith('_'), f'{path.name} imports the private {module}.{name}'


# The public names of each family, reachable from its top (experiments, notebooks and users import them there).
PUBLIC = {
    'hessian': 'gaussian_clusters pca_features init_mlp mlp_logits cross_entropy train Decomposition '
               'exact_decomposition class_decomposition wasserstein1 slq_convergence spectrum_experiment '
               'outliers_vs_classes bulk_vs_width granziol_prediction batch_sharpness run plot_spectrum '
               'plot_decomposition plot_slq_error plot_outliers_vs_classes plot_bulk_vs_width plot_batch_sharpness',
    'stability': 'noise_factor rank_one_problem second_moment_operator spectral_radius stability_threshold '
                 'rayleigh_bounds simulate_linear_sgd linear_experiment trace_survey diagonal_net relu_net MODELS '
                 'sparse_regression_data sphere_teacher_data init_params train_to_interpolation sharpness_metrics '
                 'nonlinear_experiment run plot_stability_heatmap plot_monte_carlo plot_sharpness_vs_lr '
                 'plot_norm_vs_lr',
    'sgn': 'RK4_C4 RK4_REAL_AXIS block_bounds region_bounds sgn_matrix sgn_margin two_player_margin two_player_band '
           'sgn_feasible optimal_weights metric metric_constants euclidean_margin euler_step_bound euler_factor '
           'rk4_step_guideline step_matrix spectral_radius stability_threshold simulate_contraction mini_toy '
           'lq_coupling_matrix lq_jacobian lq_sweep lq_band lq_phase lq_random_suite markov_game plot_margins '
           'plot_band plot_phase plot_markov',
    'langevin': 'tensor_problem single_index_problem loss_fn oracle estimate overlap run_langevin oracle_overlap '
                'sweep oracle_sweep threshold_exponent time_trace plot_collapse plot_trace',
    'coherence': 'alpha_coherence gram_coherence m_coherence sample_m_coherence corrupt_labels',
    'oscillation': 'feature_noise_data cnn_output feature_alignment init_filters loss plot_oscillation',
    'sgd_noise': 'parity_task init_mlp mlp train margins per_example_gradients',
    'last_iterate': 'csmd_step run_csmd schedule PROBLEMS Problem plot_rates',
    'kernels': 'empirical_nngp empirical_ntk dual_matrix Network cnn_network',
    'convex_relu': 'admm adversarial_training global_optimality train_nonconvex',
    'directional_sharpness': 'sharpness_along sharpness_along_training line_search_decrease plot_sharpness',
}


@pytest.mark.parametrize('family', FAMILIES)
def test_subpackage_exports_and_no_module_shadows_them(family):
  package = importlib.import_module(f'theory.{family}')
  assert set(PUBLIC[family].split()) <= set(package.__all__)
  for name in package.__all__:
    assert hasattr(package, name), name
  modules = {p.stem for p in (ROOT / family).glob('*.py')} - {'__init__'}
  assert not modules & set(package.__all__), 'a module name shadows an exported name'
