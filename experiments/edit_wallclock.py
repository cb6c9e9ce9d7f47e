"""EDiT vs A-EDiT with a straggler in simulated wall-clock, syncs charged the layer-wise schedule.

    python -m experiments.edit_wallclock --workdir=/tmp/polyak/edit_wallclock
    python -m experiments.edit_wallclock --config=experiments/configs/edit_wallclock.py:smoke

Prints time to target loss per method and writes ``config.json``, ``metrics.jsonl``,
``results.json`` and ``wallclock.png`` under ``--workdir`` (see ``experiments/lib/edit_wallclock.py``).
"""

from absl import app, flags
import jax

from experiments.lib import edit_wallclock
from experiments.lib.common import script

_CONFIG = script.config_flag('edit_wallclock')
_WORKDIR = flags.DEFINE_string('workdir', '/tmp/polyak/edit_wallclock', 'Where config, metrics, results and plots go.')

if __name__ == '__main__':
  jax.config.parse_flags_with_absl()
  app.run(script.main(edit_wallclock, _CONFIG, _WORKDIR))
