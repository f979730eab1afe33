"""Training: the resumable epoch loop, pre-training and fine-tuning step functions, checkpoints, runtime
(devices, threads, precision)."""
