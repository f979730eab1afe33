"""The data contract: the small typed description of prepared data that models and losses depend on.

Models never see a dataset name. They are built from a :class:`DataContract` (per modality: channel names,
sampling rate after preprocessing, role) plus the model configuration; window lengths are given in seconds
and converted to samples per modality with its ``sfreq``. The contract is stored in cache manifests and in
checkpoints, so an encoder checkpoint can be checked against the data it is applied to.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Role = Literal["eeg", "peripheral"]


@dataclass(frozen=True)
class ModalitySpec:
    """One prepared modality.

    Attributes:
        name: Short name used as the key everywhere ("eeg", "gsr", "ecg").
        role: "eeg" for the brain signal, "peripheral" for the PPS partner (GSR, ECG).
        ch_names: Channel names in storage order.
        sfreq: Sampling rate of the *prepared* signal in Hz.
    """

    name: str
    role: Role
    ch_names: tuple[str, ...]
    sfreq: float

    @property
    def n_chans(self) -> int:
        return len(self.ch_names)

    def n_times(self, window_s: float) -> int:
        """Samples in a window of ``window_s`` seconds (must be a whole number of samples)."""
        n = window_s * self.sfreq
        if abs(n - round(n)) > 1e-6:
            raise ValueError(f"window of {window_s} s is not a whole number of samples at {self.sfreq} Hz")
        return int(round(n))


@dataclass(frozen=True)
class DataContract:
    """What the model side may know about the data: the modalities and the window lengths available.

    Attributes:
        modalities: Ordered specs; exactly one has role "eeg" and at most one role "peripheral".
        window_s: Available window lengths in seconds, shortest first (e.g. (1.0, 5.0)).
    """

    modalities: tuple[ModalitySpec, ...]
    window_s: tuple[float, ...] = (1.0,)
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        roles = [m.role for m in self.modalities]
        if roles.count("eeg") != 1 or roles.count("peripheral") > 1:
            raise ValueError(f"a contract needs exactly one EEG and at most one peripheral modality, got {roles}")
        if list(self.window_s) != sorted(self.window_s):
            raise ValueError(f"window_s must be sorted ascending, got {self.window_s}")

    @property
    def eeg(self) -> ModalitySpec:
        return next(m for m in self.modalities if m.role == "eeg")

    @property
    def peripheral(self) -> ModalitySpec | None:
        return next((m for m in self.modalities if m.role == "peripheral"), None)

    def modality(self, name: str) -> ModalitySpec:
        for m in self.modalities:
            if m.name == name:
                return m
        raise KeyError(f"no modality {name!r} in contract (have {[m.name for m in self.modalities]})")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DataContract:
        mods = tuple(
            ModalitySpec(name=m["name"], role=m["role"], ch_names=tuple(m["ch_names"]), sfreq=float(m["sfreq"]))
            for m in d["modalities"]
        )
        return cls(modalities=mods, window_s=tuple(float(w) for w in d["window_s"]), extra=dict(d.get("extra", {})))
