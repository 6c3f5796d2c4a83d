"""fsck and gc: proving the repository whole, and removing only what nothing can reach."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.codec import unframe
from ..core.ids import ObjectId
from ..core.objects import decode_block, object_kind
from ..errors import IntegrityError
from .repo import Repository

__all__ = ["FsckReport", "GcReport", "expire_reflogs", "fsck", "gc", "reachable"]


@dataclass
class FsckReport:
    """What fsck checked and every problem it found (empty ``problems`` means clean)."""

    objects: int = 0
    blocks: int = 0
    chunks: int = 0
    refs: int = 0
    promised: int = 0  # chunks absent locally but promised by a remote (lazy fetch)
    problems: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def add(self, kind: str, object_id: str | None, detail: str) -> None:
        self.problems.append({"kind": kind, "object": object_id, "detail": detail})


async def fsck(repo: Repository, *, promised: bool | None = None) -> FsckReport:
    """Verify every object's id and that every ref, parent and chunk is present.

    In a repository that fetched lazily (``promised``), an absent chunk that a remote
    promised is counted in ``report.promised`` instead of being a problem.
    """
    if promised is None:
        promised = bool(getattr(repo.objects, "promises_objects", False))
    report = FsckReport()
    present: set[ObjectId] = set()
    needs: list[tuple[str, ObjectId, str]] = []
    async for oid in repo.objects.list():
        report.objects += 1
        stored = await repo.objects.get(oid)
        if stored is None:
            report.add("missing", oid.hex(), "listed but unreadable")
            continue
        try:
            canonical = unframe(oid, stored)
            kind = object_kind(canonical)
            if kind == "b":
                block = decode_block(canonical, oid)
                report.blocks += 1
                for p in block.parents:
                    needs.append(("parent", p, oid.hex()))
                for c in block.object_refs():
                    needs.append(("chunk", c, oid.hex()))
            elif kind == "c":
                report.chunks += 1
        except IntegrityError as exc:
            report.add("corrupt", oid.hex(), str(exc))
            continue
        present.add(oid)
    async for name, head in repo.refs.list():
        report.refs += 1
        needs.append(("ref", head, name))
    for what, oid, by in needs:
        if oid not in present:
            if what == "chunk" and promised:
                report.promised += 1
                continue
            report.add(f"missing-{what}", oid.hex(), f"needed by {by}")
    return report


async def reachable(
    repo: Repository,
    include_reflogs: bool = True,
    *,
    known: set[ObjectId] | None = None,
    unreadable: list[ObjectId] | None = None,
) -> set[ObjectId]:
    """Every object reachable from refs (and reflog entries): blocks, their parents, chunks.

    ``known``: objects already proven reachable together with everything they reach (an
    earlier result): the walk stops at them and they are part of the result. Blocks that
    cannot be read are appended to ``unreadable`` (what they reach is then unknown).
    """
    roots: set[ObjectId] = set()
    names: list[str] = []
    async for name, head in repo.refs.list():
        roots.add(head)
        names.append(name)
    if include_reflogs:
        for name in set(names) | set(await _logged_refs(repo)):
            for entry in await repo.refs.reflog(name):
                roots.update(x for x in (entry.old, entry.new) if x is not None)
    seen: set[ObjectId] = set(known) if known else set()
    stack = [r for r in roots if r not in seen]
    while stack:
        oid = stack.pop()
        if oid in seen:
            continue
        seen.add(oid)
        try:
            block = await repo.get_block(oid, resolve=False)
        except (IntegrityError, LookupError, ValueError):
            if unreadable is not None:
                unreadable.append(oid)
            continue
        stack.extend(p for p in block.parents if p not in seen)
        seen.update(block.object_refs())
    return seen


async def _logged_refs(repo: Repository) -> list[str]:
    # A store that cannot list its reflogs raises here: gc must not guess what is reachable.
    return list(await repo.refs.logged_refs())


def _refuse_if_unreadable(unreadable: list[ObjectId]) -> None:
    """gc must not guess: what an unreadable block reaches is unknown, so nothing goes."""
    if unreadable:
        raise IntegrityError(
            f"gc: {len(unreadable)} block(s) reachable from refs or reflogs cannot be read "
            f"(first: {unreadable[0].hex()}); nothing was deleted. Run `sessctl fsck`."
        )


@dataclass
class GcReport:
    scanned: int = 0
    reachable: int = 0
    candidates: int = 0
    deleted: int = 0
    kept_in_grace: int = 0
    dry_run: bool = False
    deleted_ids: list[str] = field(default_factory=list)
    expired_entries: int = 0  # reflog entries dropped first (``expire_before_ns``)
    repacked_objects: int | None = None  # objects kept by the repack after deleting


async def expire_reflogs(repo: Repository, before_ns: int) -> int:
    """Drop every reflog entry older than ``before_ns`` (a live ref keeps the entry that
    set its current value); return how many. The history only those entries reached -- a
    deleted session's blocks, heads abandoned without a rewind -- becomes garbage that gc
    deletes once its grace period is over."""
    dropped = 0
    for name in await _logged_refs(repo):
        dropped += await repo.refs.expire_reflog(name, before_ns)
    return dropped


async def gc(
    repo: Repository,
    *,
    grace_seconds: float = 14 * 86400,
    dry_run: bool = False,
    state_file: Path | None = None,
    sweep_timeout: float | None = 600.0,
    expire_before_ns: int | None = None,
    repack: bool = True,
) -> GcReport:
    """Delete objects unreachable from refs and reflogs, once they have been for ``grace``.

    Two-phase so a concurrent writer never loses a block: an object is deleted only if an
    earlier gc (recorded in ``state_file``) already saw it unreachable at least
    ``grace_seconds`` ago, and reachability is computed afresh right before deleting. With
    ``grace_seconds=0`` one run marks and sweeps. The deletions run under the object
    store's sweep guard (``stores.guard``), which waits for every writer to finish its
    put-then-move-ref (``sweep_timeout`` seconds at most: ``ConflictError``), so an object a
    writer found already stored is never deleted before the writer's ref names it. If a
    block reachable from a ref or reflog cannot be read, nothing is deleted
    (``IntegrityError``): what it reaches is unknown.

    ``expire_before_ns``: first drop reflog entries older than this (:func:`expire_reflogs`;
    not in a dry run). ``repack``: when objects were deleted, repack a store that can
    (the local store) so their bytes leave the packs too.
    """
    now = time.time()
    marks: dict[str, float] = {}
    if state_file is not None and state_file.exists():
        try:
            marks = {k: float(v) for k, v in json.loads(state_file.read_text()).items()}
        except (ValueError, AttributeError):
            marks = {}
    report = GcReport(dry_run=dry_run)
    if expire_before_ns is not None and not dry_run:
        report.expired_entries = await expire_reflogs(repo, expire_before_ns)
    unreadable: list[ObjectId] = []
    live = await reachable(repo, unreadable=unreadable)
    _refuse_if_unreadable(unreadable)
    report.reachable = len(live)
    unreachable: list[ObjectId] = []
    async for oid in repo.objects.list():
        report.scanned += 1
        if oid not in live:
            unreachable.append(oid)
    report.candidates = len(unreachable)
    new_marks: dict[str, float] = {}
    due: list[ObjectId] = []
    for oid in unreachable:
        first_seen = marks.get(oid.hex(), now)
        new_marks[oid.hex()] = first_seen
        if now - first_seen >= grace_seconds:
            due.append(oid)
        else:
            report.kept_in_grace += 1
    if due and not dry_run:
        # No writer is between storing (or finding) objects and moving its ref while the
        # sweep guard is held, so what the refs reach now is everything that must stay.
        async with repo.objects.sweep_guard(timeout=sweep_timeout):
            live = await reachable(repo, known=live, unreadable=unreadable)
            _refuse_if_unreadable(unreadable)
            for oid in due:
                if oid in live:
                    new_marks.pop(oid.hex(), None)  # needed again: a fresh grace next time
                    continue
                if await repo.objects.delete(oid):
                    report.deleted += 1
                    report.deleted_ids.append(oid.hex())
                    new_marks.pop(oid.hex(), None)
        packer = getattr(repo.objects, "repack", None)
        if repack and report.deleted and packer is not None:
            report.repacked_objects = await packer()
    elif dry_run:
        report.deleted_ids = [o.hex() for o in due]
    if state_file is not None and not dry_run:
        tmp = state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(new_marks))
        tmp.replace(state_file)
    return report
