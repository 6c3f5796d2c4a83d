"""Opening a repository on the local disk (the default, offline store).

Layout under the root (docs/design.md): ``config.json``, ``objects/`` (loose and packed),
``refs/`` and ``logs/`` (reflogs), ``catalog/`` (derived session summaries).
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any

from ..errors import InvalidInputError
from ..stores.catalog import LocalCatalogStore
from ..stores.local import LocalObjectStore, LocalRefStore
from .repo import Repository

__all__ = ["REPO_FORMAT", "init_local", "open_local", "read_repo_config"]

REPO_FORMAT = "amplifier-session-storage/1"


def read_repo_config(root: Path) -> dict[str, Any] | None:
    try:
        doc = json.loads((root / "config.json").read_text())
    except FileNotFoundError:
        return None
    except ValueError as exc:
        raise InvalidInputError(f"{root}/config.json is not valid JSON: {exc}") from exc
    if not isinstance(doc, dict) or doc.get("format") != REPO_FORMAT:
        raise InvalidInputError(f"{root} is not an amplifier-session-storage repository")
    return doc


def init_local(root: Path | str) -> dict[str, Any]:
    """Create the repository at ``root`` (idempotent); returns its config."""
    root = Path(root).expanduser()
    existing = read_repo_config(root) if root.exists() else None
    if existing is not None:
        return existing
    if root.exists() and root.is_dir() and any(root.iterdir()):
        markers = {"objects", "refs", "logs", "catalog"}
        if not markers & {p.name for p in root.iterdir()}:
            # Never take over a folder holding something else (e.g. Amplifier's own sessions).
            raise InvalidInputError(f"{root} exists, is not empty and is not a repository")
    root.mkdir(parents=True, exist_ok=True)
    doc = {"format": REPO_FORMAT, "device_id": uuid.uuid4().hex[:16]}
    tmp = root / ".config.json.tmp"
    tmp.write_text(json.dumps(doc, indent=2) + "\n")
    os.replace(tmp, root / "config.json")
    return doc


async def open_local(
    root: Path | str,
    *,
    user_id: str = "",
    device_id: str | None = None,
    fsync: bool = True,
    create: bool = True,
) -> Repository:
    """Open (and with ``create``, initialise) the local repository at ``root``."""
    root = Path(root).expanduser()
    cfg = init_local(root) if create else read_repo_config(root)
    if cfg is None:
        raise InvalidInputError(f"no repository at {root} (run `sessctl init`)")
    return Repository(
        LocalObjectStore(root, fsync=fsync),
        LocalRefStore(root),
        LocalCatalogStore(root),
        user_id=user_id,
        device_id=device_id if device_id is not None else str(cfg.get("device_id", "")),
    )
