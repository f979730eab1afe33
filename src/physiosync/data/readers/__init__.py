"""Readers of the raw dataset files (contract 1): DEAP pickles / .mat files and the public DREAMER.mat."""

from physiosync.data.readers.deap import (
    canonical_subject_id,
    list_deap_subjects,
    read_deap,
    read_deap_subject,
)
from physiosync.data.readers.dreamer import list_dreamer_subjects, read_dreamer
from physiosync.data.readers.safe_pickle import load_pickle

__all__ = [
    "canonical_subject_id",
    "list_deap_subjects",
    "list_dreamer_subjects",
    "load_pickle",
    "read_deap",
    "read_deap_subject",
    "read_dreamer",
]
