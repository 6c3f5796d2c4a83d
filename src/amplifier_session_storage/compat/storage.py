"""The seed's BlockStorage contract and LocalBlockStorage over the local repository."""

from __future__ import annotations

import abc
import asyncio
from collections.abc import Sequence
from typing import Any

from ..core.ids import validate_project_slug, validate_session_id
from ..core.objects import Block, BlockType
from ..errors import SessionNotFoundError
from ..repository.repo import Repository
from .config import StorageConfig

__all__ = ["BlockStorage", "LocalBlockStorage", "RepositoryBlockStorage"]


class BlockStorage(abc.ABC):
    """The async storage contract applications program against (seed API)."""

    @abc.abstractmethod
    async def write_block(self, block: Block) -> Block:
        """Store one block; returns the block as committed (rebuilt if the head moved)."""

    @abc.abstractmethod
    async def write_blocks(self, blocks: Sequence[Block]) -> list[Block]:
        """Store many blocks with one durability point per session."""

    @abc.abstractmethod
    async def read_blocks(
        self, session_id: str, since_sequence: int | None = None, limit: int | None = None
    ) -> list[Block]:
        """The session's blocks with sequence > ``since_sequence``, ascending, at most ``limit``."""

    @abc.abstractmethod
    async def get_latest_sequence(self, session_id: str) -> int:
        """The head's sequence (0 for a session that does not exist)."""

    @abc.abstractmethod
    async def list_sessions(
        self, project_slug: str | None = None, limit: int = 100, offset: int = 0
    ) -> list[dict[str, Any]]:
        """Session summaries, newest first."""

    @abc.abstractmethod
    async def delete_session(self, session_id: str) -> None:
        """Delete the session (recoverable from the reflog until gc)."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Release resources."""

    async def __aenter__(self) -> BlockStorage:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


class RepositoryBlockStorage(BlockStorage):
    """BlockStorage over any :class:`Repository` (subclasses decide how to open it)."""

    def __init__(self, config: StorageConfig) -> None:
        self.config = config
        self._repo: Repository | None = None
        self._lock = asyncio.Lock()

    async def _open(self) -> Repository:
        raise NotImplementedError

    async def repository(self) -> Repository:
        """The underlying repository (opened on first use)."""
        if self._repo is None:
            async with self._lock:
                if self._repo is None:
                    self._repo = await self._open()
        return self._repo

    async def write_block(self, block: Block) -> Block:
        return (await self.write_blocks([block]))[0]

    async def write_blocks(self, blocks: Sequence[Block]) -> list[Block]:
        repo = await self.repository()
        out: list[Block] = []
        i = 0
        while i < len(blocks):
            j = i
            sid = blocks[i].session_id
            while j < len(blocks) and blocks[j].session_id == sid:
                j += 1
            group = list(blocks[i:j])
            deleting = group[-1].block_type is BlockType.SESSION_DELETED
            committed = await repo.commit(sid, group)
            if deleting:
                await repo.delete_ref_after(sid, committed[-1])
            out.extend(committed)
            i = j
        return out

    async def read_blocks(
        self, session_id: str, since_sequence: int | None = None, limit: int | None = None
    ) -> list[Block]:
        validate_session_id(session_id)
        repo = await self.repository()
        try:
            return await repo.chain(session_id, since_sequence=since_sequence, limit=limit)
        except SessionNotFoundError:
            return []

    async def get_latest_sequence(self, session_id: str) -> int:
        validate_session_id(session_id)
        repo = await self.repository()
        head = await repo.head(session_id)
        return 0 if head is None else (await repo.get_block(head, resolve=False)).sequence

    async def list_sessions(
        self, project_slug: str | None = None, limit: int = 100, offset: int = 0
    ) -> list[dict[str, Any]]:
        if project_slug is not None:
            validate_project_slug(project_slug)
        repo = await self.repository()
        return await repo.list_sessions(project_slug, limit, offset)

    async def delete_session(self, session_id: str) -> None:
        validate_session_id(session_id)
        repo = await self.repository()
        await repo.delete_session(session_id)

    async def close(self) -> None:
        if self._repo is not None:
            await self._repo.close()
            self._repo = None


class LocalBlockStorage(RepositoryBlockStorage):
    """Sessions in the local repository at ``config.local_path`` (default ~/.amplifier/sessions).

    Nothing needs a network: this is the default, offline store.
    """

    async def _open(self) -> Repository:
        from ..repository.local import open_local

        return await open_local(
            self.config.storage_path, user_id=self.config.user_id, device_id=self.config.device_id
        )
