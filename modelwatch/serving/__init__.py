"""The prediction log of the scoring service, read back as monitor batches and system health."""
