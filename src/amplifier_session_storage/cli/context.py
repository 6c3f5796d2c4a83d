"""What every verb shares: the global options, ``--json``/``--quiet`` on each verb, and
opening the repository for one library call."""

from __future__ import annotations

import asyncio
import getpass
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from .output import Output

if TYPE_CHECKING:
    from ..repository.repo import Repository

__all__ = ["DEFAULT_REPO", "REPO_ENV", "Env", "complete_session", "data_options", "pass_env"]

REPO_ENV = "AMPLIFIER_LOCAL_STORAGE_PATH"
DEFAULT_REPO = "~/.amplifier/sessions"  # as the library's StorageConfig

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class Env:
    """Global options, shared by every verb through ``ctx.obj``."""

    repo: str
    json: bool = False
    quiet: bool = False
    _out: Output | None = field(default=None, repr=False)

    @property
    def repo_path(self) -> Path:
        return Path(self.repo).expanduser()

    @property
    def out(self) -> Output:
        if self._out is None:
            self._out = Output(json_mode=self.json, quiet=self.quiet)
        return self._out

    def run(self, call: Callable[[Repository], Awaitable[T]], *, writes: bool = False) -> T:
        """Open the repository, ``await call(repo)``, close it."""
        from ..repository.views import open_store

        async def go() -> T:
            user = _user_id() if writes else ""
            from ..remote.lazy import wrap_promisors

            repo = wrap_promisors(await open_store(self.repo_path, user_id=user), self.repo_path)
            try:
                return await call(repo)
            finally:
                await repo.close()

        return asyncio.run(go())


def _user_id() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return ""


pass_env = click.make_pass_decorator(Env)


def _set_flag(name: str) -> Callable[[click.Context, click.Parameter, bool], None]:
    def callback(ctx: click.Context, param: click.Parameter, value: bool) -> None:
        if value:
            env = ctx.find_object(Env)
            if env is not None:
                setattr(env, name, True)
                env._out = None

    return callback


def data_options(f: F) -> F:
    """``--json`` and ``-q/--quiet`` on the verb itself (same as the global options)."""
    f = click.option(
        "--json",
        "json_",
        is_flag=True,
        expose_value=False,
        is_eager=True,
        callback=_set_flag("json"),
        help="Print data as JSON.",
    )(f)
    f = click.option(
        "-q",
        "--quiet",
        is_flag=True,
        expose_value=False,
        is_eager=True,
        callback=_set_flag("quiet"),
        help="No progress or notes on stderr.",
    )(f)
    return f


def complete_session(
    ctx: click.Context, param: click.Parameter, incomplete: str
) -> list[click.shell_completion.CompletionItem]:
    """Shell completion of session ids (read from the repository; nothing on error)."""
    from ..repository.views import open_store

    root = ctx.find_root().params.get("repo") or DEFAULT_REPO

    async def ids() -> list[str]:
        repo = await open_store(root)
        try:
            return await repo.session_ids()
        finally:
            await repo.close()

    try:
        names = asyncio.run(ids())
    except Exception:
        return []
    return [
        click.shell_completion.CompletionItem(n) for n in sorted(names) if n.startswith(incomplete)
    ]
