"""sessctl diff: messages removed and added between two heads."""

from __future__ import annotations

import click

from .context import Env, complete_session, data_options, pass_env


@click.command("diff", short_help="Messages removed/added between two heads.")
@click.argument("a", metavar="A", shell_complete=complete_session)
@click.argument("b", metavar="B", shell_complete=complete_session)
@data_options
@pass_env
def diff_cmd(env: Env, a: str, b: str) -> None:
    """Compare the messages of A and B (each SESSION, SESSION@REV or a block id)."""
    from ..compat.amplifier.view import PayloadRenderer
    from ..repository.views import diff_heads

    d = env.run(lambda repo: diff_heads(repo, a, b, render=PayloadRenderer(repo, events=False)))
    if env.json:
        env.out.json(d.to_json())
        return
    out = env.out
    out.line(f"--- {a} ({d.a_head[:12]})", "head")
    out.line(f"+++ {b} ({d.b_head[:12]})", "head")
    out.line(
        f"@@ {d.common} messages in common, {len(d.removed)} removed, {len(d.added)} added @@",
        "dim",
    )
    for m in d.removed:
        out.line(f"-[{m['index']}] {m['role']}: {_flat(m['text'])}", "removed")
    for m in d.added:
        out.line(f"+[{m['index']}] {m['role']}: {_flat(m['text'])}", "added")


def _flat(text: str, width: int = 100) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def register(group: click.Group) -> None:
    group.add_command(diff_cmd)
