"""Helpers shared by the Amplifier import/export tests."""

from __future__ import annotations

from pathlib import Path

from amplifier_session_storage.compat.amplifier import export_session
from amplifier_session_storage.repository import Repository

FILES = ("metadata.json", "transcript.jsonl", "events.jsonl")


def session_dirs(root: Path) -> list[Path]:
    """Every session folder under an Amplifier root (both layouts)."""
    return sorted([*root.glob("projects/*/sessions/*"), *root.glob("sessions/*")])


async def stored_bytes(repo: Repository) -> int:
    """Total size of every stored frame."""
    total = 0
    async for oid in repo.objects.list():
        frame = await repo.objects.get(oid)
        total += len(frame or b"")
    return total


async def export_diffs(repo: Repository, session_id: str, src: Path, dest: Path) -> list[str]:
    """Export one session and list every file whose presence or bytes differ from ``src``."""
    await export_session(repo, session_id, dest)
    diffs = []
    for name in FILES:
        a, b = src / name, dest / name
        if a.exists() != b.exists():
            diffs.append(f"{session_id}/{name}: exists {a.exists()} vs exported {b.exists()}")
        elif a.exists() and a.read_bytes() != b.read_bytes():
            diffs.append(f"{session_id}/{name}: bytes differ")
    return diffs
