"""HybridBlockStorage: write locally, sync with the remote in the background.

Every BlockStorage call goes to the local repository (offline first). What needs syncing is
**derived from refs**, never kept in memory: a session is pending when its local head
differs from its tracking ref ``remotes/<name>/sessions/<id>`` (what the remote had at the
last push or fetch), or when the remote head differs from that tracking ref. Writes made
while offline, or before a crash or restart, are therefore synced by the next cycle
(v0.1.0 kept an in-memory queue and lost them).

A cycle (every ``sync_interval`` seconds after ``start()``, or ``force_sync()``): list the
remote's heads (one query), then for each session concerned fetch what is new and

============================== ================================================
local vs remote                what happens
============================== ================================================
equal                          nothing (synced)
no local session               the local ref is created at the remote head
local behind                   fast-forward of the local ref
local ahead / remote has none  push
diverged                       ``conflict_resolution``: ``merge`` (a MERGE block via
                               ``Repository.merge``, then push: nothing is lost and no
                               sequence holds two blocks), ``local_wins`` (push --force),
                               ``remote_wins`` (the local ref moves to the remote head; the
                               local line stays in the reflog), ``manual`` (recorded, see
                               ``get_conflicts`` / ``resolve_conflict``)
============================== ================================================

A cycle that fails (the remote is down, a credential expired) is reported through
``on_sync_error`` and retried at the next interval; a failed ``start`` is no different.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from ..core.ids import ObjectId, validate_session_id
from ..core.objects import Block
from ..errors import ConflictError, StorageError
from ..remote.common import set_tracking, tracking_prefix, tracking_ref
from ..remote.fetch import fetch, remote_heads
from ..remote.push import push
from ..repository.repo import Repository
from .config import StorageConfig
from .storage import BlockStorage, LocalBlockStorage

if TYPE_CHECKING:
    from ..remote.session import SyncRemote
    from ..stores.retry import RetryPolicy

__all__ = ["Conflict", "ConflictResolution", "HybridBlockStorage", "SyncState"]


class SyncState(StrEnum):
    """Where a session stands with the remote."""

    SYNCED = "synced"
    PENDING = "pending"
    CONFLICT = "conflict"
    ERROR = "error"


class ConflictResolution(StrEnum):
    """What to do when the local and remote lines of a session diverged."""

    LOCAL_WINS = "local_wins"
    REMOTE_WINS = "remote_wins"
    MERGE = "merge"
    MANUAL = "manual"


@dataclass(frozen=True)
class Conflict:
    """A session whose lines diverged and wait for ``resolve_conflict`` (manual mode)."""

    session_id: str
    local_head: ObjectId
    remote_head: ObjectId
    detected_ns: int


class HybridBlockStorage(BlockStorage):
    """Local storage with background sync to the remote of ``config`` (module docstring)."""

    def __init__(
        self,
        config: StorageConfig,
        conflict_resolution: ConflictResolution = ConflictResolution.MERGE,
        sync_interval: float = 5.0,
        on_conflict: Callable[[Conflict], Any] | None = None,
        on_sync_error: Callable[[Exception, str | None], Any] | None = None,
        *,
        remote_name: str = "origin",
        blob_account_key: str | None = None,
        connection_verify: bool = True,
        policy: RetryPolicy | None = None,
    ) -> None:
        self.config = config
        self.local = LocalBlockStorage(config)
        self.conflict_resolution = ConflictResolution(conflict_resolution)
        self.sync_interval = float(sync_interval)
        self.on_conflict = on_conflict
        self.on_sync_error = on_sync_error
        self.remote_name = remote_name
        self._account_key = blob_account_key
        self._insecure = not connection_verify
        self._policy = policy
        self._remote: SyncRemote | None = None
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()
        self._conflicts: dict[str, Conflict] = {}
        self._errors: dict[str, Exception] = {}
        self.last_error: Exception | None = None
        self.cycles = 0

    # ------------------------------------------------------------------ BlockStorage
    async def write_block(self, block: Block) -> Block:
        return await self.local.write_block(block)

    async def write_blocks(self, blocks: Sequence[Block]) -> list[Block]:
        return await self.local.write_blocks(blocks)

    async def read_blocks(
        self, session_id: str, since_sequence: int | None = None, limit: int | None = None
    ) -> list[Block]:
        return await self.local.read_blocks(session_id, since_sequence, limit)

    async def get_latest_sequence(self, session_id: str) -> int:
        return await self.local.get_latest_sequence(session_id)

    async def list_sessions(
        self, project_slug: str | None = None, limit: int = 100, offset: int = 0
    ) -> list[dict[str, Any]]:
        return await self.local.list_sessions(project_slug, limit, offset)

    async def delete_session(self, session_id: str) -> None:
        await self.local.delete_session(session_id)

    async def close(self) -> None:
        await self.stop()
        await self.local.close()

    # ------------------------------------------------------------------ the background task
    async def start(self) -> None:
        """Start syncing every ``sync_interval`` seconds (idempotent; never raises)."""
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="hybrid-sync")

    async def stop(self) -> None:
        """Stop the background task and close the remote (local writes keep working)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        remote, self._remote = self._remote, None
        if remote is not None:
            await remote.close()

    async def _run(self) -> None:
        while True:
            try:
                await self._cycle(None, report=True)
            except (StorageError, OSError):
                pass  # reported through on_sync_error; retried at the next interval
            except Exception as exc:  # a bug must not stop syncing silently either
                self.last_error = exc
                await self._notify_error(exc, None)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.sync_interval)
            self._wake.clear()

    async def force_sync(self, session_id: str | None = None) -> dict[str, SyncState]:
        """Sync now (one session or all); raises when the remote cannot be reached."""
        if session_id is not None:
            validate_session_id(session_id)
        return await self._cycle(session_id, report=False)

    # ------------------------------------------------------------------ state (from refs)
    async def get_pending_sessions(self) -> list[str]:
        """Sessions whose local head differs from what the remote had at the last sync."""
        repo = await self.local.repository()
        prefix = tracking_prefix(self.remote_name)
        tracked = {n[len(prefix) :]: h async for n, h in repo.refs.list(prefix)}
        local = {n[len("sessions/") :]: h async for n, h in repo.refs.list("sessions/")}
        # A tracking ref without a local session: deleted here, to be deleted there.
        return sorted(s for s in set(local) | set(tracked) if tracked.get(s) != local.get(s))

    async def get_sync_state(self, session_id: str) -> SyncState:
        repo = await self.local.repository()
        if session_id in self._conflicts:
            return SyncState.CONFLICT
        if session_id in self._errors:
            return SyncState.ERROR
        tracked = await repo.refs.get(tracking_ref(self.remote_name, session_id))
        return SyncState.SYNCED if await repo.head(session_id) == tracked else SyncState.PENDING

    async def get_conflicts(self) -> list[Conflict]:
        return list(self._conflicts.values())

    async def resolve_conflict(self, session_id: str, resolution: ConflictResolution) -> SyncState:
        """Settle a recorded conflict with ``resolution`` (not ``manual``) and sync it."""
        resolution = ConflictResolution(resolution)
        if resolution is ConflictResolution.MANUAL:
            raise ConflictError("resolve a conflict with local_wins, remote_wins or merge")
        self._conflicts.pop(session_id, None)
        states = await self._cycle(session_id, report=False, resolution=resolution)
        return states.get(session_id, SyncState.SYNCED)

    # ------------------------------------------------------------------ one cycle
    async def _open(self) -> SyncRemote:
        if self._remote is None:
            from ..remote.session import open_remote_config

            key = self._account_key
            if key is None and self.config.blob_account_url:
                key = os.environ.get("AMPLIFIER_BLOB_ACCOUNT_KEY") or None
            self._remote = await open_remote_config(
                self.config,
                name=self.remote_name,
                blob_account_key=key,
                insecure_tls=self._insecure,
                create=True,
                policy=self._policy,
            )
        return self._remote

    async def _cycle(
        self,
        session_id: str | None,
        *,
        report: bool,
        resolution: ConflictResolution | None = None,
    ) -> dict[str, SyncState]:
        async with self._lock:
            try:
                remote = await self._open()
                repo = await self.local.repository()
                only = [session_id] if session_id is not None else None
                heads = await remote_heads(remote, only)
                local = await repo.session_ids() if only is None else only
            except (StorageError, OSError) as exc:
                self.last_error = exc
                if report:
                    await self._notify_error(exc, None)
                raise
            states: dict[str, SyncState] = {}
            for sid in sorted(set(heads) | set(local)):
                try:
                    states[sid] = await self._sync(repo, remote, sid, heads.get(sid), resolution)
                    self._errors.pop(sid, None)
                except (StorageError, OSError) as exc:
                    self._errors[sid] = exc
                    states[sid] = SyncState.ERROR
                    await self._notify_error(exc, sid)
            self.cycles += 1
            self.last_error = None
            return states

    async def _sync(
        self,
        repo: Repository,
        remote: SyncRemote,
        sid: str,
        rhead: ObjectId | None,
        resolution: ConflictResolution | None,
    ) -> SyncState:
        if sid in self._conflicts and resolution is None:
            return SyncState.CONFLICT
        tracked = await repo.refs.get(tracking_ref(remote.name, sid))
        local = await repo.head(sid)
        if local is None and tracked is not None and rhead == tracked:
            await self._delete_remote(repo, remote, sid, rhead)  # deleted here since the sync
            return SyncState.SYNCED
        if rhead is not None and (rhead != tracked or not await repo.objects.has(rhead)):
            await fetch(repo, remote, [sid])
        if rhead is None:
            if local is not None:
                await push(repo, remote, [sid])
            return SyncState.SYNCED
        if local == rhead:
            await set_tracking(repo, remote.name, sid, rhead, "sync")
            return SyncState.SYNCED
        if local is None or await repo.is_ancestor(local, rhead):
            await self._move_local(repo, remote, sid, local, rhead, "sync: fast-forward")
            return SyncState.SYNCED
        if await repo.is_ancestor(rhead, local):
            await push(repo, remote, [sid])
            return SyncState.SYNCED
        how = resolution or self.conflict_resolution
        if how is ConflictResolution.MANUAL:
            conflict = Conflict(sid, local, rhead, time.time_ns())
            self._conflicts[sid] = conflict
            await self._call(self.on_conflict, conflict)
            return SyncState.CONFLICT
        if how is ConflictResolution.REMOTE_WINS:
            await self._move_local(repo, remote, sid, local, rhead, "sync: remote wins")
            return SyncState.SYNCED
        if how is ConflictResolution.MERGE:
            await repo.merge(sid, rhead, reason=f"sync with {remote.name}")
        await push(repo, remote, [sid], force=how is ConflictResolution.LOCAL_WINS)
        return SyncState.SYNCED

    async def _move_local(
        self,
        repo: Repository,
        remote: SyncRemote,
        sid: str,
        old: ObjectId | None,
        new: ObjectId,
        reason: str,
    ) -> None:
        from ..core.refnames import session_ref

        if not await repo.refs.set_if_equals(session_ref(sid), old, new, reason):
            raise ConflictError(f"session {sid!r} moved during the sync; retried next cycle")
        await repo.head(sid)
        catalog = remote.stores.catalog
        summary = await remote.call(lambda: catalog.get(sid), "read session summary")
        if summary is not None:
            await repo.catalog.put(sid, summary)

    async def _delete_remote(
        self, repo: Repository, remote: SyncRemote, sid: str, rhead: ObjectId
    ) -> None:
        from ..core.refnames import session_ref

        if not await remote.refs.set_if_equals(session_ref(sid), rhead, None, "sync: deleted"):
            raise ConflictError(f"session {sid!r} moved on the remote; retried next cycle")
        index, user = remote.index, remote.user_id
        await remote.call(lambda: index.delete_session(user, sid), "delete session document")
        await set_tracking(repo, remote.name, sid, None, "sync: deleted")

    async def _notify_error(self, exc: Exception, sid: str | None) -> None:
        await self._call(self.on_sync_error, exc, sid)

    @staticmethod
    async def _call(callback: Callable[..., Any] | None, *args: Any) -> None:
        if callback is None:
            return
        result = callback(*args)
        if inspect.isawaitable(result):
            await result
