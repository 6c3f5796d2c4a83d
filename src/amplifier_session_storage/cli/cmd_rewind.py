"""sessctl rewind: move a session back; the abandoned blocks stay reachable."""

from __future__ import annotations

import click

from .context import Env, complete_session, data_options, pass_env


@click.command("rewind", short_help="Rewind a session (nothing is lost).")
@click.argument("session", shell_complete=complete_session)
@click.option("--to", "to", metavar="BLOCK|SEQ", help="Rewind to this block.")
@click.option(
    "--turn", type=click.IntRange(min=0), metavar="N", help="Rewind to the end of turn N."
)
@click.option("--reason", metavar="TEXT", help="Why (kept in the REWIND block).")
@data_options
@pass_env
def rewind_cmd(
    env: Env, session: str, to: str | None, turn: int | None, reason: str | None
) -> None:
    """Rewind SESSION to a block or the end of a turn (nothing is deleted)."""
    from ..repository.views import rewind_session

    if (to is None) == (turn is None):
        raise click.UsageError("give exactly one of --to or --turn")
    block = env.run(
        lambda repo: rewind_session(repo, session, to=to, turn=turn, reason=reason), writes=True
    )
    data = block.data
    info = {
        "session_id": session,
        "block": block.block_id,
        "target": data["target"],
        "target_sequence": data["target_sequence"],
        "abandoned_head": data["abandoned_head"],
        "reason": reason,
    }
    if env.json:
        env.out.json(info)
    else:
        env.out.line(block.block_id)
        env.out.note(
            f"rewound {session} to #{info['target_sequence']} "
            f"({info['target'][:12]}); the old head "
            f"{info['abandoned_head'][:12]} stays reachable"
        )


def register(group: click.Group) -> None:
    group.add_command(rewind_cmd)
