# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Asynchronous and straggler-tolerant training
#
# Clients that are slow, late or expensive to query, on the host-side event simulator `decentral.sim`: a recorded
# trace with staleness and simulated wall-clock; asynchronous FedAvg and the aggregation weights that remove its
# bias toward fast clients (Fraboni et al., 2206.10189); sequential gradient coding (Krishnan et al., 2211.13802);
# FZooS, federated zeroth-order optimisation with surrogate gradients (Shu et al., 2308.04077); and sketched
# updates with what the server can still read from them (Song et al., 2210.08371). CPU, seconds.

# %%
import sys

if 'google.colab' in sys.modules:  # Colab only: fetch the repository (notebooks import its experiments/)
  import os
  import subprocess
  subprocess.run(['git', 'clone', '-q', 'https://github.com/polyak-dev/polyak'], check=False)
  os.chdir('polyak')
  subprocess.run([sys.executable, '-m', 'pip', 'install', '-q', '-e', '.'], check=True)

# %%
import json
import tempfile

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np

from decentral.federated import asynchronous as afl
from decentral.federated import sketched as sk
from decentral.federated import surrogate_zeroth_order as sz
from decentral.sim import gradient_coding as gc
from decentral.sim.clocks import Clock
from decentral.sim.server import Trace, simulate
from experiments.configs import asynchronous as cfg
from experiments.lib import asynchronous as experiment
from experiments.lib.common import results

jax.config.update('jax_enable_x64', True)

# %% [markdown]
# ## 1. The simulator: a trace, staleness, wall-clock
#
# Four clients with nominal task times 0.3, 0.5, 1 and 2 (log-normal jitter). Asynchronous FedAvg steps at every
# arrival; a slow client's result is stale (trained on an old model version). The trace is plain data: it
# serialises to JSON and replays exactly.

# %%
clock = Clock(4, law='lognormal', sigma=0.1, scale=[0.3, 0.5, 1.0, 2.0], seed=0)
trace = simulate(clock, 'async', total_time=6.0)
for s in trace.steps[:6]:
  print(f'step {s.index}: t={s.time:.2f} clients {s.clients} trained on versions {s.versions}')
stale = [st for row in trace.staleness() for st in row]
print('steps', len(trace.steps), '| mean staleness', np.mean(stale), '| wall-clock', round(trace.wall_clock(), 2))
sync = simulate(clock, 'sync', total_time=6.0)
print('sync FedAvg in the same time:', len(sync.steps), 'rounds (each waits for the slowest client)')
assert Trace.from_json(trace.to_json()).steps == trace.steps
print('participation (fraction of steps each client is in):', np.round(trace.participation(), 2))

# %% [markdown]
# ## 2. Asynchronous FedAvg: the bias toward fast clients and the weights that remove it
#
# Plain asynchronous averaging (d_i = 1) weights client i by how often it returns; on non-IID data the model
# leans toward the fast clients. The weights d_i = p_i / pi_i correct it. A tiny run of the experiment
# (`python -m experiments.asynchronous --config.experiment=async_fl`); the recorded full-size numbers follow.

# %%
c = cfg.get_config('smoke')
c.async_fl.update(total_time=3.0, optimum_steps=50, local_steps=5, methods='async_identical,async_weight')
rows = experiment.async_fl.run(c.async_fl, results.Writer(tempfile.mkdtemp(), c))
print(experiment.async_fl.table(rows))
print('weights of this trace, identical vs corrected:', afl.aggregation_weights(trace, kind='identical').round(2),
      afl.aggregation_weights(trace).round(2))

# %%
import os  # noqa: E402  (the recorded claim, if present)
path = os.path.join('experiments', 'results', 'async_fl_speed_bias.json')
if os.path.exists(path):
  print(json.dumps(json.load(open(path)).get('measured', {}), indent=1)[:800])

# %% [markdown]
# ## 3. Sequential gradient coding
#
# Gradient coding decodes the exact full gradient from any n - s workers, and says "failure" (never a wrong
# gradient) beyond. Enumerated for n = 6, s = 2:

