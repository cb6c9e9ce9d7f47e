"""One process of the two-process heterogeneous run (started by test_pipeline_processes.py; does nothing when
imported, e.g. by pytest's doctest collection).

    python pipeline_processes_worker.py PROCESS_ID NUM_PROCESSES PORT OUT_DIR

Each of the P processes holds R / P of the R = 4 replicas (2 stages each, on 8 / P virtual CPU devices). It runs
heterogeneous SparseLoCo steps with ``backend='shard_map'`` on the mesh spanning all processes, feeding only its
replicas' rows, and the same steps under vmap over all replicas inside this process; it writes the largest
difference to ``OUT_DIR/diff_<id>.json``.
"""

import json
import os
import sys

R, S, M, K, STEPS = 4, 2, 2, 2, 2


def main(process_id, num_processes, port, out):
  os.environ['XLA_FLAGS'] = (os.environ.get('XLA_FLAGS', '') +
                             f' --xla_force_host_platform_device_count={R * S // num_processes}')
  os.environ['JAX_PLATFORMS'] = 'cpu'
  sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
  import jax
  import jax.numpy as jnp
  import numpy as np
  import optax

  import residual_stages as model
  from decentral import processes
  from decentral.pipeline import heterogeneous, links, mesh

  processes.initialize(f'localhost:{port}', num_processes, process_id)
  u, _ = jnp.linalg.qr(jax.random.normal(jax.random.key(7), (model.WIDTH, K)))
  link = links.compressed(lambda h, ids: h @ u, lambda c, ids: c @ u.T)
  rep = heterogeneous.heterogeneous_sparseloco(
      model.stage, model.first, model.last, inner=optax.adam(1e-2), sync_every=2, link=link,
      pipelined=(False, True, False, True), num_microbatches=M, chunk=4, k=3)
  params = jax.tree.map(lambda x: jnp.broadcast_to(x, (R,) + x.shape), model.init(jax.random.key(0), S, jnp.float32))
  inputs, targets = model.batch(jax.random.key(1), STEPS * R * M)
  at_stages = lambda a: jnp.broadcast_to(a.reshape(STEPS, R, 1, M, *a.shape[1:]), (STEPS, R, S, M, *a.shape[1:]))
  inputs, targets = at_stages(inputs), at_stages(targets)
  mine = slice(process_id * R // num_processes, (process_id + 1) * R // num_processes)
  rows = lambda tree: jax.tree.map(lambda x: x[mine], tree)

  results = {}
  for backend, take in (('shard_map', rows), ('vmap', lambda t: t)):
    p = take(params)
    state = mesh.run(rep.init, R, S, backend=backend)(p)
    step = mesh.run(rep.step, R, S, backend=backend)
    for t in range(STEPS):
      p, state, loss = step(p, state, take(inputs[t]), take(targets[t]))
    results[backend] = (p, loss, state.pipeline.sent, state.outer.comm.sent, state.outer.reducer_state)
  ours, ref = results['shard_map'], rows(results['vmap'])
  diff = max(float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64)), initial=0.0))
             for a, b in zip(jax.tree.leaves(ours), jax.tree.leaves(ref)))
  with open(os.path.join(out, f'diff_{process_id}.json'), 'w') as f:
    json.dump({'diff': diff, 'replicas': int(np.shape(ours[1])[0])}, f)


if __name__ == '__main__':
  main(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4])
