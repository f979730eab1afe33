"""Dataset facts files (``deap.yaml``, ``dreamer.yaml``) and the prepared-data contract they imply."""

from __future__ import annotations

from physiosync.config import load_dataset_facts
from physiosync.data.contract import DataContract, ModalitySpec

PREPARED_SFREQ = 128.0  # every modality is stored at 128 Hz after preprocessing (method-spec §1–§2)


def prepared_contract(name: str, window_s: tuple[float, ...] = (1.0, 5.0)) -> DataContract:
    """The :class:`DataContract` of a dataset *after* preprocessing (all modalities at 128 Hz).

    Used by ``describe-model`` (no data needed) and written into cache manifests.
    """
    facts = load_dataset_facts(name)
    mods = tuple(
        ModalitySpec(name=mod, role=spec["role"], ch_names=tuple(spec["ch_names"]), sfreq=PREPARED_SFREQ)
        for mod, spec in facts["modalities"].items()
    )
    return DataContract(modalities=mods, window_s=tuple(window_s))
