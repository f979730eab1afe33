"""Data side of the flow: raw files -> readers -> preprocessing -> window cache -> folds -> batches.

``readers`` know file formats; ``preprocess`` knows signals; ``cache`` knows storage; ``protocols`` know the
window metadata; ``batches``, ``sampling`` and ``augment`` turn cached windows into training batches. Nothing
here imports a model.
"""
