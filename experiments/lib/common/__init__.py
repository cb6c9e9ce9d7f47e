"""What the experiments share: data sets (``data``), flax models (``models``), the supervised training step
(``training``), the results writer (``results``), paper claims and their stored results (``claims``), the progress
line of long loops (``progress``), one-line command-line errors (``usage``), and the entry-point runner
(``script``)."""
