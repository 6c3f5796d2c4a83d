"""Importing one Amplifier session folder into the repository, incrementally and by content.

One pass does everything: it finds how much of the files the session already holds (the
import state's offsets and hashes when the files only grew, else a line-by-line comparison
of the stored blocks), records a REWIND when the files no longer start with what was
stored (nothing is lost: the old blocks stay reachable), and appends the rest. A fork whose
parent is already imported starts as a FORK block at the last parent block its copied lines
still match, so shared history is stored once. Messages and events are interleaved in one
chain by their timestamps (messages without one anchor on the event that produced them).

Blocks are written with ``append_many`` in batches of thousands; each batch ends with a
SESSION_UPDATED block holding the import state, so a killed import resumes where it stopped.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from blake3 import blake3

from ...core.ids import ObjectId, validate_project_slug, validate_session_id
from ...core.objects import BlockType
from ...errors import InvalidInputError
from ...repository.repo import Repository
from .compare import common_prefix
from .dedup import BlobCache, BlobReader, EventCodec
from .format import ForkRule, encode_metadata, parse_ts_ns
from .reading import (
    EventSource,
    ImportWarning,
    Msg,
    first_ts,
    hash_bytes,
    hash_prefix,
    parse_messages,
    read_file,
)
from .render import ChainRenderer
from .session_info import IMPORT_KEY, own_info

__all__ = ["ImportOutcome", "ImportWarning", "SessionFiles", "SessionImporter"]

MAX_WARNINGS_PER_FILE = 200
_ANCHORS = {
    "user": frozenset({"prompt:submit"}),
    "assistant": frozenset({"llm:response", "provider:response"}),
    "tool": frozenset({"tool:post", "tool:error"}),
}
_MESSAGE, _EVENT, _UPDATED = BlockType.MESSAGE, BlockType.EVENT, BlockType.SESSION_UPDATED
Entry = tuple[BlockType, Any, int | None, tuple[ObjectId, ...]]


@dataclass
class SessionFiles:
    """One Amplifier session folder to import (absent files are None)."""

    session_id: str
    path: Path
    project_slug: str | None = None
    layout: str = "projects"
    metadata_file: Path | None = None
    transcript_file: Path | None = None
    events_file: Path | None = None


@dataclass
class ImportOutcome:
    """What one import did."""

    session_id: str
    skipped: bool = False
    blocks: int = 0
    messages: int = 0
    events: int = 0
    bytes_read: int = 0
    rewound: bool = False
    kind: str = "session"
    forked_from: str | None = None
    fork_point: ObjectId | None = None
    shared_messages: int = 0
    shared_events: int = 0
    warnings: list[ImportWarning] = field(default_factory=list)


class SessionImporter:
    """Imports session folders into one repository, sharing a blob cache between sessions."""

    def __init__(
        self,
        repo: Repository,
        cache: BlobCache | None = None,
        *,
        batch_blocks: int = 4096,
        batch_bytes: int = 48 << 20,
    ) -> None:
        self.repo = repo
        self.cache = cache if cache is not None else BlobCache()
        self.batch_blocks = batch_blocks
        self.batch_bytes = batch_bytes
        self.blobs = BlobReader(repo.read_blob)

    # ------------------------------------------------------------------ reading the folder
    def _warn_for(self, out: ImportOutcome) -> Any:
        counts: dict[str, int] = {}

        def warn(w: ImportWarning) -> None:
            n = counts[w.file] = counts.get(w.file, 0) + 1
            if n <= MAX_WARNINGS_PER_FILE:
                out.warnings.append(w)
            elif n == MAX_WARNINGS_PER_FILE + 1:
                out.warnings.append(ImportWarning(w.file, None, "more problems not listed"))

        return warn

    async def import_session(self, files: SessionFiles, *, verify: bool = False) -> ImportOutcome:
        """Bring the session up to date with its folder; see the module docstring."""
        sid = validate_session_id(files.session_id)
        out = ImportOutcome(sid)
        warn = self._warn_for(out)
        meta_bytes = read_file(files.metadata_file, "metadata.json", warn)
        if meta_bytes is None:
            warn(
                ImportWarning(
                    "metadata.json", None, "missing (killed before the first prompt:complete?)"
                )
            )
            doc, fmt = None, None
        else:
            doc, fmt, problem = encode_metadata(meta_bytes)
            if problem:
                warn(ImportWarning("metadata.json", None, problem))
        t_bytes = read_file(files.transcript_file, "transcript.jsonl", warn)
        msgs = parse_messages(t_bytes, warn)
        ev_path = files.events_file if files.events_file and files.events_file.is_file() else None
        if t_bytes == b"":
            warn(ImportWarning("transcript.jsonl", None, "empty file (no messages)"))
        if ev_path is not None and ev_path.stat().st_size == 0:
            warn(ImportWarning("events.jsonl", None, "empty file (no events)"))
        out.bytes_read = len(meta_bytes or b"") + len(t_bytes or b"")
        pid, kind = self._lineage(sid, doc, warn)
        out.kind = kind
        slug = files.project_slug
        if slug is not None:
            try:
                validate_project_slug(slug)
            except InvalidInputError as exc:
                warn(ImportWarning(str(files.path), None, f"project slug refused: {exc}"))
                slug = None
        summary = _summary(doc, fmt, slug, pid, kind, files)
        ctx = _Ctx(self, out, sid, pid, msgs, warn)
        ctx.state_base = {
            "version": 1,
            "kind": kind,
            "layout": files.layout,
            "project_slug": slug,
            "metadata": {"present": meta_bytes is not None, "hash_all": hash_bytes(meta_bytes)},
            "transcript": {
                "present": t_bytes is not None,
                "size": len(t_bytes or b""),
                "hash_all": hash_bytes(t_bytes),
                "lines": len(msgs),
            },
        }
        try:
            await ctx.start(summary, doc, ev_path, t_bytes, verify, kind)
            await ctx.stream(summary)
        finally:
            if ctx.reader is not None:
                out.bytes_read += ctx.reader.bytes_read
                ctx.reader.close()
        return out

    def _lineage(self, sid: str, doc: dict[str, Any] | None, warn: Any) -> tuple[str | None, str]:
        if doc is None:
            return None, "session"
        if isinstance(doc.get("session_id"), str) and doc["session_id"] != sid:
            warn(
                ImportWarning(
                    "metadata.json",
                    None,
                    f"session_id {doc['session_id']!r:.80} differs from the folder",
                )
            )
        parent = doc.get("parent_id")
        if parent is None:
            return None, "session"
        try:
            pid = validate_session_id(parent)
        except InvalidInputError as exc:
            warn(ImportWarning("metadata.json", None, f"parent_id refused, not linked: {exc}"))
            return None, "session"
        if pid == sid:
            warn(ImportWarning("metadata.json", None, "parent_id is the session itself"))
            return None, "session"
        return pid, "fork" if doc.get("forked_from_turn") is not None else "sub"


class _Ctx:
    """The state of one session's import (kept off the importer, which is shared)."""

    def __init__(
        self,
        imp: SessionImporter,
        out: ImportOutcome,
        sid: str,
        pid: str | None,
        msgs: list[Msg],
        warn: Any,
    ) -> None:
        self.imp, self.repo, self.out, self.sid, self.pid = imp, imp.repo, out, sid, pid
        self.msgs, self.warn = msgs, warn
        self.reader: EventSource | None = None
        self.head: ObjectId | None = None
        self.mi = 0
        self.chain_m = self.chain_e = 0
        self.rule: ForkRule | None = None
        self.state_base: dict[str, Any] = {}
        self.prev_state: dict[str, Any] | None = None
        self.changed = False
        self.ev_present = False
        self.last_ts: int | None = None
        self.inherited: set[ObjectId] = set()  # ids linked by the blocks a fork starts on

    async def start(
        self,
        summary: dict[str, Any],
        doc: dict[str, Any] | None,
        ev_path: Path | None,
        t_bytes: bytes | None,
        verify: bool,
        kind: str,
    ) -> None:
        repo, sid, out = self.repo, self.sid, self.out
        self.ev_present = ev_path is not None
        self.head = await repo.head(sid)
        created = parse_ts_ns(doc.get("created")) if doc else None
        if created is None:
            created = first_ts(ev_path) or next((m.ts_ns for m in self.msgs if m.ts_ns), None)
        self.last_ts = created
        if self.head is None:
            self.changed = True
            if kind == "fork" and self.pid and await repo.exists(self.pid):
                await self._start_fork(summary, ev_path, created)
                return
            block = await repo.create_session(sid, summary, timestamp_ns=created)
            out.blocks += 1
            self.head = block.id
            self.reader = EventSource(ev_path, 0, 0, blake3())
            return
        self.last_ts = (await repo.get_block(self.head, resolve=False)).timestamp_ns
        info = await own_info(repo, sid, self.head)
        self.rule = info.rule
        st = info.state if info.state_block == self.head and not verify else None
        self.prev_state = info.state
        k = m = 0
        offset, hasher = 0, blake3()
        if st is not None:
            ev = st.get("events") or {}
            if ev_path is not None and ev.get("present") and isinstance(ev.get("offset"), int):
                h, ok = hash_prefix(ev_path, ev["offset"])
                if ok and h.hexdigest() == ev.get("hash"):
                    k, offset, hasher = int(ev.get("lines", 0)), ev["offset"], h
            tr = st.get("transcript") or {}
            size = tr.get("size")
            if (
                t_bytes is not None
                and isinstance(size, int)
                and size <= len(t_bytes)
                and (size == 0 or t_bytes[size - 1 : size] == b"\n")
                and hash_bytes(t_bytes[:size]) == tr.get("hash_all")
            ):
                m = int(tr.get("imported", 0))
        self.reader = EventSource(ev_path, offset, k, hasher)
        counts = (st or {}).get("chain") or {}
        if st is not None and counts.get("messages") == m and counts.get("events") == k:
            self.mi, self.chain_m, self.chain_e = m, m, k
            return
        blocks = await repo.chain(sid, resolve=False)
        renderer = await ChainRenderer.create(repo, self.imp.blobs, blocks, sid, self.rule)
        last, mi, ei, whole = await common_prefix(renderer, self.msgs, self.reader, m, k)
        self.mi, self.chain_m, self.chain_e = mi, mi, ei
        if not whole:
            target = blocks[last].id if last >= 0 else blocks[0].id
            if target != self.head:
                rw = await repo.rewind(
                    sid, target, "amplifier import: the files no longer start with what was stored"
                )
                self.head = rw.id
                out.blocks += 1
                out.rewound = self.changed = True

    async def _start_fork(
        self, summary: dict[str, Any], ev_path: Path | None, created: int | None
    ) -> None:
        assert self.pid is not None
        repo, out = self.repo, self.out
        rule = ForkRule(self.sid, self.pid)
        blocks = await repo.chain(self.pid, resolve=False)
        self.reader = EventSource(ev_path, 0, 0, blake3())
        parent = await own_info(repo, self.pid)
        renderer = await ChainRenderer.create(repo, self.imp.blobs, blocks, self.pid, parent.rule)
        last, mi, ei, _ = await common_prefix(renderer, self.msgs, self.reader, new_rule=rule)
        at = blocks[last].id if last >= 0 else blocks[0].id
        self.inherited = {oid for b in blocks[: max(last, 0) + 1] for oid in b.links}
        self.rule = rule
        meta = dict(summary, fork_rule=rule.to_data())
        fork = await repo.fork(self.pid, self.sid, at=at, metadata=meta, timestamp_ns=created)
        self.head = fork.id
        self.mi, self.chain_m, self.chain_e = mi, mi, ei
        out.blocks += 1
        out.forked_from, out.fork_point = self.pid, ObjectId(at)
        out.shared_messages, out.shared_events = mi, ei

    # ------------------------------------------------------------------ appending
    async def stream(self, summary: dict[str, Any]) -> None:
        reader, msgs, warn = self.reader, self.msgs, self.warn
        assert reader is not None
        codec = EventCodec(self.imp.cache, self.sid, self.pid, self.inherited)
        entries: list[Entry] = []
        pending = 0
        last_ts = self.last_ts
        mi = self.mi
        n_msgs = len(msgs)
        while (item := reader.next()) is not None:
            line, nl, _ = item
            payload, hole_links, fills, problem, ts = codec.cut(line, nl)
            if problem:
                warn(ImportWarning("events.jsonl", reader.lines + 1, problem))
            while (
                mi < n_msgs
                and ts is not None
                and (mts := msgs[mi].ts_ns) is not None
                and (mts <= ts)
            ):
                entries.append((_MESSAGE, *_msg(codec, msgs[mi], mts)))
                mi += 1
            if ts is not None:
                last_ts = self.last_ts = ts
            entries.append((_EVENT, payload, last_ts, codec.link(fills, hole_links)))
            self.chain_e += 1
            self.out.events += 1
            reader.accept(line, nl)
            pending += len(line)
            if (
                mi < n_msgs
                and msgs[mi].ts_ns is None
                and payload.get("event_type") in _ANCHORS.get(msgs[mi].role or "", ())
            ):
                entries.append((_MESSAGE, *_msg(codec, msgs[mi], last_ts)))
                mi += 1
            if len(entries) >= self.imp.batch_blocks or (
                pending + self.imp.cache.pending_bytes >= self.imp.batch_bytes
            ):
                self._count_messages(entries)
                self.mi = mi
                await self._flush(entries, summary, done=False)
                entries, pending = [], 0
        while mi < n_msgs:
            last_ts = self.last_ts = msgs[mi].ts_ns or last_ts
            entries.append((_MESSAGE, *_msg(codec, msgs[mi], last_ts)))
            mi += 1
        self._count_messages(entries)
        self.mi = mi
        if entries:
            self.changed = True
        if not self.changed and self._same_files():
            self.out.skipped = True
            return
        await self._flush(entries, summary, done=True)

    def _count_messages(self, entries: list[Entry]) -> None:
        n = sum(1 for e in entries if e[0] is _MESSAGE)
        self.chain_m += n
        self.out.messages += n

    def _same_files(self) -> bool:
        prev = self.prev_state
        if prev is None or not prev.get("done"):
            return False
        now = self._state(done=True)
        return all(prev.get(k) == now.get(k) for k in ("metadata", "transcript", "events"))

    def _state(self, done: bool) -> dict[str, Any]:
        r = self.reader
        assert r is not None
        events: dict[str, Any] = {
            "present": self.ev_present,
            "offset": r.offset,
            "lines": r.lines,
            "hash": r.hasher.hexdigest(),
            "torn": len(r.torn),
            "size": None,
            "hash_all": None,
        }
        if done:
            h = r.hasher.copy()
            h.update(r.torn)
            events["size"], events["hash_all"] = r.offset + len(r.torn), h.hexdigest()
        state = dict(
            self.state_base,
            done=done,
            events=events,
            imported_ns=time.time_ns(),
            fork_rule=self.rule.to_data() if self.rule else None,
            chain={"messages": self.chain_m, "events": self.chain_e},
        )
        state["transcript"] = dict(state["transcript"], imported=self.mi)
        return state

    async def _flush(self, entries: list[Entry], summary: dict[str, Any], done: bool) -> None:
        payload: dict[str, Any] = {IMPORT_KEY: self._state(done)}
        if done:
            payload.update({k: v for k, v in summary.items() if k != "source"})
        cache = self.imp.cache
        extra = cache.take()
        # The state block carries the time of the last line (the session's last activity).
        batch = [*entries, (_UPDATED, payload, self.last_ts or time.time_ns(), ())]
        try:
            # From the presence check to the ref move: a gc sweep must not run in between
            # (it could delete an old unreachable blob found present here).
            async with self.repo.writing():
                if extra:
                    present = await self.repo.objects.has_many([oid for oid, _ in extra])
                    if present:
                        extra = [x for x in extra if x[0] not in present]
                blocks = await self.repo.append_many(
                    self.sid,
                    batch,
                    expected_head=self.head,
                    extra=extra,
                    reason="amplifier import",
                )
        except BaseException:
            cache.reset()
            raise
        self.head = blocks[-1].id
        self.out.blocks += len(blocks)


def _msg(
    codec: EventCodec, msg: Msg, ts: int | None
) -> tuple[Any, int | None, tuple[ObjectId, ...]]:
    """``(payload, timestamp, links)`` of a MESSAGE block (long strings as shared blobs)."""
    payload, links = codec.encode_message(msg.payload, msg.line)
    return payload, ts, links


def _summary(
    doc: dict[str, Any] | None,
    fmt: dict[str, Any] | None,
    slug: str | None,
    pid: str | None,
    kind: str,
    files: SessionFiles,
) -> dict[str, Any]:
    """The SESSION_CREATED / FORK payload of an imported session (catalog keys on top)."""
    s: dict[str, Any] = {"project_slug": slug, "visibility": "private"}
    for key in ("name", "description", "bundle", "model"):
        if doc is not None and isinstance(doc.get(key), str):
            s[key] = doc[key]
    if pid is not None:
        s["parent_session_id"] = pid
        s["parent_id"] = pid
    s["metadata"] = doc
    s["metadata_format"] = fmt
    s["source"] = {
        "format": "amplifier",
        "layout": files.layout,
        "kind": kind,
        "path": str(files.path),
    }
    return s
