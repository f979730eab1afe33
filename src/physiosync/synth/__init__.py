"""Synthetic DEAP (``sNN.dat``/``sNN.mat``), DREAMER (``DREAMER.mat``) and own-recordings (EDF/BDF/FIF/
BrainVision/EEGLAB + trials table + dataset file) datasets in the real file formats, with stimulus-locked
inter-subject and cross-modal synchronisation and tunable label effects."""

from physiosync.synth.deap import write_synthetic_deap
from physiosync.synth.dreamer import write_synthetic_dreamer
from physiosync.synth.recordings import write_synthetic_recordings

__all__ = ["write_synthetic_deap", "write_synthetic_dreamer", "write_synthetic_recordings"]
