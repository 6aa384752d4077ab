"""The training loop and its collaborators: device, precision, distribution, weighting, checkpoints."""
