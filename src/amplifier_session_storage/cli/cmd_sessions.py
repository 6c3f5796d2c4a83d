"""sessctl sessions: list sessions from the catalog, newest first."""

from __future__ import annotations

import click

from .context import Env, data_options, pass_env


@click.command("sessions", short_help="List sessions, newest first.")
@click.option("-p", "--project", metavar="SLUG", help="Only sessions of this project.")
@click.option(
    "-n",
    "--limit",
    type=click.IntRange(min=0),
    default=100,
    show_default=True,
    help="At most this many sessions.",
)
@click.option(
    "--offset",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Skip this many (the next page: --offset LIMIT).",
)
@data_options
@pass_env
def sessions_cmd(env: Env, project: str | None, limit: int, offset: int) -> None:
    """List sessions, newest first."""
    from ..repository.views import iso_time

    docs = env.run(lambda repo: repo.list_sessions(project, limit=limit, offset=offset))
    if env.json:
        env.out.json(docs)
        return
    rows = [
        [
            str(d.get("session_id", "")),
            iso_time(int(d.get("created_ns") or 0))[:19],
            str(d.get("project_slug") or ""),
            str(d.get("name") or ""),
            str(d.get("forked_from") or ""),
        ]
        for d in docs
    ]
    env.out.table(["SESSION", "CREATED (UTC)", "PROJECT", "NAME", "FORKED FROM"], rows)
    if limit and len(docs) == limit:
        env.out.note(f"(more with --offset {offset + limit})")


def register(group: click.Group) -> None:
    group.add_command(sessions_cmd)
