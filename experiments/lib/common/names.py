"""Readable names for plots: the papers' spelling of each registered optimizer and transform, with the registry
name a command line takes in parentheses (``SGD-SaI (sgd_sai)``).

One dict for every experiment's legends; a name missing here is shown as it is registered.

>>> label('sgd_sai')
'SGD-SaI (sgd_sai)'
>>> label('adam')
'Adam'
>>> label('not_listed')
'not_listed'
"""

from __future__ import annotations

READABLE = {
    # optimizers (optim.registry.optimizers)
    'sgd': 'SGD',
    'momentum': 'SGD with momentum',
    'adam': 'Adam',
    'adamw': 'AdamW',
    'optax_adabelief': "AdaBelief (optax's)",
    'muon': 'Muon',
    'diffgrad': 'diffGrad',
    'adabelief': 'AdaBelief',
    'adamp': 'AdamP',
    'sgdp': 'SGDP',
    'sgd_sai': 'SGD-SaI',
    'mfac': 'M-FAC (matrix-free Fisher approximation)',
    'sophia_h': 'Sophia-H',
    'sophia_g': 'Sophia-G',
    'rolling_ball': 'Rolling Ball Optimizer',
    'swan': 'SWAN (SGD with normalization and whitening)',
    'auon': 'AuON',
    'hybrid_auon': 'Hybrid-AuON',
    'frugal': 'FRUGAL',
    'frugal_randomized': 'FRUGAL (randomized SVD)',
    'coordinate_clip_sgd': 'SGD with coordinate clipping',
    'sgld': 'SGLD (stochastic gradient Langevin dynamics)',
    'sso': 'SSO (stochastic surrogate optimization)',
    'dp_sgd': 'DP-SGD (differentially private SGD)',
    'dice_sgd': 'DiceSGD (clipped DP-SGD with error feedback)',
    'optimistic_omd': 'optimistic online mirror descent',
    # transforms (optim.registry.transforms)
    'coordinate_clip': 'coordinate clipping',
    'tail_average': 'tail averaging',
    'swa': 'SWA (stochastic weight averaging)',
    'ema_params': 'EMA of the parameters',
    'langevin_noise': 'Langevin noise',
    'project_to_sphere': 'projection to a sphere',
}


def label(name: str) -> str:
  """``name``'s readable spelling, followed by ``(name)`` when the two differ beyond capitals."""
  readable = READABLE.get(name, name)
  return readable if readable.lower() == name.lower() else f'{readable} ({name})'
