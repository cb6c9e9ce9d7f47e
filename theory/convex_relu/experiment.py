"""The convex-training experiments: a certified global optimum against non-convex gradient descent, and convex
adversarial training (Bai, Gautam & Sojoudi, arXiv 2201.01965).

Data: ``n`` points ``x ~ N(0, I_2)`` with a bias column, so that every activation pattern can be enumerated
(:func:`enumerate_patterns_2d`) and the dual certificate covers them all: regression targets ``y = +-1`` at random
(squared loss) for the global-optimality part; XOR-like labels ``y = sign(x_1 x_2 + 0.1)`` (hinge loss) for the
adversarial part.
"""

from __future__ import annotations

import numpy as np

from theory.convex_relu.admm_solver import admm
from theory.convex_relu.adversarial import robust_hinge_program
from theory.convex_relu.nonconvex import train_nonconvex
from theory.convex_relu.patterns import add_bias, enumerate_patterns_2d, sample_patterns
from theory.convex_relu.program import dual_certificate, nonconvex_objective, recover_network, relu_network
from theory.convex_relu.scp import gated_relu_fista


def global_optimality(n: int = 12, beta: float = 0.1, rho: float = 0.1, admm_iterations: int = 3000,
                      num_gates: int = 12, num_inits: int = 10, steps: int = 5000, learning_rate: float = 0.01,
                      width: int | None = None, seed: int = 0) -> dict:
  """ADMM on every pattern and on sampled ones, the recovered network certified by the dual, the gated-ReLU
  program, and gradient descent on the non-convex network from ``num_inits`` initialisations.

  Returns a dict with ``upper_bound`` (the recovered network's non-convex objective), ``lower_bound`` (the dual
  value, every pattern), ``relative_gap``, ``num_patterns``, ``num_neurons`` (``m*``), the ADMM objective curves
  (``admm_all``, ``admm_sampled``), ``gated_objective``, and ``gd_final`` (num_inits,) with ``gd_curves``.
  """
  rng = np.random.default_rng(seed)
  x2 = rng.normal(size=(n, 2))
  x, y = add_bias(x2), rng.choice([-1.0, 1.0], n)
  patterns, _ = enumerate_patterns_2d(x2)
  sampled, gates = sample_patterns(x, num_gates, seed=seed + 1)
  full = admm(x, y, patterns, beta, rho=rho, iterations=admm_iterations)
  part = admm(x, y, sampled, beta, rho=rho, iterations=admm_iterations)
  u, alpha = recover_network(full['v'], full['w'], tol=1e-6)
  upper = nonconvex_objective(x, y, u, alpha, beta)
  cert = dual_certificate(x, y, patterns, y - relu_network(x, u, alpha), beta)
  gated = gated_relu_fista(x, y, sampled, beta, iterations=admm_iterations)
  m = width or len(alpha)
  gd = train_nonconvex(x, y, m, beta, num_inits, learning_rate, steps, seed=seed)
  return {'n': n, 'beta': beta, 'num_patterns': patterns.shape[1], 'num_sampled': sampled.shape[1],
          'num_neurons': len(alpha), 'width': m, 'upper_bound': upper, 'lower_bound': cert['dual_value'],
          'relative_gap': (upper - cert['dual_value']) / upper, 'admm_all': full['objective'],
          'admm_sampled': part['objective'], 'gated_objective': float(gated['objective'][-1]),
          'gd_final': gd['objective'][:, -1], 'gd_curves': gd['objective']}


def _grid_attack_margin(x2, y, u, alpha, eps, grid=21):
  # min over an (grid x grid) lattice of the l_inf box of y f(x + delta): a strong attack in two dimensions.
  g = np.linspace(-eps, eps, grid)
  deltas = np.stack(np.meshgrid(g, g), -1).reshape(-1, 2)
  out = np.empty(len(x2))
  for k in range(len(x2)):
    pts = add_bias(x2[k] + deltas)
    out[k] = np.min(y[k] * relu_network(pts, u, alpha))
  return out


def adversarial_training(n: int = 40, num_test: int = 200, beta: float = 0.1, eps_train=(0.0, 0.05, 0.1),
                         eps_attack=(0.0, 0.05, 0.1), num_gates: int = 20, seed: int = 0) -> dict:
  """Convex robust training at each ``eps_train``; accuracy of the recovered ReLU network under a grid attack
  of each radius in ``eps_attack`` on held-out points, and the certified robust training accuracy.

  Returns ``{'eps_train', 'eps_attack', 'objective', 'lower_bound', 'test_accuracy' (len(train), len(attack)),
  'certified_train_accuracy' (len(train),), 'num_neurons'}``.
  """
  rng = np.random.default_rng(seed)
  label = lambda z: np.sign(z[:, 0] * z[:, 1] + 0.1)
  x2, xt = rng.normal(size=(n, 2)), rng.normal(size=(num_test, 2))
  x, y, yt = add_bias(x2), label(x2), label(xt)
  patterns, _ = sample_patterns(x, num_gates, seed=seed + 1)
  acc = np.zeros((len(eps_train), len(eps_attack)))
  objective, lower, certified, neurons = [], [], [], []
  for i, e in enumerate(eps_train):
    r = robust_hinge_program(x, y, patterns, beta, e)
    objective.append(r['objective'])
    lower.append(r['lower_bound'])
    u, alpha = recover_network(r['v'], r['w'], tol=1e-7)
    neurons.append(len(alpha))
    diff = r['v'] - r['w']
    margin = y * np.sum(patterns * (x @ diff.T), 1) - e * np.abs(patterns @ diff[:, :-1]).sum(1)
    certified.append(float(np.mean(margin > 0)))
    for j, a in enumerate(eps_attack):
      acc[i, j] = np.mean(_grid_attack_margin(xt, yt, u, alpha, a) > 0) if a > 0 else np.mean(
          yt * relu_network(add_bias(xt), u, alpha) > 0)
  return {'eps_train': np.asarray(eps_train), 'eps_attack': np.asarray(eps_attack), 'objective': np.asarray(objective),
          'lower_bound': np.asarray(lower), 'test_accuracy': acc, 'certified_train_accuracy': np.asarray(certified),
          'num_neurons': np.asarray(neurons), 'num_patterns': patterns.shape[1]}
