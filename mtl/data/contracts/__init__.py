"""The data contract: the Great Expectations suite derived from params.yaml (validation.py, with
custom expectations in gx_custom.py), the label-leakage guard (leakage.py) and drift against
the champion's training statistics (drift.py)."""
