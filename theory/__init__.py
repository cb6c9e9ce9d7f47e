"""polyak.theory: small exact experiments on the shared primitives of :mod:`optim`."""
