"""Local refs: one symlink per ref, updated under a lock symlink, with a checksummed reflog.

``refs/<name>`` is a symbolic link whose target (never followed) is the value and the pid
of the process that wrote it: ``<43 base64url digits of the 32-byte id>@<pid>`` (at most 54
bytes, stored in the inode: no data block). A regular file holding 64 hex digits and a
newline (the earlier format) is read too. ``logs/<name>`` holds one line per move::

    <old hex | 64 zeros> <new hex | 64 zeros> <time_ns> <reason> <crc32 of the rest, 8 hex>

The reason is ``unicode_escape``-d (never a newline). A line whose checksum fails (a torn
append after a crash) is skipped on read, and the next append starts on a fresh line.

An update (``set_if_equals``) takes the lock by creating ``<ref>.lock`` as a symlink whose
target already is the new value (``symlink`` is atomic and fails if the name exists: that
is the exclusive lock, and it needs no data write), re-reads the ref, compares, appends the
reflog line and fdatasyncs it, renames the lock over the ref and fsyncs the directory: two
syncs. The reflog line is the commit record, written while the lock is held (so the log's
order is the ref's order) and durable before the rename: a ref that a crash left garbled is
restored from the last reflog line. A crash between the log append and the rename leaves a
logged move that never happened (the caller was never told it succeeded); the next update
sees that the log's last ``new`` is not the ref's value and writes a ``reflog repair`` line
first, so the chain ``entry.old == previous.new`` holds again.
"""

from __future__ import annotations

import asyncio
import base64
import builtins
import contextlib
import errno
import os
import random
import re
import stat
import time
import zlib
from collections.abc import AsyncIterator
from pathlib import Path

from ..core.ids import ObjectId
from ..core.refnames import validate_ref_name
from ..errors import ConflictError, IntegrityError, InvalidInputError
from .base import ReflogEntry, RefStore, keep_after
from .pack import datasync, open_dir, write_all

__all__ = ["LocalRefStore"]

ZERO_HEX = b"0" * 64
LOCK_SUFFIX = ".lock"
TAIL_BYTES = 4096  # how much of a reflog's end is read to find its last entry
_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
_PID = re.compile(rb"(\d{1,10})\n")
_TARGET = re.compile(r"([A-Za-z0-9_-]{43}|-)@(\d{1,10})")
_NOT_DIR = (errno.ENOTDIR, errno.ELOOP)


def _hex(oid: ObjectId | None) -> bytes:
    return ZERO_HEX if oid is None else oid.hex().encode()


def _oid(text: bytes) -> ObjectId | None:
    return None if text == ZERO_HEX else ObjectId.from_hex(text.decode("ascii"))


def link_target(value: ObjectId | None, pid: int | None = None) -> str:
    """The symlink target of a ref (and of its lock): value and writer pid."""
    text = "-" if value is None else base64.urlsafe_b64encode(value).rstrip(b"=").decode()
    return f"{text}@{os.getpid() if pid is None else pid}"


def parse_target(target: str) -> tuple[ObjectId | None, int] | None:
    """(value, pid) of a ref symlink's target, or ``None`` if it is malformed."""
    m = _TARGET.fullmatch(target)
    if m is None:
        return None
    text, pid = m.group(1), int(m.group(2))
    if text == "-":
        return None, pid
    raw = base64.urlsafe_b64decode(text + "=")
    if base64.urlsafe_b64encode(raw).rstrip(b"=").decode() != text:
        return None  # non-canonical: the last digit carries bits beyond the 32 bytes
    return ObjectId(raw), pid


def format_entry(old: ObjectId | None, new: ObjectId | None, time_ns: int, reason: str) -> bytes:
    """One reflog line (with its newline)."""
    body = b"%s %s %d %s" % (_hex(old), _hex(new), time_ns, reason.encode("unicode_escape"))
    return body + b" %08x\n" % zlib.crc32(body)


