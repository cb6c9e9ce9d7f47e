"""What the experiments share: data sets (``data``), flax models (``models``), the supervised training step
(``training``), the results writer (``results``), paper claims and their stored results (``claims``), and the
entry-point runner (``script``)."""
