"""Experiments: the pipeline that wires the stages together (``run``) and the comparison of baselines and
ablations on the same folds (``compare``)."""
