"""sessctl init: create the repository."""

from __future__ import annotations

import click

from .context import Env, data_options, pass_env


@click.command("init", short_help="Create the repository.")
@data_options
@pass_env
def init_cmd(env: Env) -> None:
    """Create the repository at --repo (safe to repeat)."""
    from ..repository.views import init_store

    config, created = init_store(env.repo_path)
    if env.json:
        env.out.json({"path": str(env.repo_path), "created": created, **config})
    elif created:
        env.out.line(f"Initialized empty session repository in {env.repo_path}")
    else:
        env.out.line(f"Session repository already exists in {env.repo_path}")


def register(group: click.Group) -> None:
    group.add_command(init_cmd)
