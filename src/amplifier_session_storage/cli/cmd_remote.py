"""sessctl remote add|list|remove|init: the remotes of the repository (remotes.json)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click

from .context import Env, data_options, pass_env

if TYPE_CHECKING:
    from ..remote.config import RemoteSpec

F = TypeVar("F", bound=Callable[..., Any])

DEFAULT_CONN_ENV = "AMPLIFIER_BLOB_CONNECTION_STRING"
AUTH_METHODS = ["key", "default_credential", "managed_identity", "service_principal"]
SECRETS_HELP = (
    "Secrets never go into remotes.json: they are read from the environment when the "
    "remote is used: AMPLIFIER_COSMOS_KEY (--auth key), the Blob connection string from "
    "the variable named by --blob-connection-string-env (default "
    "AMPLIFIER_BLOB_CONNECTION_STRING when no --blob-account-url is given), "
    "AMPLIFIER_BLOB_ACCOUNT_KEY with --blob-account-url and key auth, AZURE_CLIENT_SECRET "
    "for a service principal."
)


def spec_options(f: F) -> F:
    """The options that describe a remote (``remote add`` and ``clone``)."""
    options = [
        click.option(
            "--cosmos-endpoint", required=True, metavar="URL", help="Cosmos DB account endpoint."
        ),
        click.option(
            "--user",
            "user_id",
            required=True,
            metavar="ID",
            help="Whose sessions (partition of the remote).",
        ),
        click.option("--database", "cosmos_database", default="amplifier-db", show_default=True),
        click.option("--container", "cosmos_container", default="items", show_default=True),
        click.option("--partition-key-path", default="/partitionKey", show_default=True),
        click.option("--blob-account-url", metavar="URL", help="Blob account URL."),
        click.option(
            "--blob-connection-string-env",
            metavar="VAR",
            help="Environment variable holding the Blob connection string.",
        ),
        click.option("--blob-container", default="amplifier-objects", show_default=True),
        click.option(
            "--auth",
            "auth_method",
            type=click.Choice(AUTH_METHODS),
            default="default_credential",
            show_default=True,
        ),
        click.option("--org", "org_id", metavar="ID", help="Organisation of the user."),
        click.option("--tenant-id", "azure_tenant_id", metavar="ID"),
        click.option("--client-id", "azure_client_id", metavar="ID"),
        click.option(
            "--insecure-tls",
            is_flag=True,
            help="Skip the certificate check (emulators on 127.0.0.1 only).",
        ),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def spec_from(name: str, options: dict[str, Any]) -> RemoteSpec:
    from ..remote.config import RemoteSpec

    return RemoteSpec(name=name, **options)


def describe(spec: RemoteSpec) -> dict[str, Any]:
    return {"name": spec.name, **spec.to_json()}


@click.group("remote", short_help="Manage remotes (Cosmos DB + Blob Storage).")
def remote_group() -> None:
    """Remotes of the repository, kept in remotes.json (never with secrets)."""


@remote_group.command("add", epilog=SECRETS_HELP)
@click.argument("name")
@spec_options
@click.option("--replace", is_flag=True, help="Overwrite a remote of the same name.")
@data_options
@pass_env
def add_cmd(env: Env, /, name: str, replace: bool, **options: Any) -> None:
    """Record remote NAME."""
    from ..remote.config import add_remote

    spec = spec_from(name, options)
    add_remote(repository_root(env), spec, replace=replace)
    if env.json:
        env.out.json(describe(spec))
    else:
        env.out.note(f"added remote {name} ({spec.cosmos_endpoint}, user {spec.user_id})")


@remote_group.command("list")
@data_options
@pass_env
def list_cmd(env: Env) -> None:
    """The configured remotes."""
    from ..remote.config import load_remotes

    remotes = load_remotes(repository_root(env))
    if env.json:
        env.out.json([describe(s) for s in remotes.values()])
        return
    rows = [
        [
            s.name,
            s.cosmos_endpoint,
            f"{s.cosmos_database}/{s.cosmos_container}",
            s.blob_account_url
            or f"${s.blob_connection_string_env or 'AMPLIFIER_BLOB_CONNECTION_STRING'}",
            s.user_id,
            s.auth_method,
        ]
        for s in remotes.values()
    ]
    if rows:
        env.out.table(["NAME", "COSMOS", "DATABASE/CONTAINER", "BLOB", "USER", "AUTH"], rows)
    else:
        env.out.note("no remotes (sessctl remote add NAME --cosmos-endpoint URL --user ID)")


@remote_group.command("remove")
@click.argument("name")
@data_options
@pass_env
def remove_cmd(env: Env, name: str) -> None:
    """Forget remote NAME and its tracking refs (the remote itself is untouched)."""
    from ..remote.api import remove_remote_repo

    spec = asyncio.run(remove_remote_repo(repository_root(env), name))
    if env.json:
        env.out.json(describe(spec))
    else:
        env.out.note(f"removed remote {name}")


@remote_group.command("init")
@click.argument("name", required=False)
@data_options
@pass_env
def init_cmd(env: Env, name: str | None) -> None:
    """Create the remote's database, containers and Blob container (idempotent)."""
    from ..remote.api import init_remote
    from ..remote.config import get_remote

    spec = get_remote(repository_root(env), name)
    asyncio.run(init_remote(spec))
    if env.json:
        env.out.json({"initialized": spec.name})
    else:
        env.out.note(
            f"remote {spec.name}: {spec.cosmos_database}/{spec.cosmos_container} and "
            f"blob container {spec.blob_container} are ready"
        )


def repository_root(env: Env) -> Any:
    from ..errors import NotFoundError
    from ..repository.local import read_repo_config

    root = env.repo_path
    if not root.is_dir() or read_repo_config(root) is None:
        raise NotFoundError(f"no repository at {root} (run `sessctl init`)")
    return root


def register(group: click.Group) -> None:
    group.add_command(remote_group)
