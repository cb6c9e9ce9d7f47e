"""polyak.theory: small exact experiments on the shared primitives of :mod:`optim`."""

from theory import hessian, langevin, sgn, stability

__all__ = ['hessian', 'langevin', 'sgn', 'stability']
