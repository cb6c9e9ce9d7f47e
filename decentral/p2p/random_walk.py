"""Token algorithms driven by a self-repellent random walk (SRRW) over the communication graph.

One token (the model) walks over the agents; the agent that holds it takes one stochastic-gradient step on its own
loss and passes it on. The walk is the self-repellent random walk of Doshi, Hu and Eun (arXiv 2305.05097): from a
base Markov chain P with stationary law mu it moves to j with probability proportional to
:math:`P_{ij} (x_j / \\mu_j)^{-\\alpha}`, x the walk's (weighted) empirical visit measure, so over-visited agents are
avoided; alpha = 0 is the base chain. SA-SRRW (Hu, Doshi and Eun, ICLR 2024, arXiv 2401.09665) drives the token
with it:

- :func:`metropolis_hastings_walk`: the base chain, Metropolis-Hastings on the simple random walk, any target mu;
- :func:`self_repellent_kernel`: the SRRW transition matrix K[x];
- :func:`walk_init` / :func:`walk_step`: one SRRW move and the visit-measure update;
- :func:`sa_srrw`: token SGD (the iterates theta_n) driven by the walk, a ``lax.scan`` over token moves.

Not a lock-step method of the worker axis: one agent computes at a time, so it runs as one scan (jit- and
vmap-able over independent replicas) rather than under :func:`decentral.axis.run`.

>>> import numpy as np
>>> base = metropolis_hastings_walk(np.array([[0, 1, 1], [1, 0, 0], [1, 0, 0]]))  # a path 1 - 0 - 2
>>> np.round(base, 3)
array([[0. , 0.5, 0.5],
       [0.5, 0.5, 0. ],
       [0.5, 0. , 0.5]])
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from decentral import checks

PyTree = Any


def metropolis_hastings_walk(adjacency: np.ndarray, target: np.ndarray | None = None) -> np.ndarray:
  r"""The Metropolis-Hastings random walk with stationary law ``target`` (uniform by default).

  Proposal: a uniform neighbour (:math:`1/d_i`); acceptance :math:`\min(1, \mu_j d_i / (\mu_i d_j))`; so
  :math:`P_{ij} = \min(1/d_i,\ \mu_j / (\mu_i d_j))` on edges and the rejected mass on the diagonal. Reversible with
  respect to mu; with a uniform target :math:`P_{ij} = \min(1/d_i, 1/d_j)` (the base chain of the SRRW papers'
  simulations). This is a transition matrix for a walk, not the gossip weights of
  :func:`decentral.metropolis_hastings` (:math:`1/(\max(d_i, d_j) + 1)`).

  Args:
    adjacency: (n, n) symmetric 0/1 matrix of a connected graph, no self-loops needed.
    target: (n,) positive stationary law; uniform when None.

  Returns:
    The (n, n) row-stochastic float64 matrix P.
  """
  adj = np.asarray(adjacency).astype(bool)
  if adj.ndim != 2 or adj.shape[0] != adj.shape[1] or not np.array_equal(adj, adj.T):
    raise ValueError(f'metropolis_hastings_walk: adjacency must be a symmetric square matrix, got {adj.shape}')
  adj = adj & ~np.eye(len(adj), dtype=bool)
  deg = adj.sum(1).astype(np.float64)
  if np.any(deg == 0):
    raise ValueError('metropolis_hastings_walk: every node needs a neighbour')
  mu = _target(target, len(adj), 'metropolis_hastings_walk')
  prob = np.minimum(1.0 / deg[:, None], mu[None, :] / (mu[:, None] * deg[None, :]))
  p = np.where(adj, prob, 0.0)
  return p + np.diag(1.0 - p.sum(1))


def self_repellent_kernel(base: jax.Array, target: jax.Array, visits: jax.Array, alpha: float) -> jax.Array:
  r"""The SRRW transition matrix (Doshi, Hu and Eun, arXiv 2305.05097, eq. of the kernel K[x]):

  .. math:: K_{ij}[x] = \frac{P_{ij}\,(x_j/\mu_j)^{-\alpha}}{\sum_k P_{ik}\,(x_k/\mu_k)^{-\alpha}}

  computed in log space (large alpha would overflow :math:`(x/\mu)^{-\alpha}` early in the walk). Rows keep the
  support of P, self-loops included; alpha = 0 gives P.

  Args:
    base: (n, n) row-stochastic base chain P with stationary law ``target``.
    target: (n,) stationary law mu of P, positive.
    visits: (n,) visit measure x in the interior of the simplex (positive entries).
    alpha: repellence, >= 0.

  Returns:
    The (n, n) matrix K[x].
  """
  return jax.vmap(lambda row: _kernel_row(row, target, visits, alpha))(jnp.asarray(base))


def _kernel_row(base_row, target, visits, alpha):
  logits = jnp.log(base_row) - alpha * (jnp.log(visits) - jnp.log(target))  # log 0 = -inf keeps P's support
  return jax.nn.softmax(jnp.where(base_row > 0, logits, -jnp.inf))


class WalkState(NamedTuple):
  """The walker: the current node X_n, the visit measure x_n, the move count n and the key."""

  node: jax.Array
  visits: jax.Array
  count: jax.Array
  key: jax.Array


def walk_init(n: int, *, start: int = 0, seed: int | jax.Array = 0, visits: jax.Array | None = None,
              dtype=jnp.float32) -> WalkState:
  """The walker at ``start`` with visit measure ``visits`` (uniform by default: any point of the simplex's
  interior is allowed, and uniform keeps :math:`(x/\\mu)^{-\\alpha}` bounded at the start)."""
  checks.positive_int(n, 'walk_init: n')
  x0 = jnp.full((n,), 1.0 / n, dtype) if visits is None else jnp.asarray(visits, dtype)
  key = seed if isinstance(seed, jax.Array) else jax.random.key(seed)
  return WalkState(jnp.asarray(start, jnp.int32), x0, jnp.zeros([], jnp.int32), key)


def walk_step(state: WalkState, base: jax.Array, target: jax.Array, *, alpha: float,
              visit_exponent: float = 1.0) -> WalkState:
  r"""One SRRW move and the visit-measure update (SA-SRRW, arXiv 2401.09665, the first two lines):

  .. math:: X_{n+1} \sim K_{X_n, \cdot}[x_n], \qquad x_{n+1} = x_n + \gamma_{n+1}\,(\delta_{X_{n+1}} - x_n),
     \qquad \gamma_n = (n+1)^{-a}

  ``visit_exponent`` a = 1 makes x the empirical measure of the visits with x_0 counted as one pseudo-visit
  (:math:`\gamma_{n+1} = 1/(n+2)`), the SRRW of arXiv 2305.05097. The next node is drawn from
  ``fold_in(key, n)`` by ``jax.random.categorical`` on the log-kernel row of the current node.
  """
  row = _kernel_row(jnp.asarray(base)[state.node], target, state.visits, alpha)
  nxt = jax.random.categorical(jax.random.fold_in(state.key, state.count), jnp.log(row)).astype(jnp.int32)
  gamma = (state.count + 2.0).astype(state.visits.dtype) ** (-visit_exponent)
  visits = state.visits + gamma * (jax.nn.one_hot(nxt, state.visits.shape[0], dtype=state.visits.dtype)
                                   - state.visits)
  return WalkState(nxt, visits, state.count + 1, state.key)


def sa_srrw(grad_fn: Callable[[PyTree, jax.Array, jax.Array], PyTree], theta: PyTree, base: np.ndarray,
            target: np.ndarray | None = None, *, alpha: float, num_steps: int, visit_exponent: float = 0.8,
            step_exponent: float = 0.9, step_scale: float = 1.0, start: int = 0, seed: int | jax.Array = 0
            ) -> tuple[PyTree, WalkState]:
  r"""Token SGD driven by a self-repellent random walk: SA-SRRW (Hu, Doshi and Eun, ICLR 2024, arXiv 2401.09665).

  .. math::
     X_{n+1} \sim K_{X_n,\cdot}[x_n], \qquad x_{n+1} = x_n + \gamma_{n+1}(\delta_{X_{n+1}} - x_n), \qquad
     \theta_{n+1} = \theta_n - \beta_{n+1}\,\nabla f_{X_{n+1}}(\theta_n),

  :math:`\gamma_n = (n+1)^{-a}`, :math:`\beta_n = c\,(n+1)^{-b}` with a = ``visit_exponent``, b =
  ``step_exponent``, c = ``step_scale``. The token minimises :math:`\sum_i \mu_i f_i`. The paper's abstract
  states that the iterates' asymptotic covariance decreases as O(1/alpha^2) in the repellence (against O(1/alpha)
  for the sampling variance of the SRRW itself). Not re-read in the paper for this docstring (taken from our
  notes): the exact form of the two recursions above, polynomial steps with a, b in (1/2, 1], and the analysis
  in three regimes a < b, a = b, a > b; the default a = 0.8 < b = 0.9 is the regime where the visit measure moves
  faster than the iterates. The scale c is ours (1 in the notes' statement).

  Args:
    grad_fn: ``grad_fn(theta, node, key) -> gradient`` of agent ``node``'s loss (stochastic if it uses key).
    theta: the initial iterate (a pytree).
    base: (n, n) base chain P (e.g. :func:`metropolis_hastings_walk`).
    target: (n,) stationary law mu of P; uniform when None.
    alpha: repellence >= 0 (0 is the base walk: token SGD on a Markov chain).
    num_steps: token moves (one local gradient each).
    visit_exponent, step_exponent, step_scale: a, b, c above.
    start: the first holder X_0.
    seed: int or key; node draws use ``fold_in(key, n)``, gradients ``fold_in(fold_in(key, n), 1)``.

  Returns:
    ``(theta_T, walk_state_T)``.

  >>> import jax.numpy as jnp, numpy as np
  >>> from decentral.p2p import ring
  >>> base = metropolis_hastings_walk(ring(6).mixing > 0)
  >>> c = jnp.arange(6.0)  # f_i = (theta - c_i)^2 / 2, minimised at the mean 2.5
  >>> theta, walk = sa_srrw(lambda th, i, k: th - c[i], 0.0, base, alpha=5.0, num_steps=4000)
  >>> round(float(theta), 1), bool(jnp.abs(walk.visits - 1 / 6).max() < 0.05)
  (2.5, True)
  """
  checks.positive_int(num_steps, 'sa_srrw: num_steps')
  if not alpha >= 0:
    raise ValueError(f'sa_srrw: alpha must be >= 0, got {alpha!r}')
  for name, e in (('visit_exponent', visit_exponent), ('step_exponent', step_exponent)):
    if not 0.5 < e <= 1:
      raise ValueError(f'sa_srrw: {name} must be in (1/2, 1], got {e!r}')
  p = jnp.asarray(base)
  n = p.shape[0]
  mu = jnp.asarray(_target(target, n, 'sa_srrw'), p.dtype)
  dtype = jax.tree.leaves(theta)[0].dtype if hasattr(jax.tree.leaves(theta)[0], 'dtype') else p.dtype
  walk = walk_init(n, start=start, seed=seed, dtype=dtype)

  def move(carry, _):
    th, w = carry
    w = walk_step(w, p, mu, alpha=alpha, visit_exponent=visit_exponent)
    beta = step_scale * (w.count + 1.0).astype(dtype) ** (-step_exponent)  # beta_{n+1}, count is now n + 1
    g = grad_fn(th, w.node, jax.random.fold_in(jax.random.fold_in(w.key, w.count), 1))
    th = jax.tree.map(lambda t, gi: t - (beta * gi).astype(jnp.result_type(t)), th, g)
    return (th, w), None

  (theta, walk), _ = lax.scan(move, (jax.tree.map(jnp.asarray, theta), walk), None, length=num_steps)
  return theta, walk


def _target(target, n, name):
  if target is None:
    return np.full(n, 1.0 / n)
  mu = np.asarray(target, np.float64)
  if mu.shape != (n,) or np.any(mu <= 0) or not np.isclose(mu.sum(), 1.0):
    raise ValueError(f'{name}: target must be a positive ({n},) probability vector, got {target!r}')
  return mu
