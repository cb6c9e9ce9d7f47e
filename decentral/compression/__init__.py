"""Compressed communication: compressors with exact wire bytes, error feedback, DGC, FedZip and RQM.

- :mod:`~decentral.compression.wire`: the :class:`Compressor` contract (compress, decompress, nbytes, encode,
  decode) and the wire format (bit packing, index widths, key bytes);
- the compressors: :mod:`~decentral.compression.sparsifiers`, :mod:`~decentral.compression.quantizers`,
  :mod:`~decentral.compression.sketches`, FedZip (:mod:`~decentral.compression.fedzip_codec`) and the
  randomized quantization mechanism with its Renyi DP (:mod:`~decentral.compression.privacy`);
- :mod:`~decentral.compression.trees`: a compressor applied to a pytree leaf by leaf;
- :mod:`~decentral.compression.collectives`: the mean over the worker axis of every worker's decoded payloads;
- worker-axis transforms: error feedback, EF21 and EF21-W (:mod:`~decentral.compression.feedback`) and Deep
  Gradient Compression (:mod:`~decentral.compression.deep_gradient`).

Compressors (``d = x.size``; omega is the variance parameter, ``E|C(x)-x|^2 <= omega |x|^2``, of unbiased
ones; alpha the contraction, ``|C(x)-x|^2 <= (1-alpha)|x|^2``, of biased ones):

=======================  ========  =====================================  ====================================
factory                  unbiased  bytes                                  property
=======================  ========  =====================================  ====================================
``identity()``           yes       d * itemsize                           exact
``top_k(k | ratio)``     no        k * (itemsize + index bytes)           alpha = k/d
``random_k(k | ratio)``  yes       k * itemsize + 8                       omega = d/k - 1 (scaled by d/k)
``sign()``               no        ceil(d/8) + 4                          ``(|x|_1/d) sign(x)``, Karimireddy et al.
``qsgd(levels)``         yes       4 + ceil(d * ceil(log2(2s+1)) / 8)     omega = min(d/s^2, sqrt(d)/s)
``natural()``            yes       ceil(9 d / 8)                          omega = 1/8 (Horvath et al.)
``int8()``               opt.      d + 4                                  absmax scale; stochastic => unbiased
``fp4_e3m0()``           opt.      ceil(d/2) + 4                          sign + 3-bit exponent, absmax scale
``low_rank(rank)``       no        (m + n) * rank * itemsize              PowerSGD-style; vectors sent dense
``count_sketch(r, c)``   mean dec  r * c * itemsize + 8                   median (or mean) decoder
``fedzip(ratio, K)``     no        measured (``nbytes``: upper bound)     top-z, k-means, Huffman/position
``rqm(c, delta, m)``     yes       ceil(d ceil(log2 m) / 8)               Renyi DP, exact (Youn et al.)
``pbm(c, m, theta)``     yes       ceil(d ceil(log2(m+1)) / 8)            Renyi DP, exact (Chen et al.)
=======================  ========  =====================================  ====================================

FedZip's size is data dependent: its ``nbytes`` is an upper bound and ``len(encode(...))`` the size sent.
SparseLoCo's compressor is :func:`decentral.local_sgd.sparseloco_compressor`. All of them, by name, are in
:data:`decentral.registry.compressors` (``decentral.registry.compressors.build('top_k', ratio=0.01)``).

>>> import jax, jax.numpy as jnp
>>> c = top_k(2)
>>> x = jnp.array([0.1, -3.0, 0.5, 2.0])
>>> p = c.compress(x, None)
>>> c.decompress(p, x.shape, x.dtype)
Array([ 0., -3.,  0.,  2.], dtype=float32)
>>> c.nbytes(x.shape, x.dtype), len(c.encode(jax.device_get(p), x.shape, x.dtype))  # 2 float32 values + 2 uint8 indices
(10, 10)
"""

from decentral.compression import (collectives, deep_gradient, feedback, fedzip_codec, poisson_binomial, privacy,
                                   quantizers, sketches, sparsifiers, trees, wire)
from decentral.compression.collectives import gather_decode, mean_over_workers
from decentral.compression.deep_gradient import DGCState, dgc, scale_by_dgc, warmup_densities
from decentral.compression.feedback import (EF21State, ErrorFeedbackState, ef21, ef21_stepsize, ef21_w,
                                            error_feedback)
from decentral.compression.fedzip_codec import fedzip
from decentral.compression.poisson_binomial import pbm
from decentral.compression.privacy import rqm
from decentral.compression.quantizers import FP4_E3M0_LEVELS, fp4_e3m0, int8, natural, qsgd, sign
from decentral.compression.sketches import count_sketch, low_rank
from decentral.compression.sparsifiers import identity, random_k, top_k
from decentral.compression.trees import compress_tree, decompress_tree, encode_tree, roundtrip, tree_nbytes
from decentral.compression.wire import KEY_BYTES, Compressor, index_dtype, pack_bits, unpack_bits

__all__ = ['collectives', 'deep_gradient', 'feedback', 'fedzip_codec', 'poisson_binomial', 'privacy', 'quantizers',
           'sketches', 'sparsifiers', 'trees', 'wire', 'gather_decode', 'mean_over_workers', 'DGCState', 'dgc',
           'scale_by_dgc', 'warmup_densities', 'EF21State', 'ErrorFeedbackState', 'ef21', 'ef21_stepsize', 'ef21_w',
           'error_feedback', 'fedzip', 'pbm', 'rqm', 'FP4_E3M0_LEVELS', 'fp4_e3m0', 'int8', 'natural', 'qsgd', 'sign',
           'count_sketch', 'low_rank', 'identity', 'random_k', 'top_k', 'compress_tree', 'decompress_tree',
           'encode_tree', 'roundtrip', 'tree_nbytes', 'KEY_BYTES', 'Compressor', 'index_dtype', 'pack_bits',
           'unpack_bits']
