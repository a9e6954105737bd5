"""Storage and the contracts of what is stored: fsspec access (storage), the output layout
(paths), the Parquet schemas (schemas), cache keys (cachekeys), task results as checked JSON
(results), which errors are worth a retry (transient) and the one-writer lease (lease).
"""
