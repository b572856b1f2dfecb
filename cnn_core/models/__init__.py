"""Models: the zoo of the source documents' networks, the learner's own layer lists, summaries
and FLOPs, the fused batch norm, and the models that ship with the lab."""
