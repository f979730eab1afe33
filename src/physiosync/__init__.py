"""physiosync: PhysioSync (Cui et al., arXiv 2504.17163) for EEG emotion recognition.

Inter-subject temporal (LS-TCL) and cross-modal (CM-CA) contrastive pre-training of EEG and peripheral
encoders at two time resolutions, followed by confidence-weighted hierarchical fusion fine-tuning, with
protocols that do not leak and cheap baselines under the same folds.
"""

__version__ = "0.1.0"
