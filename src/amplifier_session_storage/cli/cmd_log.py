"""sessctl log and reflog: a session's history, drawn as a graph if asked."""

from __future__ import annotations

import click

from .context import Env, complete_session, data_options, pass_env


@click.command("log", short_help="Show a session's blocks; --graph draws the DAG.")
@click.argument("session", required=False, shell_complete=complete_session)
@click.option(
    "--graph", is_flag=True, help="Draw the DAG: forks, rewound (abandoned) lines and merges."
)
@click.option("--oneline", is_flag=True, help="One line per block.")
@click.option(
    "-n",
    "--max-count",
    "limit",
    type=click.IntRange(min=0),
    metavar="N",
    help="Show at most N blocks (reads only those).",
)
@click.option("--all", "all_", is_flag=True, help="Every session (the default without SESSION).")
@data_options
@pass_env
def log_cmd(
    env: Env, session: str | None, graph: bool, oneline: bool, limit: int | None, all_: bool
) -> None:
    """Show blocks newest first.

    With SESSION: its chain (what the session is now, first parent only); with --graph,
    every block it reaches, abandoned and merged lines included. With --all or without
    SESSION: every block of every session, by time.
    """
    from ..compat.amplifier.view import PayloadRenderer
    from ..repository.views import format_log, log

    if session is not None and all_:
        raise click.UsageError("give SESSION or --all, not both")
    # Imported messages are summarized by their text; event lines are not rendered (an
    # event's summary needs only its type, which the stored payload holds).
    entries = env.run(
        lambda repo: log(
            repo,
            session,
            limit=limit,
            dag=graph or session is None,
            render=PayloadRenderer(repo, events=False),
        )
    )
    if env.json:
        env.out.json([e.to_json() for e in entries])
    else:
        env.out.lines(format_log(entries, graph=graph, oneline=oneline))


@click.command("reflog", short_help="Every move of a session's head.")
@click.argument("session", shell_complete=complete_session)
@data_options
@pass_env
def reflog_cmd(env: Env, session: str) -> None:
    """Every move of SESSION's head, newest first (kept after a delete: recoverable)."""
    from ..repository.views import reflog

    entries = env.run(lambda repo: reflog(repo, session))
    if env.json:
        env.out.json(entries)
        return
    for e in entries:
        new = (e["new"] or "0" * 12)[:12]
        env.out.segments(
            [
                (new, "id"),
                (f" {session}@{{{e['index']}}}: {e['reason']}", ""),
                (f"  {e['time']}", "dim"),
            ]
        )


def register(group: click.Group) -> None:
    group.add_command(log_cmd)
    group.add_command(reflog_cmd)
