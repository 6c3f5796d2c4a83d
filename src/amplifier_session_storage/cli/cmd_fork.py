"""sessctl fork: a new session sharing SESSION's history up to a point."""

from __future__ import annotations

import click

from .context import Env, complete_session, data_options, pass_env


@click.command("fork", short_help="Fork a session at a block or turn.")
@click.argument("session", shell_complete=complete_session)
@click.option("--at", "at", metavar="BLOCK|SEQ", help="Fork after this block (default: head).")
@click.option("--turn", type=click.IntRange(min=0), metavar="N", help="Fork after turn N ends.")
@click.option("--name", metavar="NAME", help="Name of the new session.")
@click.option("--id", "new_id", metavar="ID", help="Id of the new session (default: a UUID).")
@data_options
@pass_env
def fork_cmd(
    env: Env, session: str, at: str | None, turn: int | None, name: str | None, new_id: str | None
) -> None:
    """Fork SESSION into a new session (one block; the history is shared)."""
    from ..repository.views import fork_session

    if at is not None and turn is not None:
        raise click.UsageError("give --at or --turn, not both")
    block = env.run(
        lambda repo: fork_session(repo, session, at=at, turn=turn, new_id=new_id, name=name),
        writes=True,
    )
    at_id = block.parents[0].hex()
    info = {
        "session_id": block.session_id,
        "source_session_id": session,
        "at": at_id,
        "at_sequence": block.sequence - 1,
        "block": block.block_id,
        "name": name,
    }
    if env.json:
        env.out.json(info)
    else:
        env.out.line(block.session_id)
        env.out.note(
            f"forked {session}@{block.sequence - 1} ({at_id[:12]}) into {block.session_id}"
        )


def register(group: click.Group) -> None:
    group.add_command(fork_cmd)
