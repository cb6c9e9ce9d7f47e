"""The reproductions ledger: every paper claim the experiments declare, the paper's number next to ours.

    python -m experiments.reproductions

Prints the table and writes ``REPRODUCTIONS.md`` at the repository root from the claims declared in
``experiments/lib`` and the results stored in ``experiments/results`` (see ``experiments/lib/common/claims.py``).
Runs no experiment: each row names the command that measured its number.
"""

from absl import app, flags
import jax

from experiments.lib import reproductions
from experiments.lib.common import script

_CONFIG = script.config_flag('reproductions')
_WORKDIR = flags.DEFINE_string('workdir', '/tmp/polyak/reproductions', 'Where config and results go.')

if __name__ == '__main__':
  jax.config.parse_flags_with_absl()
  app.run(script.main(reproductions, _CONFIG, _WORKDIR))
