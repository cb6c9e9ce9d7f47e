"""Config of the heterogeneous pipeline experiment (experiments/pipeline.py). Presets: '' (default) and 'smoke'.

    python -m experiments.pipeline --config.data_dir=../shared/data/tinyshakespeare     # the default preset
      4 replicas of a 2-stage character transformer (d = 64), SparseLoCo (H = 20, top-k 3%, 2-bit) across them;
      no compression, then subspace-compressed links with k in {16, 8, 4} on all 4 replicas or on 2 of 4
      (selective). The `pipeline_selective` claim.
    python -m experiments.pipeline --config=experiments/configs/pipeline.py:smoke      # seconds, embedded text

    --config.ks=16,8,4           # subspace dimensions (k = d_model is no compression, always run)
    --config.pipelined=1,1,0,0   # which replicas are pipelined (compressed under selective compression)
    --config.outer=global        # project the global model after each outer step (default: replica, see the lib)
"""

import ml_collections


def get_config(preset: str = ''):
  c = ml_collections.ConfigDict()
  c.record = False          # write experiments/results/<claim>.json (only with a claim's exact config)
  c.data_dir = ''           # folder holding input.txt (tiny Shakespeare); empty = the embedded text
  c.ks = '16,8,4'           # subspace dimensions of the compressed links
  c.pipelined = '1,1,0,0'   # one flag per replica: 1 = pipelined low-bandwidth replica, 0 = full replica
  c.d_model = 64
  c.layers = 2
  c.heads = 4
  c.stages = 2
  c.block = 32              # context length in characters
  c.batch_size = 8          # sequences per microbatch and replica
  c.microbatches = 2        # M of the GPipe schedule
  c.steps = 300             # inner steps (every replica sees the same number of tokens in every condition)
  c.sync_every = 20         # H
  c.learning_rate = 3e-3    # AdamW, the inner optimizer
  c.weight_decay = 0.0
  c.outer_learning_rate = 1.0
  c.decay = 0.95            # SparseLoCo's error-feedback beta
  c.chunk = 64              # SparseLoCo tiles of chunk x chunk (or chunk-long pieces of vectors)
  c.topk = 128              # entries kept per tile: 128 of a 64 x 64 tile = 3.1% (vectors of <= 128 go whole)
  c.bins = 4                # 2-bit values
  c.eval_every = 2          # validation loss every N outer steps
  c.eval_batches = 4        # fixed validation windows: eval_batches x batch_size
  c.outer = 'replica'       # 'replica': compressing replicas project the global model they receive; 'global':
                            # the global model itself is projected after every outer step
  c.seed = 0
  c.backend = 'vmap'        # 'vmap' or 'shard_map' (replicas x stages devices)
  if preset == 'smoke':
    c.ks, c.d_model, c.heads, c.block, c.batch_size = '4', 16, 2, 8, 2
    c.steps, c.sync_every, c.chunk, c.topk, c.eval_every, c.eval_batches = 4, 2, 8, 2, 1, 1
  elif preset:
    raise ValueError(f'unknown preset {preset!r}; known: smoke')
  return c