def parse_entry(line: bytes) -> ReflogEntry | None:
    """The entry on one line (without its newline), or ``None`` if the line is damaged."""
    body, sep, crc = line.rpartition(b" ")
    if not sep or len(crc) != 8:
        return None
    try:
        if int(crc, 16) != zlib.crc32(body):
            return None
        old, new, t, reason = body.split(b" ", 3)
        return ReflogEntry(_oid(old), _oid(new), int(t), reason.decode("unicode_escape"))
    except (ValueError, UnicodeDecodeError):  # InvalidInputError is a ValueError
        return None


def parse_log(data: bytes) -> list[ReflogEntry]:
    """Every intact entry of a reflog; a torn or damaged line is skipped."""
    lines = data.split(b"\n")
    lines.pop()  # after the last newline: empty, or a torn append
    return [e for e in map(parse_entry, lines) if e is not None]


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return False  # this process holds no lock between its own awaits
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class LocalRefStore(RefStore):
    """Refs as files under ``root/refs``, reflogs under ``root/logs`` (see module doc).

    ``lock_timeout``: how long a writer waits for a contended lock before raising
    :class:`ConflictError`. ``stale_lock_after``: a lock file this old whose owner is
    unknown is broken; one ten times as old is broken whatever its pid says.
    ``dead_lock_after``: a lock whose recorded pid is no process here is broken once it is
    this old (a writer killed mid-update: the next one need not wait ``stale_lock_after``;
    the short wait still covers a writer in another pid namespace, whose lock lives for
    milliseconds).
    Ref name components may not end in ``.lock``, and a ref cannot also be a namespace
    (``a`` and ``a/b``): that raises :class:`ConflictError`.
    """

    def __init__(
        self,
        root: Path | str,
        *,
        fsync: bool = True,
        lock_timeout: float = 10.0,
        stale_lock_after: float = 30.0,
        dead_lock_after: float = 2.0,
    ) -> None:
        self.root = Path(root)
        self._fsync = fsync
        self._timeout = lock_timeout
        self._stale = stale_lock_after
        self._dead = min(dead_lock_after, stale_lock_after)
        self._refs_fd = open_dir(self.root / "refs", create=True, fsync=fsync)
        self._logs_fd = open_dir(self.root / "logs", create=True, fsync=fsync)
        self._dirs: dict[tuple[int, str], int] = {}

    @staticmethod
    def _check(name: str) -> str:
        validate_ref_name(name)
        if any(part.endswith(LOCK_SUFFIX) for part in name.split("/")):
            raise InvalidInputError(f"ref name component may not end in .lock: {name!r:.80}")
        return name

    def _dir(self, base: int, parent: str, name: str) -> int:
        """The fd of directory ``parent`` under ``base``, created (durably) if missing.

        Walked one component at a time without following symlinks: a ref (a symlink, or a
        regular file) where a namespace directory would be is a :class:`ConflictError`.
        """
        if not parent:
            return base
        fd = self._dirs.get((base, parent))
        if fd is not None:
            return fd
        cur = base
        try:
            for part in parent.split("/"):
                try:
                    nxt = os.open(part, _DIR | os.O_NOFOLLOW, dir_fd=cur)
                except FileNotFoundError:
                    try:
                        os.mkdir(part, 0o755, dir_fd=cur)
                        if self._fsync:
                            os.fsync(cur)
                    except FileExistsError:
                        pass  # made meanwhile by another writer
                    nxt = os.open(part, _DIR | os.O_NOFOLLOW, dir_fd=cur)
                if cur != base:
                    os.close(cur)
                cur = nxt
        except OSError as exc:
            if cur != base:
                os.close(cur)
            if exc.errno in _NOT_DIR:
                raise ConflictError(
                    f"ref {name!r}: a ref exists where its namespace would be"
                ) from exc
            raise
        self._dirs[(base, parent)] = cur
        return cur

    def _value(self, data: bytes, name: str) -> ObjectId | None:
        """The value in a ref file's bytes (the earlier format: hex + newline)."""
        if len(data) == 65 and data[64:] == b"\n":
            try:
                return ObjectId.from_hex(data[:64].decode("ascii"))
            except (InvalidInputError, UnicodeDecodeError):
                pass
        return self._restore(name)

    def _link_value(self, target: str, name: str) -> ObjectId | None:
        parsed = parse_target(target)
        if parsed is None or parsed[0] is None:
            return self._restore(name)
        return parsed[0]

    def _restore(self, name: str) -> ObjectId | None:
        # The ref's value was made durable by the reflog line written before the rename,
        # so a ref that a crash (or damage) left unreadable is that line's ``new``.
        entries = self._read_log(name)
        if not entries:
            raise IntegrityError(f"ref {name!r} is malformed and has no reflog to restore it")
        return entries[-1].new

    def _read_at(self, dfd: int, path: str, name: str) -> ObjectId | None:
        """The ref at ``path`` (relative to ``dfd``); ``IsADirectoryError`` for a namespace."""
        try:
            return self._link_value(os.readlink(path, dir_fd=dfd), name)
        except FileNotFoundError:
            return None
        except OSError as exc:
            if exc.errno != errno.EINVAL:
                raise
        # not a symlink: a ref file in the earlier format (or a namespace directory)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW, dir_fd=dfd)
        except FileNotFoundError:
            return None  # replaced meanwhile by a rename, then removed
        try:
            data = os.read(fd, 128)
        finally:
            os.close(fd)
        return self._value(data, name)

    def _read(self, dfd: int, leaf: str, name: str) -> ObjectId | None:
        try:
            return self._read_at(dfd, leaf, name)
        except IsADirectoryError as exc:
            raise ConflictError(f"ref {name!r} is a namespace of other refs") from exc

    async def get(self, name: str) -> ObjectId | None:
        self._check(name)
        try:
            return self._read_at(self._refs_fd, name, name)
        except (NotADirectoryError, IsADirectoryError):
            return None
        except OSError as exc:
            if exc.errno in _NOT_DIR:
                return None
            raise

    async def set_if_equals(
        self, name: str, old: ObjectId | None, new: ObjectId | None, reason: str = ""
    ) -> bool:
        self._check(name)
        old = None if old is None else ObjectId(old)
        new = None if new is None else ObjectId(new)
        if not isinstance(reason, str):
            raise InvalidInputError("reflog reason must be a string")
        parent, _, leaf = name.rpartition("/")
        dfd = self._dir(self._refs_fd, parent, name)
        lock = leaf + LOCK_SUFFIX
        await self._lock(dfd, lock, name, link_target(new))
        released = False
        try:
            cur = self._read(dfd, leaf, name)
            if cur != old:
                return False
            log_dir = self._dir(self._logs_fd, parent, name)
            self._append_log(log_dir, leaf, cur, new, reason)
            if new is not None:
                os.rename(lock, leaf, src_dir_fd=dfd, dst_dir_fd=dfd)
            else:
                if cur is not None:
                    os.unlink(leaf, dir_fd=dfd)
                os.unlink(lock, dir_fd=dfd)
            released = True
            if self._fsync:
                os.fsync(dfd)
            return True
        finally:
            if not released:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(lock, dir_fd=dfd)

    def _append_log(
        self, log_dir: int, leaf: str, cur: ObjectId | None, new: ObjectId | None, reason: str
    ) -> None:
        try:
            fd = os.open(
                leaf, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644, dir_fd=log_dir
            )
        except IsADirectoryError as exc:
            raise ConflictError(f"reflog of {leaf!r} is a namespace directory") from exc
        try:
            size = os.fstat(fd).st_size
            prev, torn = self._log_tail(fd, size)
            out = b"\n" if torn else b""
            now = time.time_ns()
            if prev != cur:
                out += format_entry(prev, cur, now, "reflog repair: an update was not applied")
            write_all(fd, out + format_entry(cur, new, now, reason))
            if self._fsync:
                datasync(fd)
        finally:
            os.close(fd)
        if self._fsync and size == 0:
            os.fsync(log_dir)

    @staticmethod
    def _log_tail(fd: int, size: int) -> tuple[ObjectId | None, bool]:
        """(``new`` of the last intact entry, whether the file ends in a torn line)."""
        if size == 0:
            return None, False
        n = min(size, TAIL_BYTES)
        data = os.pread(fd, n, size - n)
        torn = not data.endswith(b"\n")
        lines = data.split(b"\n")[:-1]
        if n < size:
            lines = lines[1:]  # the first piece may be the end of a longer line
        for line in reversed(lines):
            entry = parse_entry(line)
            if entry is not None:
                return entry.new, torn
        if n < size:  # no intact line in the tail: very long reasons; read it all
            entries = parse_log(os.pread(fd, size, 0))
            return (entries[-1].new if entries else None), torn
        return None, torn

    async def _lock(self, dfd: int, lock: str, name: str, target: str) -> None:
        """Create the lock symlink (its target: the new value and this pid), waiting while
        another writer holds it; stale locks of dead writers are broken."""
        deadline = 0.0
        delay = 0.0002
        while True:
            try:
                os.symlink(target, lock, dir_fd=dfd)
                return
            except FileExistsError:
                now = time.monotonic()
                if not deadline:
                    deadline = now + self._timeout
                elif now > deadline:
                    raise ConflictError(
                        f"ref {name!r}: still locked by another writer after {self._timeout}s"
                    ) from None
                if not self._break_stale(dfd, lock):
                    await asyncio.sleep(delay * (0.5 + random.random()))
                    delay = min(delay * 2, 0.01)
            except NotADirectoryError as exc:
                raise ConflictError(
                    f"ref {name!r}: a ref exists where its namespace would be"
                ) from exc

    def _lock_pid(self, dfd: int, lock: str, st: os.stat_result) -> int | None:
        """The pid a lock names: in its target (a symlink) or its bytes (a lock file of the
        earlier format); ``None`` when it names none."""
        if stat.S_ISLNK(st.st_mode):
            parsed = parse_target(os.readlink(lock, dir_fd=dfd))
            return None if parsed is None else parsed[1]
        fd = os.open(lock, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW, dir_fd=dfd)
        try:
            m = _PID.fullmatch(os.read(fd, 64))
        finally:
            os.close(fd)
        return None if m is None else int(m.group(1))

    def _break_stale(self, dfd: int, lock: str) -> bool:
        """Remove ``lock`` if it is old and its owner is gone; ``True`` to retry at once."""
        try:
            st = os.stat(lock, dir_fd=dfd, follow_symlinks=False)
            if time.time() - st.st_mtime < self._dead:
                return False
            pid = self._lock_pid(dfd, lock, st)
        except FileNotFoundError:
            return True
        age = time.time() - st.st_mtime
        alive = pid is not None and _pid_alive(pid)
        if pid is None and age < self._stale:
            return False  # whose it is cannot be told: wait the long way
        if alive and age < self._stale * 10:
            # Alive -- or the pid was reused (a restarted container): a lock is held for
            # milliseconds, so one ten times older than "stale" is broken regardless.
            return False
        # Breakers take their own lock so two of them cannot remove a fresh lock file that
        # a third writer created after the first breaker removed the stale one.
        breaker = lock + LOCK_SUFFIX
        try:
            bfd = os.open(breaker, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, dir_fd=dfd)
        except FileExistsError:
            try:
                if time.time() - os.stat(breaker, dir_fd=dfd).st_mtime > self._stale:
                    os.unlink(breaker, dir_fd=dfd)  # a breaker that died mid-break
            except FileNotFoundError:
                pass
            return False
        try:
            now = os.stat(lock, dir_fd=dfd, follow_symlinks=False)
            if (now.st_ino, now.st_mtime_ns, now.st_size) != (
                st.st_ino,
                st.st_mtime_ns,
                st.st_size,
            ):
                return False
            os.unlink(lock, dir_fd=dfd)
            return True
        except FileNotFoundError:
            return True
        finally:
            os.close(bfd)
            os.unlink(breaker, dir_fd=dfd)

    def _read_log(self, name: str) -> list[ReflogEntry]:
        try:
            fd = os.open(name, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW, dir_fd=self._logs_fd)
        except (FileNotFoundError, NotADirectoryError):
            return []
        try:
            data = os.pread(fd, os.fstat(fd).st_size, 0)
        except IsADirectoryError:
            return []
        finally:
            os.close(fd)
        return parse_log(data)

    async def reflog(self, name: str) -> list[ReflogEntry]:
        return self._read_log(self._check(name))

    async def expire_reflog(self, name: str, before_ns: int) -> int:
        """Rewrite the reflog without entries older than ``before_ns`` (see the contract),
        under the ref's lock: temp file, fdatasync, rename, directory fsync; an emptied
        reflog is removed (a deleted ref then stops being a gc root)."""
        self._check(name)
        parent, _, leaf = name.rpartition("/")
        dfd = self._dir(self._refs_fd, parent, name)
        lock = leaf + LOCK_SUFFIX
        await self._lock(dfd, lock, name, link_target(None))
        try:
            live = self._read(dfd, leaf, name) is not None
            entries = self._read_log(name)
            kept = keep_after(entries, before_ns, live)
            if len(kept) == len(entries):
                return 0
            log_dir = self._dir(self._logs_fd, parent, name)
            if not kept:
                os.unlink(leaf, dir_fd=log_dir)
            else:
                tmp = f"{leaf}.tmp-{os.getpid()}{LOCK_SUFFIX}"  # never a valid ref name
                fd = os.open(
                    tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644, dir_fd=log_dir
                )
                try:
                    write_all(
                        fd, b"".join(format_entry(e.old, e.new, e.time_ns, e.reason) for e in kept)
                    )
                    if self._fsync:
                        datasync(fd)
                finally:
                    os.close(fd)
                os.rename(tmp, leaf, src_dir_fd=log_dir, dst_dir_fd=log_dir)
            if self._fsync:
                os.fsync(log_dir)
            return len(entries) - len(kept)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(lock, dir_fd=dfd)

    async def logged_refs(self) -> builtins.list[str]:
        """Every ref with a (non-empty) reflog, deleted refs included: the gc roots."""
        names: builtins.list[str] = []
        top = self.root / "logs"
        for dirpath, _dirs, files in os.walk(top):
            rel = os.path.relpath(dirpath, top)
            for f in files:
                name = f if rel == "." else f"{rel}/{f}"
                try:
                    self._check(name)
                    if os.path.getsize(os.path.join(dirpath, f)) > 0:
                        names.append(name)
                except (InvalidInputError, FileNotFoundError):
                    continue
        return sorted(names)

    async def list(self, prefix: str = "") -> AsyncIterator[tuple[str, ObjectId]]:
        base, _, _ = prefix.rpartition("/")
        try:
            self._check(base)
        except InvalidInputError:
            base = ""
        found: builtins.list[tuple[str, ObjectId]] = []
        stack = [base]
        while stack:  # a walk that never follows a symlink (refs are symlinks)
            rel = stack.pop()
            try:
                entries = builtins.list(os.scandir(self.root / "refs" / rel))
            except (FileNotFoundError, NotADirectoryError):
                continue
            for entry in entries:
                name = f"{rel}/{entry.name}" if rel else entry.name
                if entry.is_dir(follow_symlinks=False):
                    stack.append(name)
                    continue
                if not name.startswith(prefix):
                    continue
                try:
                    self._check(name)
                except InvalidInputError:
                    continue  # lock files, foreign files
                value = await self.get(name)
                if value is not None:
                    found.append((name, value))
        for item in sorted(found):
            yield item

    async def close(self) -> None:
        fds = [*self._dirs.values(), self._refs_fd, self._logs_fd]
        self._dirs.clear()
        self._refs_fd = self._logs_fd = -1
        for fd in fds:
            if fd >= 0:
                os.close(fd)
