"""Config of experiments/asynchronous.py: one sub-config per sub-experiment, ``experiment`` picks which runs.

Presets ('' full, 'smoke') apply to every sub-config; settings are ``--config.<experiment>.<field>``. Run times on
2 loaded CPU cores:

    python -m experiments.asynchronous --config.experiment=async_fl
      full: 10 clients Dir(0.1), F-80, T = 40, 3 seeds: excess federated loss F - F* 0.075 (async, identical
      weights) vs 0.037 (speed-corrected), slow-minus-fast excess +0.165 vs +0.011; FedBuff-5 0.069 vs 0.041;
      FedFix-0.5 0.062; sync FedAvg 0.179 (slower in simulated time); 80 s (the `async_fl_speed_bias` claim).
    python -m experiments.asynchronous --config.experiment=gradient_coding
      full: 256 workers, 100 jobs, 3 seeds: M-SGC +17.1% faster than the best GC under iid stragglers, -11.1%
      under Markov straggler bursts; every decoded gradient exact; 95 s (the `sgc_runtime_gain` claim).
    ... :smoke   seconds, for tests.

    python -m experiments.asynchronous --config.experiment=fzoos
      full: d = 10, 5 clients, 10 rounds x 10 local steps, 3 seeds: FZooS reaches F - F* <= 0.02 after a median
      980 queries (3/3 seeds; final gap 0.018 after 2450), FedZO-SPSA (q = 10) in 1/3 seeds within 10000 (final
      0.036), FZooS without correction never (0.042); 250 s (the `fzoos_query_efficiency` claim).
    python -m experiments.asynchronous --config.experiment=sketching
      full: accuracy dense 0.953, sketched b/d = 0.5 0.958, b/d = 0.2 0.953 (a fifth of the bytes); one-example
      inversion recovers 100% (b/d = 1) and 80% (b/d = 0.2) of 20 test images, 0% at b/d <= 0.1 and 0% with noise
      sigma >= 0.01; 280 s (the `sketching_leakage` claim).
"""

import ml_collections

PRESETS = ('', 'smoke')


def async_fl(preset: str) -> ml_collections.ConfigDict:
  """Async FedAvg (identical / speed-corrected weights), FedBuff, FedFix and sync FedAvg on Dirichlet digits."""
  c = ml_collections.ConfigDict()
  c.methods = 'sync,async_identical,async_weight,fedbuff_identical,fedbuff_weight,fedfix_weight'
  c.num_clients = 10           # M, as the paper
  c.alpha = 0.1                # Dirichlet label skew
  c.faster_percent = 80.0      # the F-80 scenario: tau_i in [0.2, 1]
  c.jitter = 0.1               # log-normal sigma on every task time
  c.total_time = 40.0          # simulated time budget
  c.l2 = 1e-2                  # ridge on the weights: a unique federated optimum
  c.local_steps = 10
  c.batch_size = 16
  c.local_lr = 0.1
  c.server_lr = 1.0            # eta_g of sync FedAvg, FedBuff and FedFix
  c.async_server_lr = 0.2      # eta_g of async FedAvg (one client per step, stale: unstable at 1.0 here)
  c.buffer = 5                 # FedBuff K
  c.period = 0.5               # FedFix Delta t
  c.eval_every = 1.0           # simulated time between evaluations
  c.tail = 0.25                # average the last quarter of the run
  c.optimum_steps = 2000       # full-batch GD for w*
  c.seeds = 3
  c.seed = 0                   # the data split
  if preset == 'smoke':
    c.methods = 'sync,async_identical,async_weight'
    c.total_time, c.seeds, c.optimum_steps, c.num_clients = 4.0, 1, 50, 4
  return c


