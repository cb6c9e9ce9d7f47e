"""theory: small exact experiments on the shared primitives of :mod:`optim`, one subpackage per family.

* :mod:`theory.hessian`: Hessian spectra of small MLPs (GGN split, SLQ, outliers, batch sharpness);
* :mod:`theory.stability`: exact mean-square stability of linearised SGD, and the minima GD and SGD reach;
* :mod:`theory.langevin`: Langevin dynamics with iterate averaging on planted problems;
* :mod:`theory.sgn`: Small-Gain Nash certificates of contraction for differentiable games.

Each family keeps its computations (float64, checked against a closed form or a dense oracle) apart from its
``plots`` module; :mod:`theory.numerics` and :mod:`theory.plotting` hold what the families share.
"""

from theory import hessian, langevin, numerics, plotting, sgn, stability

__all__ = ['hessian', 'langevin', 'numerics', 'plotting', 'sgn', 'stability']
