"""polyak.optim: optimizers as optax transforms, and the primitives everything shares.

Importing the package registers every optimizer in :mod:`optim.registry`.
"""

from optim import registry
from optim.registry import register

__all__ = ['registry', 'register']
