"""Config of experiments/decentralized.py: one sub-config per sub-experiment, ``experiment`` picks which runs.

Presets ('' full, 'smoke') apply to every sub-config; settings are ``--config.<experiment>.<field>``, e.g.
``--config.dfedsam.rounds=50``. Run times on 2 CPU cores:

    python -m experiments.decentralized --config=experiments/configs/decentralized.py:<preset> \
        --config.experiment=dfedsam
      full: DFedAvg / DFedSAM / DFedSAM-MGS Q = 2, 4 on a ring and an Erdos-Renyi graph of 16; ring accuracy
      0.857 / 0.859 / 0.884 / 0.906, consensus distance 0.27 -> 0.037; 2 min on a loaded machine (the
      `dfedsam_mgs_consistency` claim). smoke: 8 workers, a ring, Q = 1, 2; 40 s.
    ... --config.experiment=merging
      full: FedAvg (a server every 10 steps) against one global merge after gossip every 1, 10, 50 steps, none,
      or every step from step 541 (late); 16 workers, Dirichlet 0.1, 600 steps; 3 min (the
      `single_merge_recovers_fedavg` claim). smoke: 1 min.
    ... --config.experiment=variance
      full: var(average of k independent inits) / var = 0.49, 0.25, 0.125, 0.064 for k = 2, 4, 8, 16, corrected
      1.00; gossip learning from independent inits: accuracy at round 30 0.36 plain, 0.66 corrected, 0.65 shared
      init; 5 min on a loaded machine (the `vanishing_variance` claim). smoke: 1.5 min.
    ... --config.experiment=disruption
      full: 32 nodes (30% relays without data), 20% of the nodes or links lost at round 20 of 60, Barabasi-Albert
      and Erdos-Renyi; 3 min (the `disrupted_p2p` claim). smoke: 30 s.
    ... --config.experiment=modest
      full: 32 nodes, Dirichlet 0.3, log-normal clocks; MoDeST (s = 8, a = 2, sf = 0.75) under churn (10% task
      dropouts, half the nodes leave at t = 20) reaches 0.85 at t = 45 against 52 for churn-free FedAvg; D-SGD on a
      4-regular graph under the same churn does not reach it in 80 rounds (0.69); 40 s (the
      `modest_time_to_accuracy` claim). smoke: 25 s. ``--config.modest.weighted=True`` weights the averages by the
      trainers' data sizes (FedAvg's) instead of the MoDeST code's plain mean.
    ... --config.experiment=dadao
      full: digits ridge regression on 16 nodes (ring, 4 x 4 torus), kappa = 10, 100, 1000; gradients per node per
      decade of error 45 / 118 / 333 on the ring (kappa exponent 0.43; torus 0.44); then at kappa = 100 the
      complete, exponential, torus and ring graphs: communications per node per decade 88 / 114 / 122 / 291 against
      sqrt(chi1 chi2) = 7.5 / 10.4 / 11.0 / 28.1 (exponent 0.91), gradients 118-135; the non-accelerated
      primal-dual baseline on the ring, its dual step tuned on a grid: 95 / 1522 / 3893 gradients per decade
      (exponent 0.81); 2.4 min on a loaded machine (the `dadao_acceleration` and `dadao_communication` claims).
      smoke: 8 nodes, a ring, kappa = 10, 40, the complete graph against the ring at kappa = 10; 45 s.
"""

import ml_collections

PRESETS = ('', 'smoke')


def dfedsam(preset: str) -> ml_collections.ConfigDict:
  """DFedSAM and DFedSAM-MGS against D-SGD/DFedAvg on digits, Q gossip steps per round, on a ring and a random graph."""
  c = ml_collections.ConfigDict()
  c.num_workers = 16
  c.alpha = 0.3                # Dirichlet label split
  c.topologies = 'ring,erdos_renyi'
  c.p = 0.25                   # Erdos-Renyi edge probability
  c.rho = 0.05                 # SAM radius
  c.qs = '1,2,4'               # gossip steps per round of DFedSAM-MGS
  c.rounds = 60
  c.local_steps = 5
  c.batch_size = 32
  c.learning_rate = 0.1
  c.hidden = 64
  c.seeds = '0'
  c.eval_every = 10
  c.seed = 0
  if preset == 'smoke':
    c.num_workers, c.rounds, c.qs, c.topologies, c.eval_every = 8, 6, '1,2', 'ring', 3
  return c


