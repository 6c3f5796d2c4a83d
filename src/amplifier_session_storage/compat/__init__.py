"""Seed-compatible facades: StorageConfig, BlockWriter, SessionStateReader, BlockStorage."""

from .config import CosmosAuthMethod, StorageConfig
from .reader import SessionStateReader
from .storage import BlockStorage, LocalBlockStorage, RepositoryBlockStorage
from .writer import BlockWriter

__all__ = [
    "BlockStorage",
    "BlockWriter",
    "CosmosAuthMethod",
    "LocalBlockStorage",
    "RepositoryBlockStorage",
    "SessionStateReader",
    "StorageConfig",
]
