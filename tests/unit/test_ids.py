"""Validation of ids and names that may touch a path or a key."""

from __future__ import annotations

import pytest

from amplifier_session_storage.core.ids import ObjectId, validate_project_slug, validate_session_id
from amplifier_session_storage.core.refnames import session_ref, validate_ref_name
from amplifier_session_storage.errors import InvalidInputError

BAD = [
    "",
    ".",
    "..",
    "a/b",
    "../x",
    "..\\x",
    "a\\b",
    "a\x00b",
    "x" * 256,
    "tab\there",
    "nl\n",
    " lead",
    "trail ",
    "/abs",
]
GOOD = [
    "63cc3feb-564a-40de-9f8b-a7cb5fd510a4",
    "-home-u-app",
    "0123456789abcdef-fedcba9876543210_explorer",
    "agent@a1b2-c3d4",
    "my.session_1",
]


@pytest.mark.parametrize("value", BAD)
def test_bad_session_ids_are_refused(value: str) -> None:
    with pytest.raises(InvalidInputError):
        validate_session_id(value)
    with pytest.raises(InvalidInputError):
        validate_project_slug(value)
    with pytest.raises(InvalidInputError):
        session_ref(value)


@pytest.mark.parametrize("value", GOOD)
def test_real_ids_are_accepted(value: str) -> None:
    assert validate_session_id(value) == value


@pytest.mark.parametrize("value", [None, 3, b"abc"])
def test_non_strings_are_refused(value: object) -> None:
    with pytest.raises(InvalidInputError):
        validate_session_id(value)


def test_object_id_parsing() -> None:
    oid = ObjectId.of(b"x")
    assert ObjectId.from_hex(str(oid)) == oid
    for bad in ["", "zz" * 32, str(oid)[:-1], str(oid).upper(), "../" + str(oid)[3:]]:
        with pytest.raises(InvalidInputError):
            ObjectId.from_hex(bad)
    with pytest.raises(InvalidInputError):
        ObjectId(b"short")


def test_ref_names() -> None:
    assert validate_ref_name("remotes/origin/sessions/abc") == "remotes/origin/sessions/abc"
    for bad in ["", "a//b", "a/../b", "/a", "a/", "x" * 600]:
        with pytest.raises(InvalidInputError):
            validate_ref_name(bad)
