"""A small character transformer cut into pipeline stages: embed, S stages of equal activation shape, head.

Pre-norm decoder (LayerNorm, causal multi-head attention, GELU MLP), written as pure functions of a parameter
dict so a pipeline schedule can run one stage per position of a ``stage`` axis:

- ``model.embed(params, tokens) -> h``: token + position embedding (plus the fixed ``anchor`` table, when the
  model has one: the recomputable high-rank part of the residual stream that subspace compression subtracts);
- ``model.stage_fn(stage_params, h, stage_index) -> h``: ``layers / stages`` blocks, every stage the same shape
  (B, T, d) -> (B, T, d), so stages stack on a leading axis;
- ``model.head_loss(params, h, targets) -> loss``: final LayerNorm, unembedding, mean cross-entropy;
- ``model.loss(params, tokens, targets)``: the unsplit composition, for tests and full (unpipelined) replicas.

``params['stages']`` holds every stage's blocks stacked: a leaf has shape (stages, layers_per_stage, ...);
``stage_params(params, s)`` takes stage s. Parameters keep their dtype (float64 under ``jax_enable_x64``).

>>> import jax, jax.numpy as jnp
>>> model = Transformer(vocab_size=11, d_model=16, layers=2, heads=2, block=8, stages=2)
>>> params = model.init(jax.random.key(0))
>>> x = jnp.zeros((3, 8), jnp.int32)
>>> h = model.embed(params, x)
>>> for s in range(model.stages):
...   h = model.stage_fn(stage_params(params, s), h, s)
>>> bool(jnp.allclose(model.head_loss(params, h, x), model.loss(params, x, x)))
True
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import jax
import jax.numpy as jnp
import optax

PyTree = Any

# The leaves that add into the residual stream; subspace compression constrains exactly these (the rest read it).
RESIDUAL_WRITERS = (('embed', 'tok'), ('embed', 'pos'), ('stages', 'attn_out'), ('stages', 'attn_out_bias'),
                    ('stages', 'mlp_down'), ('stages', 'mlp_down_bias'))


def stage_params(params: PyTree, stage: int | jax.Array) -> PyTree:
  """Stage ``stage``'s blocks: every leaf of ``params['stages']`` indexed on its leading (stage) axis."""
  return jax.tree.map(lambda x: x[stage], params['stages'])


def to_stages(params: PyTree) -> PyTree:
  """The per-stage trees of :func:`decentral.pipeline.gpipe`, stacked on a leading axis of size S: stage s holds
  ``{'embed', 'stages': its blocks, 'head'}`` (every stage a copy of the embedding and head, used by the first and
  last stage only, as the schedule requires one tree structure per stage)."""
  num_stages = jax.tree.leaves(params['stages'])[0].shape[0]
  copies = lambda tree: jax.tree.map(lambda x: jnp.broadcast_to(x, (num_stages,) + x.shape), tree)
  return {'embed': copies(params['embed']), 'stages': params['stages'], 'head': copies(params['head'])}


def from_stages(stacked: PyTree) -> PyTree:
  """The model's parameters from :func:`to_stages`' layout: the first stage's embedding, the last stage's head."""
  return {'embed': jax.tree.map(lambda x: x[0], stacked['embed']), 'stages': stacked['stages'],
          'head': jax.tree.map(lambda x: x[-1], stacked['head'])}


def _layer_norm(x, scale, bias, eps=1e-5):
  mean = jnp.mean(x, -1, keepdims=True)
  var = jnp.mean(jnp.square(x - mean), -1, keepdims=True)
  return (x - mean) * jax.lax.rsqrt(var + eps) * scale + bias


