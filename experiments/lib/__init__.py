"""The library code of the experiments: ``experiments/lib/<x>`` for ``python -m experiments.<x>`` (configured by
``experiments/configs/<x>.py``), and ``common/`` for what they share. A notebook imports these directly."""
