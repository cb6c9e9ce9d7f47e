"""Online learning: optimistic online mirror descent (arXiv 2302.04552), its mirror maps, and the harness.

* :func:`optim.optimistic_omd` (:mod:`.optimistic`): the optax transform, Euclidean ball or simplex (entropy),
  the last gradient as hint, the paper's adaptive step size;
* :mod:`.mirror_maps`: ``euclidean(radius)`` and ``entropy()``;
* :mod:`.sequences`: stochastic, adversarial and SEA loss sequences with their sigma^2_{1:T} and Sigma^2_{1:T};
* :mod:`.regret`: play a transform against a sequence and measure its regret;
* :mod:`.games`: two learners in a bilinear zero-sum game, and the duality gap.
"""

from optim.online.games import GameRun, bilinear_game, duality_gap
from optim.online.mirror_maps import MirrorMap, entropy, euclidean
from optim.online.optimistic import OptimisticOMDState, optimistic_omd, strongly_convex_schedule
from optim.online.regret import OnlineRun, linear_regret, play
from optim.online.sequences import SEASequence, sea_linear

__all__ = ['GameRun', 'bilinear_game', 'duality_gap', 'MirrorMap', 'entropy', 'euclidean', 'OptimisticOMDState',
           'optimistic_omd', 'strongly_convex_schedule', 'OnlineRun', 'linear_regret', 'play', 'SEASequence',
           'sea_linear']
