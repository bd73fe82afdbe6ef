"""The scoring service of the champion (modelwatch serve-model), its prediction log, and the
log read back as monitor batches and system health (modelwatch collect)."""
