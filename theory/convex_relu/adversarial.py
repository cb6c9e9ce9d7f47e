"""Convex adversarial training of a two-layer ReLU network (Bai, Gautam & Sojoudi, arXiv 2201.01965, Section 4;
Bai, Gautam, Gai & Sojoudi, arXiv 2105.12237), hinge loss, binary labels, ``l_inf`` perturbations of radius ``eps``
on the features (not on the bias column).

Robust counterpart over fixed patterns ``D_i``: keeping each pattern for every perturbed input,
``(2 D_i - I)(X + Delta) v_i >= 0`` for all ``||Delta_k||_inf <= eps``, is ``(2 D_i - I) X v_i >= eps ||v_i||_1``
(rowwise; ``||.||_1`` over the feature coordinates), and then the network is linear on each box, so the worst
hinge loss of point ``k`` is exact::

    min_{v, w}  sum_k ( 1 - y_k sum_i D_ki x_k^T (v_i - w_i) + eps || sum_i D_ki (v_i - w_i) ||_1 )_+
                + beta sum_i (||v_i||_2 + ||w_i||_2)
    s.t.  (2 D_i - I) X v_i >= eps ||v_i||_1,   (2 D_i - I) X w_i >= eps ||w_i||_1.

Convention: the ``l_1`` term inside the hinge is the exact worst case ``eps ||sum_i D_ki (v_i - w_i)||_1``; the
looser ``eps sum_i D_ki ||v_i - w_i||_1`` (an upper bound, as some statements of the program write it) is one
argument away (``separate_l1=True``). ``eps = 0`` is the standard convex hinge program.

Solver (:func:`robust_hinge_program`): every term but the ``l_2`` group norms is polyhedral, so the program is an
LP plus ``2P`` second-order cones. Kelley's cutting planes solve it with ``scipy.optimize.linprog`` (HiGHS):
the LP with cuts ``g^T v_i <= s_i`` (``||g|| = 1``) is a relaxation (lower bound); the LP point with ``s_i`` set to
``||v_i||`` is feasible (upper bound); cuts at the violated blocks are added until the two meet. The returned gap
is a certificate for the program over the given patterns.
"""

from __future__ import annotations

import numpy as np
import scipy.optimize
import scipy.sparse as sp

from theory.convex_relu.program import convex_predict


def robust_hinge_objective(x, y, patterns, v, w, beta: float, eps: float, separate_l1: bool = False) -> float:
  """The objective of the module docstring (features = all columns but the last, the bias)."""
  diff = v - w
  margin = y * convex_predict(x, patterns, v, w)
  if separate_l1:
    pen = eps * patterns @ np.abs(diff[:, :-1]).sum(1)
  else:
    pen = eps * np.abs(patterns @ diff[:, :-1]).sum(1)
  hinge = np.maximum(0.0, 1.0 - margin + pen).sum()
  return float(hinge + beta * (np.linalg.norm(v, axis=1).sum() + np.linalg.norm(w, axis=1).sum()))


def robust_cone_violation(x, patterns, v, w, eps: float) -> float:
  """``max(0, max_{k,i} eps ||v_i||_1 - (2 D_ki - 1) x_k^T v_i)`` over both halves."""
  signs = 2 * patterns - 1
  worst = 0.0
  for blocks in (v, w):
    slack = signs * (x @ blocks.T) - eps * np.abs(blocks[:, :-1]).sum(1)[None, :]
    worst = max(worst, -float(slack.min()))
  return max(0.0, worst)


class _Layout:
  """Column offsets of the LP variables."""

  def __init__(self, n, d, p, separate_l1):
    f = d - 1
    sizes = [('v', p * d), ('w', p * d), ('xi', n), ('r', p * f if separate_l1 else n * f), ('a', p * f),
             ('b', p * f), ('s', p), ('t', p)]
    self.start, pos = {}, 0
    for name, size in sizes:
      self.start[name] = pos
      pos += size
    self.size = pos


