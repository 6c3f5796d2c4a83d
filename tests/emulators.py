"""Running Azure emulators for tests (a helper module, not a test module).

``ensure_emulators()`` yields an :class:`Emulators` describing a running
azurite (Blob) and the patched Cosmos DB emulator (``scripts/emulators``):

* if ``AZURITE_BLOB_URL`` and ``COSMOS_EMULATOR_URL`` are set and reachable,
  those are used (and never stopped here);
* otherwise ``scripts/emulators/install.sh`` is run (a no-op when already
  installed) and ``scripts/emulators/start.sh`` starts both on free ports, in a
  private run directory; they are stopped when the last user exits, at
  interpreter exit, or by a watchdog if this process dies.

Missing node/npm, a failed install or a failed start raise
:class:`EmulatorError`: tests that need the emulators must fail, never skip.

One set of emulators is shared per process, however this module is imported
(``tests.emulators`` or ``emulators``) and however many fixtures use it.
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import http.client
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import types
import typing
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
SCRIPTS_DIR = REPO_ROOT / "scripts" / "emulators"

AZURITE_ACCOUNT_NAME = "devstoreaccount1"
AZURITE_ACCOUNT_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
# The public key of the Cosmos DB emulator (the harness checks no authentication).
COSMOS_EMULATOR_KEY = (
    "C2y6yDjf5/R+ob0N8A7Cgv30VRDJIWEHLM+4QDU5DE2nQ9nqbq/7Fxr6aGgBOqFLpJnDSHWvV5hD2cLsA6w1iA=="
)
# Header sent by scripts/emulators/cosmos-launcher.js on every response.
HARNESS_HEADER = "x-cosmos-harness"

INSTALL_TIMEOUT_S = 900
START_TIMEOUT_S = 90
STOP_TIMEOUT_S = 60


class EmulatorError(RuntimeError):
    """The emulators cannot be provided; tests needing them must fail."""


@dataclasses.dataclass(frozen=True)
class Emulators:
    """Where the running emulators are."""

    blob_url: str  # http://127.0.0.1:PORT/devstoreaccount1
    cosmos_endpoint: str  # https://127.0.0.1:PORT/
    cosmos_key: str = COSMOS_EMULATOR_KEY
    blob_account_name: str = AZURITE_ACCOUNT_NAME
    blob_account_key: str = AZURITE_ACCOUNT_KEY
    owned: bool = False  # started (and to be stopped) by this process
    run_dir: str | None = None  # PID files and logs when owned

    # The Cosmos emulator's certificate is self-signed (and expired): clients
    # must pass connection_verify=False.
    cosmos_connection_verify: bool = False

    @property
    def blob_connection_string(self) -> str:
        return (
            "DefaultEndpointsProtocol=http;"
            f"AccountName={self.blob_account_name};"
            f"AccountKey={self.blob_account_key};"
            f"BlobEndpoint={self.blob_url};"
        )

    def as_env(self) -> dict[str, str]:
        """The variables start.sh prints, for subprocesses."""
        return {
            "AZURITE_BLOB_URL": self.blob_url,
            "AZURITE_CONNECTION_STRING": self.blob_connection_string,
            "COSMOS_EMULATOR_URL": self.cosmos_endpoint,
            "COSMOS_EMULATOR_KEY": self.cosmos_key,
        }


# --------------------------------------------------------------------------
# Process-wide shared state (kept in sys.modules so that importing this file
# under two module names still shares one set of emulators).
# --------------------------------------------------------------------------

_STATE_NAME = "_amplifier_session_storage_test_emulators"


class _Shared:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.emulators: Emulators | None = None
        self.refcount = 0
        self.atexit_registered = False


def _state() -> _Shared:
    mod = sys.modules.get(_STATE_NAME)
    if mod is None:
        mod = types.ModuleType(_STATE_NAME)
        mod.__dict__["state"] = _Shared()
        sys.modules[_STATE_NAME] = mod
    return typing.cast(_Shared, mod.__dict__["state"])


def _reachable(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _host_port(url: str, default_port: int) -> tuple[str, int]:
    parsed = urllib.parse.urlsplit(url)
    if not parsed.hostname:
        raise EmulatorError(f"not a URL: {url!r}")
    return parsed.hostname, parsed.port or default_port


def _is_harness(endpoint: str) -> bool:
    host, port = _host_port(endpoint, 443)
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    conn = http.client.HTTPSConnection(host, port, timeout=5, context=ctx)
    try:
        conn.request("GET", "/")
        resp = conn.getresponse()
        resp.read()
        return resp.getheader(HARNESS_HEADER) is not None
    except OSError:
        return False
    finally:
        conn.close()


def _from_env() -> Emulators | None:
    blob = os.environ.get("AZURITE_BLOB_URL", "").strip()
    cosmos = os.environ.get("COSMOS_EMULATOR_URL", "").strip()
    if not blob or not cosmos:
        return None
    if not urllib.parse.urlsplit(blob).path.strip("/"):
        blob = blob.rstrip("/") + "/" + AZURITE_ACCOUNT_NAME
    blob = blob.rstrip("/")
    if not cosmos.endswith("/"):
        cosmos += "/"
    if not (_reachable(*_host_port(blob, 80)) and _reachable(*_host_port(cosmos, 443))):
        print(
            f"tests/emulators.py: AZURITE_BLOB_URL={blob} / COSMOS_EMULATOR_URL={cosmos} "
            "not reachable; starting private emulators instead",
            file=sys.stderr,
        )
        return None
    if not _is_harness(cosmos):
        raise EmulatorError(
            f"COSMOS_EMULATOR_URL={cosmos} answers, but it is not the patched emulator of "
            "scripts/emulators/cosmos-launcher.js (no x-cosmos-harness header). A stock "
            "emulator gets several behaviours wrong (see docs/emulators.md): unset the "
            "variable or point it at scripts/emulators/start.sh's emulator."
        )
    return Emulators(
        blob_url=blob,
        cosmos_endpoint=cosmos,
        cosmos_key=os.environ.get("COSMOS_EMULATOR_KEY") or COSMOS_EMULATOR_KEY,
        owned=False,
    )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _run_script(name: str, env: dict[str, str], timeout: float) -> subprocess.CompletedProcess[str]:
    bash = shutil.which("bash")
    if bash is None:
        raise EmulatorError("bash is not installed; the emulator scripts need it")
    try:
        return subprocess.run(
            [bash, str(SCRIPTS_DIR / name)],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
            cwd=str(REPO_ROOT),
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise EmulatorError(f"scripts/emulators/{name} timed out after {timeout:.0f} s") from exc


def _tail(text: str, lines: int = 40) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def _require_tools() -> None:
    missing = [tool for tool in ("node", "npm", "bash") if shutil.which(tool) is None]
    if missing:
        raise EmulatorError(
            f"{', '.join(missing)} not found on PATH: the emulator tests need Node.js >= 20 "
            "and npm to run azurite and the Cosmos DB emulator (scripts/emulators/install.sh). "
            "These tests fail instead of skipping so that CI really runs them."
        )


def _start() -> Emulators:
    _require_tools()
    env = dict(os.environ)
    installed = _run_script("install.sh", env, INSTALL_TIMEOUT_S)
    if installed.returncode != 0:
        raise EmulatorError(
            "scripts/emulators/install.sh failed:\n" + _tail(installed.stderr + installed.stdout)
        )
    last_error = ""
    for _attempt in range(3):
        run_dir = tempfile.mkdtemp(prefix="amplifier-emulators-")
        blob_port, cosmos_port = _free_port(), _free_port()
        while cosmos_port == blob_port:
            cosmos_port = _free_port()
        env = dict(os.environ)
        env.update(
            AZURITE_PORT=str(blob_port),
            COSMOS_EMULATOR_PORT=str(cosmos_port),
            EMULATORS_RUN_DIR=run_dir,
            EMULATORS_WATCH_PID=str(os.getpid()),
        )
        started = _run_script("start.sh", env, START_TIMEOUT_S)
        if started.returncode == 0:
            return Emulators(
                blob_url=f"http://127.0.0.1:{blob_port}/{AZURITE_ACCOUNT_NAME}",
                cosmos_endpoint=f"https://127.0.0.1:{cosmos_port}/",
                owned=True,
                run_dir=run_dir,
            )
        last_error = _tail(started.stderr + started.stdout)
        _stop_run_dir(run_dir, check=False)
        if "already in use" not in last_error:
            break
    raise EmulatorError("scripts/emulators/start.sh failed:\n" + last_error)


def _stop_run_dir(run_dir: str, *, check: bool) -> None:
    env = dict(os.environ)
    env["EMULATORS_RUN_DIR"] = run_dir
    stopped = _run_script("stop.sh", env, STOP_TIMEOUT_S)
    if stopped.returncode != 0:
        if check:
            raise EmulatorError(
                "scripts/emulators/stop.sh failed:\n" + _tail(stopped.stderr + stopped.stdout)
            )
        return
    shutil.rmtree(run_dir, ignore_errors=True)


def _shutdown_at_exit() -> None:
    st = _state()
    with st.lock:
        emu = st.emulators
        st.emulators = None
        st.refcount = 0
    if emu is not None and emu.owned and emu.run_dir:
        with contextlib.suppress(EmulatorError):
            _stop_run_dir(emu.run_dir, check=False)


def acquire_emulators() -> Emulators:
    """Start (or reuse) the emulators; pair every call with release_emulators()."""
    st = _state()
    with st.lock:
        if st.emulators is None:
            st.emulators = _from_env() or _start()
            if not st.atexit_registered:
                atexit.register(_shutdown_at_exit)
                st.atexit_registered = True
        st.refcount += 1
        return st.emulators


def release_emulators() -> None:
    """Drop one reference; the last one stops emulators this process started."""
    st = _state()
    with st.lock:
        if st.refcount <= 0:
            return
        st.refcount -= 1
        if st.refcount > 0:
            return
        emu = st.emulators
        st.emulators = None
    if emu is not None and emu.owned and emu.run_dir:
        _stop_run_dir(emu.run_dir, check=True)


@contextlib.contextmanager
def ensure_emulators() -> Iterator[Emulators]:
    """Yield running emulators (see the module docstring); raise EmulatorError if impossible."""
    emu = acquire_emulators()
    try:
        yield emu
    finally:
        release_emulators()
