"""The session catalog: one small summary document per session, for fast listing.

The catalog is derived data: the repository rewrites a session's summary when its metadata
changes, and ``Repository.rebuild_catalog()`` can always recompute it from the refs. Local
summaries are therefore written atomically but without fsync.
"""

from __future__ import annotations

import abc
import json
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from ..core.ids import validate_session_id

__all__ = ["CatalogStore", "LocalCatalogStore", "MemoryCatalogStore"]


class CatalogStore(abc.ABC):
    """Session summaries keyed by session id."""

    @abc.abstractmethod
    async def get(self, session_id: str) -> dict[str, Any] | None: ...

    @abc.abstractmethod
    async def put(self, session_id: str, doc: dict[str, Any]) -> None: ...

    @abc.abstractmethod
    async def delete(self, session_id: str) -> None: ...

    @abc.abstractmethod
    def list(self) -> AsyncIterator[dict[str, Any]]: ...

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources."""


class MemoryCatalogStore(CatalogStore):
    def __init__(self) -> None:
        self._docs: dict[str, dict[str, Any]] = {}

    async def get(self, session_id: str) -> dict[str, Any] | None:
        doc = self._docs.get(validate_session_id(session_id))
        return dict(doc) if doc is not None else None

    async def put(self, session_id: str, doc: dict[str, Any]) -> None:
        self._docs[validate_session_id(session_id)] = dict(doc)

    async def delete(self, session_id: str) -> None:
        self._docs.pop(validate_session_id(session_id), None)

    async def list(self) -> AsyncIterator[dict[str, Any]]:
        for doc in list(self._docs.values()):
            yield dict(doc)


class LocalCatalogStore(CatalogStore):
    """``root/catalog/<session_id>.json``; temp file plus rename, no fsync (rebuildable)."""

    def __init__(self, root: Path) -> None:
        self._dir = Path(root) / "catalog"
        self._dir.mkdir(parents=True, exist_ok=True)

    def _path(self, session_id: str) -> Path:
        return self._dir / (validate_session_id(session_id) + ".json")

    async def get(self, session_id: str) -> dict[str, Any] | None:
        try:
            data = self._path(session_id).read_bytes()
        except FileNotFoundError:
            return None
        try:
            doc = json.loads(data)
        except ValueError:
            return None  # a torn summary is just a cache miss
        return doc if isinstance(doc, dict) else None

    async def put(self, session_id: str, doc: dict[str, Any]) -> None:
        path = self._path(session_id)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(doc, separators=(",", ":")))
        os.replace(tmp, path)

    async def delete(self, session_id: str) -> None:
        self._path(session_id).unlink(missing_ok=True)

    async def list(self) -> AsyncIterator[dict[str, Any]]:
        with os.scandir(self._dir) as it:
            names = [e.name for e in it if e.name.endswith(".json") and not e.name.startswith(".")]
        for name in names:
            try:
                doc = json.loads((self._dir / name).read_bytes())
            except (OSError, ValueError):
                continue
            if isinstance(doc, dict):
                yield doc
