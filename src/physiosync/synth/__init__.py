"""Synthetic DEAP (``sNN.dat``/``sNN.mat``) and DREAMER (``DREAMER.mat``) datasets in the real file formats,
with stimulus-locked inter-subject and cross-modal synchronisation and tunable label effects."""

from physiosync.synth.deap import write_synthetic_deap
from physiosync.synth.dreamer import write_synthetic_dreamer

__all__ = ["write_synthetic_deap", "write_synthetic_dreamer"]
