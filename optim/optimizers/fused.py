"""The state update of an element-wise optimizer, laid out so that XLA:CPU moves each state array once.

An element-wise step writes the parameters and every state array. XLA:CPU has no multi-output fusion: each
array written is its own loop, and the loop that writes the parameters (``p + u``, fused with the direction
``u``) either reads the new state back or recomputes it from the old. Its fusion pass recomputes whatever is
cheap, so that loop reads the *old* state too, while the state update overwrites the same (donated) buffers in
place; copy insertion then copies the old state first, two extra passes per array (optax's ``adabelief``:
14 bytes moved per parameter byte where 11 suffice). A conditional is a fusion boundary: computing the new state
inside one stores it before anything reads it, the old state is read only by its own in-place update, and the
direction reads the stored values.

Other backends fuse the whole step into one multi-output kernel, which a conditional would split (and a GPU
conditional waits for its predicate on the host), so there the function is called directly
(``jax.lax.platform_dependent``).

>>> import jax.numpy as jnp
>>> count = jnp.asarray(1)
>>> stored_state(lambda m, g: 0.9 * m + 0.1 * g, count > 0, jnp.zeros(3), jnp.ones(3)).tolist()
[0.1..., 0.1..., 0.1...]
"""

from __future__ import annotations

from typing import Any, Callable

import jax


def stored_state(update: Callable[..., Any], always: jax.Array, state: Any, *inputs: Any) -> Any:
  """``update(state, *inputs)``, stored in memory before any later computation reads it (on XLA:CPU).

  Args:
    update: the state update, a pure function returning a pytree with the structure, shapes and dtypes of
      ``state``.
    always: a traced boolean that is always true, such as ``count > 0`` after the step counter's increment
      (XLA folds a conditional on a constant back into the surrounding computation). Were it false, ``state``
      would come back unchanged.
    state: the old state (pytree of arrays).
    *inputs: the other arguments of ``update`` (the gradient, scalars).

  Returns:
    ``update(state, *inputs)``, bit for bit.
  """
  def on_cpu(state, *inputs):
    # The untaken branch returns the old state: with two identical branches XLA shares one computation and
    # copies its results out again.
    return jax.lax.cond(always, update, lambda state, *_: state, state, *inputs)

  return jax.lax.platform_dependent(state, *inputs, cpu=on_cpu, default=update)
