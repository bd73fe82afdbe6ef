"""The scoring service of the champion (modelwatch serve-model) and its prediction log."""
