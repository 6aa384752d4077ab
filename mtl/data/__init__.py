"""Getting data in (ingest), its contracts (validation, drift, leakage) and the fitted features."""
