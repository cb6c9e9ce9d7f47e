"""Coherence of per-example gradients (Chatterjee & Zielinski, "On the Generalization Mystery in Deep Learning",
arXiv 2203.10036; m-coherence from arXiv 2008.01217).

The coherence ``alpha(S) = ||sum_i g_i||^2 / (m sum_i ||g_i||^2)`` of the per-example gradients of a sample, and
its scale ``m alpha`` (m-coherence: 1 for orthogonal gradients, m for identical ones), measured through training
with real and random labels; and the paper's suppression of weak gradient directions by robust averaging
(winsorised mean, median of means) against the memorisation of corrupted labels.

Modules: ``metric`` (the O(m) metric, the O(m^2) Gram oracle, per-example gradients by
:func:`optim.per_example_grads`), ``robust`` (winsorised mean, median of means), ``data`` (digits, label
corruption), ``model`` (a ReLU MLP), ``training`` (SGD with coherence checkpoints), ``sweeps`` (the two
experiments) and ``plots``. Everything runs in float64.
"""

from theory.coherence.data import corrupt_labels, digits
from theory.coherence.metric import alpha_coherence, gram_coherence, m_coherence, sample_m_coherence
from theory.coherence.model import accuracy, example_loss, init_mlp, mean_loss, mlp_logits
from theory.coherence.plots import plot_coherence, plot_suppression
from theory.coherence.robust import example_mean, median_of_means, order_statistic, winsorized_mean
from theory.coherence.sweeps import coherence_vs_label_noise, suppression
from theory.coherence.training import AGGREGATORS, train_with_coherence

__all__ = ['corrupt_labels', 'digits', 'alpha_coherence', 'gram_coherence', 'm_coherence', 'sample_m_coherence',
           'accuracy', 'example_loss', 'init_mlp', 'mean_loss', 'mlp_logits', 'plot_coherence', 'plot_suppression',
           'example_mean', 'median_of_means', 'order_statistic', 'winsorized_mean', 'coherence_vs_label_noise',
           'suppression', 'AGGREGATORS', 'train_with_coherence']
