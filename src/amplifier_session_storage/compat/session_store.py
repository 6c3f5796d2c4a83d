"""SessionStore: the drop-in ``save(session_id, transcript, metadata)`` / ``load`` API.

Same methods and meaning as amplifier-app-cli's SessionStore and the seed library's
(``exists``, ``find_session``, ``list_sessions``, ``get_metadata``, ``update_metadata``,
``delete_session``, ``cleanup_old_sessions``), async, over the repository:

* a save whose transcript extends the stored one appends only the new messages;
* a save that no longer starts with the stored messages is recorded as a REWIND to the
  longest common prefix followed by the new messages -- the old ones stay reachable through
  the REWIND's second parent: nothing is ever lost;
* ``system`` and ``developer`` messages are not kept (as app-cli does); messages are stored
  as ``json.dumps(msg, ensure_ascii=False)`` would write them, so ``export_session`` gives
  the transcript.jsonl and metadata.json app-cli would have written.

Ids are validated before use: empty, ``.``, ``..`` and ids holding ``/`` or ``\\`` (or any
character a safe name may not hold) are refused with :class:`InvalidInputError` (a
ValueError). A missing session raises :class:`SessionStoreNotFoundError`, which is both a
:class:`SessionNotFoundError` and a ``FileNotFoundError`` (what app-cli raised).
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from typing import Any

from ..core.ids import ObjectId, validate_project_slug, validate_session_id
from ..core.objects import Block, BlockType
from ..errors import ConflictError, InvalidInputError, SessionNotFoundError
from ..repository.repo import Repository
from .amplifier.dedup import BlobReader
from .amplifier.format import APP_METADATA_FORMAT, message_ts_ns
from .amplifier.session_info import own_info

__all__ = ["SessionStore", "SessionStoreNotFoundError", "is_top_level_session"]

_DUMPS_U = json.JSONEncoder(ensure_ascii=False, default=str).encode
_SKIPPED_ROLES = ("system", "developer")


class SessionStoreNotFoundError(SessionNotFoundError, FileNotFoundError):
    """No such session (also a FileNotFoundError, as app-cli's SessionStore raised)."""


def is_top_level_session(session_id: str) -> bool:
    """Spawned sub-sessions have an ``_`` in their id (``{parent}-{span}_{agent}``)."""
    return "_" not in session_id


def _check_id(session_id: object) -> str:
    if not isinstance(session_id, str) or not session_id.strip():
        raise InvalidInputError("session_id cannot be empty")
    if "/" in session_id or "\\" in session_id or session_id in (".", ".."):
        raise InvalidInputError(f"Invalid session_id: {session_id!r:.80}")
    return validate_session_id(session_id)


def _as_dict(message: Any) -> dict[str, Any]:
    if isinstance(message, dict):
        return message
    dump = getattr(message, "model_dump", None)
    if callable(dump):
        value = dump()
        if isinstance(value, dict):
            return value
    raise InvalidInputError(f"a transcript message must be a dict, got {type(message).__name__}")


def _slug_from(meta: dict[str, Any], default: str | None) -> str | None:
    slug = meta.get("project_slug")
    if not isinstance(slug, str):
        wd = meta.get("working_dir")
        if isinstance(wd, str) and wd:
            slug = wd.replace("/", "-").replace("\\", "-").replace(":", "")
            slug = slug if slug.startswith("-") else "-" + slug
        else:
            slug = default
    try:
        return validate_project_slug(slug) if slug is not None else None
    except InvalidInputError:
        return default


class SessionStore:
    """Amplifier sessions in a repository, with the API applications already call.

    ``storage`` is a repository-backed BlockStorage (``LocalBlockStorage(config)``...) or a
    :class:`Repository`; None opens the local store configured by the environment.
    ``project_slug`` is used for sessions whose metadata names no project.
    """

    def __init__(self, storage: Any = None, *, project_slug: str | None = None) -> None:
        if storage is None:
            from .config import StorageConfig
            from .storage import LocalBlockStorage

            user = os.environ.get("USER") or os.environ.get("USERNAME") or "local"
            storage = LocalBlockStorage(StorageConfig.from_environment(user_id=user))
        self.storage = storage
        self.project_slug = validate_project_slug(project_slug) if project_slug else None
        # session -> (head, canonical text of each stored message, its MESSAGE block)
        self._known: dict[str, tuple[ObjectId, list[str], list[Block]]] = {}

    async def repository(self) -> Repository:
        if isinstance(self.storage, Repository):
            return self.storage
        if hasattr(self.storage, "repository"):
            repo = await self.storage.repository()
            assert isinstance(repo, Repository)
            return repo
        raise InvalidInputError("SessionStore needs a repository-backed storage")

    async def close(self) -> None:
        await self.storage.close()

    # ------------------------------------------------------------------ reading
    async def _head(self, session_id: str) -> tuple[Repository, ObjectId]:
        sid = _check_id(session_id)
        repo = await self.repository()
        head = await repo.head(sid)
        if head is None:
            raise SessionStoreNotFoundError(sid, f"Session '{sid}' not found")
        return repo, head

    async def _messages(
        self, repo: Repository, sid: str, head: ObjectId
    ) -> tuple[list[str], list[Block]]:
        known = self._known.get(sid)
        if known is not None and known[0] == head:
            return known[1], known[2]
        texts: list[str] = []
        blocks: list[Block] = []
        reader = BlobReader(repo.read_blob)
        for b in await repo.history(head):
            if b.block_type is BlockType.MESSAGE:
                value = await reader.message_value(b.data, b.links)
                texts.append("\x00" if value is None else _DUMPS_U(value))  # never equal
                blocks.append(b)
        self._known[sid] = (head, texts, blocks)
        return texts, blocks

    async def load(self, session_id: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """``(transcript, metadata)`` as last saved (or imported)."""
        repo, head = await self._head(session_id)
        transcript = []
        reader = BlobReader(repo.read_blob)
        for b in await repo.history(head):
            if b.block_type is BlockType.MESSAGE:
                value = await reader.message_value(b.data, b.links)
                if value is not None:
                    transcript.append(value)
        return transcript, await self._metadata(repo, session_id, head)

    async def _metadata(self, repo: Repository, sid: str, head: ObjectId) -> dict[str, Any]:
        info = await own_info(repo, sid, head)
        return dict(info.metadata) if info.metadata is not None else {}

    async def get_metadata(self, session_id: str) -> dict[str, Any]:
        """The session's metadata without loading its transcript."""
        repo, head = await self._head(session_id)
        return await self._metadata(repo, session_id, head)

    async def exists(self, session_id: str) -> bool:
        try:
            sid = _check_id(session_id)
        except InvalidInputError:
            return False
        return await (await self.repository()).exists(sid)

    async def _updated(self, repo: Repository) -> list[tuple[int, str]]:
        out = []
        async for name, head in repo.refs.list("sessions/"):
            sid = name[len("sessions/") :]
            out.append(((await repo.get_block(head, resolve=False)).timestamp_ns, sid))
        return out

    async def list_sessions(self, *, top_level_only: bool = True) -> list[str]:
        """Session ids, most recently updated first (sub-sessions only when asked)."""
        stamped = await self._updated(await self.repository())
        stamped.sort(reverse=True)
        return [sid for _, sid in stamped if not top_level_only or is_top_level_session(sid)]

    async def find_session(self, partial_id: str, *, top_level_only: bool = True) -> str:
        """The one session whose id starts with ``partial_id`` (exact match first)."""
        if not isinstance(partial_id, str) or not partial_id.strip():
            raise InvalidInputError("Session ID cannot be empty")
        partial_id = partial_id.strip()
        if await self.exists(partial_id) and (
            not top_level_only or is_top_level_session(partial_id)
        ):
            return partial_id
        matches = [
            s
            for s in await self.list_sessions(top_level_only=top_level_only)
            if s.startswith(partial_id)
        ]
        if not matches:
            raise SessionStoreNotFoundError(partial_id, f"No session found matching '{partial_id}'")
        if len(matches) > 1:
            raise InvalidInputError(
                f"Ambiguous session ID '{partial_id}' matches {len(matches)} sessions: "
                + ", ".join(m[:12] + "..." for m in matches[:3])
                + (f" and {len(matches) - 3} more" if len(matches) > 3 else "")
            )
        return matches[0]

    # ------------------------------------------------------------------ writing
    def _meta_payload(self, meta: dict[str, Any], sid: str) -> dict[str, Any]:
        payload: dict[str, Any] = {"metadata": meta, "metadata_format": dict(APP_METADATA_FORMAT)}
        slug = _slug_from(meta, self.project_slug)
        if slug is not None:
            payload["project_slug"] = slug
        for key in ("name", "description", "bundle", "model"):
            if isinstance(meta.get(key), str):
                payload[key] = meta[key]
        parent = meta.get("parent_id")
        if isinstance(parent, str) and parent != sid:
            with contextlib.suppress(InvalidInputError):
                payload["parent_session_id"] = payload["parent_id"] = validate_session_id(parent)
        return payload

    async def save(self, session_id: str, transcript: list[Any], metadata: dict[str, Any]) -> None:
        """Store the session's transcript and metadata (see the module docstring)."""
        sid = _check_id(session_id)
        if not isinstance(metadata, dict):
            raise InvalidInputError("metadata must be a dict")
        messages = [m for m in map(_as_dict, transcript) if m.get("role") not in _SKIPPED_ROLES]
        texts = [_DUMPS_U(m) for m in messages]
        meta_text = _DUMPS_U(metadata)
        meta: dict[str, Any] = json.loads(meta_text)
        repo = await self.repository()
        for _ in range(16):
            try:
                await self._save_once(repo, sid, texts, meta, meta_text)
                return
            except ConflictError:
                self._known.pop(sid, None)  # another writer moved the session: diff again
        raise ConflictError(f"session {sid!r}: gave up after repeated concurrent saves")

    async def _save_once(
        self, repo: Repository, sid: str, texts: list[str], meta: dict[str, Any], meta_text: str
    ) -> None:
        head = await repo.head(sid)
        rewound = False
        rule = None
        stored: list[str]
        blocks: list[Block]
        live_meta: dict[str, Any] | None
        if head is None:
            created = await repo.create_session(sid, self._meta_payload(meta, sid))
            head, stored, blocks, live_meta = created.id, [], [], meta
        else:
            stored, blocks = await self._messages(repo, sid, head)
            info = await own_info(repo, sid, head)
            live_meta, rule = info.metadata, info.rule
            k = 0
            while k < len(stored) and k < len(texts) and stored[k] == texts[k]:
                k += 1
            if k < len(stored):
                head = await self._rewind(repo, sid, head, blocks[k])
                stored, rewound = stored[:k], True
        entries: list[tuple[BlockType, Any, int | None]] = []
        for text in texts[len(stored) :]:
            msg = json.loads(text)
            entries.append((BlockType.MESSAGE, msg, message_ts_ns(msg) or time.time_ns()))
        if rewound or live_meta is None or _DUMPS_U(live_meta) != meta_text:
            payload = self._meta_payload(meta, sid)
            if rule is not None:
                payload["fork_rule"] = rule.to_data()
            entries.append((BlockType.SESSION_UPDATED, payload, None))
        if entries:
            await repo.append_many(sid, entries, expected_head=head, reason="SessionStore.save")
        self._known.pop(sid, None)

    async def _rewind(
        self, repo: Repository, sid: str, head: ObjectId, first_gone: Block
    ) -> ObjectId:
        """REWIND to just before ``first_gone`` (the first stored message no longer saved)."""
        target = first_gone.parents[0] if first_gone.parents else None
        try:
            if target is None:
                raise InvalidInputError("a message block without a parent")
            block = await repo.rewind(
                sid, target, "SessionStore.save: transcript rewritten", timestamp_ns=time.time_ns()
            )
        except InvalidInputError:
            # Not on the first-parent chain (a merged message): go back to the session root.
            root = None
            async for b in repo.walk(head):
                if b.session_id != sid:
                    break
                root = b
            assert root is not None
            block = await repo.rewind(sid, root.id, "SessionStore.save: transcript rewritten")
        return block.id

    async def update_metadata(self, session_id: str, updates: dict[str, Any]) -> dict[str, Any]:
        """Merge ``updates`` into the metadata; returns the new metadata."""
        repo, head = await self._head(session_id)
        meta = await self._metadata(repo, session_id, head)
        meta.update(updates)
        meta = dict(json.loads(_DUMPS_U(meta)))
        await repo.append(
            session_id,
            BlockType.SESSION_UPDATED,
            self._meta_payload(meta, session_id),
            expected_head=head,
        )
        return meta

    async def delete_session(self, session_id: str) -> bool:
        """Delete the session (a SESSION_DELETED block; recoverable until gc). False if absent."""
        sid = _check_id(session_id)
        repo = await self.repository()
        if not await repo.exists(sid):
            return False
        await repo.delete_session(sid)
        self._known.pop(sid, None)
        return True

    async def cleanup_old_sessions(self, days: int = 30) -> int:
        """Delete sessions whose last activity is older than ``days``; returns how many."""
        if not isinstance(days, int) or days < 0:
            raise InvalidInputError("days must be a non-negative integer")
        repo = await self.repository()
        cutoff = time.time_ns() - days * 86_400 * 1_000_000_000
        removed = 0
        for stamp, sid in await self._updated(repo):
            if stamp < cutoff:
                await repo.delete_session(sid)
                self._known.pop(sid, None)
                removed += 1
        return removed
