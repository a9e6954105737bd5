"""MetaCLIP curation library: pure functions and small classes, no orchestrator imports."""

__version__ = "0.1.0"

# Bumped whenever a change alters any intermediate or final output; part of every cache key.
PIPELINE_VERSION = "2"  # 2: per-record extraction limits (metaclip.extraction.limits)
