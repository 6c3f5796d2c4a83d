"""Object and ref stores: memory, local disk, Azure Blob and Cosmos DB, plus wrappers."""

from .base import ObjectStore, RefStore, ReflogEntry
from .memory import MemoryObjectStore, MemoryRefStore

__all__ = ["MemoryObjectStore", "MemoryRefStore", "ObjectStore", "RefStore", "ReflogEntry"]