# %%
n, s = 6, 2
code = gc.frc_code(n, s)
g_units = np.random.default_rng(0).normal(size=(n, 3))
ok = fail = 0
for k in range(n + 1):
  for stragglers in __import__('itertools').combinations(range(n), k):
    alive = np.ones(n, bool)
    alive[list(stragglers)] = False
    a = gc.decode(code, alive)
    if a is None:
      assert k > s   # failure is reported only beyond the tolerated pattern
      fail += 1
    else:
      assert np.allclose((a @ code) @ g_units, g_units.sum(0)) and k <= n - n // (s + 1)
      ok += 1
print(f'{ok} straggler patterns decoded exactly, {fail} reported as failures (all with more than {s} stragglers)')

# %% [markdown]
# In time: M-SGC spreads a job over W - 1 + B rounds with a lower per-worker load than GC; the master waits
# (1 + mu) x the fastest worker. A small run (the full one is `--config.experiment=gradient_coding`):

# %%
c = cfg.get_config('smoke')
c.gradient_coding.update(jobs=10, regimes='iid:0.05:0.0')
rows = experiment.gradient_coding.run(c.gradient_coding, results.Writer(tempfile.mkdtemp(), c))
print(experiment.gradient_coding.table(rows))

# %% [markdown]
# ## 4. FZooS: surrogate gradients from the query history
#
# Each client fits a GP to its past queries (the gradient of its posterior mean is the local surrogate gradient)
# and sends random-feature weights nu_i; the server's average gives a global surrogate, and the local step adds
# the correction grad F^ - grad f^_i. Against FedZO with SPSA gradients (2q queries per step), on heterogeneous
# quadratics with cosine bumps:

# %%
c = cfg.get_config('')
fc = c.fzoos
fc.update(dim=5, num_clients=3, rounds=4, local_steps=5, num_features=200, rff_queries=80, num_nearest=40,
          round_explore=10, explore_per_step=1)
fs, big_f, f_star = experiment.fzoos.problem(fc, 0)
curves = {}
for name, fn, kw in (('FZooS', sz.fzoos, dict(num_features=200, rff_queries=80, num_nearest=40, round_explore=10,
                                               explore_per_step=1)),
                     ('FedZO (SPSA, q=10)', sz.fedzo, dict(num_directions=10))):
  log = []
  fn(fs, np.full(5, 2.0), rounds=4, local_steps=5, callback=lambda r, x, q: log.append((q, big_f(x) - f_star)), **kw)
  curves[name] = np.array(log)
for name, cv in curves.items():
  plt.semilogy(cv[:, 0], cv[:, 1], 'o-', label=name)
plt.xlabel('function queries (all clients)'); plt.ylabel('F - F*'); plt.legend(); plt.show()

# %% [markdown]
# ## 5. Sketched updates, and what the server can still read
#
# A client's update is sent as a count sketch R Delta (b << d numbers); the server desketches with R^T. But R is
# public to the server: for a softmax-regression client with one example, the sketch of its gradient is linear in
# the example once the softmax residual is fixed, and alternating least squares recovers the image exactly when
# b exceeds its 64 pixels. Gaussian noise on the sketch (the paper's differential-privacy remedy) stops it.

# %%
from sklearn.datasets import load_digits  # noqa: E402
digits = load_digits()
a, y = jnp.asarray(digits.data[0] / 16.0), int(digits.target[0])
rng = np.random.default_rng(0)
w, b = jnp.asarray(0.1 * rng.normal(size=(10, 64))), jnp.zeros(10)
d = 10 * 64 + 10
r = sk.sketch_matrix(jax.random.key(1), d, rows=1, cols=130)   # b / d = 0.2
s = r @ sk.linear_gradient(a, y, w, b)
fig, axes = plt.subplots(1, 3, figsize=(6, 2))
for ax, (title, sig) in zip(axes, (('client image', None), ('from sketch', 0.0), ('sketch + noise 0.1', 0.1))):
  img = a if sig is None else sk.invert_sketched_gradient(sk.noisy_sketch(s, jax.random.key(2), sig), r, y, 10)
  ax.imshow(np.asarray(img).reshape(8, 8), cmap='gray'); ax.set_title(title, fontsize=8); ax.axis('off')
plt.show()
print(f'bytes per round: dense {d * 8}, sketched {130 * 8 + 8} (float64 table + the shared key)')
