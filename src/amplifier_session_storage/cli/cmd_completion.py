"""sessctl completion: print the shell completion script."""

from __future__ import annotations

import os

import click

SHELLS = ("bash", "zsh", "fish")


@click.command("completion", short_help="Print the shell completion script.")
@click.argument("shell", required=False, type=click.Choice(SHELLS))
@click.pass_context
def completion_cmd(ctx: click.Context, shell: str | None) -> None:
    """Print the completion script for SHELL (default: $SHELL).

    \b
    bash:  eval "$(sessctl completion bash)"     (e.g. in ~/.bashrc)
    zsh:   eval "$(sessctl completion zsh)"      (e.g. in ~/.zshrc)
    fish:  sessctl completion fish > ~/.config/fish/completions/sessctl.fish
    """
    from click.shell_completion import get_completion_class

    if shell is None:
        shell = os.path.basename(os.environ.get("SHELL", "bash"))
        if shell not in SHELLS:
            raise click.UsageError(f"cannot tell the shell from $SHELL; give one of {SHELLS}")
    cls = get_completion_class(shell)
    assert cls is not None  # every name in SHELLS is built into click
    root = ctx.find_root().command
    click.echo(cls(root, {}, "sessctl", "_SESSCTL_COMPLETE").source())


def register(group: click.Group) -> None:
    group.add_command(completion_cmd)
