"""A small HTTP/1.1 proxy that injects faults between the SDKs and the emulators.

``FaultProxy(upstream_host, upstream_port, tls=...)`` listens on 127.0.0.1 and forwards
each request to the upstream over a persistent connection per client connection. For a
seeded random share of requests it injects, instead of forwarding:

=============== =======================================================================
``drop``        the connection is closed after the request was read, never forwarded
``lost``        the request is forwarded (the server applies it) and the connection is
                closed before the answer: the client cannot know it worked
``cut``         the answer is forwarded half way, then the connection is closed
``503``         ``503 Service Unavailable`` (``ServerBusy`` / ``ServiceUnavailable``)
``429``         ``429 Too Many Requests`` with ``Retry-After: 1`` and
                ``x-ms-retry-after-ms: 200``
=============== =======================================================================

Cosmos DB is HTTPS: with ``tls=True`` the proxy terminates TLS (a throw-away self-signed
certificate: the clients of the tests do not verify certificates for 127.0.0.1) and opens
TLS to the emulator, so it can inject at the HTTP level there too. It also rewrites the
database-account document (``GET /``), whose endpoints name the emulator's own port, so
the SDK's endpoint discovery keeps talking through the proxy.

``listen_port`` picks the port (default: any free one). Bounds: faults stop after
``max_faults`` or ``fault_window`` seconds; the proxy serves at
most ``max_requests`` requests and stops by itself after ``lifetime`` seconds (closing
every connection), so a test can never leave it running.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import json
import random
import ssl
import tempfile
import time
from collections import Counter
from pathlib import Path

FAULTS = ("drop", "lost", "cut", "503", "429")
NO_BODY_STATUS = {204, 304}

_CERT: tuple[str, str] | None = None


def _self_signed() -> tuple[str, str]:
    """A certificate + key for 127.0.0.1 (generated once per process)."""
    global _CERT
    if _CERT is None:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
        now = datetime.datetime.now(datetime.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=7))
            .sign(key, hashes.SHA256())
        )
        d = Path(tempfile.mkdtemp(prefix="fault-proxy-"))
        (d / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        (d / "key.pem").write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        _CERT = (str(d / "cert.pem"), str(d / "key.pem"))
    return _CERT


class _Closed(Exception):
    pass


async def _read_head(reader: asyncio.StreamReader) -> bytes:
    try:
        return await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError) as exc:
        raise _Closed() from exc


def _headers(head: bytes) -> tuple[str, dict[str, str]]:
    lines = head.decode("latin-1").split("\r\n")
    out: dict[str, str] = {}
    for line in lines[1:]:
        if ":" in line:
            k, _, v = line.partition(":")
            out[k.strip().lower()] = v.strip()
    return lines[0], out


async def _read_body(
    reader: asyncio.StreamReader, headers: dict[str, str], *, until_close: bool
) -> bytes:
    try:
        if "chunked" in headers.get("transfer-encoding", "").lower():
            parts = []
            while True:
                line = await reader.readuntil(b"\r\n")
                parts.append(line)
                size = int(line.split(b";")[0].strip(), 16)
                if size == 0:
                    while True:  # trailers, then the final empty line
                        t = await reader.readuntil(b"\r\n")
                        parts.append(t)
                        if t == b"\r\n":
                            return b"".join(parts)
                parts.append(await reader.readexactly(size + 2))
        if "content-length" in headers:
            return await reader.readexactly(int(headers["content-length"]))
        return await reader.read() if until_close else b""
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError) as exc:
        raise _Closed() from exc


def _dechunk(data: bytes) -> bytes:
    out, pos = [], 0
    while True:
        end = data.index(b"\r\n", pos)
        size = int(data[pos:end].split(b";")[0], 16)
        if size == 0:
            return b"".join(out)
        out.append(data[end + 2 : end + 2 + size])
        pos = end + 2 + size + 2


class FaultProxy:
    """See the module docstring."""

    def __init__(
        self,
        upstream_host: str,
        upstream_port: int,
        *,
        tls: bool = False,
        rate: float = 0.15,
        faults: tuple[str, ...] = FAULTS,
        seed: int = 1,
        max_faults: int = 40,
        fault_window: float = 120.0,
        max_requests: int = 20_000,
        lifetime: float = 300.0,
        service: str = "blob",
        listen_port: int = 0,
    ) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.tls = tls
        self.rate = rate
        self.faults = faults
        self.rng = random.Random(seed)
        self.max_faults = max_faults
        self.fault_window = fault_window
        self.max_requests = max_requests
        self.lifetime = lifetime
        self.service = service
        self.stats: Counter[str] = Counter()
        self.port = listen_port
        self._server: asyncio.base_events.Server | None = None
        self._started = 0.0
        self._writers: set[asyncio.StreamWriter] = set()
        self._timer: asyncio.TimerHandle | None = None
        self.stopped = asyncio.Event()

    # ------------------------------------------------------------------ life cycle
    async def start(self) -> int:
        ctx = None
        if self.tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(*_self_signed())
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port, ssl=ctx)
        self.port = self._server.sockets[0].getsockname()[1]
        self._started = time.monotonic()
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(self.lifetime, lambda: loop.create_task(self.stop()))
        return self.port

    async def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self._server is not None:
            self._server.close()
            for w in list(self._writers):
                w.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 5)
            self._server = None
        self.stopped.set()

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    # ------------------------------------------------------------------ decisions
    def _fault(self) -> str | None:
        injected = sum(self.stats[f] for f in FAULTS)
        if (
            injected >= self.max_faults
            or time.monotonic() - self._started > self.fault_window
            or self.rng.random() >= self.rate
        ):
            return None
        return self.rng.choice(self.faults)

    def _error(self, status: int) -> bytes:
        if status == 503:
            code = "ServiceUnavailable" if self.service == "cosmos" else "ServerBusy"
            reason, extra = "Service Unavailable", ""
        else:
            code = "TooManyRequests" if self.service == "cosmos" else "ServerBusy"
            reason, extra = "Too Many Requests", "Retry-After: 1\r\nx-ms-retry-after-ms: 200\r\n"
        body = json.dumps({"code": code, "message": "injected by the fault proxy"}).encode()
        head = (
            f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n"
            f"x-ms-error-code: {code}\r\n{extra}Content-Length: {len(body)}\r\n\r\n"
        )
        return head.encode() + body

    # ------------------------------------------------------------------ one connection
    async def _serve(self, creader: asyncio.StreamReader, cwriter: asyncio.StreamWriter) -> None:
        self.stats["connections"] += 1
        self._writers.add(cwriter)
        upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        try:
            while True:
                head = await _read_head(creader)
                line, headers = _headers(head)
                body = await _read_body(creader, headers, until_close=False)
                self.stats["requests"] += 1
                if self.stats["requests"] > self.max_requests:
                    await self.stop()
                    return
                fault = self._fault()
                if fault == "drop":
                    self.stats["drop"] += 1
                    return
                if fault in ("503", "429"):
                    self.stats[fault] += 1
                    cwriter.write(self._error(int(fault)))
                    await cwriter.drain()
                    continue
                if upstream is None:
                    uctx = None
                    if self.tls:
                        uctx = ssl.create_default_context()
                        uctx.check_hostname = False
                        uctx.verify_mode = ssl.CERT_NONE
                    upstream = await asyncio.open_connection(*self.upstream, ssl=uctx)
                ureader, uwriter = upstream
                uwriter.write(head + body)
                await uwriter.drain()
                rhead = await _read_head(ureader)
                status_line, rheaders = _headers(rhead)
                status = int(status_line.split()[1])
                if line.startswith("HEAD ") or status in NO_BODY_STATUS or status < 200:
                    rbody = b""
                else:
                    rbody = await _read_body(ureader, rheaders, until_close=True)
                if fault == "lost":
                    self.stats["lost"] += 1
                    return
                if self.tls and line.split()[1] == "/" and line.startswith("GET "):
                    rhead, rbody = self._rewrite_account(rhead, rbody)
                if fault == "cut":
                    self.stats["cut"] += 1
                    whole = rhead + rbody
                    cwriter.write(whole[: max(1, len(whole) // 2)])
                    await cwriter.drain()
                    return
                self.stats["passed"] += 1
                cwriter.write(rhead + rbody)
                await cwriter.drain()
                if rheaders.get("connection", "").lower() == "close":
                    return
        except (_Closed, ConnectionError, OSError, ssl.SSLError, ValueError, IndexError):
            return
        finally:
            self._writers.discard(cwriter)
            with contextlib.suppress(Exception):
                cwriter.close()
            if upstream is not None:
                with contextlib.suppress(Exception):
                    upstream[1].close()

    def _rewrite_account(self, rhead: bytes, rbody: bytes) -> tuple[bytes, bytes]:
        """Point the database account's endpoints at the proxy (not at the emulator)."""
        host, port = self.upstream
        if b"chunked" in rhead.lower():
            rbody = _dechunk(rbody)
        new = rbody.replace(f"{host}:{port}".encode(), f"127.0.0.1:{self.port}".encode())
        lines = [
            ln
            for ln in rhead.decode("latin-1").split("\r\n")
            if not ln.lower().startswith(("content-length:", "transfer-encoding:"))
        ]
        lines.insert(1, f"Content-Length: {len(new)}")
        return "\r\n".join(lines).encode("latin-1"), new