@dataclasses.dataclass(frozen=True, eq=False)
class Transformer:
  """A pre-norm character transformer of ``layers`` blocks cut into ``stages`` equal stages.

  Block: h <- h + W_o attn(LN(h) W_qkv) + b_o;  h <- h + W_down gelu(LN(h) W_up + b_up) + b_down.
  Embedding: h_0 = E_tok[x] + E_pos[t] (+ anchor[x], a fixed table that is not a parameter).

  Attributes:
    vocab_size, d_model, layers, heads, block: the model (``block`` = the longest context, positions 0..block-1).
    stages: S; ``layers`` must be a multiple of it.
    mlp_ratio: MLP width / d_model.
    anchor: optional fixed (vocab_size, d_model) token table added to the embedding and never trained (the
      high-rank component of :func:`decentral.pipeline.subspace.anchor_embedding`); None for a plain model.
  """

  vocab_size: int
  d_model: int = 64
  layers: int = 2
  heads: int = 4
  block: int = 64
  stages: int = 2
  mlp_ratio: int = 4
  anchor: jax.Array | None = None

  def __post_init__(self):
    for name in ('vocab_size', 'd_model', 'layers', 'heads', 'block', 'stages', 'mlp_ratio'):
      v = getattr(self, name)
      if not isinstance(v, int) or v < 1:
        raise ValueError(f'Transformer: {name} must be a positive int, got {v!r}')
    if self.layers % self.stages:
      raise ValueError(f'Transformer: layers ({self.layers}) must be a multiple of stages ({self.stages})')
    if self.d_model % self.heads:
      raise ValueError(f'Transformer: d_model ({self.d_model}) must be a multiple of heads ({self.heads})')
    if self.anchor is not None and tuple(self.anchor.shape) != (self.vocab_size, self.d_model):
      raise ValueError(f'Transformer: anchor must have shape {(self.vocab_size, self.d_model)}, '
                       f'got {tuple(self.anchor.shape)}')

  @property
  def layers_per_stage(self) -> int:
    return self.layers // self.stages

  def init(self, key: jax.Array, dtype=None) -> PyTree:
    """Parameters: normal(0, 0.02) matrices, the residual writers scaled by 1/sqrt(2 layers) (GPT-2), zero biases,
    unit LayerNorm scales. ``dtype`` defaults to JAX's default float (float64 under x64)."""
    dtype = dtype or jnp.zeros(()).dtype
    d, f, v = self.d_model, self.mlp_ratio * self.d_model, self.vocab_size
    lead = (self.stages, self.layers_per_stage)
    k = iter(jax.random.split(key, 8))

    def normal(shape, std):
      return (std * jax.random.normal(next(k), shape)).astype(dtype)

    writer_std = 0.02 / math.sqrt(2 * self.layers)
    stages = {
        'ln1_scale': jnp.ones(lead + (d,), dtype), 'ln1_bias': jnp.zeros(lead + (d,), dtype),
        'qkv': normal(lead + (d, 3 * d), 0.02),
        'attn_out': normal(lead + (d, d), writer_std), 'attn_out_bias': jnp.zeros(lead + (d,), dtype),
        'ln2_scale': jnp.ones(lead + (d,), dtype), 'ln2_bias': jnp.zeros(lead + (d,), dtype),
        'mlp_up': normal(lead + (d, f), 0.02), 'mlp_up_bias': jnp.zeros(lead + (f,), dtype),
        'mlp_down': normal(lead + (f, d), writer_std), 'mlp_down_bias': jnp.zeros(lead + (d,), dtype),
    }
    return {'embed': {'tok': normal((v, d), 0.02), 'pos': normal((self.block, d), 0.02)},
            'stages': stages,
            'head': {'ln_scale': jnp.ones((d,), dtype), 'ln_bias': jnp.zeros((d,), dtype),
                     'out': normal((d, v), 0.02), 'out_bias': jnp.zeros((v,), dtype)}}

  def embed(self, params: PyTree, tokens: jax.Array) -> jax.Array:
    """h_0 (B, T, d) of int tokens (B, T): E_tok[x] + E_pos[:T] (+ anchor[x])."""
    tokens = jnp.asarray(tokens)
    if tokens.shape[-1] > self.block:
      raise ValueError(f'Transformer.embed: sequence length {tokens.shape[-1]} exceeds block={self.block}')
    e = params['embed']
    h = e['tok'][tokens] + e['pos'][:tokens.shape[-1]]
    if self.anchor is not None:
      h = h + self.anchor.astype(h.dtype)[tokens]
    return h

  def _block(self, p: PyTree, h: jax.Array) -> jax.Array:
    b, t, d = h.shape
    nh = self.heads
    x = _layer_norm(h, p['ln1_scale'], p['ln1_bias'])
    q, k, v = jnp.split(x @ p['qkv'], 3, axis=-1)
    q, k, v = (a.reshape(b, t, nh, d // nh) for a in (q, k, v))
    logits = jnp.einsum('bqhc,bkhc->bhqk', q, k) / math.sqrt(d // nh)
    causal = jnp.tril(jnp.ones((t, t), bool))
    logits = jnp.where(causal, logits, jnp.finfo(logits.dtype).min)
    att = jnp.einsum('bhqk,bkhc->bqhc', jax.nn.softmax(logits, axis=-1), v).reshape(b, t, d)
    h = h + att @ p['attn_out'] + p['attn_out_bias']
    x = _layer_norm(h, p['ln2_scale'], p['ln2_bias'])
    return h + jax.nn.gelu(x @ p['mlp_up'] + p['mlp_up_bias']) @ p['mlp_down'] + p['mlp_down_bias']

  def stage_fn(self, stage_params: PyTree, h: jax.Array, stage_index: int | jax.Array = 0) -> jax.Array:
    """One stage: its ``layers_per_stage`` blocks applied to h (B, T, d). Every stage has the same code and shapes,
    so ``stage_index`` (accepted for schedules that pass it) changes nothing."""
    del stage_index

    def body(h, p):
      return self._block(p, h), None

    h, _ = jax.lax.scan(body, h, stage_params)
    return h

  def head_loss(self, params: PyTree, h: jax.Array, targets: jax.Array) -> jax.Array:
    """Mean next-character cross-entropy of the last hidden state h (B, T, d) against int targets (B, T)."""
    return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(self.logits(params, h), targets))

  def logits(self, params: PyTree, h: jax.Array) -> jax.Array:
    p = params['head']
    return _layer_norm(h, p['ln_scale'], p['ln_bias']) @ p['out'] + p['out_bias']

  def hidden(self, params: PyTree, tokens: jax.Array) -> jax.Array:
    """The unsplit forward pass up to the head: embed, then every stage in order."""
    h = self.embed(params, tokens)
    for s in range(self.stages):
      h = self.stage_fn(stage_params(params, s), h, s)
    return h

  def apply(self, params: PyTree, tokens: jax.Array) -> jax.Array:
    """Logits (B, T, vocab) of the unsplit model."""
    return self.logits(params, self.hidden(params, tokens))

  def loss(self, params: PyTree, tokens: jax.Array, targets: jax.Array) -> jax.Array:
    """The unsplit model's loss (the reference a pipelined run must equal)."""
    return self.head_loss(params, self.hidden(params, tokens), targets)

  def pipeline_fns(self):
    """``(stage_fn, first_fn, last_fn)`` on one stage's tree of :func:`to_stages`, for
    :func:`decentral.pipeline.gpipe` and :func:`decentral.pipeline.heterogeneous_sparseloco`."""
    return (lambda p, h, s: self.stage_fn(p['stages'], h, s), self.embed, self.head_loss)
