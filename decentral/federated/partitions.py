"""Client data partitions: IID, Dirichlet over labels, tiny Shakespeare by speaker; padded to one array per field.

A partition is a list of index arrays, one per client, into a dataset held on the host; :func:`pad` turns the
dataset and a partition into a :class:`ClientData`: every field stacked as ``[num_clients, max_n, ...]``, rows past
a client's count zero, and ``counts`` the number of real rows per client. The round engine
(:mod:`decentral.federated.rounds`) masks by ``counts``, so clients of unequal sizes run in lock-step with one
compilation.

Rules for degenerate partitions (stated once, relied on by the engine):

- a client may hold **zero samples** (Dirichlet with small alpha does this). It can still be sampled; it takes no
  local step (every batch is masked), sends a zero update with aggregation weight 0, and its upload is counted in
  the ledger (the protocol sends a fixed-size message). If every sampled client is empty the aggregate is zero,
  never 0/0. ``dirichlet(..., min_size=k)`` redraws instead until every client has at least k samples;
- a class with **no examples** (labels that skip a value, or ``num_classes`` larger than the labels seen) has
  nothing to split and is skipped; a client whose classes are all empty is simply a zero-sample client.

>>> import numpy as np
>>> labels = np.array([0, 0, 0, 1, 1, 1, 2, 2])
>>> parts = iid(len(labels), 3, seed=0)
>>> [len(p) for p in parts]
[3, 3, 2]
>>> data = pad({'y': labels}, parts)
>>> data.arrays['y'].shape, data.counts.tolist()
((3, 3), [3, 3, 2])
"""

from __future__ import annotations

import re
from typing import Any, NamedTuple, Sequence

import jax
import numpy as np

PyTree = Any


class ClientData(NamedTuple):
  """Every client's data, padded: ``arrays`` leaves ``[num_clients, max_n, ...]``, ``counts`` int32 ``[num_clients]``.

  Row j of client i is real iff ``j < counts[i]``; padded rows are zeros and never reach a loss unmasked.
  """

  arrays: PyTree
  counts: np.ndarray

  @property
  def num_clients(self) -> int:
    return int(np.shape(self.counts)[0])

  @property
  def max_size(self) -> int:
    return int(np.shape(jax.tree.leaves(self.arrays)[0])[1])


def _check_clients(num_clients, where):
  if not isinstance(num_clients, (int, np.integer)) or num_clients < 1:
    raise ValueError(f'{where}: num_clients must be a positive int, got {num_clients!r}')


def iid(num_examples: int, num_clients: int, *, seed: int = 0) -> list[np.ndarray]:
  """A uniformly random permutation of the examples cut into ``num_clients`` near-equal parts (sizes differ by
  at most one, larger parts first, as ``np.array_split``)."""
  _check_clients(num_clients, 'iid')
  perm = np.random.default_rng(seed).permutation(int(num_examples))
  return [np.sort(p) for p in np.array_split(perm, num_clients)]


def dirichlet(labels: np.ndarray, num_clients: int, alpha: float, *, seed: int = 0, num_classes: int | None = None,
              min_size: int = 0, max_tries: int = 1000) -> list[np.ndarray]:
  """Label-skewed split (Hsu, Qi & Brown 2019, arXiv 1909.06335; the NIID-Bench recipe, arXiv 2102.02079).

  For each class c with n_c examples, draw proportions q_c ~ Dir(alpha 1_N) over the N clients and give client i
  the slice of class c's shuffled indices between ``floor(n_c cumsum(q_c))`` boundaries. Small alpha puts each
  class on few clients (alpha = 0.1: nearly one class per client); alpha -> inf tends to the IID split.
  Empty classes are skipped. ``min_size`` > 0 redraws the whole split (NIID-Bench's rule) until every client holds
  at least ``min_size`` examples, raising a ValueError after ``max_tries`` draws.
  """
  _check_clients(num_clients, 'dirichlet')
  if not alpha > 0:
    raise ValueError(f'dirichlet: alpha must be > 0, got {alpha!r}')
  labels = np.asarray(labels).astype(np.int64)
  num_classes = int(labels.max()) + 1 if num_classes is None else int(num_classes)
  rng = np.random.default_rng(seed)
  for _ in range(max_tries):
    parts = [[] for _ in range(num_clients)]
    for c in range(num_classes):
      idx = np.flatnonzero(labels == c)
      if idx.size == 0:  # an empty class: nothing to split
        continue
      rng.shuffle(idx)
      q = rng.dirichlet(np.full(num_clients, float(alpha)))
      cuts = (np.cumsum(q)[:-1] * idx.size).astype(np.int64)
      for i, piece in enumerate(np.split(idx, cuts)):
        parts[i].append(piece)
    out = [np.sort(np.concatenate(p)) if p else np.zeros(0, np.int64) for p in parts]
    if min(len(p) for p in out) >= min_size:
      return out
  raise ValueError(f'dirichlet: no split with min_size={min_size} in {max_tries} draws '
                   f'(alpha={alpha}, {num_clients} clients, {labels.size} examples)')


