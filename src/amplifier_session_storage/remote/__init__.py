"""Sync with a remote (Cosmos DB + Blob Storage): push, fetch, pull, clone, status, fsck.

Importing this package imports no Azure SDK; opening a remote does.
"""

from .checks import RemoteFsckReport, SessionStatus, ahead_behind, fsck_remote, remote_status
from .common import tracking_ref
from .config import RemoteSpec, add_remote, get_remote, load_remotes, remove_remote
from .fetch import FetchResult, SessionFetch, fetch, pull
from .lazy import PromisorObjectStore, add_promisor, load_promisors, open_repository
from .push import PushRejectedError, PushResult, SessionPush, push
from .session import SyncRemote, open_remote_config, open_remote_from

__all__ = [
    "FetchResult",
    "PromisorObjectStore",
    "PushRejectedError",
    "PushResult",
    "RemoteFsckReport",
    "RemoteSpec",
    "SessionFetch",
    "SessionPush",
    "SessionStatus",
    "SyncRemote",
    "add_promisor",
    "add_remote",
    "ahead_behind",
    "fetch",
    "fsck_remote",
    "get_remote",
    "load_promisors",
    "load_remotes",
    "open_remote_config",
    "open_remote_from",
    "open_repository",
    "pull",
    "push",
    "remote_status",
    "remove_remote",
    "tracking_ref",
]
