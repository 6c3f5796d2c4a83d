"""can_read: private / team / org / public, including v0.1.0's team bug (no network)."""

from __future__ import annotations

import pytest

from amplifier_session_storage.errors import InvalidInputError
from amplifier_session_storage.stores.visibility import Access, can_read


def doc(visibility: str, org: str | None = "org1", teams: list[str] | None = None) -> dict:
    return {"user_id": "owner", "visibility": visibility, "org_id": org, "team_ids": teams or []}


def test_owner_always_reads() -> None:
    for vis in ("private", "team", "org", "public", "weird"):
        assert can_read(doc(vis), "owner")


def test_private() -> None:
    assert not can_read(doc("private"), "someone", "org1", ["t1"])


def test_public() -> None:
    assert can_read(doc("public"), "anyone")
    assert can_read(doc("public", org=None), "anyone", "other-org")


def test_org() -> None:
    assert can_read(doc("org"), "r", "org1")
    assert not can_read(doc("org"), "r", "org2")
    assert not can_read(doc("org"), "r", None)
    assert not can_read(doc("org", org=None), "r", None)  # no org: nobody else


def test_team_needs_the_readers_own_team_and_the_same_org() -> None:
    d = doc("team", teams=["t1", "t2"])
    assert can_read(d, "r", "org1", ["t2"])
    assert can_read(d, "r", "org1", ["x", "t1"])
    assert not can_read(d, "r", "org1", [])
    assert not can_read(d, "r", "org1", ["t3"])
    assert not can_read(d, "r", "org2", ["t1"])  # same team id, other organisation
    assert not can_read(d, "r", None, ["t1"])
    assert can_read(d, "r", "org1", "t1")  # a lone team id is not a list of characters
    assert not can_read(doc("team", teams=["t"]), "r", "org1", "t1")


def test_v010_bug_a_user_id_is_not_a_team_membership() -> None:
    # v0.1.0 checked the reader's USER id against the session's team ids
    d = doc("team", teams=["alice", "t1"])
    assert not can_read(d, "alice", "org1", [])
    assert not can_read(d, "t1", "org1", ["t9"])
    assert can_read(d, "bob", "org1", ["t1"])


def test_unknown_visibility_is_private() -> None:
    assert not can_read(doc("friends"), "r", "org1", ["t1"])
    assert not can_read({"user_id": "owner"}, "r", "org1")


def test_access_validation() -> None:
    assert Access.of({}) == Access("private", None, ())
    assert Access.of({"visibility": "team", "org_id": "o", "team_ids": ["a"]}).team_ids == ("a",)
    with pytest.raises(InvalidInputError):
        Access("friends")
    with pytest.raises(InvalidInputError):
        Access("team", "o", ("",))