def pad(arrays: PyTree, partition: Sequence[np.ndarray], *, max_size: int | None = None) -> ClientData:
  """Stacks every client's rows of every field of ``arrays`` (leaves ``[num_examples, ...]``) to
  ``[num_clients, max_n, ...]``, zero-padded; ``max_size`` caps (keeps the first rows of larger clients)."""
  sizes = np.array([len(p) for p in partition], np.int64)
  width = int(max(1, sizes.max() if max_size is None else max_size))
  counts = np.minimum(sizes, width).astype(np.int32)

  def stack(x):
    x = np.asarray(x)
    out = np.zeros((len(partition), width) + x.shape[1:], x.dtype)
    for i, p in enumerate(partition):
      out[i, :counts[i]] = x[np.asarray(p, np.int64)[:counts[i]]]
    return out

  return ClientData(jax.tree.map(stack, arrays), counts)


# ---------------------------------------------------------------------------------------------- Shakespeare

_SPEAKER = re.compile(r"^([A-Z][A-Za-z' ]*[A-Za-z]):$")


def speakers(text: str) -> dict[str, str]:
  """Tiny Shakespeare's lines grouped by speaker: ``{name: everything the speaker says}`` in order of appearance.

  The file is blocks ``NAME:\\n line\\n line\\n\\n``; each block's lines (joined by newlines) go to NAME. LEAF's
  Shakespeare keys a client by (play, character); tiny Shakespeare has no play titles, so a client is a name
  (``First Citizen`` of every play is one client).
  """
  out: dict[str, list[str]] = {}
  for block in text.split('\n\n'):
    lines = block.strip('\n').split('\n')
    m = _SPEAKER.match(lines[0].strip()) if lines else None
    if m and len(lines) > 1:
      out.setdefault(m.group(1), []).append('\n'.join(lines[1:]))
  return {name: '\n'.join(parts) for name, parts in out.items()}


class CharClients(NamedTuple):
  data: ClientData      # arrays {'x': int32 [N, max_n, seq_len], 'y': int32 [N, max_n]}
  names: list[str]      # the speaker of each client
  vocab: str            # character i of the vocabulary is token i


def by_speaker(text: str, *, seq_len: int = 80, min_samples: int = 64, max_clients: int | None = None,
               max_samples: int | None = None, vocab: str | None = None) -> CharClients:
  """The LEAF Shakespeare recipe (Caldas et al. 2018, arXiv 1812.01097) on tiny Shakespeare: one client per speaker.

  A sample is ``seq_len`` characters of a speaker's text and the character after it (every position, stride 1,
  as LEAF). Speakers with fewer than ``min_samples`` samples are dropped (LEAF drops small users); the
  ``max_clients`` speakers with the most samples are kept, each truncated to its first ``max_samples``
  samples (keeps the padded array small). Characters outside ``vocab`` (all characters of ``text`` by default)
  map to token 0.
  """
  vocab = vocab if vocab is not None else ''.join(sorted(set(text)))
  table = {ch: i for i, ch in enumerate(vocab)}
  by_name = speakers(text)
  sizes = {name: max(0, len(s) - seq_len) for name, s in by_name.items()}
  keep = [n for n in sorted(by_name, key=lambda n: (-sizes[n], n)) if sizes[n] >= min_samples]
  keep = keep[:max_clients] if max_clients is not None else keep
  if not keep:
    raise ValueError(f'by_speaker: no speaker has min_samples={min_samples} samples of seq_len={seq_len}')
  xs, ys = [], []
  for name in keep:
    tokens = np.array([table.get(ch, 0) for ch in by_name[name]], np.int32)
    n = sizes[name] if max_samples is None else min(sizes[name], max_samples)
    windows = np.lib.stride_tricks.sliding_window_view(tokens, seq_len + 1)[:n]
    xs.append(windows[:, :-1])
    ys.append(windows[:, -1])
  offsets = np.cumsum([0] + [len(y) for y in ys])
  parts = [np.arange(offsets[i], offsets[i + 1]) for i in range(len(keep))]
  data = pad({'x': np.concatenate(xs), 'y': np.concatenate(ys)}, parts)
  return CharClients(data, keep, vocab)
