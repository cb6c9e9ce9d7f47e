"""Runs before any test or doctest imports jax: 8 virtual CPU devices, and XLA:CPU tuned for compile time.

The suite compiles thousands of small programs and runs each a few times, so XLA's compile time, not run time,
dominates it (measured: about 85% of the CPU time of the optimizer conformance suite). Three XLA:CPU flags cut a
typical compile about 4x with no change of semantics: LLVM optimisation level 0, the classic elemental emitters
instead of the fusion emitters, and codegen in one module. Run time of the heavier tests falls too (less to
compile in each). ``POLYAK_TEST_XLA_FLAGS=default`` keeps XLA's defaults (to check a numerical doubt against them).
Subprocesses (notebook kernels, the multi-process workers) inherit the variables.
"""

import os

_FAST_COMPILE = ('--xla_backend_optimization_level=0 --xla_cpu_use_fusion_emitters=false '
                 '--xla_cpu_parallel_codegen_split_count=1')

_flags = [os.environ.get('XLA_FLAGS', ''), '--xla_force_host_platform_device_count=8']
if os.environ.get('POLYAK_TEST_XLA_FLAGS', 'fast') != 'default':
  _flags.append(_FAST_COMPILE)
os.environ['XLA_FLAGS'] = ' '.join(f for f in _flags if f)
os.environ.setdefault('JAX_PLATFORMS', 'cpu')
os.environ.setdefault('MPLBACKEND', 'Agg')
