"""amplifier-session-storage: Amplifier sessions in a content-addressed block repository.

The names applications import (the seed API) are re-exported here. Names backed by Azure
(``CosmosBlockStorage``, ``HybridBlockStorage``) are imported lazily, so the base install
(local storage only) never imports an Azure package.
"""

from __future__ import annotations

import importlib
from typing import Any

from .compat import (
    BlockStorage,
    BlockWriter,
    CosmosAuthMethod,
    LocalBlockStorage,
    SessionStateReader,
    StorageConfig,
)
from .core.ids import ObjectId
from .core.objects import Block, BlockType
from .errors import (
    AccessDeniedError,
    AuthenticationError,
    ConfigurationError,
    ConflictError,
    CorruptObjectError,
    IntegrityError,
    InvalidInputError,
    MigrationError,
    NotFastForwardError,
    NotFoundError,
    RemoteError,
    SessionNotFoundError,
    StorageError,
    TransientRemoteError,
)
from .repository import Repository, SessionState

__version__ = "0.2.0"

# name -> module that defines it; imported on first access
_LAZY = {
    "CosmosBlockStorage": ".compat.cosmos",
    "HybridBlockStorage": ".compat.hybrid",
    "ConflictResolution": ".compat.hybrid",
    "SyncState": ".compat.hybrid",
    "SessionStore": ".compat.session_store",
    "SessionMigrator": ".compat.migrator",
    "SessionSource": ".compat.migrator",
    "MigrationResult": ".compat.migrator",
    "MigrationBatch": ".compat.migrator",
    "MigrationStatus": ".compat.migrator",
}

__all__ = [
    "AccessDeniedError",
    "AuthenticationError",
    "Block",
    "BlockStorage",
    "BlockType",
    "BlockWriter",
    "ConfigurationError",
    "ConflictError",
    "CorruptObjectError",
    "CosmosAuthMethod",
    "IntegrityError",
    "InvalidInputError",
    "LocalBlockStorage",
    "MigrationError",
    "NotFastForwardError",
    "NotFoundError",
    "ObjectId",
    "RemoteError",
    "Repository",
    "SessionNotFoundError",
    "SessionState",
    "SessionStateReader",
    "StorageConfig",
    "StorageError",
    "TransientRemoteError",
    *_LAZY,
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value
