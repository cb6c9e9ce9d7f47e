"""polyak.theory: small exact experiments on the shared primitives of :mod:`optim`."""

from theory import langevin, sgn

__all__ = ['langevin', 'sgn']
