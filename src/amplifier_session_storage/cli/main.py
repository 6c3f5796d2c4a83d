"""``sessctl``: the command line over the session repository.

Each verb lives in ``cmd_<verb>.py`` with a ``register(group)`` function and is imported
only when it is run (or when ``--help`` lists them), so a verb costs nothing until used.
Library errors become exit codes in one place, :func:`main`.

Adding a verb (import, export, push, ...): write ``cmd_<verb>.py`` with
``register(group)`` and add one line to :data:`COMMANDS`.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
from collections.abc import Sequence

import click

from ..errors import (
    ConflictError,
    IntegrityError,
    InvalidInputError,
    NotFoundError,
    StorageError,
)
from .context import DEFAULT_REPO, REPO_ENV, Env

__all__ = ["COMMANDS", "EXIT_CODES", "cli", "main"]

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_NOT_FOUND = 3
EXIT_CONFLICT = 4
EXIT_INTEGRITY = 5
EXIT_INTERRUPTED = 130

EXIT_CODES = {
    EXIT_OK: "ok",
    EXIT_ERROR: "error",
    EXIT_USAGE: "usage: bad arguments or invalid input",
    EXIT_NOT_FOUND: "not found: no such repository, session, block or object",
    EXIT_CONFLICT: "conflict: the session moved or already exists; nothing was overwritten",
    EXIT_INTEGRITY: "integrity failure: stored bytes do not match their id, or fsck found problems",
}

# verb -> module of this package whose register(group) adds it
COMMANDS: dict[str, str] = {
    "init": "cmd_init",
    "sessions": "cmd_sessions",
    "log": "cmd_log",
    "reflog": "cmd_log",
    "show": "cmd_show",
    "cat-object": "cmd_show",
    "fork": "cmd_fork",
    "rewind": "cmd_rewind",
    "diff": "cmd_diff",
    "status": "cmd_status",
    "fsck": "cmd_fsck",
    "gc": "cmd_gc",
    "demo": "cmd_demo",
    "import": "cmd_import",
    "archive": "cmd_import",
    "export": "cmd_import",
    "remote": "cmd_remote",
    "push": "cmd_sync",
    "pull": "cmd_sync",
    "fetch": "cmd_sync",
    "clone": "cmd_sync",
    "completion": "cmd_completion",
}

EPILOG = (
    "\b\nExit codes:\n"
    + "\n".join(f"  {code}  {text}" for code, text in EXIT_CODES.items())
    + f"""

\b
Environment:
  {REPO_ENV}  the repository (default {DEFAULT_REPO})
  NO_COLOR  never colour the output
  SESSCTL_DEBUG  show the traceback of an internal error

\b
Object ids: any unique prefix of 4+ hex digits. SESSION@REV names a block of a
session by sequence number, HEAD~N or hex prefix.
Shell completion: eval "$(sessctl completion bash)" (or zsh, fish).
"""
)


class LazyGroup(click.Group):
    """A group whose verbs are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(COMMANDS) | set(self.commands))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            module = importlib.import_module(f"{__package__}.{COMMANDS[cmd_name]}")
            module.register(self)
        return self.commands.get(cmd_name)


@click.group(
    cls=LazyGroup,
    epilog=EPILOG,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.option(
    "--repo",
    "repo",
    type=click.Path(file_okay=False, path_type=str),
    envvar=REPO_ENV,
    default=DEFAULT_REPO,
    show_default=True,
    metavar="PATH",
    help=f"The repository (also ${REPO_ENV}).",
)
@click.option("--json", "json_", is_flag=True, help="Print data as JSON.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bars or notes on stderr.")
@click.version_option(package_name="amplifier-session-storage", prog_name="sessctl")
@click.pass_context
def cli(ctx: click.Context, repo: str, json_: bool, quiet: bool) -> None:
    """Inspect and manage Amplifier sessions stored as a content-addressed block DAG.

    Data goes to stdout, notes and errors to stderr. Every verb that prints data takes
    --json.
    """
    ctx.obj = Env(repo, json_, quiet)


def _fail(code: int, message: str, prog: str = "sessctl") -> int:
    head = "error"
    if sys.stderr.isatty() and "NO_COLOR" not in os.environ:
        head = click.style(head, fg="red", bold=True)
    first = message.strip().splitlines()[0] if message.strip() else "failed"
    click.echo(f"{prog}: {head}: {first}", err=True)
    return code


def exit_code_for(exc: BaseException) -> int:
    """The exit code a library error maps to (see EXIT_CODES)."""
    if isinstance(exc, InvalidInputError):
        return EXIT_USAGE
    if isinstance(exc, NotFoundError):
        return EXIT_NOT_FOUND
    if isinstance(exc, ConflictError):
        return EXIT_CONFLICT
    if isinstance(exc, IntegrityError):
        return EXIT_INTEGRITY
    return EXIT_ERROR


def run(argv: Sequence[str] | None = None) -> int:
    """Run sessctl with ``argv`` and return the exit code (never raises, never a traceback)."""
    try:
        rv = cli.main(
            args=list(argv) if argv is not None else None,
            prog_name="sessctl",
            standalone_mode=False,
        )
        return rv if isinstance(rv, int) else EXIT_OK
    except click.UsageError as exc:
        prog = exc.ctx.command_path if exc.ctx is not None else "sessctl"
        return _fail(EXIT_USAGE, f"{exc.format_message()} (see '{prog} --help')", prog)
    except click.ClickException as exc:
        return _fail(exc.exit_code, exc.format_message())
    except SystemExit as exc:  # click's own exits (e.g. a closed pipe)
        return exc.code if isinstance(exc.code, int) else EXIT_ERROR
    except click.Abort:
        return _fail(EXIT_INTERRUPTED, "aborted")
    except KeyboardInterrupt:
        return _fail(EXIT_INTERRUPTED, "interrupted")
    except StorageError as exc:
        return _fail(exit_code_for(exc), str(exc))
    except BrokenPipeError:
        # the reader went away (sessctl log | head): stop quietly
        with contextlib.suppress(OSError, ValueError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no flush error
        return EXIT_OK
    except OSError as exc:
        return _fail(EXIT_ERROR, str(exc))
    except Exception as exc:  # a bug: still one line, the traceback only on request
        if os.environ.get("SESSCTL_DEBUG"):
            raise
        return _fail(
            EXIT_ERROR,
            f"internal error: {type(exc).__name__}: {exc} (SESSCTL_DEBUG=1 shows the traceback)",
        )


def main() -> None:
    """The console script."""
    sys.exit(run())
