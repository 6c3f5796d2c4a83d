"""sessctl show and cat-object: one block, session or object."""

from __future__ import annotations

import json
from typing import Any

import click

from .context import Env, complete_session, data_options, pass_env
from .output import Output


@click.command("show", short_help="Show a block, message, event or session.")
@click.argument("target", metavar="BLOCK|SESSION[@REV]", shell_complete=complete_session)
@click.option(
    "--raw",
    is_flag=True,
    help="The stored object itself: its canonical msgpack as JSON (bytes as hex).",
)
@data_options
@pass_env
def show_cmd(env: Env, target: str, raw: bool) -> None:
    """Show a message, event or other block, or a session's summary.

    BLOCK is a unique id prefix; SESSION@REV a sequence number, HEAD~N or id prefix.
    """
    from ..compat.amplifier.view import PayloadRenderer
    from ..repository.views import show

    # Imported Amplifier payloads are shown as the messages / event lines they stand for.
    info = env.run(lambda repo: show(repo, target, raw=raw, render=PayloadRenderer(repo)))
    if env.json or raw:
        env.out.json(info)
    elif info.get("kind") == "session":
        _print_session(env.out, info)
    elif info.get("kind") == "block":
        _print_block(env.out, info)
    else:
        env.out.line(f"chunk {info['id']}", "id")
        env.out.fields([("Size", f"{info['size']} bytes (canonical)")])


def _print_session(out: Output, s: dict[str, Any]) -> None:
    out.line(f"session {s['session_id']}", "id")
    pairs: list[tuple[str, Any]] = [
        ("Head", f"{s['head']} (#{s['sequence']})"),
        ("Blocks", s["blocks"]),
        ("Messages", s["messages"]),
        ("Events", s["events"]),
    ]
    if s["deleted"]:
        pairs.append(("Deleted", "yes"))
    out.fields(pairs)
    meta = s["metadata"]
    keys = [k for k in sorted(meta) if k != "session_id"]
    if keys:
        out.line()
        out.line("Metadata:", "head")
        width = max(len(k) for k in keys) + 2
        for k in keys:
            out.line(f"  {k + ':':<{width}}{_scalar(meta[k])}")
    if s["last_messages"]:
        out.line()
        out.line("Last messages:", "head")
        for m in s["last_messages"]:
            out.line(f"  {m}")


def _print_block(out: Output, b: dict[str, Any]) -> None:
    out.line(f"block {b['id']}", "id")
    pairs: list[tuple[str, Any]] = [
        ("Type", b["type"]),
        ("Session", f"{b['session_id']} #{b['sequence']}"),
        ("Date", b["time"]),
        ("Parents", " ".join(p[:12] for p in b["parents"]) or "-"),
    ]
    if b["links"]:
        pairs.append(("Links", len(b["links"])))
    pairs += [
        ("Size", f"{b['size']} bytes"),
        ("User", b["user_id"] or "-"),
        ("Device", b["device_id"] or "-"),
    ]
    out.fields(pairs)
    out.line()
    data = b["data"]
    if b["type"] == "message" and isinstance(data, dict):
        from ..repository.views import message_text

        out.line(f"{data.get('role', '?')}:", "head")
        out.line(message_text(data.get("content")))
        extra = {k: v for k, v in data.items() if k not in ("role", "content")}
        if extra:
            out.line(json.dumps(extra, indent=2, ensure_ascii=False), "dim")
    else:
        out.line(json.dumps(data, indent=2, ensure_ascii=False))


def _scalar(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


@click.command("cat-object", short_help="Write an object's verified bytes.")
@click.argument("object_id", metavar="ID")
@pass_env
def cat_object_cmd(env: Env, object_id: str) -> None:
    """Write an object's canonical bytes, verified against its id, to stdout."""
    from ..repository.views import read_verified

    env.out.binary(env.run(lambda repo: read_verified(repo, object_id)))


def register(group: click.Group) -> None:
    group.add_command(show_cmd)
    group.add_command(cat_object_cmd)
