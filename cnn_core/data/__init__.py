"""Datasets: the registry of built-in datasets, readers of their real formats, the learner's own
images (folders, zips) saved as immutable versions, and image decoding shared with prediction."""
