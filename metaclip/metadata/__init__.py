"""Metadata: the list of query entries (loading for curation here; builders in submodules)."""

from metaclip.metadata.load import Metadata, load_metadata

__all__ = ["Metadata", "load_metadata"]
