"""Training runs: a run's config and its checks, the run store (folder, status, locks, metrics
log, checkpoints), the queue of workers, the training loop, live curves, presets, sharing."""
