"""Who may read a session: the four visibility levels of the seed API, done right.

=========== ==============================================================================
private     the owner only
team        the owner, and readers of the **same organisation** at least one of whose
            **own** team ids is among the session's ``team_ids``
org         the owner, and every reader of the session's organisation
public      anyone
=========== ==============================================================================

v0.1.0 tested the *reader's user id* against the session's team ids; here the reader's
team memberships are what is compared, and a user id never stands in for a team id. A
session that names no organisation is visible to its owner only unless it is public, and
an unknown visibility value is treated as private.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import InvalidInputError

__all__ = ["VISIBILITIES", "Access", "Reader", "can_read"]

VISIBILITIES = ("private", "team", "org", "public")


@dataclass(frozen=True, slots=True)
class Access:
    """A session's sharing settings (copied onto its session and block documents)."""

    visibility: str = "private"
    org_id: str | None = None
    team_ids: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.visibility not in VISIBILITIES:
            raise InvalidInputError(
                f"visibility must be one of {', '.join(VISIBILITIES)}, got {self.visibility!r}"
            )
        if self.org_id is not None and not isinstance(self.org_id, str):
            raise InvalidInputError("org_id must be a string or None")
        teams = tuple(self.team_ids or ())
        if not all(isinstance(t, str) and t for t in teams):
            raise InvalidInputError("team_ids must be non-empty strings")
        object.__setattr__(self, "team_ids", teams)

    @classmethod
    def of(cls, summary: Mapping[str, Any]) -> Access:
        """The access fields of a session summary; missing values mean private."""
        vis = summary.get("visibility") or "private"
        org = summary.get("org_id") or None
        teams = summary.get("team_ids") or ()
        return cls(str(vis), None if org is None else str(org), tuple(str(t) for t in teams))


@dataclass(frozen=True, slots=True)
class Reader:
    """Who is asking: a user, their organisation and the teams they belong to."""

    user_id: str
    org_id: str | None = None
    team_ids: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "team_ids", tuple(self.team_ids or ()))


def can_read(
    doc: Mapping[str, Any],
    reader_user_id: str,
    reader_org_id: str | None = None,
    reader_team_ids: Iterable[str] = (),
) -> bool:
    """Whether the reader may see the session described by ``doc``.

    ``doc`` needs ``user_id`` (the owner), ``visibility``, ``org_id`` and ``team_ids``.
    """
    owner = doc.get("user_id")
    if owner is not None and owner == reader_user_id:
        return True
    visibility = doc.get("visibility") or "private"
    if visibility == "public":
        return True
    org = doc.get("org_id")
    same_org = org is not None and reader_org_id is not None and org == reader_org_id
    if visibility == "org":
        return same_org
    if visibility == "team":
        if not same_org:
            return False
        session_teams = doc.get("team_ids") or ()
        if isinstance(session_teams, str):  # a lone team id is not a list of characters
            session_teams = (session_teams,)
        readers = (reader_team_ids,) if isinstance(reader_team_ids, str) else reader_team_ids
        return not set(session_teams).isdisjoint(set(readers))
    return False