def merging(preset: str) -> ml_collections.ConfigDict:
  """D-SGD with sparse or late gossip and one exact global average at the end, against FedAvg."""
  c = ml_collections.ConfigDict()
  c.num_workers = 16
  c.alpha = 0.1
  c.steps = 600
  c.gossip_every = '1,10,50,0,1@541'  # k: every k steps; 0: no gossip before the merge; k@t0: from step t0 on
  c.fedavg_every = 10            # FedAvg: local SGD averaged by a server every H steps
  c.batch_size = 32
  c.learning_rate = 0.05
  c.hidden = 64
  c.eval_every = 100
  c.seed = 0
  if preset == 'smoke':
    c.num_workers, c.steps, c.gossip_every, c.eval_every = 8, 40, '1,0', 20
  return c


def variance(preset: str) -> ml_collections.ConfigDict:
  """Averaging k independently initialised models, with and without variance correction, then gossip learning."""
  c = ml_collections.ConfigDict()
  c.ks = '2,4,8,16'            # number of models averaged for the variance measurement
  c.num_workers = 16
  c.alpha = 0.0                # 0 = IID split
  c.degree = 3                 # expected degree of the Erdos-Renyi graph
  c.rounds = 200               # one local step and one gossip step per round
  c.batch_size = 32
  c.learning_rate = 0.1
  c.hidden = 64
  c.eval_every = 10
  c.early_round = 30           # the early-round accuracy is read here
  c.target = 0.8               # rounds to this mean local accuracy
  c.seed = 0
  if preset == 'smoke':
    c.num_workers, c.ks, c.rounds, c.eval_every, c.early_round = 8, '2,8', 20, 10, 10
  return c


def disruption(preset: str) -> ml_collections.ConfigDict:
  """Losing data nodes, relay nodes or links at a chosen round on Barabasi-Albert and Erdos-Renyi graphs."""
  c = ml_collections.ConfigDict()
  c.num_workers = 32
  c.relay_fraction = 0.3       # nodes without data (they only relay models)
  c.graphs = 'barabasi_albert,erdos_renyi'
  c.scenarios = 'none,data_nodes,relay_nodes,links'
  c.m = 2                      # Barabasi-Albert attachment
  c.p = 0.12                   # Erdos-Renyi edge probability
  c.fail_round = 20
  c.fraction = 0.2             # share of the nodes (or of the links) lost
  c.rounds = 60
  c.local_steps = 2
  c.batch_size = 16
  c.learning_rate = 0.05
  c.hidden = 64
  c.eval_every = 5
  c.seed = 0
  if preset == 'smoke':
    c.num_workers, c.graphs, c.scenarios, c.fail_round, c.rounds, c.eval_every = (
        10, 'barabasi_albert', 'none,relay_nodes', 2, 4, 2)
  return c


def srrw(preset: str) -> ml_collections.ConfigDict:
  """SA-SRRW token SGD: the scaled error of the iterates against the repellence alpha, per step-size regime."""
  c = ml_collections.ConfigDict()
  c.num_workers = 30
  c.p = 0.15                   # Erdos-Renyi edge probability
  c.dirichlet = 0.3            # label split giving each agent its own centre c_i
  c.alphas = '0,1,2,5,10,20'
  c.regimes = '0.8:0.9,0.9:0.8'  # a:b, gamma_n = (n+1)^-a (visit measure), beta_n = (n+1)^-b (iterates)
  c.steps = 20000
  c.replicas = 100
  c.seed = 0
  if preset == 'smoke':
    c.num_workers, c.alphas, c.regimes, c.steps, c.replicas = 8, '0,5', '0.8:0.9', 200, 4
  return c


def dimat(preset: str) -> ml_collections.ConfigDict:
  """DIMAT merging (aligned neighbours) against plain averaging on a ring, non-i.i.d. digits, few merges."""
  c = ml_collections.ConfigDict()
  c.num_workers = 8
  c.dirichlet = 0.1            # near two classes per agent
  c.inits = 'independent,shared'
  c.pretrain_steps = 200
  c.rounds = 6
  c.local_steps = 50
  c.match_batch = 200          # the agent's own rows used for activation matching
  c.batch_size = 32
  c.learning_rate = 0.05
  c.hidden = 64
  c.seed = 0
  if preset == 'smoke':
    c.num_workers, c.inits, c.pretrain_steps, c.rounds, c.local_steps = 4, 'independent', 10, 3, 5
  return c


def bristle(preset: str) -> ml_collections.ConfigDict:
  """Bristle's class-wise integration against robust gossip rules: frozen features, non-i.i.d., Byzantine peers."""
  c = ml_collections.ConfigDict()
  c.num_workers = 20
  c.byzantine = 6              # the last f peers (30%)
  c.dirichlet = 0.1            # a few classes per peer
  c.features = 256             # frozen random ReLU features
  c.val_per_class = 5          # each peer's i.i.d. validation samples per class
  c.attacks = 'none,sign_flipping,a_little_is_enough,gaussian,label_flipping'
  c.rules = 'mean,trimmed_mean,median,monna,bristle'
  c.exploit = 8
  c.explore = 3
  c.rounds = 20
  c.local_steps = 10
  c.batch_size = 32
  c.learning_rate = 0.5
  c.seed = 0
  if preset == 'smoke':
    c.num_workers, c.byzantine, c.attacks, c.rules, c.rounds, c.exploit, c.explore = (
        6, 1, 'sign_flipping', 'mean,bristle', 2, 2, 1)
  return c


