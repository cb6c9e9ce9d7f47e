"""Config of experiments/federated.py: one sub-config per sub-experiment, ``experiment`` picks which runs.

Presets ('' full, 'medium', 'smoke') apply to every sub-config; settings are ``--config.<experiment>.<field>``, e.g.
``--config.benchmark.data_dir=../shared/data/mnist``. Run times on 2 CPU cores:

    python -m experiments.federated --config=experiments/configs/federated.py:<preset> --config.experiment=benchmark
      medium: 8 methods x alpha in {0.1, 1}, 100 rounds (table in the run's table.txt); smoke: 3 methods, 6 rounds.
    ... --config.experiment=shakespeare --config.shakespeare.data_dir=../shared/data/tinyshakespeare
      full: 50 speakers, 150 rounds: next-character accuracy FedAvg 0.309, FedAdam 0.312; 70 s.
      medium: 60 rounds, FedAvg 0.306, FedAdam 0.299; 30 s. smoke (embedded text, 2 speakers): 4 rounds.
    ... --config.experiment=fedstale
      medium: 24 clients, Dir(0.1), beta in {0, 0.5, 1}, 2 seeds: beta = 1 best under both participation laws
      (homogeneous 0.898 / 0.903 / 0.905, heterogeneous 0.838 / 0.884 / 0.903); 4 min (the
      `fedstale_beta_tradeoff` claim).
    ... --config.experiment=fedamd
      medium: 20 clients (the official code's default), 10 a round, K = 10: rounds to 80% FedAvg 25, FedAMD p = 0.2
      35 (final 0.939 vs 0.811); 2.5 min (the `fedamd_partial_participation` claim). With 100 clients (100 rounds,
      one seed): FedAvg 30, FedAMD 65 rounds (0.916 vs 0.760).
      At the code's local lr 0.01 (--config.fedamd.local_learning_rate=0.01 --config.fedamd.target=0.7): FedAvg 40,
      FedAMD 60 rounds to 70% (0.872 vs 0.833).
"""

import ml_collections

PRESETS = ('', 'medium', 'smoke')
BENCHMARK_METHODS = 'fedavg,fedavgm,fedadam,fedyogi,fedprox,fedstale,fedvarp,fedamd'


def benchmark(preset: str) -> ml_collections.ConfigDict:
  """Every method on digits / MNIST, 100 clients, Dirichlet alpha in {0.1, 1}, 10 clients a round."""
  c = ml_collections.ConfigDict()
  c.data_dir = ''              # MNIST IDX folder (../shared/data/mnist); '' = scikit-learn's digits
  c.max_train = 0              # keep the first max_train training images (0: all)
  c.methods = BENCHMARK_METHODS
  c.method_args = 'fedavgm: learning_rate=1.0 momentum=0.5; fedadam: learning_rate=0.01; ' \
                  'fedyogi: learning_rate=0.01; fedprox: mu=0.1; fedstale: beta=0.5; fedamd: anchor_probability=0.2'
  c.alphas = '0.1,1.0'
  c.num_clients = 100
  c.per_round = 10
  c.local_steps = 10
  c.batch_size = 16
  c.local_learning_rate = 0.05
  c.hidden = 64
  c.rounds = 200
  c.eval_every = 5
  c.target = 0.9
  c.backend = 'vmap'
  c.seed = 0
  if preset == 'medium':
    c.rounds = 100
  elif preset == 'smoke':
    c.rounds, c.eval_every, c.alphas, c.num_clients, c.per_round = 6, 3, '0.1', 20, 4
    c.methods = 'fedavg,fedadam,fedprox'
  return c


def shakespeare(preset: str) -> ml_collections.ConfigDict:
  """Tiny Shakespeare by speaker, a small character model: FedAvg against FedAdam."""
  c = ml_collections.ConfigDict()
  c.data_dir = ''              # folder with input.txt (../shared/data/tinyshakespeare); '' = the embedded text
  c.methods = 'fedavg,fedadam'
  c.method_args = 'fedadam: learning_rate=0.01'
  c.context = 16               # characters in a window
  c.embed = 8
  c.hidden = 128
  c.num_clients = 50           # the most talkative speakers
  c.min_samples = 64
  c.max_samples = 400          # windows kept per speaker
  c.test_fraction = 0.2        # each speaker's last windows held out (LEAF's per-user split)
  c.per_round = 10
  c.local_steps = 10
  c.batch_size = 16
  c.local_learning_rate = 0.5
  c.rounds = 150
  c.eval_every = 10
  c.target = 0.35
  c.seed = 0
  if preset == 'medium':
    c.rounds = 60
  elif preset == 'smoke':
    c.num_clients, c.min_samples, c.max_samples, c.per_round, c.rounds, c.eval_every = 2, 16, 64, 2, 4, 2
    c.local_steps, c.hidden = 2, 32
  return c


def fedstale(preset: str) -> ml_collections.ConfigDict:
  """FedStale's beta across homogeneous and heterogeneous participation (Bernoulli per client)."""
  c = ml_collections.ConfigDict()
  c.data_dir = ''
  c.max_train = 0
  c.num_clients = 24           # the FedStale paper's MNIST setting
  c.alpha = 0.1
  c.laws = 'homogeneous,heterogeneous'
  c.p_homogeneous = 0.5
  c.p_high, c.p_low = 0.9, 0.1  # half the clients each: the same mean participation 0.5
  c.betas = '0.0,0.25,0.5,0.75,1.0'
  c.local_steps = 5
  c.batch_size = 16
  c.local_learning_rate = 0.05
  c.hidden = 64
  c.rounds = 150
  c.eval_every = 10
  c.tail = 5                   # score: the mean accuracy over the last tail evaluations
  c.seeds = 3
  c.seed = 0
  if preset == 'medium':
    c.rounds, c.betas, c.seeds = 100, '0.0,0.5,1.0', 2
  elif preset == 'smoke':
    c.num_clients, c.rounds, c.eval_every, c.tail, c.betas, c.seeds = 8, 4, 2, 1, '0.0,1.0', 1
  return c


