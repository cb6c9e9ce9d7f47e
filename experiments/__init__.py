"""The experiments: thin absl entry points, run from the repository root (``python -m experiments.<name>``).

``experiments/<name>.py`` holds the flags, ``experiments/configs/<name>.py`` the settings and presets, and
``experiments/lib/<name>`` the code; ``experiments/lib/common`` holds what they share. Nothing in ``optim``,
``decentral``, ``theory`` or ``benchmarks`` imports this package; tests and notebooks may.
"""
