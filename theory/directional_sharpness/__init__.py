"""Directional sharpness of optimizer updates (Pan & Li, "Toward Understanding Why Adam Converges Faster Than
SGD for Transformers", arXiv 2306.00204).

The second-order change of the loss along a step ``-eta v`` is ``-eta <g, v> + (eta^2/2) v^T H v``: a direction
is good when its gradient correlation is large and its **directional sharpness** ``v^T H v / ||v||^2`` small. The
paper's claims: SGD's update directions are much sharper than Adam's, a few coordinates cause it, and
coordinate-wise clipping of the update (:func:`optim.coordinate_clip`) reduces the sharpness.

Modules: ``quantities`` (the sharpness by :func:`optim.hvp`, the correlation, the local model, a line search),
``trajectory`` (each optimizer's update probed along its own training run, clipped and not, next to the gradient
at the same points) and ``plots``. Everything runs in float64.
"""

from theory.directional_sharpness.plots import plot_losses, plot_sharpness
from theory.directional_sharpness.quantities import (gradient_correlation, line_search_decrease, local_model,
                                                     sharpness_along)
from theory.directional_sharpness.trajectory import sharpness_along_training

__all__ = ['plot_losses', 'plot_sharpness', 'gradient_correlation', 'line_search_decrease', 'local_model',
           'sharpness_along', 'sharpness_along_training']