def sybilwall(preset: str) -> ml_collections.ConfigDict:
  """A targeted (1 -> 7) Sybil attack on gossip learning: plain, neighbourhood FoolsGold, SybilWall gossip."""
  c = ml_collections.ConfigDict()
  c.honest = 24
  c.degree = 4                 # random regular graph on the honest nodes
  c.sybils = '4,12'            # Sybils (a clique), one attack edge each to a distinct honest node
  c.forward_probs = '0.3'      # SybilWall's gossip forwarding probability
  c.dirichlet = 1.0
  c.source, c.target = 1, 7    # the targeted label flip
  c.boost = 10.0               # the Sybils scale their update (model replacement)
  c.rounds = 30
  c.local_steps = 5
  c.batch_size = 32
  c.learning_rate = 0.3
  c.seed = 0
  if preset == 'smoke':
    c.honest, c.sybils, c.rounds = 8, '2', 2
  return c


def modest(preset: str) -> ml_collections.ConfigDict:
  """MoDeST under churn against churn-free FedAvg and D-SGD under the same churn: time and bytes to a target."""
  c = ml_collections.ConfigDict()
  c.num_nodes = 32
  c.alpha = 0.3                # Dirichlet label split
  c.sample_size = 8            # s trainers per round
  c.num_aggregators = 2        # a
  c.success_fraction = 0.75    # sf
  c.weighted = False           # weight the averages by the trainers' data sizes (FedAvg's); False: the code's mean
  c.timeout = 6.0              # simulated time units (a task takes about 1)
  c.sigma = 0.5                # log-normal compute times
  c.dropout = 0.1              # a task's result is lost, the node away for rejoin_after
  c.rejoin_after = 3.0
  c.churn_time = 20.0          # half of the nodes leave for good
  c.degree = 4                 # D-SGD's regular graph (even degree)
  c.rounds = 80
  c.dsgd_rounds = 80
  c.local_steps = 5
  c.batch_size = 16
  c.learning_rate = 0.1
  c.hidden = 32
  c.target = 0.85
  c.seed = 0
  if preset == 'smoke':
    c.num_nodes, c.sample_size, c.rounds, c.dsgd_rounds, c.churn_time = 12, 4, 6, 4, 2.0
  return c


def dadao(preset: str) -> ml_collections.ConfigDict:
  """DADAO on Poisson clocks: digits ridge regression, log-error slope and events per decade against kappa."""
  c = ml_collections.ConfigDict()
  c.num_nodes = 16
  c.dirichlet = 0.3            # label split: heterogeneous nodes
  c.graphs = 'ring,torus'
  c.kappas = '10,100,1000'
  c.horizon = 100.0            # run for horizon * sqrt(kappa) time units (rate-1 gradient clock per node)
  c.sweep_graphs = 'complete,exponential,torus,ring'  # the chi1 chi2 sweep, at kappa = sweep_kappa
  c.sweep_kappa = 100.0
  c.baseline_scales = '1,4,16,64,256,1024,4096'  # the baseline's dual steps, times the critically damped one
  c.baseline_horizon = 2.0     # it runs this many times as long as DADAO
  c.seed = 0
  if preset == 'smoke':
    c.num_nodes, c.graphs, c.kappas, c.horizon, c.sweep_graphs, c.sweep_kappa = 8, 'ring', '10,40', 60.0, \
        'complete,ring', 10.0
    c.baseline_scales = '4,16'
  return c


SUB_CONFIGS = {
    'dfedsam': dfedsam,
    'merging': merging,
    'variance': variance,
    'disruption': disruption,
    'srrw': srrw,
    'dimat': dimat,
    'bristle': bristle,
    'sybilwall': sybilwall,
    'modest': modest,
    'dadao': dadao,
}


def get_config(preset: str = ''):
  if preset not in PRESETS:
    raise ValueError(f'unknown preset {preset!r}; known: {", ".join(p for p in PRESETS if p)}')
  c = ml_collections.ConfigDict()
  c.experiment = 'dfedsam'  # which sub-experiment runs: a key of experiments.lib.decentralized.EXPERIMENTS
  c.record = False          # write experiments/results/<claim>.json (only with a claim's exact config)
  for name, make in SUB_CONFIGS.items():
    c[name] = make(preset)
  return c
