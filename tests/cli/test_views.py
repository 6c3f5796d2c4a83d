"""The pure parts under the CLI: lane layout, turns, revision syntax, durations."""

from __future__ import annotations

import click
import pytest

from amplifier_session_storage import BlockType, InvalidInputError, NotFoundError
from amplifier_session_storage.cli.params import DURATION
from amplifier_session_storage.repository import Repository
from amplifier_session_storage.repository.views import graph_layout, split_rev, turn_end
from amplifier_session_storage.stores.memory import MemoryObjectStore, MemoryRefStore


def draw(nodes: list[tuple[str, list[str]]]) -> list[str]:
    out = []
    for (name, _), row in zip(nodes, graph_layout(nodes), strict=True):
        out.append(f"{row.commit}{name}".rstrip())
        out.extend(c.rstrip() for c in row.connectors)
    return out


def test_linear_history_is_one_lane() -> None:
    assert draw([("c", ["b"]), ("b", ["a"]), ("a", [])]) == ["* c", "* b", "* a"]


def test_branch_and_merge() -> None:
    assert draw([("m", ["a", "b"]), ("b", ["x"]), ("a", ["x"]), ("x", [])]) == [
        "*   m",
        "|\\",
        "| * b",
        "* | a",
        "|/",
        "* x",
    ]


def test_two_tips_meeting_at_a_fork_point() -> None:
    assert draw([("t1", ["p"]), ("t2", ["p"]), ("p", [])]) == ["* t1", "| * t2", "|/", "* p"]


def test_merge_into_an_existing_lane_and_crossing() -> None:
    assert draw([("h1", ["m"]), ("h2", ["p"]), ("m", ["q", "p"]), ("q", ["p"]), ("p", [])]) == [
        "* h1",
        "| * h2",
        "* | m",
        "|\\|",
        "* | q",
        "|/",
        "* p",
    ]
    assert draw([("a", ["x"]), ("b", ["y"]), ("c", ["x"]), ("x", ["y"]), ("y", [])]) == [
        "* a",
        "| * b",
        "| | * c",
        "| |/",
        "|/|",
        "* | x",
        "|/",
        "* y",
    ]


def test_octopus_and_dangling_parents() -> None:
    rows = draw([("m", ["a", "b", "c"])])
    assert rows == ["*     m", "|\\", "| |\\"]
    # a parent out of order (already shown) opens no lane
    assert draw([("p", []), ("c", ["p"])]) == ["* p", "* c"]


def test_split_rev() -> None:
    assert split_rev("s") == ("s", None)
    assert split_rev("a@b@5") == ("a@b", "5")
    for bad in ("s@", "@5"):
        with pytest.raises(InvalidInputError):
            split_rev(bad)


async def test_turn_end_by_field_or_by_counting_users() -> None:
    repo = Repository(MemoryObjectStore(), MemoryRefStore())
    await repo.create_session("s")
    blocks = await repo.append_many(
        "s",
        [
            (BlockType.MESSAGE, {"role": "user", "content": "q1"}, None),
            (BlockType.MESSAGE, {"role": "assistant", "content": "a1"}, None),
            (BlockType.EVENT, {"event_type": "x"}, None),
            (BlockType.MESSAGE, {"role": "user", "content": "q2"}, None),
            (BlockType.MESSAGE, {"role": "assistant", "content": "a2"}, None),
        ],
    )
    assert await turn_end(repo, "s", 0) == (await repo.resolve_rev("s", "1"))
    assert await turn_end(repo, "s", 1) == blocks[2].id  # the event closes turn 1
    assert await turn_end(repo, "s", 2) == blocks[4].id
    with pytest.raises(NotFoundError):
        await turn_end(repo, "s", 3)
    await repo.rewind("s", blocks[2].id)
    assert await turn_end(repo, "s", 1) == blocks[2].id
    await repo.append("s", BlockType.MESSAGE, {"role": "user", "content": "again", "turn": 2})
    assert await turn_end(repo, "s", 1) == blocks[2].id  # not the REWIND block


def test_duration() -> None:
    assert DURATION.convert("0", None, None) == 0
    assert DURATION.convert("90s", None, None) == 90
    assert DURATION.convert("1d12h", None, None) == 86400 * 1.5
    assert DURATION.convert("2w", None, None) == 14 * 86400
    for bad in ("soon", "5x", "1d 2", "", "3 5"):
        with pytest.raises(click.BadParameter):
            DURATION.convert(bad, None, None)
