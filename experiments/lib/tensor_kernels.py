"""Tensor-program kernels (Yang, 1902.04760; library code of experiments/tensor_kernels.py).

For each architecture: the relative Frobenius error of the empirical NNGP and NTK of finite networks against the
infinite-width recursions, over widths and seeds, and the fitted log-log slope of its root mean square (the CLT
over neurons says -1/2). Then sampled Wigner and Wishart spectra against the semicircle and Marchenko-Pastur
laws (KS distance and moments). ``run`` writes ``config.json``, ``results.json``, ``metrics.jsonl``,
``width_sweep.png`` and ``spectra.png``.
"""

from __future__ import annotations

import numpy as np

from experiments.lib.common import claims
from experiments.lib.common import results as results_lib
from theory import kernels

table = results_lib.headline_table

RATE_BAND = (-0.65, -0.35)   # slopes we count as -1/2 (RMS over a dozen seeds is itself noisy by ~10-20%)


def _width_rates(headline: list[dict]) -> dict:
  return {r['architecture']: {'nngp_slope': r['nngp_slope'], 'ntk_slope': r['ntk_slope'],
                              'ntk_rms_at_largest_width': r['ntk_rms'][-1], 'largest_width': r['widths'][-1]}
          for r in headline if 'architecture' in r}


def _assess_width_rates(m) -> claims.Assessment:
  ours = '; '.join(f"{name}: NNGP {r['nngp_slope']:.2f}, NTK {r['ntk_slope']:.2f} (NTK error "
                   f"{r['ntk_rms_at_largest_width']:.2f} at width {r['largest_width']})" for name, r in m.items())
  inside = lambda s: RATE_BAND[0] <= s <= RATE_BAND[1]
  off = [f'{name} {kind}' for name, r in m.items() for kind in ('nngp', 'ntk') if not inside(r[f'{kind}_slope'])]
  decreasing = all(r[f'{kind}_slope'] < -0.2 for r in m.values() for kind in ('nngp', 'ntk'))
  if not off:
    return claims.Assessment(ours, 'agree', 'every finite kernel approaches the recursion with a slope within '
                             f'{RATE_BAND} of -1/2')
  if decreasing:
    return claims.Assessment(ours, 'partly', f"all approach the recursion, but {', '.join(off)} fall outside "
                             f'{RATE_BAND} (the RMS over a dozen seeds is itself noisy)')
  return claims.Assessment(ours, 'disagree', 'some finite kernels do not approach the recursion')


def _rmt(headline: list[dict]) -> dict:
  r, = [r for r in headline if r.get('law') == 'rmt']
  return {k: r[k] for k in ('ks_wigner_largest', 'ks_wishart_largest', 'ks_slope_wigner', 'ks_slope_wishart',
                            'moment_rel_error_wigner', 'moment_rel_error_wishart', 'largest_n')}


def _assess_rmt(m) -> claims.Assessment:
  ours = (f"KS at n = {m['largest_n']}: {m['ks_wigner_largest']:.4f} (semicircle), {m['ks_wishart_largest']:.4f} "
          f"(MP); KS slope in n {m['ks_slope_wigner']:.2f} / {m['ks_slope_wishart']:.2f}; first four moments "
          f"within {100 * max(m['moment_rel_error_wigner'], m['moment_rel_error_wishart']):.1f}% of Catalan / "
          'Narayana')
  good = (max(m['ks_wigner_largest'], m['ks_wishart_largest']) < 0.01 and max(m['ks_slope_wigner'],
          m['ks_slope_wishart']) < -0.5 and max(m['moment_rel_error_wigner'], m['moment_rel_error_wishart']) < 0.02)
  return claims.Assessment(ours, 'agree' if good else 'partly',
                           'sampled spectra converge to the closed-form laws' if good else
                           'the spectra approach the laws more slowly than expected at these sizes')


CLAIMS = (
    claims.Claim(
        id='tensor_kernels_width_rate', experiment='tensor_kernels', title='Tensor-program NNGP/NTK (MLP, CNN, RNN)',
        paper='Yang 2019', arxiv='1902.04760',
        claim='the NNGP kernel and NTK of wide MLPs, CNNs (weight sharing across pixels) and RNNs (across time) '
              'converge to the tensor-program recursions at initialisation',
        paper_number='convergence as width -> infinity (no rate stated in the abstract); CLT rate width^-1/2',
        measure=_width_rates, assess=_assess_width_rates),
    claims.Claim(
        id='tensor_kernels_rmt', experiment='tensor_kernels', title='Semicircle and Marchenko-Pastur laws',
        paper='Yang 2019', arxiv='1902.04760',
        claim='the tensor-program framework rederives the semicircle and Marchenko-Pastur laws',
        paper_number='the closed-form laws (moments Catalan / Narayana)',
        measure=_rmt, assess=_assess_rmt),
)


def run(cfg, workdir: str) -> list[dict]:
  """Runs the width sweeps and the spectra, writes the JSON and the figures, returns the headline records."""
  writer = results_lib.Writer(workdir, cfg)
  sweeps, headline = [], []
  for name in cfg.architectures.split(','):
    res = kernels.width_sweep(name, tuple(cfg.widths), cfg.seeds, cfg.num_inputs)
    sweeps.append(res)
    headline.append({'architecture': name, 'widths': res['widths'], 'nngp_rms': res['nngp_rms'],
                     'ntk_rms': res['ntk_rms'], 'nngp_slope': res['nngp_slope'], 'ntk_slope': res['ntk_slope']})
  spectra = kernels.spectrum_check(tuple(cfg.rmt_sizes), cfg.rmt_ratio, cfg.rmt_seeds)
  rel = lambda a, b: float(np.max(np.abs(np.asarray(a) / np.asarray(b) - 1)))
  headline.append({'law': 'rmt', 'largest_n': int(cfg.rmt_sizes[-1]),
                   'ks_wigner_largest': float(spectra['ks_wigner'][-1].mean()),
                   'ks_wishart_largest': float(spectra['ks_wishart'][-1].mean()),
                   'ks_slope_wigner': spectra['ks_slope_wigner'], 'ks_slope_wishart': spectra['ks_slope_wishart'],
                   'moment_rel_error_wigner': rel(spectra['moments_wigner'], spectra['catalan']),
                   'moment_rel_error_wishart': rel(spectra['moments_wishart'], spectra['narayana'])})
  n = int(cfg.rmt_sizes[-1])
  writer.figure(kernels.plot_width_sweep(sweeps), 'width_sweep.png')
  writer.figure(kernels.plot_spectra(kernels.wigner_spectrum(n), kernels.wishart_spectrum(n, cfg.rmt_ratio),
                                     cfg.rmt_ratio), 'spectra.png')
  writer.results({'width_sweeps': sweeps, 'spectra': spectra})
  writer.metrics(headline)
  return headline
