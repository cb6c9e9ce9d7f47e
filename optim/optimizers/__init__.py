"""The optimizer families, one module each; every public name is exported from :mod:`optim` itself.

This package exports nothing of its own, so that each module keeps its family's name (``optim.optimizers.sophia``
holds ``optim.sophia_g`` and ``optim.sophia_h``) without a function shadowing it.
"""
