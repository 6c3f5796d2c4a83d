"""Object and ref stores: memory, local disk, Azure Blob and Cosmos DB, plus wrappers."""

from .base import ObjectStore, ReflogEntry, RefStore
from .memory import MemoryObjectStore, MemoryRefStore

__all__ = ["MemoryObjectStore", "MemoryRefStore", "ObjectStore", "RefStore", "ReflogEntry"]
