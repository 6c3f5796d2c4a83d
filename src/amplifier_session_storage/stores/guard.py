"""The sweep lock: gc's deletions never interleave with a writer's put-then-move-ref.

A writer stores (or finds already stored) every object a new block needs, then moves a ref
by compare-and-swap. gc deletes what no ref reaches. Between a writer's "already stored"
and its ref move, an old unreachable object the new block names is unreachable but needed;
no grace period closes that window on its own. So writers hold this lock **shared** from
their first object write or presence check to their ref move, and gc holds it
**exclusive** while it recomputes reachability and deletes: a sweep sees every writer
either finished (its objects reachable) or not started (it will store what it needs
again, as the objects are then absent).

A sweep also leaves a mark: the lock file holds a u64 **sweep generation**, incremented by
each exclusive holder before it lets go. A writer that takes the lock shared and finds a
generation it has not seen first calls ``on_sweep`` (the store forgets what it believed
present: another process may have deleted it), so its "already stored" checks are fresh.

``flock(2)`` on ``<objects>/gc.lock``: released by the kernel when a process dies, so a
crashed writer or gc never leaves the repository locked. Waits poll with ``LOCK_NB`` and
``asyncio.sleep``, so a wait never blocks the event loop (a writer task in the same process
as a waiting gc still finishes). The shared hold is counted per store handle: nested
operations (an import batch around the appends it makes) take it once.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import struct
import time
from collections.abc import AsyncIterator, Callable

from ..errors import ConflictError

__all__ = ["SweepLock"]

POLL_SECONDS = 0.005
_GENERATION = struct.Struct("<Q")


class SweepLock:
    """Shared (writers) / exclusive (gc sweep) lock on one file, opened on first use."""

    def __init__(
        self, dir_fd: int, name: str = "gc.lock", on_sweep: Callable[[], None] | None = None
    ) -> None:
        self._dir_fd = dir_fd
        self._name = name
        self._on_sweep = on_sweep
        self._fd = -1
        self._shared = 0  # nested shared holds of this handle
        self._exclusive = False
        self._seen: int | None = None  # the sweep generation this handle last saw

    def prime(self) -> None:
        """Note the current sweep generation (call before caching anything): a later sweep
        is then told apart. Reads only: no lock file yet means no sweep yet (0)."""
        try:
            fd = os.open(self._name, os.O_RDONLY | os.O_CLOEXEC, dir_fd=self._dir_fd)
        except FileNotFoundError:
            self._seen = 0
            return
        except OSError:
            return  # unreadable: the first write reports it
        try:
            raw = os.pread(fd, _GENERATION.size, 0)
        finally:
            os.close(fd)
        self._seen = _GENERATION.unpack(raw)[0] if len(raw) == _GENERATION.size else 0

    def generation(self) -> int:
        """How many sweeps have run (0 for a new or unreadable lock file)."""
        raw = os.pread(self._file(), _GENERATION.size, 0)
        return _GENERATION.unpack(raw)[0] if len(raw) == _GENERATION.size else 0

    def _file(self) -> int:
        if self._fd < 0:
            self._fd = os.open(
                self._name, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644, dir_fd=self._dir_fd
            )
        return self._fd

    async def _acquire(self, mode: int, deadline: float | None) -> None:
        fd = self._file()
        while True:
            try:
                fcntl.flock(fd, mode | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if deadline is not None and time.monotonic() >= deadline:
                    raise ConflictError(
                        "the repository stayed busy (writers or another gc hold its sweep "
                        "lock); try again"
                    ) from None
                await asyncio.sleep(POLL_SECONDS)

    @contextlib.asynccontextmanager
    async def shared(self) -> AsyncIterator[None]:
        """Held by a writer from its first object write or check to its ref move."""
        if self._exclusive:
            raise ConflictError("this handle is sweeping: it cannot write meanwhile")
        if self._shared == 0:
            await self._acquire(fcntl.LOCK_SH, None)
            generation = self.generation()
            if generation != self._seen:
                if self._on_sweep is not None:
                    self._on_sweep()  # a sweep ran since: what we believed present may not be
                self._seen = generation
        self._shared += 1
        try:
            yield
        finally:
            self._shared -= 1
            if self._shared == 0 and self._fd >= 0:
                fcntl.flock(self._fd, fcntl.LOCK_UN)

    @contextlib.asynccontextmanager
    async def exclusive(self, timeout: float | None = 600.0) -> AsyncIterator[None]:
        """Held by gc while it recomputes reachability and deletes; waits for writers to
        finish (at most ``timeout`` seconds: ``ConflictError``)."""
        if self._shared or self._exclusive:
            raise ConflictError("this handle is writing: it cannot sweep meanwhile")
        deadline = None if timeout is None else time.monotonic() + timeout
        await self._acquire(fcntl.LOCK_EX, deadline)
        self._exclusive = True
        try:
            yield
        finally:
            self._exclusive = False
            try:  # mark the sweep (even a partial one) before writers may go on
                os.pwrite(self._fd, _GENERATION.pack(self.generation() + 1), 0)
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)  # releases any hold
            self._fd = -1
