"""optim: optimizers as optax transforms, schedules, and the primitives everything shares.

* optimizers (one module per family in :mod:`optim.optimizers`): ``scale_by_<x>`` is the bare direction and
  ``<x>(learning_rate, ...)`` the optimizer;
* :mod:`optim.consensus`: consensus-based optimization, a particle method on a named axis (``optim.cbo``);
* :mod:`optim.online`: optimistic online mirror descent (``optim.optimistic_omd``) and an online-learning harness;
* :mod:`optim.primitives`: curvature products, trace and diagonal estimators, Lanczos/SLQ, Newton-Schulz, SPSA;
* :mod:`optim.schedules`: learning-rate schedules;
* :mod:`optim.registry`: the optimizers by name (and the generic ``Registry`` type the other packages use).
"""

from optim import checks, primitives, privacy, pruning, registry, schedules, sharpness, trees
from optim.consensus import cbo, consensus_point, run_ensemble
from optim.optimizers.adabelief import adabelief, scale_by_adabelief
from optim.optimizers.adamp import adamp, scale_by_adamp, scale_by_sgdp, sgdp
from optim.optimizers.auon import auon, hybrid_auon, scale_by_auon, scale_by_hybrid_auon
from optim.optimizers.averaging import averaged_params, averaged_second_moment, ema_params, swa, tail_average
from optim.optimizers.clipping import coordinate_clip, coordinate_clip_sgd
from optim.optimizers.diffgrad import diffgrad, scale_by_diffgrad
from optim.optimizers.frugal import frugal, scale_by_frugal
from optim.optimizers.langevin import add_langevin_noise, project_to_sphere, sgld
from optim.optimizers.mfac import mfac, scale_by_mfac
from optim.optimizers.rolling_ball import rolling_ball, scale_by_rolling_ball
from optim.optimizers.sgd_sai import scale_by_sgd_sai, sgd_sai
from optim.optimizers.sophia import scale_by_sophia, sophia_g, sophia_h
from optim.optimizers.sso import sso
from optim.optimizers.swan import scale_by_swan, swan
from optim.online import optimistic_omd, strongly_convex_schedule
from optim.privacy import dice_sgd, dice_sgd_aggregate, dp_sgd, dp_sgd_aggregate
from optim.primitives import (LanczosResult, SpectralQuadrature, dense_matrix, flatten_matvec, gauss_newton_matvec,
                              gnvp, hessian_matvec, hutchinson_diagonal, hutchinson_trace, hutchpp_trace, hvp,
                              inverse_sqrt, lanczos, orthogonalize, per_example_grads, power_iteration, ritz, slq,
                              spectral_cdf, spectral_density, spsa_gradient, sqrt_and_inverse_sqrt, tridiagonal,
                              whiten)
from optim.registry import Registry, register
from optim.schedules import linear_decay_schedule, refined_schedule
from optim.sharpness.mesa import mesa
from optim.sharpness.saf import saf
from optim.trees import tree_bytes

__all__ = ['checks', 'primitives', 'pruning', 'registry', 'schedules', 'trees', 'Registry', 'register']
__all__ += ['adabelief', 'scale_by_adabelief', 'adamp', 'scale_by_adamp', 'scale_by_sgdp', 'sgdp', 'auon',
            'hybrid_auon', 'scale_by_auon', 'scale_by_hybrid_auon', 'averaged_params', 'averaged_second_moment',
            'ema_params', 'swa', 'tail_average', 'coordinate_clip', 'coordinate_clip_sgd', 'diffgrad',
            'scale_by_diffgrad', 'frugal', 'scale_by_frugal', 'add_langevin_noise', 'project_to_sphere', 'sgld',
            'mfac', 'scale_by_mfac', 'rolling_ball', 'scale_by_rolling_ball', 'scale_by_sgd_sai', 'sgd_sai',
            'scale_by_sophia', 'sophia_g', 'sophia_h', 'scale_by_swan', 'swan']
__all__ += ['LanczosResult', 'SpectralQuadrature', 'dense_matrix', 'flatten_matvec', 'gauss_newton_matvec', 'gnvp',
            'hessian_matvec', 'hutchinson_diagonal', 'hutchinson_trace', 'hutchpp_trace', 'hvp', 'inverse_sqrt',
            'lanczos', 'orthogonalize', 'per_example_grads', 'power_iteration', 'ritz', 'slq', 'spectral_cdf',
            'spectral_density', 'spsa_gradient', 'sqrt_and_inverse_sqrt', 'tridiagonal', 'whiten']
__all__ += ['linear_decay_schedule', 'refined_schedule', 'tree_bytes']
__all__ += ['sharpness', 'saf', 'mesa', 'sso']
__all__ += ['privacy', 'dp_sgd', 'dp_sgd_aggregate', 'dice_sgd', 'dice_sgd_aggregate']
__all__ += ['consensus', 'online', 'cbo', 'consensus_point', 'run_ensemble', 'optimistic_omd',
            'strongly_convex_schedule']
