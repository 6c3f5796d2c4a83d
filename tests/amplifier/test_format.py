"""Line codecs: every odd line comes back byte for byte; big sub-values become shared blobs."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence

import pytest

from amplifier_session_storage.compat.amplifier.dedup import (
    LARGE_LINE,
    BlobCache,
    BlobReader,
    EventCodec,
)
from amplifier_session_storage.compat.amplifier.format import (
    EV_ASCII,
    EV_TEXT,
    EV_UTF8,
    MSG_JSON,
    MSG_SAME,
    RESERVED,
    ForkRule,
    decode_metadata,
    encode_message,
    encode_metadata,
    iter_lines,
    parse_ts_ns,
    render_message,
    split_lines,
)
from amplifier_session_storage.core.codec import pack
from amplifier_session_storage.core.ids import ObjectId
from amplifier_session_storage.core.objects import decode_chunk

SID = "6b9f2ad1-75af-4080-8c40-9efec93f3e61"
PID = "31503168-7d71-46b8-8c74-d9afed42a73a"


def decode(
    codec: EventCodec,
    payload: dict[str, object],
    links: tuple[ObjectId, ...],
    ts: int | None = None,
) -> bytes:
    """Rebuild a line from its payload, reading chunks still pending in the codec's cache."""
    if "bytes" in payload:
        return payload["bytes"]  # type: ignore[return-value]
    known = codec.cache.pending

    async def read(ids: Sequence[ObjectId]) -> bytes:
        return b"".join(decode_chunk(known[i]) for i in ids)

    text = asyncio.run(BlobReader(read).event_text(payload, links, codec.session_id, ts))
    assert text is not None
    return text.encode()


@pytest.mark.parametrize(
    ("ts", "expected"),
    [
        ("2026-06-17T15:35:22.285586437+00:00", 1781710522_285586437),
        ("2026-06-17T15:35:22.285+00:00", 1781710522_285000000),
        ("2026-06-17T15:35:22Z", 1781710522_000000000),
        ("2026-06-17T17:35:22.5+02:00", 1781710522_500000000),
        ("2026-06-17 15:35:22", 1781710522_000000000),
        ("not a time", None),
        (12345, None),
    ],
)
def test_parse_ts(ts: object, expected: int | None) -> None:
    assert parse_ts_ns(ts) == expected


@pytest.mark.parametrize(
    "line",
    [
        '{"role": "user", "content": "plain"}',
        '{"content": "key order kept", "role": "user", "z": 1.0, "a": -0.0, "e": 1e+100}',
        '{"role": "user", "content": "caf\\u00e9 \\u2603"}',  # ASCII escapes
        '{"role": "user", "content": "café ☃ \\ud83d\\ude00"}',
        '{"role":"user","content":"compact separators"}',
        '{"role": "user", "content": "dup", "content": "keys"}',
        '{"role": "user", "n": NaN}',
        '{"role": "user", "big": 123456789012345678901234567890}',
        '["not", "an", "object"]',
        "",
        '{"role": "user", "content": "trailing space"} ',
        '{"__line__": "reserved key"}',
    ],
)
@pytest.mark.parametrize("nl", [True, False])
def test_message_lines_round_trip(line: str, nl: bool) -> None:
    payload, _ = encode_message(line.encode(), nl)
    pack(payload)  # always storable
    assert render_message(payload) == (line.encode(), nl)


def test_message_payload_is_the_message_when_reproducible() -> None:
    payload, problem = encode_message('{"role": "user", "content": "é"}'.encode(), True)
    assert payload == {"role": "user", "content": "é"} and problem is None
    payload, _ = encode_message(b'{"role": "user", "content": "\\u00e9"}', True)
    assert payload[RESERVED] == {"ascii": True}


def test_invalid_utf8_message() -> None:
    payload, problem = encode_message(b'{"c": "\xff"}', True)
    assert problem and "UTF-8" in problem
    assert render_message(payload) == (b'{"c": "\xff"}', True)


@pytest.mark.parametrize(
    "data",
    [
        json.dumps({"session_id": "s", "name": "é"}, indent=2, ensure_ascii=False).encode(),
        json.dumps({"session_id": "s", "name": "é"}, indent=2).encode() + b"\n",
        b'{"b": 1, "a": [1, 2]}',
        b'{\n    "four": "spaces"\n}\n',
        b'{"x": 1}\n\n',
        b"not json",
        b"\xff\xfe",
        b"",
    ],
)
def test_metadata_round_trip(data: bytes) -> None:
    doc, fmt, _ = encode_metadata(data)
    assert decode_metadata(doc, fmt) == data


def big_event(sid: str, body: str, parent: str | None = None) -> bytes:
    data = {
        "parent_id": parent,
        "raw": {
            "messages": [
                {"role": "user", "content": body},
                {"role": "assistant", "content": [{"type": "text", "text": body[::-1]}]},
                {
                    "role": "user",
                    "content": f"the session is {sid} and its parent {parent}" + "." * 600,
                },
            ],
            "system": "S" * 3000,
            "tools": [{"name": "t", "description": "d" * 700}],
            "n": 1.5e-7,
        },
    }
    rec = {
        "ts": "2026-06-17T15:35:22.285586437+00:00",
        "lvl": "INFO",
        "schema": {"name": "amplifier.log", "ver": "1.0.0"},
        "event": "llm:request",
        "session_id": sid,
        "data": data,
    }
    return json.dumps(rec).encode()


