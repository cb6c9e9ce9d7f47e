"""Config of experiments/communication.py: one sub-config per sub-experiment, ``experiment`` picks which runs.

Presets ('' full, 'medium', 'smoke') apply to every sub-config; settings are ``--config.<experiment>.<field>``,
e.g. ``--config.ef21.data_dir=../shared/data/libsvm --config.ef21.dataset=a9a``. Run times on 2 CPU cores:

    python -m experiments.communication --config=experiments/configs/communication.py:<preset> --config.experiment=ef21
      full: bytes to |grad f|^2 < 1e-3 |grad f(x0)|^2, EF21 / EF21-W = 1.00x, 1.22x, 1.68x at spreads 1, 3, 10
      (L_QM/L_AM 1.01, 1.25, 1.68); 21 s. medium: the same gains; 12 s (the `ef21_w_gain` claim).
      smoke: 1.04x, 1.53x at spreads 1, 5; 7 s.
    ... --config.experiment=dgc --config.dgc.data_dir=../shared/data/mnist
      full: DGC at 0.1% density 298x after warm-up (40x over the run), test accuracy 0.9600 against dense 0.9655;
      4 min (the `dgc_ratio` claim). Without data_dir (digits, a 10k-parameter MLP): 60x, -0.56 pt; 20 s.
      smoke (digits): 56x, -5.0 pt after 12 epochs; 12 s. medium: the full preset at 15 epochs.
    ... --config.experiment=compressors
      full: top-k 1% 65.7x at relative error 0.76, FedZip 178x, int8 4.0x at 1.7e-4, RQM 8.0x; 20 s. smoke: 22 s.
    ... --config.experiment=diloco --config.diloco.data_dir=../shared/data/tinyshakespeare
      medium: Streaming DiLoCo P = 4 cuts the peak bytes per step 31x and the total 319x against data parallel at
      +0.054 to +0.070 validation loss (DiLoCo: +0.088 to +0.120); 3 min (the `streaming_diloco_bandwidth`
      claim). smoke (embedded text): P = 2 peak / 15, loss +0.062; 25 s. full: 14 methods, 400 steps, a wider
      model: not timed here (over 10 min).
"""

import ml_collections

PRESETS = ('', 'medium', 'smoke')
DGC_METHODS = 'dense,dgc,no_momentum_correction,no_masking,no_clipping,no_warmup'
COMPRESSOR_SPECS = (
    'identity; top_k ratio=0.01; random_k ratio=0.01; sign; qsgd levels=1; qsgd levels=4; natural; int8; '
    'fp4_e3m0; low_rank rank=2; count_sketch rows=5 ratio=0.1; fedzip ratio=0.01 encoding=difference; '
    'fedzip ratio=0.01 encoding=position; fedzip ratio=0.01 encoding=huffman; rqm c=0.05 delta=0.06 m=16 q=0.5')


def ef21(preset: str) -> ml_collections.ConfigDict:
  """EF, EF21 and EF21-W with top-k on logistic regression with heterogeneous smoothness."""
  c = ml_collections.ConfigDict()
  c.data_dir = ''              # folder with <dataset>.txt (LIBSVM), or a file; '' = synthetic
  c.dataset = 'phishing'       # a9a, mushrooms, phishing, w8a (the EF21 paper's sets)
  c.num_workers = 8
  c.split = 'norm'             # 'norm' (sort rows by norm) or 'label'
  c.spreads = '1,3,10'         # s_max / s_min of the per-worker feature scales (L_max / L_min ~ spread^2)
  c.methods = 'gd,ef,ef21,ef21_w'
  c.k = 1                      # top-k
  c.lam = 0.1                  # non-convex regulariser weight (the reference code's lambda)
  c.steps = 20000
  c.stepsize_multiplier = 1.0
  c.eps = 1e-3                 # target |grad f|^2 / |grad f(x^0)|^2 for the bits-to-accuracy table
  c.log_every = 50
  c.backend = 'vmap'
  c.synthetic_rows = 4000
  c.synthetic_features = 50
  c.seed = 0
  if preset == 'smoke':
    c.steps, c.spreads, c.synthetic_rows, c.synthetic_features, c.log_every = 800, '1,5', 1600, 20, 10
  elif preset == 'medium':
    c.steps = 5000
  return c