def fedamd(preset: str) -> ml_collections.ConfigDict:
  """FedAMD (anchor probability p) against FedAvg at the same local steps, 100 clients, partial participation."""
  c = ml_collections.ConfigDict()
  c.data_dir = ''
  c.max_train = 0
  c.num_clients = 100
  c.alpha = 0.1
  c.per_round = '10'           # participants per round (a comma list compares participation levels)
  c.methods = 'fedavg,fedamd_p0.2,fedamd_p0.5'
  c.local_steps = 10
  c.batch_size = 16
  c.local_learning_rate = 0.05
  c.hidden = 64
  c.rounds = 200
  c.eval_every = 5
  c.target = 0.8
  c.seeds = 2
  c.seed = 0
  if preset == 'medium':  # the official code's defaults: 20 clients, 10 a round, p = 0.2
    c.num_clients, c.rounds, c.seeds, c.methods = 20, 100, 1, 'fedavg,fedamd_p0.2'
  elif preset == 'smoke':
    c.num_clients, c.per_round, c.rounds, c.eval_every, c.seeds = 20, '4', 4, 2, 1
    c.methods, c.local_steps = 'fedavg,fedamd_p0.5', 3
  return c


def fedspeed(preset: str) -> ml_collections.ConfigDict:
  """FedSpeed vs FedAvg at local intervals K, digits, Dirichlet 0.1 (experiments/lib/federated/fedspeed.py)."""
  c = ml_collections.ConfigDict()
  c.data_dir = ''
  c.num_clients = 100
  c.per_round = 10
  c.alpha_dirichlet = 0.1
  c.local_steps = '5,20'       # the local intervals K compared
  c.batch_size = 16
  c.local_learning_rate = 0.05
  c.hidden = 64
  c.lam = 10.0                 # prox weight 1 / lam = 0.1, the official code's --lamb
  c.alpha = 0.9
  c.rho = 0.1
  c.rounds = 50
  c.eval_every = 5
  c.target = 0.85
  c.seeds = 2
  c.backend = 'vmap'
  if preset == 'smoke':
    c.rounds, c.eval_every, c.num_clients, c.per_round, c.seeds, c.local_steps = 4, 2, 20, 4, 1, '2,4'
  return c


def fedsvd(preset: str) -> ml_collections.ConfigDict:
  """FedSVD vs FFA-LoRA vs FedAvg-LoRA under DP-SGD, a LoRA head on frozen random features of digits."""
  c = ml_collections.ConfigDict()
  c.data_dir = ''
  c.features = 256             # width of the frozen random ReLU feature map (the "backbone")
  c.rank = 4
  c.num_clients = 20
  c.per_round = 10
  c.alpha_dirichlet = 0.5
  c.local_steps = 5
  c.sampling_rate = 0.2        # Poisson rate of a DP-SGD batch over the client's rows
  c.l2_norm_clip = 1.0
  c.learning_rate = 0.5        # the official DP script's SGD learning rate
  c.epsilons = '6,0'           # 0: no DP
  c.delta = 1e-5
  c.rounds = 30
  c.eval_every = 10
  c.seeds = 1
  c.backend = 'vmap'
  if preset == 'smoke':
    c.rounds, c.eval_every, c.num_clients, c.per_round, c.seeds, c.local_steps = 3, 3, 8, 4, 1, 2
  return c


def curricula(preset: str) -> ml_collections.ConfigDict:
  """FedAvg with curriculum / anti / random orderings of the clients' data, Dirichlet 0.1 vs IID."""
  c = ml_collections.ConfigDict()
  c.data_dir = ''
  c.expert_fraction = 0.1      # training rows held out for the scoring model
  c.expert_epochs = 200        # full-batch Adam steps of the scoring model
  c.alphas = '0.1,0'           # Dirichlet alphas; 0 = IID
  c.orderings = 'none,curriculum,anti,random'
  c.pacing = 'linear'
  c.pacing_a = 0.8             # the full data is reached at a x rounds
  c.pacing_b = 0.2             # the first round sees b x n_i rows
  c.num_clients = 50
  c.per_round = 10
  c.local_steps = 10
  c.batch_size = 16
  c.local_learning_rate = 0.05
  c.hidden = 64
  c.rounds = 30
  c.eval_every = 3
  c.last_evals = 3
  c.seeds = 2
  c.backend = 'vmap'
  if preset == 'smoke':
    c.rounds, c.eval_every, c.last_evals, c.num_clients, c.per_round, c.expert_epochs = 3, 3, 1, 8, 4, 5
    c.alphas, c.orderings = '0.1', 'none,curriculum'
  return c


SUB_CONFIGS = {'benchmark': benchmark, 'shakespeare': shakespeare, 'fedstale': fedstale, 'fedamd': fedamd}
SUB_CONFIGS['fedspeed'] = fedspeed
SUB_CONFIGS['fedsvd'] = fedsvd
SUB_CONFIGS['curricula'] = curricula


def get_config(preset: str = ''):
  if preset not in PRESETS:
    raise ValueError(f'unknown preset {preset!r}; known: {", ".join(p for p in PRESETS if p)}')
  c = ml_collections.ConfigDict()
  c.experiment = 'benchmark'   # which sub-experiment runs (see experiments/lib/federated)
  c.record = False             # write experiments/results/<claim>.json (only with a claim's exact config)
  for name, make in SUB_CONFIGS.items():
    c[name] = make(preset)
  return c
