"""Ref names: ``<namespace>/<name>`` where each part is a safe name (see ``ids``).

Namespaces used by the repository: ``sessions/<session_id>`` (a session's head) and
``remotes/<remote>/sessions/<session_id>`` (what a remote had at the last fetch).
"""

from __future__ import annotations

from ..errors import InvalidInputError
from .ids import validate_name

__all__ = ["MAX_REF_LEN", "session_ref", "validate_ref_name"]

MAX_REF_LEN = 512


def validate_ref_name(name: object) -> str:
    """Return ``name`` if every ``/``-separated part is a safe name, else raise."""
    if not isinstance(name, str) or not name:
        raise InvalidInputError(f"ref name must be a non-empty string, got {name!r:.80}")
    if len(name) > MAX_REF_LEN:
        raise InvalidInputError(f"ref name too long ({len(name)} > {MAX_REF_LEN})")
    for part in name.split("/"):
        validate_name(part, "ref name component")
    return name


def session_ref(session_id: str) -> str:
    """The ref that holds a session's head."""
    return "sessions/" + validate_name(session_id, "session id")