def dgc(preset: str) -> ml_collections.ConfigDict:
  """Deep Gradient Compression at 0.1% density against dense momentum SGD, and one ablation per technique."""
  c = ml_collections.ConfigDict()
  c.data_dir = ''            # MNIST IDX folder (../shared/data/mnist); '' = scikit-learn's digits
  c.methods = DGC_METHODS
  c.num_workers = 8
  c.batch_size = 16          # per worker
  c.hidden = 128
  c.epochs = 30
  c.learning_rate = 0.1
  c.momentum = 0.9
  c.density = 0.001
  c.clip_norm = 5.0          # global threshold; each worker clips to clip_norm / sqrt(n)
  c.warmup_epochs = 4        # sparsity and learning-rate warm-up
  c.warmup = 'paper'         # 'paper' (0.25, 0.0625, ...) or 'code' (the official default coefficient)
  c.index_dtype = 'int32'    # as the official code's int32 option; 'auto' = smallest unsigned integer
  c.eval_every_epochs = 5
  c.backend = 'vmap'
  c.seed = 0
  if preset == 'smoke':
    c.epochs, c.hidden, c.warmup_epochs, c.eval_every_epochs = 12, 64, 2, 4
    c.methods = 'dense,dgc,no_momentum_correction'
  elif preset == 'medium':
    c.epochs = 15
  return c


def compressors(preset: str) -> ml_collections.ConfigDict:
  """Every compressor on a real gradient: exact bytes, ratio, relative error; RQM's privacy."""
  c = ml_collections.ConfigDict()
  c.data_dir = ''
  c.specs = COMPRESSOR_SPECS  # '; '-separated 'name key=value ...'
  c.hidden = 128
  c.batch_size = 64
  c.warm_steps = 50
  c.draws = 5
  c.target_delta = 1e-5
  c.seed = 0
  if preset == 'smoke':
    c.warm_steps, c.draws = 10, 2
  return c


def diloco(preset: str) -> ml_collections.ConfigDict:
  """DiLoCo, Streaming DiLoCo, SparseLoCo and EDiT against data parallel on a character transformer."""
  c = ml_collections.ConfigDict()
  c.data_dir = ''                 # folder with input.txt (tiny Shakespeare) or a text file; '' = embedded text
  c.num_workers = 4
  c.steps = 400                   # inner steps per worker (equal compute for every method)
  c.batch_size = 16               # sequences per worker and step
  c.block = 64
  c.d_model = 64
  c.layers = 2
  c.heads = 4
  c.learning_rate = 3e-3          # inner AdamW peak, linear warm-up then cosine to 10%
  c.warmup = 20
  c.weight_decay = 0.01
  c.outer_learning_rate = 0.7
  c.outer_momentum = 0.9
  c.methods = ('ddp,diloco_h10,diloco_h50,'
               'streaming_p1_t0,streaming_p1_t1,streaming_p1_t2,streaming_p2_t0,streaming_p2_t1,streaming_p2_t2,'
               'streaming_p4_t0,streaming_p4_t1,streaming_p4_t2,sparseloco_h50,edit_h50')
  # Every H (10, 50, 40) divides steps, so the last evaluation is of a freshly synced global model.
  c.streaming_sync_every = 40     # H of Streaming DiLoCo: a multiple of every P; steps a multiple of every H
  c.streaming_quantize = 'e3m0'
  c.mixing = 0.5                  # alpha
  c.fragments = 'balanced'        # 'strided' (leaf j -> j mod P) or 'balanced' (equal sizes)
  c.eval_every = 10               # the global model changes only at syncs: curves are staircases
  c.eval_batches = 8
  c.seed = 0
  if preset == 'medium':
    c.steps, c.batch_size, c.block, c.d_model = 200, 8, 48, 48
    c.methods = ('ddp,diloco_h10,diloco_h50,'
                 'streaming_p1_t0,streaming_p1_t1,streaming_p1_t2,streaming_p2_t0,streaming_p2_t1,'
                 'streaming_p2_t2,streaming_p4_t0,streaming_p4_t1,streaming_p4_t2')
  elif preset == 'smoke':
    c.steps, c.batch_size, c.block, c.d_model, c.layers, c.warmup = 16, 4, 32, 32, 1, 4
    c.methods = 'ddp,diloco_h4,streaming_p2_t1'
    c.streaming_sync_every = 8
    c.eval_every = 8
    c.eval_batches = 2
  return c


SUB_CONFIGS = {'ef21': ef21, 'dgc': dgc, 'compressors': compressors, 'diloco': diloco}


def get_config(preset: str = ''):
  if preset not in PRESETS:
    raise ValueError(f'unknown preset {preset!r}; known: {", ".join(p for p in PRESETS if p)}')
  c = ml_collections.ConfigDict()
  c.experiment = 'ef21'     # which sub-experiment runs: ef21, dgc, compressors or diloco
  c.record = False          # write experiments/results/<claim>.json (only with a claim's exact config)
  for name, make in SUB_CONFIGS.items():
    c[name] = make(preset)
  return c
