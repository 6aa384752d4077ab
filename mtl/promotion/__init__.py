"""The gate and promotion: the pure policy, the registry moves, the model card."""
