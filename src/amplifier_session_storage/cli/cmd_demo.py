"""sessctl demo: write example sessions and read them back."""

from __future__ import annotations

import click

from .context import Env, data_options, pass_env


@click.command("demo", short_help="Write demo sessions and read them back.")
@click.option(
    "--prefix",
    default="demo",
    show_default=True,
    help="Session ids are PREFIX-main and PREFIX-alt (a free PREFIXn if taken).",
)
@click.option(
    "--fixed-time",
    type=click.IntRange(min=0),
    metavar="EPOCH_SECONDS",
    help="Use fixed timestamps from this time (reproducible ids).",
)
@data_options
@pass_env
def demo_cmd(env: Env, prefix: str, fixed_time: int | None) -> None:
    """Write demo sessions (messages, a large event, a fork, a rewind, a merge) into the
    repository, creating it if needed, then print their graph and read one back."""
    import asyncio

    from ..repository.views import format_log, run_demo

    start = fixed_time * 1_000_000_000 if fixed_time is not None else None
    with env.out.progress("writing demo sessions", total=5) as bar:

        def step(what: str) -> None:
            bar.update(description=what)
            bar.advance()

        report = asyncio.run(run_demo(env.repo_path, prefix, start_ns=start, progress=step))
    out = env.out
    if env.json:
        out.json(report.to_json())
        return
    out.note(f"wrote sessions {', '.join(report.sessions)} to {report.root}")
    out.line(f"$ sessctl log --graph --oneline {report.sessions[0]}", "head")
    out.lines(format_log(report.log, graph=True, oneline=True))
    out.line()
    out.line(f"$ sessctl show {report.sessions[0]}", "head")
    s = report.session
    out.fields(
        [
            ("Session", s["session_id"]),
            ("Head", f"{s['head'][:12]} (#{s['sequence']})"),
            ("Blocks", s["blocks"]),
            ("Messages", s["messages"]),
            ("Events", s["events"]),
        ]
    )
    for m in report.messages:
        out.line(f"  {m}")


def register(group: click.Group) -> None:
    group.add_command(demo_cmd)
