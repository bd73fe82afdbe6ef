"""Large batches given as Parquet (a file, a folder of partitions, any fsspec URL): validated,
scored and drift-checked on a Dask cluster with the same statistics as the in-memory path."""
