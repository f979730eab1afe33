"""In-memory form of one subject's raw recording, as every reader returns it.

Readers know file formats and nothing else; they yield :class:`SubjectRecording` objects one subject at a
time so preprocessing can stream (peak memory ≈ one subject). Signals keep their native sampling rate and
units; baseline and stimulus parts are separated by the reader using the dataset facts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

# Readers reject samples of larger magnitude: no physiological signal in any unit comes near it, and it keeps
# every float64 statistic of preprocessing finite (a trial's sum of squares stays below 1e308 even for
# billions of samples at this bound), so garbage cannot turn into NaN/Inf or all-zero arrays on the way.
MAX_ABS_SAMPLE = 1e100


@dataclass
class Trial:
    """One stimulus presentation.

    Attributes:
        stimulus: 0-based stimulus index (video/clip), identical across subjects for the same stimulus;
            -1 where the data do not say which stimulus a trial showed (own recordings without a
            ``stimulus`` column: protocols and pre-training that pool stimuli across subjects refuse them).
        baseline: modality -> float array, Shape: (n_chans, n_baseline_samples) at that modality's sfreq.
        signal: modality -> float array, Shape: (n_chans, n_stimulus_samples) at that modality's sfreq.
    """

    stimulus: int
    baseline: dict[str, np.ndarray]
    signal: dict[str, np.ndarray]
    # modality -> native rate of *this* trial where trials of a subject differ (own recordings: files of
    # one subject at different rates); None = the subject's ``SubjectRecording.sfreq``
    sfreq: dict[str, float] | None = None


@dataclass
class SubjectRecording:
    """All trials of one subject.

    Attributes:
        subject: Canonical subject id ("s01" for DEAP, "s01".."s23" for DREAMER, 1-based, zero padded).
        sfreq: modality -> native sampling rate in Hz.
        ch_names: modality -> channel names in array order.
        trials: Trials in stimulus order.
        ratings: rating name ("valence", "arousal", "dominance", "liking") -> Shape: (n_trials,) float.
        source: File the subject was read from (for error messages and the manifest).
    """

    subject: str
    sfreq: dict[str, float]
    ch_names: dict[str, list[str]]
    trials: list[Trial]
    ratings: dict[str, np.ndarray]
    source: Path
    info: dict[str, object] = field(default_factory=dict)

    @property
    def n_trials(self) -> int:
        return len(self.trials)