def gradient_coding(preset: str) -> ml_collections.ConfigDict:
  """GC, SR-SGC and M-SGC (best parameters each) against uncoded and ignoring stragglers, in simulated time."""
  c = ml_collections.ConfigDict()
  c.num_workers = 256          # the paper's AWS Lambda experiment
  c.jobs = 100
  c.mu = 0.2                   # the master waits (1 + mu) x the fastest worker
  c.compute = 0.05             # compute time of one uncoded task (1/n of a job), relative to a latency of ~1
  c.latency_sigma = 0.02       # log-normal jitter of the latency
  c.straggler_factor = 3.0
  c.regimes = 'iid:0.01:0.0,bursty:0.005:0.5'   # name:straggler_prob:straggler_persist
  c.gc_s = '1,2,3,4,6,8,12,16,24,32'
  c.B = '1,2,3'
  c.W = '2,3,4,6'
  c.lam = '1,2,4,8,16,32'
  c.check_jobs = 10            # decode real least-squares gradients along the best schemes' patterns
  c.seeds = 3
  if preset == 'smoke':
    c.num_workers, c.jobs, c.gc_s, c.B, c.W, c.lam, c.seeds, c.check_jobs = 16, 20, '1,3', '1', '2,3', '1,3', 1, 3
  return c


def fzoos(preset: str) -> ml_collections.ConfigDict:
  """FZooS (with and without its correction) against FedZO-SPSA on heterogeneous synthetic functions."""
  c = ml_collections.ConfigDict()
  c.methods = 'fzoos,fzoos_nocorr,fedzo'
  c.dim = 10
  c.num_clients = 5
  c.bump = 1.0                 # weight of the cosine bumps (non-quadratic part)
  c.x0 = 2.0                   # start at x0 * ones
  c.rounds = 10
  c.local_steps = 10
  c.lr = 0.1                   # Adam, as the official code
  c.q = 10                     # FedZO directions per step (2q queries)
  c.num_features = 500         # M random features (code: 10000)
  c.rff_queries = 200          # queries nu_i is fitted on (code: 500)
  c.num_nearest = 60           # queries the local GP is fitted on (code: 150)
  c.round_explore = 20         # queries near x at a round's start (code: 50)
  c.explore_per_step = 2       # queries after each local step (code: 5)
  c.lengthscale = 1.0
  c.target = 0.02              # F - F* to reach
  c.seeds = 3
  if preset == 'smoke':
    c.dim, c.num_clients, c.rounds, c.local_steps, c.seeds, c.num_features, c.rff_queries = 3, 2, 2, 3, 1, 50, 30
    c.num_nearest, c.round_explore, c.q, c.target = 20, 5, 2, 1.0
  return c


def sketching(preset: str) -> ml_collections.ConfigDict:
  """Count-sketched FedAvg on Dirichlet digits (accuracy, bytes) and the inversion of sketched gradients."""
  c = ml_collections.ConfigDict()
  c.num_clients = 10
  c.alpha = 0.5
  c.seed = 0
  c.rounds = 100
  c.local_steps = 5
  c.local_lr = 0.5
  c.server_lr = 1.0
  c.rows = 1                   # count-sketch rows (the mean decoder: E[R^T R] = I)
  c.ratios = '0.5,0.2'         # table size b / d of the sketched runs
  c.attack_ratios = '1.0,0.2,0.1,0.05'
  c.sigmas = '0.0,0.01,0.1'    # Gaussian noise on the sketch (the defence)
  c.attack_examples = 20
  if preset == 'smoke':
    c.rounds, c.ratios, c.attack_ratios, c.sigmas, c.attack_examples, c.num_clients = 3, '0.2', '0.2', '0.0,0.1', 2, 4
  return c


SUB_CONFIGS = {'async_fl': async_fl, 'gradient_coding': gradient_coding, 'fzoos': fzoos, 'sketching': sketching}


def get_config(preset: str = ''):
  if preset not in PRESETS:
    raise ValueError(f'unknown preset {preset!r}; known: {", ".join(p for p in PRESETS if p)}')
  c = ml_collections.ConfigDict()
  c.experiment = 'async_fl'   # which sub-experiment runs: async_fl, gradient_coding, fzoos or sketching
  c.record = False            # write experiments/results/<claim>.json (only with a claim's exact config)
  for name, make in SUB_CONFIGS.items():
    c[name] = make(preset)
  return c