def test_large_event_cut_into_blobs_and_rebuilt() -> None:
    codec = EventCodec(BlobCache(), SID, PID)
    line = big_event(SID, "é" * 5000, PID)
    assert len(line) > LARGE_LINE
    payload, links, problem, ts = codec.encode(line, True)
    assert problem is None and ts == 1781710522_285586437
    assert payload["event_type"] == "llm:request" and payload["blobs"] and links
    skeleton = str(payload["line"])
    assert len(skeleton) < 1000 and "\x01" in skeleton  # ASCII-escaped string blobs
    assert payload["tsd"] == 9 and skeleton.startswith('{"ts": "\x07"')  # the block's time
    assert PID in skeleton  # session-unique values stay in the skeleton
    assert decode(codec, payload, links, ts) == line


def test_same_messages_in_two_sessions_share_blobs() -> None:
    cache = BlobCache()
    a = EventCodec(cache, SID, PID)
    b = EventCodec(cache, "0000-other-session", "1111-other-parent")
    _, la, _, _ = a.encode(big_event(SID, "x" * 4000, PID), True)
    pb, lb, _, tb = b.encode(big_event("0000-other-session", "x" * 4000, "1111-other-parent"), True)
    # Every long string but the one naming the session is the same blob in both.
    assert len(set(la) & set(lb)) >= 3 and len(set(la) - set(lb)) == 1
    line = big_event("0000-other-session", "x" * 4000, "1111-other-parent")
    assert decode(b, pb, lb, tb) == line


def test_session_id_containing_parent_id() -> None:
    sid = PID + "-d62e52cdf9c985c8_foundation-explorer"
    codec = EventCodec(BlobCache(), sid, PID)
    line = big_event(sid, "y" * 3000, PID)
    payload, links, _, ts = codec.encode(line, True)
    assert decode(codec, payload, links, ts) == line


@pytest.mark.parametrize(
    "line",
    [
        b'{"ts": "x", "event": "e", "data": {"s": "' + b"a" * 5000 + b'"}}   ',
        b'{ "ts" : "x" ,\t"data" : [ "' + b"b" * 5000 + b'" , 1 ] }',
        b'{"data": {"s": "' + b"c" * 5000 + b'"}} trailing',
        b'{"data": {"s": "' + b"d" * 5000,
        b'{"data": "' + b"e" * 5000 + b'\x01"}',
        b"[" + b"1, " * 3000 + b"1]",
        b'{"ts": "2026-01-01T00:00:00Z", "event": "small"}',
        b"\xff" * 10,
        b"",
    ],
)
@pytest.mark.parametrize("nl", [True, False])
def test_odd_event_lines_round_trip(line: bytes, nl: bool) -> None:
    codec = EventCodec(BlobCache(), SID, None)
    payload, links, _, ts = codec.encode(line, nl)
    pack(payload)
    assert decode(codec, payload, links, ts) == line
    assert payload.get("nl", True) is nl


def test_fork_rule_learns_each_line_rewrite() -> None:
    rule = ForkRule(SID, PID)
    lines = [
        json.dumps({"ts": "t", "event": "a", "session_id": PID, "data": "plain"}),
        json.dumps({"ts": "t", "event": "b", "session_id": PID, "data": "é"}),
        json.dumps({"ts": "t", "event": "c", "session_id": PID, "data": "plain"}),
        json.dumps({"ts": "t", "event": "d", "data": {"session_id": PID, "x": "é"}}),
    ]

    def foundation(text: str, ascii_: bool) -> str:
        value = json.loads(text)
        had = value.get("session_id")
        value["session_id"] = SID
        if had:
            value["parent_session_id"] = PID
        return json.dumps(value, ensure_ascii=ascii_)

    copied = [
        lines[0].replace(PID, SID, 1)[:-1] + f', "parent_session_id": "{PID}"}}',  # text edit
        foundation(lines[1], False),
        foundation(lines[2], False),  # plain ASCII: the current way still fits
        foundation(lines[3], True),
    ]
    for text, line in zip(lines, copied, strict=True):
        assert rule.match_event(text, line)
    assert not rule.match_event(lines[0], copied[1])
    assert rule.events == [[EV_TEXT, 1], [EV_UTF8, 2], [EV_ASCII, 1]]
    again = ForkRule.from_data(rule.to_data())
    assert again == rule
    assert again is not None
    assert [again.render_event(t, i) for i, t in enumerate(lines)] == copied
    assert rule.match_message(
        '{"role": "user", "content": "x"}', '{"role": "user", "content": "x"}'
    )
    assert rule.match_message('{"role":"user"}', '{"role": "user"}')
    assert rule.messages == [[MSG_SAME, 1], [MSG_JSON, 1]]


@pytest.mark.parametrize("data", [b"", b"a", b"a\n", b"ab\ncd\n\nef", b"\n\n", b"x" * 40 + b"\ny"])
@pytest.mark.parametrize("bufsize", [1, 3, 7, 1 << 20])
def test_iter_lines_matches_split(data: bytes, bufsize: int) -> None:
    import io

    got = [(line, nl) for line, nl, _ in iter_lines(io.BytesIO(data), 0, bufsize)]
    assert got == split_lines(data)
    starts = [start for _, _, start in iter_lines(io.BytesIO(data), 0, bufsize)]
    assert starts == [sum(len(x) + 1 for x, _ in got[:i]) for i in range(len(got))]
