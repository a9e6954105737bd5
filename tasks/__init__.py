"""Prefect tasks: thin wrappers over metaclip/ (retries, cache keys, result storage)."""

import os

os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
# Dask's INFO lines (workers starting and closing) drown the pipeline's own logs.
os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "warning")
