"""Sketched federated first-order methods, and what the server can still read from a sketch.

Song, Wang, Yu & Zhang, "Sketching for First Order Method: Efficient Algorithm for Low-Bandwidth Channel and
Vulnerability" (arXiv 2210.08371, ICML 2023). A round t shares a random sketch R_t in R^{b x d} (b << d) between
server and clients through a seed, with E[R_t^T R_t] = I_d:

    client i:  Delta_i = x_{t,K}^i - x_t        (K local gradient steps from x_t)
               sends sk_t(Delta_i) = R_t Delta_i               (b numbers + the seed)
    server:    x_{t+1} = x_t + eta_g R_t^T ((1/N) sum_i R_t Delta_i)   (desk_t = R_t^T; averaging in sketch space
               is exact because R_t is shared)

R_t here is the count sketch of :func:`decentral.compression.sketches.count_sketch` with the ``'mean'`` decoder,
R = [R_1; ...; R_r] / sqrt(r), each R_j one signed hash bucket per coordinate, so R^T R = I + (signed collisions)
and E[R^T R] = I; a fresh hash per round (``fold_in(key, t)``). :func:`sketch_matrix` writes R out explicitly.
Bytes per client and round are the compressor's wire size, counted by :class:`decentral.ledger.Ledger`.

**Vulnerability.** The paper shows that sketching is not privacy: R_t is public to the server, so a gradient
attack on R_t g still recovers the data. For a softmax-regression client with one example (a, y) the gradient
is g(a) = vec(v [a; 1]^T), v = softmax(W a + c) - e_y (C classes), rank one, so the sketch s = R g(a) is
bilinear in (v, a): :func:`invert_sketched_gradient` alternates least squares in a and in v, which recovers a
exactly once b >= dim(a) + C (generic) and no noise is added; below that this attack is underdetermined.
**Defence** (the paper's): add Gaussian noise to what is sent, s + N(0, sigma^2 I_b), which with clipping makes the
algorithm (eps, delta)-DP (:func:`noisy_sketch`; the DP accounting is not implemented here); a large enough sigma
destroys the reconstruction.

Sources: the paper's text was available only through its abstract and opening here (no official code exists);
the algorithm follows its stated framework (sk_t = R_t, desk_t = R_t^T, one shared sketch per round), the attack
is our exact linear-model instance of "a specific gradient attack" on sketched gradients, and the noise is added
to the sketch (the paper's remedy adds it to the gradient information; DP calibration needs the sensitivity
through R, so clip before sketching).

>>> import jax, jax.numpy as jnp
>>> r = sketch_matrix(jax.random.key(0), 6, rows=1, cols=6)
>>> r.shape, float(jnp.abs(r).sum(0).min())   # one signed bucket per coordinate
((6, 6), 1.0)
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from decentral import checks
from decentral.compression.sketches import count_sketch


def sketch_matrix(key: jax.Array, dim: int, *, rows: int = 1, cols: int) -> jax.Array:
  """R (rows cols x dim): the linear map x -> count_sketch(rows, cols, decoder='mean') table / sqrt(rows).

  Scaled so that R^T R x is the count sketch's mean decoding of its own table: desk(sk(x)) = R^T R x.
  """
  checks.positive_int(dim, 'sketch_matrix: dim')
  return _sketch_matrix(key, dim, rows, cols)


@jax.jit(static_argnums=(1, 2, 3))
def _sketch_matrix(key, dim, rows, cols):
  comp = count_sketch(rows, cols, decoder='mean')
  tables = jax.vmap(lambda e: comp.compress(e, key)['table'])(jnp.eye(dim))   # (dim, rows, cols)
  return tables.reshape(dim, rows * cols).T / np.sqrt(rows)


def sketch_round_key(key: jax.Array, round_index: int) -> jax.Array:
  """The shared per-round sketch key: fold_in(key, t)."""
  return jax.random.fold_in(key, round_index)


def sketched_mean(deltas: jax.Array, key: jax.Array, *, rows: int = 1, cols: int) -> tuple[jax.Array, int]:
  """R^T ((1/N) sum_i R Delta_i) for flat client updates ``deltas`` (N, d), and the bytes one client sends.

  Uses the count-sketch compressor itself (its tables add linearly), so the bytes are its wire size.
  """
  dim = deltas.shape[1]
  nbytes = int(count_sketch(rows, cols, decoder='mean').nbytes((dim,), deltas.dtype))
  return _sketched_mean(deltas, key, rows, cols), nbytes


@jax.jit(static_argnums=(2, 3))
def _sketched_mean(deltas, key, rows, cols):
  comp = count_sketch(rows, cols, decoder='mean')
  tables = jax.vmap(lambda d: comp.compress(d, key)['table'])(deltas)
  payload = {'table': jnp.mean(tables, 0), 'key': comp.compress(deltas[0], key)['key']}
  return comp.decompress(payload, (deltas.shape[1],), deltas.dtype)


def noisy_sketch(sketch: jax.Array, key: jax.Array, sigma: float) -> jax.Array:
  """The defence: s + N(0, sigma^2 I)."""
  if not np.isfinite(sigma) or sigma < 0:
    raise ValueError(f'noisy_sketch: sigma must be finite and >= 0, got {sigma!r}')
  return sketch + sigma * jax.random.normal(key, sketch.shape, sketch.dtype)


def linear_gradient(a: jax.Array, y: int, weights: jax.Array, bias: jax.Array) -> jax.Array:
  """g = (vec(v a^T), v), v = softmax(W a + c) - e_y: the cross-entropy gradient of one example, flat (C p + C)."""
  v = jax.nn.softmax(weights @ a + bias) - jax.nn.one_hot(y, bias.shape[0], dtype=a.dtype)
  return jnp.concatenate([jnp.outer(v, a).reshape(-1), v])


def invert_sketched_gradient(sketch: jax.Array, r: jax.Array, y: int, num_classes: int, *,
                             iters: int = 300) -> jax.Array:
  """The server's reconstruction of a client's single example a from s = R g(a), knowing R and the label y.

  g(a) = vec(v [a; 1]^T) is rank one in (v, a), so s is bilinear: alternating least squares,
  a <- argmin_a |s - R (v kron [a; 1])| (v fixed), v <- argmin_v |s - R (v kron [a; 1])| (a fixed), from
  v = 1/C - e_y. The bias column fixes the scale; neither the model nor the loss is needed beyond the rank-one
  form, and the solution is unique once b >= C + dim(a) generic measurements are in. Started from
  v = 1/C - e_y and from every e_k - e_y (the residual of a confident prediction of class k); the start with the
  smallest residual wins.
  """
  checks.positive_int(iters, 'invert_sketched_gradient: iters')
  return _invert(sketch, r, jnp.asarray(y), num_classes, iters)


def _least_squares(mat, rhs):
  """argmin |mat a - rhs| (min-norm when underdetermined) through the smaller Gram matrix: XLA's CPU SVD behind
  jnp.linalg.lstsq is ~1000x slower at these sizes. A 1e-9 relative jitter keeps the solve defined."""
  if mat.shape[0] >= mat.shape[1]:
    gram = mat.T @ mat
    return jnp.linalg.solve(gram + 1e-9 * jnp.trace(gram) / gram.shape[0] * jnp.eye(gram.shape[0]), mat.T @ rhs)
  gram = mat @ mat.T
  return mat.T @ jnp.linalg.solve(gram + 1e-9 * jnp.trace(gram) / gram.shape[0] * jnp.eye(gram.shape[0]), rhs)


@jax.jit(static_argnums=(3, 4))
def _invert(sketch, r, y, c, iters):
  p = (r.shape[1] - c) // c
  r_w, r_c = r[:, :c * p].reshape(-1, c, p), r[:, c * p:]

  def body(_, av):
    a, v = av
    a = _least_squares(jnp.einsum('bcp,c->bp', r_w, v), sketch - r_c @ v)
    v = _least_squares(jnp.einsum('bcp,p->bc', r_w, a) + r_c, sketch)
    return a, v

  def from_start(v0):
    a, v = jax.lax.fori_loop(0, iters, body, (jnp.zeros(p, sketch.dtype), v0))
    return a, jnp.sum((jnp.einsum('bcp,c,p->b', r_w, v, a) + r_c @ v - sketch) ** 2)

  e_y = jax.nn.one_hot(y, c, dtype=sketch.dtype)
  starts = jnp.concatenate([(jnp.full(c, 1.0 / c, sketch.dtype) - e_y)[None], jnp.eye(c, dtype=sketch.dtype) - e_y])
  a, resid = jax.vmap(from_start)(starts)
  return a[jnp.argmin(jnp.where(jnp.isfinite(resid), resid, jnp.inf))]
