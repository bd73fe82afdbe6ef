"""Streams of batches to replay: a real dataset cut into a reference period and weekly batches with
delayed labels (the demo)."""
