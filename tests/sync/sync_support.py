"""Helpers of the sync tests: fresh remotes on the emulators, local repositories, sessctl.

Every test gets its own Cosmos DB container and Blob container (deleted afterwards) and a
``RemoteSpec`` named ``origin`` for them, with the secrets in the environment
(``AMPLIFIER_COSMOS_KEY``, ``AMPLIFIER_BLOB_CONNECTION_STRING``) as a user would set them.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import subprocess
import sys
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from amplifier_session_storage.core.ids import ObjectId
from amplifier_session_storage.core.objects import BlockType
from amplifier_session_storage.remote.config import RemoteSpec, add_remote
from amplifier_session_storage.remote.lazy import open_repository
from amplifier_session_storage.remote.session import SyncRemote, open_remote_from
from amplifier_session_storage.repository.local import init_local
from amplifier_session_storage.repository.repo import Repository

DATABASE = "amp-sync-tests"
HERE = Path(__file__).resolve().parent


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:20]}"


def sessctl_argv() -> list[str]:
    """The installed ``sessctl`` beside this interpreter (else ``python -m``)."""
    exe = shutil.which("sessctl", path=str(Path(sys.executable).parent))
    return [exe] if exe else [sys.executable, "-m", "amplifier_session_storage.cli"]


class SyncEnv:
    """One test's remote (fresh containers) and local repositories."""

    def __init__(self, emu: Any, tmp: Path) -> None:
        self.emu = emu
        self.tmp = tmp
        self.spec = RemoteSpec(
            name="origin",
            cosmos_endpoint=emu.cosmos_endpoint,
            user_id="u1",
            cosmos_database=DATABASE,
            cosmos_container=unique("c"),
            blob_container=unique("b"),
            auth_method="key",
            insecure_tls=True,
        )
        self.environ = {
            "AMPLIFIER_COSMOS_KEY": emu.cosmos_key,
            "AMPLIFIER_BLOB_CONNECTION_STRING": emu.blob_connection_string,
        }
        self._remotes: list[SyncRemote] = []
        self._repos: list[Repository] = []

    def root(self, name: str) -> Path:
        return self.tmp / name

    async def remote(self, spec: RemoteSpec | None = None, **kwargs: Any) -> SyncRemote:
        remote = await open_remote_from(spec or self.spec, environ=self.environ, **kwargs)
        self._remotes.append(remote)
        return remote

    async def repo(self, name: str, *, user_id: str = "u1", with_remote: bool = True) -> Repository:
        """The local repository ``tmp/name`` (created), with ``origin`` configured."""
        root = self.root(name)
        init_local(root)
        if with_remote:
            add_remote(root, self.spec, replace=True)
        repo = await open_repository(root, user_id=user_id, fsync=False)
        self._repos.append(repo)
        return repo

    def cli_env(self, repo: Path | None = None) -> dict[str, str]:
        env = dict(os.environ)
        env.update(self.environ)
        env["NO_COLOR"] = "1"
        if repo is not None:
            env["AMPLIFIER_LOCAL_STORAGE_PATH"] = str(repo)
        return env

    def sessctl(
        self, *args: str, repo: Path | None = None, check: bool = False, timeout: float = 300
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [*sessctl_argv(), *args],
            capture_output=True,
            text=True,
            env=self.cli_env(repo),
            timeout=timeout,
            check=False,
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"sessctl {' '.join(args)} -> {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
            )
        return proc

    def spec_args(self) -> list[str]:
        s = self.spec
        return [
            "--cosmos-endpoint", s.cosmos_endpoint, "--user", s.user_id,
            "--database", s.cosmos_database, "--container", s.cosmos_container,
            "--blob-container", s.blob_container, "--auth", "key", "--insecure-tls",
        ]  # fmt: skip

    async def close(self) -> None:
        for repo in self._repos:
            with contextlib.suppress(Exception):
                await repo.close()
        for remote in self._remotes:
            with contextlib.suppress(Exception):
                await remote.close()

    async def cleanup(self) -> None:
        await self.close()
        from azure.core.exceptions import ResourceNotFoundError
        from azure.cosmos.aio import CosmosClient
        from azure.storage.blob.aio import BlobServiceClient

        emu, spec = self.emu, self.spec
        async with CosmosClient(emu.cosmos_endpoint, emu.cosmos_key, connection_verify=False) as c:
            with contextlib.suppress(ResourceNotFoundError):
                await c.get_database_client(DATABASE).delete_container(spec.cosmos_container)
        async with BlobServiceClient.from_connection_string(emu.blob_connection_string) as svc:
            with contextlib.suppress(ResourceNotFoundError):
                await svc.delete_container(spec.blob_container)


# ---------------------------------------------------------------------- building sessions
def message(i: int, text: str = "m") -> dict[str, Any]:
    return {"role": "user" if i % 2 == 0 else "assistant", "content": f"{text}{i}", "turn": i}


def big_event(seed: int, size: int = 120_000) -> dict[str, Any]:
    """An event whose payload is chunked (> 16 KiB of packed msgpack), random-ish text."""
    rng = random.Random(seed)
    words = ["alpha", "beta", "gamma", "delta", "tool", "call", "result", "x" * 7]
    text = " ".join(rng.choice(words) + str(rng.randrange(10_000)) for _ in range(size // 8))
    return {"event_id": f"e{seed}", "event_type": "llm:request", "data": {"raw": text}, "turn": 1}


async def make_session(
    repo: Repository, sid: str, n: int = 10, *, big: int = 0, text: str = "m"
) -> ObjectId:
    """A session with ``n`` messages and ``big`` chunked events; returns its head."""
    await repo.create_session(sid, {"project_slug": "proj", "name": f"session {sid}",
                                    "visibility": "private"})
    if n:
        await repo.append_many(sid, [(BlockType.MESSAGE, message(i, text), None) for i in range(n)])
    for k in range(big):
        await repo.append(sid, BlockType.EVENT, big_event(hash((sid, k)) & 0xFFFF))
    head = await repo.head(sid)
    assert head is not None
    return head


async def object_ids(repo: Repository) -> set[ObjectId]:
    return {oid async for oid in repo.objects.list()}


async def session_refs(repo: Repository) -> dict[str, ObjectId]:
    return {name: head async for name, head in repo.refs.list("sessions/")}


def run_cli(args: Sequence[str], env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*sessctl_argv(), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
