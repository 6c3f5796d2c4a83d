"""sessctl status: how big the store is."""

from __future__ import annotations

import click

from .context import Env, data_options, pass_env


@click.command("status", short_help="Store size, objects and sessions.")
@click.option("--remote", metavar="NAME", help="Ahead/behind of each session against NAME.")
@data_options
@pass_env
def status_cmd(env: Env, remote: str | None) -> None:
    """Sessions, objects and bytes on disk; with --remote, ahead/behind per session."""
    from ..repository.views import human_size, store_status

    if remote is not None:
        from .cmd_sync import remote_status_report

        remote_status_report(env, remote)
        return

    with env.out.progress("counting objects") as bar:
        st = env.run(
            lambda repo: store_status(
                repo, env.repo_path, progress=lambda n: bar.update(completed=n)
            )
        )
    if env.json:
        env.out.json(st.to_json())
        return
    env.out.fields(
        [
            ("Repository", st.path),
            ("Sessions", st.sessions),
            ("Objects", st.objects),
            ("On disk", f"{human_size(st.bytes_on_disk)} ({st.bytes_on_disk} bytes)"),
        ]
    )


def register(group: click.Group) -> None:
    group.add_command(status_cmd)