def _lp(x, y, patterns, beta, eps, separate_l1):
  n, d = x.shape
  p, f = patterns.shape[1], d - 1
  lay = _Layout(n, d, p, separate_l1)
  st = lay.start
  vi = lambda half, i, j: st[half] + i * d + j
  rows, cols, vals, rhs = [], [], [], []
  row = 0

  def add(entries, b):
    nonlocal row
    for c, val in entries:
      rows.append(row)
      cols.append(c)
      vals.append(val)
    rhs.append(b)
    row += 1

  signs = 2 * patterns - 1
  # Hinge: -xi_k - y_k sum_i D_ki x_k^T (v_i - w_i) + eps * (l1 term) <= -1.
  for k in range(n):
    e = [(st['xi'] + k, -1.0)]
    for i in np.flatnonzero(patterns[k]):
      for j in range(d):
        e += [(vi('v', i, j), -y[k] * x[k, j]), (vi('w', i, j), y[k] * x[k, j])]
      if separate_l1:
        e += [(st['r'] + i * f + j, eps) for j in range(f)]
    if not separate_l1:
      e += [(st['r'] + k * f + j, eps) for j in range(f)]
    add(e, -1.0)
  # l1 epigraphs of the hinge term.
  if separate_l1:
    for i in range(p):
      for j in range(f):
        for sg in (1.0, -1.0):
          add([(vi('v', i, j), sg), (vi('w', i, j), -sg), (st['r'] + i * f + j, -1.0)], 0.0)
  else:
    for k in range(n):
      active = np.flatnonzero(patterns[k])
      for j in range(f):
        for sg in (1.0, -1.0):
          e = [(vi('v', i, j), sg) for i in active] + [(vi('w', i, j), -sg) for i in active]
          add(e + [(st['r'] + k * f + j, -1.0)], 0.0)
  # Robust cones and the l1 epigraphs of their blocks.
  for half, aux in (('v', 'a'), ('w', 'b')):
    for i in range(p):
      for k in range(n):
        e = [(vi(half, i, j), -signs[k, i] * x[k, j]) for j in range(d)]
        add(e + [(st[aux] + i * f + j, eps) for j in range(f)], 0.0)
      for j in range(f):
        for sg in (1.0, -1.0):
          add([(vi(half, i, j), sg), (st[aux] + i * f + j, -1.0)], 0.0)
  a = sp.csr_matrix((vals, (rows, cols)), shape=(row, lay.size))
  c = np.zeros(lay.size)
  c[st['xi']:st['xi'] + n] = 1.0
  c[st['s']:st['s'] + 2 * p] = beta
  bounds = [(None, None)] * (2 * p * d) + [(0, None)] * (lay.size - 2 * p * d)
  return a, np.asarray(rhs), c, bounds, lay


def robust_hinge_program(x: np.ndarray, y: np.ndarray, patterns: np.ndarray, beta: float, eps: float,
                         separate_l1: bool = False, tol: float = 1e-7, max_rounds: int = 200) -> dict:
  """Solves the robust program by cutting planes (module docstring).

  Args:
    x: inputs ``(n, d)``, the last column the bias (unperturbed).
    y: labels in ``{-1, +1}``.
    patterns: ``(n, P)`` 0/1.
    beta: group-norm weight.
    eps: ``l_inf`` radius (0: the standard hinge program).
    separate_l1: the looser per-block ``l_1`` term (module docstring).
    tol: stop when ``upper - lower <= tol * max(1, upper)``.
    max_rounds: cutting-plane rounds.

  Returns:
    ``{'v', 'w' (P, d), 'objective' (upper bound, feasible), 'lower_bound', 'rounds'}``.
  """
  if eps < 0 or beta <= 0:
    raise ValueError(f'convex_relu.robust_hinge_program: need eps >= 0 and beta > 0, got {eps}, {beta}')
  y = np.asarray(y, np.float64)
  if not np.all(np.abs(y) == 1):
    raise ValueError('convex_relu.robust_hinge_program: y must be in {-1, +1}')
  n, d = x.shape
  p = patterns.shape[1]
  a, b, c, bounds, lay = _lp(x, y, patterns, beta, eps, separate_l1)
  cut_rows, cut_cols, cut_vals, ncut = [], [], [], 0

  def add_cut(block, g):
    nonlocal ncut
    half, i = ('v', block) if block < p else ('w', block - p)
    for j in range(d):
      cut_rows.append(ncut)
      cut_cols.append(lay.start[half] + i * d + j)
      cut_vals.append(g[j])
    cut_rows.append(ncut)
    cut_cols.append(lay.start['s'] + block)   # s and t are contiguous: t_i is s_{p + i}
    cut_vals.append(-1.0)
    ncut += 1

  for block in range(2 * p):
    for j in range(d):
      for sg in (1.0, -1.0):
        add_cut(block, sg * np.eye(d)[j])
  lower, upper, best = -np.inf, np.inf, None
  for rounds in range(1, max_rounds + 1):
    cuts = sp.csr_matrix((cut_vals, (cut_rows, cut_cols)), shape=(ncut, lay.size))
    res = scipy.optimize.linprog(c, A_ub=sp.vstack([a, cuts]), b_ub=np.concatenate([b, np.zeros(ncut)]),
                                 bounds=bounds, method='highs')
    if res.status != 0:
      raise RuntimeError(f'convex_relu.robust_hinge_program: linprog failed: {res.message}')
    z = res.x
    v = z[lay.start['v']:lay.start['v'] + p * d].reshape(p, d)
    w = z[lay.start['w']:lay.start['w'] + p * d].reshape(p, d)
    lower = max(lower, res.fun)
    obj = robust_hinge_objective(x, y, patterns, v, w, beta, eps, separate_l1)
    if obj < upper:
      upper, best = obj, (v, w)
    if upper - lower <= tol * max(1.0, abs(upper)):
      break
    blocks = np.vstack([v, w])
    norms = np.linalg.norm(blocks, axis=1)
    svals = z[lay.start['s']:lay.start['s'] + 2 * p]
    for block in np.flatnonzero(norms > svals + 1e-12):
      add_cut(block, blocks[block] / norms[block])
  return {'v': best[0], 'w': best[1], 'objective': upper, 'lower_bound': lower, 'rounds': rounds}
