#!/usr/bin/env python3
"""Generate realistic Amplifier session folders (test and benchmark data).

Usage::

    python scripts/generate_sessions.py OUT_DIR --sessions N --target-bytes SIZE --seed S \
        [--layout projects|legacy] [--torn] [--raw-unicode] [--overwrite] [--quiet]

Writes ``OUT/projects/<slug>/sessions/<id>/{events.jsonl,transcript.jsonl,metadata.json}``
(``--layout legacy``: ``OUT/sessions/<id>/`` plus ``profile.md``) in the on-disk format that
amplifier-app-cli, amplifier-core/hooks-logging and amplifier-foundation produce (see
``/work/shared/reference/amplifier-format.md``):

* events.jsonl in the hooks-logging shape: ``ts, lvl, schema, event, <hoisted keys>, data``.
  Older sessions (before 2026-05) have millisecond ``ts`` and keys in Python insertion order
  (hoisted keys in the documented order); newer ones have nanosecond ``ts`` and, like the real
  Rust-kernel captures, alphabetically ordered payload keys (so hoisted keys come out as
  ``duration_ms, redaction, request_id, session_id, status``).
* every LLM call logs ``llm:request`` with ``data.raw`` = the full API parameters (system,
  tools, the whole conversation so far), so events.jsonl grows quadratically with turns;
  ``session:config`` repeats a ~300-500 KB, nearly identical, redacted configuration blob in
  every session and every resume.
* transcript.jsonl shapes by age (top-level ``timestamp``; ``metadata.timestamp``;
  ``metadata._seq`` + injected reminder messages), metadata.json (``indent=2``, no trailing
  newline) for top-level sessions, sub-sessions and forks.
* forks copy the parent's transcript up to turn N and the parent's events up to that turn's
  last transcript timestamp (``session_id`` rewritten, ``parent_session_id`` appended, as
  amplifier-foundation does), then continue with their own resumed turns.
* the mix: ~12% forks, ~17% sub-sessions (``{parent_span16}-{child_span16}_{agent}``; older
  id formats in older sessions), ~20% resumed (``session:resume`` groups appended), ~6% of
  top-level sessions killed (no ``session:end``; killed in the first turn: events.jsonl
  only; ``--torn``: some end in a torn line). Three eras by date: "old" (ms ts, top-level
  transcript ``timestamp``), "mid" (ns ts, ``metadata.timestamp``), "new" (Sept 2026:
  ``metadata._seq`` and reminders); ``--layout legacy`` gives 2025 sessions with ``profile``.
* sizes: per-session budgets = a floor + a log-normal (heavy-tailed) share of the target,
  re-balanced as bytes are written, so the total lands within a few percent. Conversations
  over ~650 KB are compacted (``context:pre_compact/post_compact``). For small targets
  (< ~1.8 MiB per session) the static blobs (system prompt, tools, config) are scaled down.

Everything is deterministic for a given seed (same bytes on every run, any time zone; Python
3.11+ ``random``). Standard library only; ``rich`` draws a progress bar when importable and
stderr is a terminal.

The importable entry point is :func:`generate`. ``scripts/`` is not a package: load this file
with ``importlib.util.spec_from_file_location`` and put the module into ``sys.modules``
*before* ``exec_module`` (dataclasses need it).

Serialization notes (facts checked against upstream source, see the report):

* By default events lines are ``json.dumps`` with default ``ensure_ascii`` (as the reference
  document states): non-ASCII text appears as ``\\uXXXX`` escapes. The actual hooks-logging
  and foundation fork code write ``ensure_ascii=False``; ``--raw-unicode`` reproduces that.
* transcript.jsonl lines are ``json.dumps(msg, ensure_ascii=False)`` (app-cli SessionStore).
* metadata.json is ``json.dumps(meta, indent=2, ensure_ascii=False)``; its content is kept
  ASCII, so it also equals ``json.dumps(meta, indent=2)``.
"""

from __future__ import annotations

import argparse
import base64
import calendar
import json
import math
import random
import re
import shutil
import sys
import time
import uuid
from array import array
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["GenerationSummary", "SessionRecord", "generate", "main", "parse_size"]

# --------------------------------------------------------------------------------------------
# Constants
# --------------------------------------------------------------------------------------------

_SCHEMA_JSON = '{"name": "amplifier.log", "ver": "1.0.0"}'
_HOISTED = (
    "redaction",
    "status",
    "duration_ms",
    "module",
    "component",
    "error",
    "request_id",
    "span_id",
    "parent_span_id",
    "session_id",
)
_HOISTED_SET = frozenset(_HOISTED)
_REDACTION = {"applied": True, "rules": ["secrets", "pii-basic"]}

_DAY_NS = 86_400 * 10**9
_SEC_NS = 10**9
_MS_NS = 10**6


def _epoch_ns(y: int, m: int, d: int) -> int:
    return calendar.timegm((y, m, d, 0, 0, 0, 0, 0, 0)) * _SEC_NS


# date ranges and era boundaries (UTC)
_PROJECTS_START = _epoch_ns(2025, 10, 20)
_PROJECTS_END = _epoch_ns(2026, 9, 28)
_LEGACY_START = _epoch_ns(2025, 6, 2)
_LEGACY_END = _epoch_ns(2025, 10, 10)
_ERA_MID_FROM = _epoch_ns(2026, 5, 15)  # ns timestamps, sorted payloads, metadata.timestamp
_ERA_NEW_FROM = _epoch_ns(2026, 9, 1)  # + metadata._seq and injected reminders
_BUNDLE_VERSION_FROM = (
    _epoch_ns(2026, 1, 12),
    _epoch_ns(2026, 4, 6),
    _epoch_ns(2026, 7, 1),
)

# compaction: the API view of the conversation is cut when it exceeds this many characters
_COMPACT_LIMIT = 650_000

_MODELS = {
    "legacy": ["claude-sonnet-4-20250514", "claude-opus-4-1-20250805"],
    "old": ["claude-sonnet-4-5-20250929", "claude-opus-4-5-20251101", "claude-opus-4-6"],
    "mid": ["claude-opus-4-8", "claude-opus-4-8", "claude-sonnet-4-7"],
    "new": ["claude-opus-4-8", "claude-opus-5", "claude-sonnet-5"],
}

_AGENTS = [
    "foundation:explorer",
    "foundation:zen-architect",
    "foundation:bug-hunter",
    "foundation:modular-builder",
    "foundation:git-ops",
    "foundation:web-research",
    "foundation:test-coverage",
    "foundation:file-ops",
    "foundation:security-guardian",
    "foundation:integration-specialist",
    "amplifier-dev:session-analyst",
    "python-dev:code-intel",
    "recipes:recipe-author",
    "design-intelligence:layout-architect",
    "foundation:post-task-cleanup",
    "foundation:performance-optimizer",
    "foundation:api-contract-designer",
    "foundation:database-architect",
]

_TOOL_NAMES = [
    "read_file",
    "write_file",
    "edit_file",
    "bash",
    "grep",
    "glob",
    "web_fetch",
    "web_search",
    "todo",
    "delegate",
    "load_skill",
    "python_check",
    "recipes",
    "mode",
    "team_knowledge",
]

# relative frequency of tool calls made by the assistant
_TOOL_FREQ = [
    ("read_file", 30),
    ("bash", 24),
    ("grep", 12),
    ("edit_file", 12),
    ("glob", 6),
    ("write_file", 5),
    ("todo", 5),
    ("web_fetch", 2),
    ("web_search", 2),
    ("python_check", 2),
]

# --------------------------------------------------------------------------------------------
# Vocabulary and text
# --------------------------------------------------------------------------------------------

_COMMON = """the of and to a in is it you that he was for on are with as his they be at one have
this from or had by not word but what some we can out other were all there when up
use your how said an each she which do their time if will way about many then them
write would like so these her long make thing see him two has look more day could go
come did number sound no most people my over know water than call first who may down
side been now find any new work part take get place made live where after back
little only round man year came show every good me give our under name very through
just form sentence great think say help low line differ turn cause much mean before
move right boy old too same tell does set three want air well also play small end
put home read hand port large spell add even land here must big high such follow act
why ask men change went light kind off need house picture try us again animal point
mother world near build self earth father head stand own page should country found
answer school grow study still learn plant cover food sun four between state keep
eye never last let thought city tree cross farm hard start might story saw far sea
draw left late run while press close night real life few north open seem together
next white children begin got walk example ease paper group always music those both
mark often letter until mile river car feet care second book carry took science eat
room friend began idea fish mountain stop once base hear horse cut sure watch color
face wood main enough plain girl usual young ready above ever red list though feel
talk bird soon body dog family direct pose leave song measure door product black
short numeral class wind question happen complete ship area half rock order fire
south problem piece told knew pass since top whole king space heard best hour better
true during hundred five remember step early hold west ground interest reach fast
verb sing listen six table travel less morning ten simple several vowel toward war
lay against pattern slow center love person money serve appear road map rain rule
govern pull cold notice voice unit power town fine certain fly fall lead cry dark
machine note wait plan figure star box noun field rest correct able pound done
beauty drive stood contain front teach week final gave green oh quick develop ocean
warm free minute strong special mind behind clear tail produce fact street inch
multiply nothing course stay wheel full force blue object decide surface deep moon
island foot system busy test record boat common gold possible plane stead dry wonder
laugh thousand ago ran check game shape equate hot miss brought heat snow tire bring
yes distant fill east paint language among because should would could might already
instead however therefore actually probably likely currently exactly simply quickly
carefully""".split()  # noqa: SIM905

_TECH = """session storage chunk index manifest blob hash digest archive compress zstd dedup content
address event events transcript metadata config bundle provider orchestrator context module
hook hooks tool tools agent agents request response stream token tokens cache usage cost
model thinking signature block blocks delta schema json jsonl file files path paths
directory folder project slug workspace repo branch commit diff patch merge rebase test
tests fixture pytest assert mock async await coroutine task queue worker thread lock mutex
atomic rename fsync buffer offset length size bytes line lines parse serialize encode decode
utf8 ascii escape unicode field key value map list dict set tuple array vector string
integer float bool null none true false error exception retry timeout backoff limit quota
rate throttle sync upload download cosmos container partition shard replica lease etag
version migrate migration legacy format reader writer loader store fetch resolve mount plan
spawn fork resume rewind repair backup restore snapshot timeline trace span parent child
depth turn prompt reply message role user assistant system developer reminder todo grep glob
bash read write edit search web url http api client server endpoint handler router
middleware logger logging level debug info warning metric counter gauge latency throughput
benchmark profile flamegraph memory allocation leak cpu core disk network socket port host
docker kubernetes pod deploy release build wheel package dependency lockfile venv python
rust typescript node cargo uv pip ruff mypy lint typing protocol dataclass enum class method
function argument parameter return yield generator iterator closure decorator import export
namespace scope variable constant literal expression statement loop branch condition
predicate filter sort group join window aggregate query cursor transaction rollback
isolation consistency durability invariant property hypothesis shrink seed random
deterministic reproducible idempotent checksum crc blake3 sha256 fastcdc rolling boundary
gear mask normalize threshold average minimum maximum""".split()  # noqa: SIM905

_SYLLABLES = (  # noqa: SIM905
    "ka lo mi ren tor vax quin sel dra po neb zu fi gar hul jen ost pra tem ul vor wex yan bri cel "
    "dun eph fro gli har ix jor kel lum mor nid oph pel qua ris sto tri ub vel wil xan yor zel ar "
    "bel cor del en fen gol hin io jas kor lin mar nor on pir ros sur tan un ver"
).split()

_NON_ASCII = [
    "\u2014",  # em dash
    "\u2192",  # arrow
    "\u2026",  # ellipsis
    "caf\u00e9",
    "na\u00efve",
    "r\u00e9sum\u00e9",
    "\u2713",
    "\u2717",
    "\U0001f680",
    "\u2265",
    "\u2264",
    "\u00b5s",
    "Z\u00fcrich",
    "S\u00e3o",
    "\u65e5\u672c\u8a9e",
    "\u00b0C",
    "\u00b1",
    "\u2022",
]

_B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def _build_vocab() -> tuple[list[str], list[float]]:
    r = random.Random(7)
    synth: list[str] = []
    seen = set(_COMMON) | set(_TECH)
    while len(synth) < 2200:
        w = "".join(r.choice(_SYLLABLES) for _ in range(r.choice((2, 2, 3, 3, 4))))
        if w not in seen:
            seen.add(w)
            synth.append(w)
    common = list(dict.fromkeys(_COMMON))
    tech = list(dict.fromkeys(_TECH))
    vocab = common[:90]
    rest_c, rest_t = common[90:], tech[:]
    while rest_c or rest_t:
        if rest_t:
            vocab.append(rest_t.pop(0))
        if rest_c:
            vocab.append(rest_c.pop(0))
        if rest_c:
            vocab.append(rest_c.pop(0))
    vocab.extend(synth)
    cum: list[float] = []
    acc = 0.0
    for i in range(len(vocab)):
        acc += 1.0 / (i + 3.0) ** 1.02
        cum.append(acc)
    return vocab, cum


_VOCAB, _CUM = _build_vocab()
_TECH_WORDS = list(dict.fromkeys(_TECH))


def _build_banks() -> tuple[list[str], list[float], list[str], list[float]]:
    """Phrase and identifier banks: repeated n-grams give text a realistic compressibility."""
    r = random.Random(11)
    phrases = [
        " ".join(r.choices(_VOCAB, cum_weights=_CUM, k=r.randint(2, 4))) for _ in range(7000)
    ]
    idents = []
    for _ in range(2500):
        parts = r.choices(_TECH_WORDS, k=r.choice((1, 2, 2, 3)))
        idents.append(
            "".join(p.capitalize() for p in parts) if r.random() < 0.2 else "_".join(parts)
        )
    pcum: list[float] = []
    icum: list[float] = []
    acc = 0.0
    for i in range(len(phrases)):
        acc += 1.0 / (i + 5.0) ** 0.95
        pcum.append(acc)
    acc = 0.0
    for i in range(len(idents)):
        acc += 1.0 / (i + 3.0) ** 0.9
        icum.append(acc)
    return phrases, pcum, idents, icum


_PHRASES, _PCUM, _IDENTS, _ICUM = _build_banks()


class _Text:
    """Pseudo-random English-ish prose, identifiers, code and tool outputs."""

    def __init__(self, rng: random.Random) -> None:
        self.r = rng

    # -- words ---------------------------------------------------------------------------
    def words(self, k: int) -> list[str]:
        return self.r.choices(_VOCAB, cum_weights=_CUM, k=k)

    def toks(self, k: int) -> list[str]:
        """About ``k`` words, mostly as common multi-word phrases."""
        r = self.r
        n = max(1, round(k / 2.4))
        ph = r.choices(_PHRASES, cum_weights=_PCUM, k=n)
        ws = r.choices(_VOCAB, cum_weights=_CUM, k=n)
        return [p if r.random() < 0.7 else w for p, w in zip(ph, ws, strict=True)]

    def ident(self) -> str:
        r = self.r
        if r.random() < 0.85:
            return r.choices(_IDENTS, cum_weights=_ICUM)[0]
        parts = r.choices(_TECH_WORDS, k=r.choice((1, 2, 2, 3)))
        if r.random() < 0.2:
            return "".join(p.capitalize() for p in parts)
        return "_".join(parts)

    def title(self, ascii_only: bool = True) -> str:
        ws = self.words(self.r.randint(2, 5))
        return " ".join(w.capitalize() for w in ws)

    def sentence(self, lo: int = 5, hi: int = 18, ascii_only: bool = False) -> str:
        r = self.r
        ws = self.toks(r.randint(lo, hi))
        x = r.random()
        if x < 0.16:
            ws[r.randrange(len(ws))] = "`" + self.ident() + "`"
        elif x < 0.21 and not ascii_only:
            ws.insert(r.randrange(len(ws) + 1), r.choice(_NON_ASCII))
        elif x < 0.26:
            ws[r.randrange(len(ws))] = str(r.randint(2, 4096))
        s = " ".join(ws)
        end = r.choice("........?:!") if not ascii_only else "."
        return s[:1].upper() + s[1:] + end

    def paragraph(self, lo: int = 2, hi: int = 6, ascii_only: bool = False) -> str:
        r = self.r
        n = r.randint(lo, hi)
        lens = [r.randint(2, 8) for _ in range(n)]
        ws = self.toks(round(sum(lens) * 2.4))
        lens[-1] += len(ws) - sum(lens)
        out = []
        i = 0
        for ln in lens:
            if ln <= 0:
                continue
            seg = ws[i : i + ln]
            i += ln
            ln = len(seg)
            if not ln:
                continue
            x = r.random()
            if x < 0.18:
                seg[r.randrange(ln)] = "`" + self.ident() + "`"
            elif x < 0.24 and not ascii_only:
                seg.insert(r.randrange(ln + 1), r.choice(_NON_ASCII))
            elif x < 0.3:
                seg[r.randrange(ln)] = str(r.randint(2, 9999))
            if ln > 3 and r.random() < 0.35:
                seg[r.randrange(1, ln - 1)] += ","
            s = " ".join(seg)
            out.append(s[:1].upper() + s[1:] + ("." if r.random() < 0.88 else r.choice("?:!")))
        return " ".join(out)

    def prose(self, target: int, markdown: bool = True, ascii_only: bool = False) -> str:
        """Markdown-ish prose of roughly ``target`` characters."""
        r = self.r
        parts: list[str] = []
        size = 0
        while size < target:
            x = r.random() if markdown else 0.0
            if x < 0.5:
                p = self.paragraph(ascii_only=ascii_only)
            elif x < 0.62:
                p = "#" * r.choice((2, 2, 3)) + " " + self.title()
            elif x < 0.8:
                p = "\n".join(
                    ("- " if r.random() < 0.7 else f"{i + 1}. ") + self.sentence(4, 14, ascii_only)
                    for i in range(r.randint(2, 6))
                )
            elif x < 0.93:
                lang = r.choice(("python", "python", "bash", "json", "text"))
                p = f"```{lang}\n" + self.code(r.randint(3, 18), lang) + "\n```"
            else:
                cols = r.randint(2, 4)
                head = "| " + " | ".join(self.title() for _ in range(cols)) + " |"
                sep = "|" + "---|" * cols
                rows = [
                    "| "
                    + " | ".join(" ".join(self.words(r.randint(1, 3))) for _ in range(cols))
                    + " |"
                    for _ in range(r.randint(2, 6))
                ]
                p = "\n".join([head, sep, *rows])
            parts.append(p)
            size += len(p) + 2
        return "\n\n".join(parts)

    # -- code ----------------------------------------------------------------------------
    def code(self, n_lines: int, lang: str = "python") -> str:
        r = self.r
        if lang == "bash":
            cmds = ("uv run pytest -q", "git status --short", "ls -la", "rg -n", "python -m", "cat")
            return "\n".join(
                f"{r.choice(cmds)} {self.path() if r.random() < 0.6 else self.ident()}"
                for _ in range(n_lines)
            )
        if lang == "json":
            obj = {self.ident(): self._json_value(2) for _ in range(max(1, n_lines // 3))}
            return json.dumps(obj, indent=2)
        if lang == "text":
            return "\n".join(self.sentence(3, 10) for _ in range(n_lines))
        lines: list[str] = []
        indent = 0
        for _ in range(n_lines):
            x = r.random()
            pad = "    " * indent
            if x < 0.1 and indent < 3:
                args = ", ".join(self.ident().lower() for _ in range(r.randint(0, 3)))
                if indent == 0 and r.random() < 0.5:
                    lines.append("")
                ret = r.choice(
                    ("", " -> None", " -> int", " -> str", " -> bool", " -> dict[str, Any]")
                )
                kw = "async def" if r.random() < 0.2 else "def"
                lines.append(f"{pad}{kw} {self.ident().lower()}({args}){ret}:")
                indent += 1
                if r.random() < 0.4:
                    lines.append(f'{pad}    """{self.sentence(4, 12)}"""')
            elif x < 0.17 and indent < 3:
                op = r.choice(("is None", "is not None", "> 0", "== 0", "in seen", "< limit"))
                lines.append(f"{pad}if {self.ident().lower()} {op}:")
                indent += 1
            elif x < 0.23 and indent < 3:
                var = r.choice(("item", "line", "chunk", "key", "path", "ev"))
                lines.append(f"{pad}for {var} in {self.ident().lower()}:")
                indent += 1
            elif x < 0.3 and indent > 0:
                lines.append(f"{pad}return {self.ident().lower()}")
                indent -= 1
            elif x < 0.38:
                lines.append(f"{pad}# {self.sentence(4, 12)}")
            elif x < 0.43:
                exc = r.choice(("ValueError", "RuntimeError", "KeyError"))
                lines.append(f'{pad}raise {exc}(f"{self.sentence(3, 8)}")')
                if indent > 0:
                    indent -= 1
            elif x < 0.5:
                recv, meth, arg = (self.ident().lower() for _ in range(3))
                lines.append(f"{pad}{recv}.{meth}({arg}, {r.randint(0, 512)})")
            else:
                fn = self.ident().lower()
                args = ", ".join(self.ident().lower() for _ in range(r.randint(0, 3)))
                lines.append(f"{pad}{self.ident().lower()} = {fn}({args})")
        return "\n".join(lines)

    def _json_value(self, depth: int) -> Any:
        r = self.r
        x = r.random()
        if depth <= 0 or x < 0.4:
            return r.choice(
                (r.randint(0, 10_000), self.ident(), True, None, " ".join(self.words(3)))
            )
        if x < 0.7:
            return [self._json_value(depth - 1) for _ in range(r.randint(1, 4))]
        return {self.ident(): self._json_value(depth - 1) for _ in range(r.randint(1, 4))}

    def path(self) -> str:
        r = self.r
        x = r.random()
        if x < 0.55:
            pkg = r.choice(("app", "core", "storage", "api", "cli"))
            return f"src/{pkg}/{self.ident().lower()}.py"
        if x < 0.8:
            return f"tests/test_{self.ident().lower()}.py"
        if x < 0.9:
            return f"docs/{self.ident().lower().replace('_', '-')}.md"
        return r.choice(
            ("pyproject.toml", "README.md", "AGENTS.md", "Makefile", ".github/workflows/ci.yml")
        )

    # -- ids -----------------------------------------------------------------------------
    def b62(self, n: int) -> str:
        return "".join(self.r.choices(_B62, k=n))

    def hexs(self, n: int) -> str:
        return f"{self.r.getrandbits(4 * n):0{n}x}"

    def uuid4(self) -> str:
        return str(uuid.UUID(int=self.r.getrandbits(128), version=4))

    def signature(self) -> str:
        return base64.b64encode(self.r.randbytes(self.r.randint(180, 520))).decode("ascii")


# --------------------------------------------------------------------------------------------
# Time formatting
# --------------------------------------------------------------------------------------------

_BASE_CACHE: dict[int, str] = {}


def _iso_base(sec: int) -> str:
    b = _BASE_CACHE.get(sec)
    if b is None:
        if len(_BASE_CACHE) > 200_000:
            _BASE_CACHE.clear()
        b = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec))
        _BASE_CACHE[sec] = b
    return b


def _ts_ns(ns: int) -> str:
    sec, frac = divmod(ns, _SEC_NS)
    return f"{_iso_base(sec)}.{frac:09d}+00:00"


def _ts_ms(ns: int) -> str:
    sec, frac = divmod(ns, _SEC_NS)
    return f"{_iso_base(sec)}.{frac // _MS_NS:03d}+00:00"


def _ts_us(ns: int) -> str:
    sec, frac = divmod(ns, _SEC_NS)
    return f"{_iso_base(sec)}.{frac // 1000:06d}+00:00"


def _date(ns: int) -> str:
    return _iso_base(ns // _SEC_NS)[:10]


# --------------------------------------------------------------------------------------------
# Sizes
# --------------------------------------------------------------------------------------------

_UNITS = {
    "": 1,
    "B": 1,
    "K": 1024,
    "KB": 1024,
    "KIB": 1024,
    "M": 1024**2,
    "MB": 1024**2,
    "MIB": 1024**2,
    "G": 1024**3,
    "GB": 1024**3,
    "GIB": 1024**3,
    "T": 1024**4,
    "TB": 1024**4,
}


def parse_size(text: str | int) -> int:
    """Parse ``1G``, ``500M``, ``12MB``, ``1.5GiB`` or a plain byte count (binary units)."""
    if isinstance(text, int):
        return text
    m = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]*)\s*", text)
    if not m or m.group(2).upper() not in _UNITS:
        raise ValueError(f"bad size: {text!r}")
    return int(float(m.group(1)) * _UNITS[m.group(2).upper()])


def _human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.2f} {unit}"
        n /= 1024
    return f"{n:.2f} TiB"


# --------------------------------------------------------------------------------------------
# Bundles: system prompt, tool definitions, configuration blob (seed-independent, versioned)
# --------------------------------------------------------------------------------------------

_S_WD = "\x00WD\x00"
_S_OVR = "\x00OVR\x00"
_J_WD = json.dumps(_S_WD)
_J_OVR = json.dumps(_S_OVR)
_S_MSGS = "\x00MSGS\x00"
_S_SYS = "\x00SYS\x00"
_S_TOOLS = "\x00TOOLS\x00"
_S_RAW = "\x00RAW\x00"


def _splice(tpl: str, repl: dict[str, str]) -> str:
    """Replace JSON-encoded sentinel strings (``"\\u0000NAME\\u0000"``) with raw JSON text."""
    parts: list[str] = []
    pos = 0
    while True:
        i = tpl.find('"\\u0000', pos)
        if i < 0:
            break
        j = tpl.index('\\u0000"', i + 7) + 7
        parts.append(tpl[pos:i])
        parts.append(repl[tpl[i:j]])
        pos = j
    parts.append(tpl[pos:])
    return "".join(parts)


class _Bundle:
    """One version of the ``foundation`` bundle as seen in session:config / llm:request."""

    def __init__(self, version: int, scale: float, prev: _Bundle | None) -> None:
        self.version = version
        r = random.Random(90_210 + version)
        t = _Text(r)

        def sz(n: int) -> int:
            return max(200, int(n * scale))

        def sha() -> str:
            return f"{r.getrandbits(160):040x}"

        if prev is None:
            self.instruction = [t.prose(sz(2600)) for _ in range(16)]
            self.context_files = {
                f"foundation:context/{n}": [t.prose(sz(2400)) for _ in range(4)]
                for n in (
                    "IMPLEMENTATION_PHILOSOPHY.md",
                    "MODULAR_DESIGN_PHILOSOPHY.md",
                    "KERNEL_PHILOSOPHY.md",
                    "shared/common-agent-base.md",
                )
            }
            self.tools = {name: self._tool_def(t, name, sz) for name in _TOOL_NAMES}
            self.agents = {a: self._agent(t, a, sz) for a in _AGENTS[:13]}
            self.shas = {m: sha() for m in self._module_names()}
        else:
            self.instruction = list(prev.instruction)
            for i in r.sample(range(len(self.instruction)), 2):
                self.instruction[i] = t.prose(sz(2600))
            self.instruction.append(t.prose(sz(1800)))
            self.context_files = {k: list(v) for k, v in prev.context_files.items()}
            key = r.choice(sorted(self.context_files))
            self.context_files[key][r.randrange(4)] = t.prose(sz(2400))
            self.tools = dict(prev.tools)
            for name in r.sample(_TOOL_NAMES, 2):
                self.tools[name] = self._tool_def(t, name, sz)
            self.agents = {k: dict(v) for k, v in prev.agents.items()}
            for a in r.sample(sorted(self.agents), 3):
                paras = self.agents[a]["instructions"].split("\n\n")
                paras[r.randrange(len(paras))] = t.paragraph(ascii_only=True)
                self.agents[a]["instructions"] = "\n\n".join(paras)
            for a in _AGENTS[12 + version : 14 + version]:
                self.agents[a] = self._agent(t, a, sz)
            self.shas = dict(prev.shas)
            for m in r.sample(sorted(self.shas), 4):
                self.shas[m] = sha()
        self.bundle_version = f"2.{version + 3}.{r.randint(0, 9)}"
        self.instruction_text = "\n\n".join(self.instruction)
        self.context_text = "\n\n".join(
            f'<context_file path="{k}">\n' + "\n\n".join(v) + "\n</context_file>"
            for k, v in self.context_files.items()
        )
        self.config = self._config(r)
        self._tools_json: dict[tuple[bool, bool, bool], str] = {}
        self._cfg_tail: dict[bool, str] = {}

    @staticmethod
    def _module_names() -> list[str]:
        return [
            "loop-streaming",
            "context-simple",
            "provider-anthropic",
            "provider-openai",
            "tool-filesystem",
            "tool-bash",
            "tool-search",
            "tool-web",
            "tool-todo",
            "tool-delegate",
            "tool-skills",
            "hooks-logging",
            "hooks-redaction",
            "hooks-status-context",
            "hooks-todo-reminder",
            "hooks-streaming-ui",
            "hooks-session-naming",
            "hooks-approval",
        ]

    @staticmethod
    def _tool_def(t: _Text, name: str, sz: Callable[[int], int]) -> dict[str, Any]:
        r = t.r
        props = {}
        for _ in range(r.randint(1, 5)):
            props[t.ident().lower()] = {
                "type": r.choice(("string", "string", "integer", "boolean", "array")),
                "description": t.sentence(6, 20, ascii_only=True),
            }
        return {
            "name": name,
            "description": t.prose(sz(r.randint(1200, 4200)), ascii_only=True),
            "input_schema": {
                "type": "object",
                "properties": props,
                "required": sorted(props)[: r.randint(0, len(props))],
            },
        }

    @staticmethod
    def _agent(t: _Text, name: str, sz: Callable[[int], int]) -> dict[str, Any]:
        r = t.r
        return {
            "description": t.paragraph(2, 4, ascii_only=True),
            "instructions": t.prose(sz(r.randint(12_000, 26_000)), ascii_only=True),
            "tools": sorted(r.sample(_TOOL_NAMES[:9], r.randint(3, 8))),
            "providers": [{"module": "provider-anthropic", "config": {"priority": 1}}],
            "meta": {
                "name": name,
                "model_role": r.choice(("coding", "reasoning", "fast", "general")),
            },
        }

    def _config(self, r: random.Random) -> dict[str, Any]:
        def src(m: str) -> str:
            return f"git+https://github.com/microsoft/amplifier-module-{m}@main#sha={self.shas[m]}"

        tools = []
        for m in (
            "tool-filesystem",
            "tool-bash",
            "tool-search",
            "tool-web",
            "tool-todo",
            "tool-delegate",
            "tool-skills",
        ):
            cfg: dict[str, Any] = {}
            if m == "tool-filesystem":
                cfg = {
                    "allowed_write_paths": [_S_WD],
                    "allowed_read_paths": [_S_WD, "~/.amplifier"],
                    "max_read_bytes": 262144,
                }
            elif m == "tool-bash":
                cfg = {
                    "timeout": 120,
                    "working_dir": _S_WD,
                    "denied_commands": ["rm -rf /", "sudo"],
                }
            elif m == "tool-delegate":
                cfg = {
                    "max_depth": 3,
                    "exclude_tools": ["delegate"],
                    "default_context_depth": "recent",
                }
            tools.append({"module": m, "source": src(m), "config": cfg})
        hooks: list[dict[str, Any]] = [
            {"module": m, "source": src(m), "config": {"priority": 100 + i * 10}}
            for i, m in enumerate(
                (
                    "hooks-logging",
                    "hooks-redaction",
                    "hooks-status-context",
                    "hooks-todo-reminder",
                    "hooks-streaming-ui",
                    "hooks-session-naming",
                    "hooks-approval",
                )
            )
        ]
        hooks[0]["config"].update(
            {
                "mode": "session-only",
                "session_log_template": (
                    "~/.amplifier/projects/{project}/sessions/{session_id}/events.jsonl"
                ),
            }
        )
        hooks[1]["config"].update(
            {"rules": ["secrets", "pii-basic"], "allowlist": ["session_id", "turn_id", "span_id"]}
        )
        return {
            "bundle": {
                "name": "foundation",
                "version": self.bundle_version,
                "source": "git+https://github.com/microsoft/amplifier-foundation@main",
                "description": "Foundation bundle: core tools, agents and context",
            },
            "session": {
                "orchestrator": {
                    "module": "loop-streaming",
                    "source": src("loop-streaming"),
                    "config": {"extended_thinking": True, "max_iterations": 80, "stream_delay": 0},
                },
                "context": {
                    "module": "context-simple",
                    "source": src("context-simple"),
                    "config": {
                        "max_tokens": 200000,
                        "compact_threshold": 0.92,
                        "auto_compact": True,
                    },
                },
                "injection_budget_per_turn": 10000,
                "overrides": _S_OVR,
            },
            "providers": [
                {
                    "module": "provider-anthropic",
                    "source": src("provider-anthropic"),
                    "config": {
                        "api_key": "[REDACTED:SECRET]",
                        "default_model": "claude-opus-4-8",
                        "priority": 1,
                        "max_tokens": 64000,
                        "enable_prompt_caching": True,
                        "thinking_budget_tokens": 16000,
                        "timeout": 600,
                        "base_url": "https://api.anthropic.com",
                    },
                },
                {
                    "module": "provider-openai",
                    "source": src("provider-openai"),
                    "config": {
                        "api_key": "[REDACTED:SECRET]",
                        "default_model": "gpt-5.5",
                        "priority": 2,
                        "reasoning_effort": "high",
                    },
                },
            ],
            "tools": tools,
            "hooks": hooks,
            "agents": self.agents,
            "context": {
                "instruction": self.instruction_text,
                "files": {k: "\n\n".join(v) for k, v in self.context_files.items()},
            },
            "spawn": {"exclude_tools": ["delegate"], "inherit_providers": True},
            "ui": {"show_thinking_stream": True, "show_tool_lines": 5, "show_token_usage": True},
        }

    def tools_json(self, sort_keys: bool, ascii_: bool, with_delegate: bool) -> str:
        key = (sort_keys, ascii_, with_delegate)
        s = self._tools_json.get(key)
        if s is None:
            defs = [d for n, d in self.tools.items() if with_delegate or n != "delegate"]
            s = json.dumps(defs, sort_keys=sort_keys, ensure_ascii=ascii_)
            self._tools_json[key] = s
        return s

    def config_tail(self, ascii_: bool) -> str:
        s = self._cfg_tail.get(ascii_)
        if s is None:
            s = json.dumps(self.config, ensure_ascii=ascii_)[1:]  # without the leading "{"
            self._cfg_tail[ascii_] = s
        return s


# --------------------------------------------------------------------------------------------
# Projects
# --------------------------------------------------------------------------------------------


class _Project:
    def __init__(self, t: _Text, idx: int) -> None:
        r = t.r
        user = r.choice(("dan", "sam", "alex", "priya", "mkhan", "jlee", "amplifier", "rosa"))
        name = "-".join(t.ident().lower().split("_")[:2]) or f"proj{idx}"
        style = r.random()
        if style < 0.45:
            wd = f"/home/{user}/code/{name}"
        elif style < 0.7:
            wd = f"/Users/{user}/src/{name}"
        elif style < 0.85:
            wd = f"/home/{user}/work/{t.ident().lower()}/{name}"
        else:
            wd = f"/workspaces/{name}"
        self.working_dir = wd
        slug = wd.replace("/", "-").replace("\\", "-").replace(":", "")
        self.slug = slug if slug.startswith("-") else "-" + slug
        self.bundle = r.choice(("bundle:foundation", "bundle:foundation", "bundle:amplifier-dev"))
        self.agents_md = t.prose(r.randint(3_000, 12_000), ascii_only=False)
        self.files: dict[str, list[str]] = {}
        self.paths = list(dict.fromkeys(t.path() for _ in range(r.randint(20, 60))))

    def file(self, t: _Text, path: str) -> list[str]:
        lines = self.files.get(path)
        if lines is None:
            n = int(min(900, t.r.lognormvariate(4.6, 0.8)))
            if path.endswith(".md"):
                lines = t.prose(n * 40).split("\n")
            else:
                lines = t.code(max(n, 5)).split("\n")
            self.files[path] = lines
        return lines


# --------------------------------------------------------------------------------------------
# Records and summary
# --------------------------------------------------------------------------------------------


@dataclass
class SessionRecord:
    """What was generated for one session folder."""

    session_id: str
    kind: str  # "top" | "fork" | "sub"
    path: Path
    parent_id: str | None
    era: str  # "legacy" | "old" | "mid" | "new"
    turns: int  # completed turns in the transcript (forks: including the copied ones)
    llm_requests: int  # llm:request lines written by this session itself
    resumes: int
    killed: bool
    torn: bool
    forked_from_turn: int | None
    copied_event_lines: int
    events_bytes: int
    transcript_bytes: int
    metadata_bytes: int
    other_bytes: int
    budget_bytes: int  # the share of the target this session was sized for
    # cumulative events.jsonl size after each of this session's own completed turns
    turn_end_bytes: list[int] = field(default_factory=list)


@dataclass
class GenerationSummary:
    out_dir: Path
    layout: str
    seed: int
    target_bytes: int
    sessions: int
    top_level: int
    forks: int
    sub_sessions: int
    resumed: int
    killed: int
    torn: int
    files: int
    total_bytes: int
    events_bytes: int
    transcript_bytes: int
    metadata_bytes: int
    other_bytes: int
    events_lines: int
    llm_requests: int
    elapsed_s: float
    records: list[SessionRecord] = field(default_factory=list)

    def format(self) -> str:
        dev = (self.total_bytes / self.target_bytes - 1) * 100 if self.target_bytes else 0.0

        def pct(n: int) -> str:
            return f"{100 * n / self.total_bytes:.1f}%" if self.total_bytes else "-"

        rate = self.total_bytes / self.elapsed_s / 1024**2 if self.elapsed_s > 0 else 0.0
        return "\n".join(
            [
                f"Generated {self.sessions} sessions in {self.out_dir} "
                f"(layout={self.layout}, seed={self.seed})",
                f"  top-level: {self.top_level}  forks: {self.forks}"
                f"  sub-sessions: {self.sub_sessions}  resumed: {self.resumed}"
                f"  killed: {self.killed} (torn: {self.torn})",
                f"  files: {self.files}  total: {_human(self.total_bytes)}"
                f" ({self.total_bytes:,} bytes)  target: {_human(self.target_bytes)}"
                f" ({dev:+.1f}%)",
                f"  events.jsonl: {_human(self.events_bytes)} ({pct(self.events_bytes)}, "
                f"{self.events_lines:,} lines, {self.llm_requests:,} llm:request)",
                f"  transcript.jsonl: {_human(self.transcript_bytes)}"
                f" ({pct(self.transcript_bytes)})  metadata.json: {_human(self.metadata_bytes)}"
                f"  other: {_human(self.other_bytes)}",
                f"  elapsed: {self.elapsed_s:.1f} s ({rate:.1f} MiB/s)",
            ]
        )


# --------------------------------------------------------------------------------------------
# Plans
# --------------------------------------------------------------------------------------------


@dataclass
class _SubPlan:
    agent: str
    weight: float
    resumes: int


@dataclass
class _ForkPlan:
    weight: float
    resumes: int


@dataclass
class _TopPlan:
    project: _Project
    start_ns: int
    weight: float
    resumes: int
    killed: bool
    torn: bool
    subs: list[_SubPlan] = field(default_factory=list)
    forks: list[_ForkPlan] = field(default_factory=list)


def _era_for(ns: int, legacy: bool) -> str:
    if legacy:
        return "legacy"
    if ns >= _ERA_NEW_FROM:
        return "new"
    if ns >= _ERA_MID_FROM:
        return "mid"
    return "old"


def _bundle_version_for(ns: int) -> int:
    v = 0
    for b in _BUNDLE_VERSION_FROM:
        if ns >= b:
            v += 1
    return v


# --------------------------------------------------------------------------------------------
# The generator
# --------------------------------------------------------------------------------------------


class _Generator:
    def __init__(
        self,
        out_dir: Path,
        n_sessions: int,
        target: int,
        seed: int,
        layout: str,
        torn: bool,
        ensure_ascii: bool,
        progress: Callable[[int], None] | None,
    ) -> None:
        if layout not in ("projects", "legacy"):
            raise ValueError(f"layout must be 'projects' or 'legacy', not {layout!r}")
        if n_sessions < 1:
            raise ValueError("sessions must be >= 1")
        if target < 1:
            raise ValueError("target_bytes must be >= 1")
        self.out = Path(out_dir)
        self.n = n_sessions
        self.target = target
        self.seed = seed
        self.layout = layout
        self.legacy = layout == "legacy"
        self.want_torn = torn
        self.ascii = ensure_ascii
        self.progress = progress
        self.rng = random.Random(f"amplifier-sessions:{seed}")
        self.text = _Text(self.rng)
        per_session = target / n_sessions
        # shrink the big static blobs (system prompt, tools, config) for small targets so that
        # the minimum session (start + config + one short turn, ~0.8 MiB at full size) stays
        # well under the per-session share; realistic sizes (1.0) from ~1.8 MiB per session up
        self.scale = min(1.0, max(0.03, 0.45 * per_session / (0.8 * 1024**2)))
        self._bundles: dict[int, _Bundle] = {}
        self.floor: float | None = None
        self.unclaimed = n_sessions
        self.written = 0
        self.active: list[_Session] = []
        self.w_rem = 0.0
        self.records: list[SessionRecord] = []
        self.files = 0
        self.lines = 0

    # -- shared resources --------------------------------------------------------------------
    def bundle(self, version: int) -> _Bundle:
        b = self._bundles.get(version)
        if b is None:
            prev = self.bundle(version - 1) if version > 0 else None
            b = _Bundle(version, self.scale, prev)
            self._bundles[version] = b
        return b

    def sessions_dir(self, project: _Project) -> Path:
        if self.legacy:
            return self.out / "sessions"
        return self.out / "projects" / project.slug / "sessions"

    def add_written(self, n: int) -> None:
        self.written += n
        if self.progress is not None:
            self.progress(n)

    def claim(self, weight: float) -> float:
        """Size a session that starts now: a floor (the minimum session) + a weighted share."""
        if self.floor is None:
            b = self.bundle(0)
            req = (
                len(b.tools_json(False, True, True)) + len(b.instruction_text) + len(b.context_text)
            )
            self.floor = 1.1 * (len(b.config_tail(True)) + 2.5 * req)
        reserved = sum(max(s.budget - s.own_bytes, 0.0) for s in self.active)
        remaining = max(self.target - self.written - reserved, 0.0)
        n_left = max(self.unclaimed, 1)
        floor = min(self.floor, remaining / n_left)
        share = floor + max(remaining - n_left * floor, 0.0) * weight / max(self.w_rem, 1e-12)
        self.w_rem = max(self.w_rem - weight, 0.0)
        self.unclaimed -= 1
        return share

    # -- planning ---------------------------------------------------------------------------
    def plan(self) -> list[_TopPlan]:
        r = self.rng
        n = self.n
        n_sub = round(n * 0.17) if n >= 5 else 0
        n_fork = round(n * 0.12) if n >= 4 else 0
        n_top = n - n_sub - n_fork
        n_proj = max(1, min(n_top, round(math.sqrt(n_top) * 0.9)))
        projects = [_Project(self.text, i) for i in range(n_proj)]
        pw = [1.0 / (i + 1) ** 0.8 for i in range(n_proj)]
        lo, hi = (_LEGACY_START, _LEGACY_END) if self.legacy else (_PROJECTS_START, _PROJECTS_END)
        tops: list[_TopPlan] = []
        for _ in range(n_top):
            start = r.randrange(lo, hi)
            w = min(r.lognormvariate(0.0, 1.35), 40.0)
            tops.append(
                _TopPlan(
                    project=r.choices(projects, weights=pw)[0],
                    start_ns=start,
                    weight=w,
                    resumes=0,
                    killed=False,
                    torn=False,
                )
            )
        tops.sort(key=lambda p: p.start_ns)
        idx = list(range(n_top))
        # killed sessions (kill -9): never fork parents
        n_killed = max(1 if n_top >= 6 else 0, round(n_top * 0.06))
        killed = set(r.sample(idx, min(n_killed, n_top - 1 if n_top > 1 else 0)))
        for i in sorted(killed):
            tops[i].killed = True
        if self.want_torn and killed:
            for j, i in enumerate(sorted(killed)):
                if j == 0 or r.random() < 0.5:
                    tops[i].torn = True
        # forks attach to non-killed parents, sub-sessions to any parent
        fork_parents = [i for i in idx if i not in killed] or idx
        for _ in range(n_fork):
            i = r.choices(fork_parents, weights=[tops[k].weight for k in fork_parents])[0]
            tops[i].forks.append(_ForkPlan(weight=min(r.lognormvariate(0.6, 0.9), 30.0), resumes=0))
        for _ in range(n_sub):
            i = r.choices(idx, weights=[0.5 + tops[k].weight for k in idx])[0]
            tops[i].subs.append(
                _SubPlan(
                    agent=r.choice(_AGENTS[:12]),
                    weight=min(r.lognormvariate(-1.2, 1.0), 10.0),
                    resumes=0,
                )
            )
        # ~20% of the top-level and sub-sessions are resumed at least once
        resumable: list[Any] = [tops[i] for i in idx if i not in killed]
        resumable += [s for p in tops for s in p.subs]
        n_res = round(0.2 * n)
        for p in r.sample(resumable, min(n_res, len(resumable))):
            p.resumes = 1 if r.random() < 0.75 else r.randint(2, 3)
        for p in tops:
            for f in p.forks:
                if r.random() < 0.1:
                    f.resumes = 1
        self.w_rem = (
            sum(p.weight for p in tops)
            + sum(s.weight for p in tops for s in p.subs)
            + sum(f.weight for p in tops for f in p.forks)
        )
        self.unclaimed = n
        return tops

    # -- run ----------------------------------------------------------------------------------
    def run(self) -> GenerationSummary:
        t0 = time.perf_counter()
        tops = self.plan()
        for plan in tops:
            era = _era_for(plan.start_ns, self.legacy)
            top = _Session(
                self,
                kind="top",
                sid=self.text.uuid4(),
                project=plan.project,
                era=era,
                bundle_version=_bundle_version_for(plan.start_ns),
                start_ns=plan.start_ns,
                weight=plan.weight,
                resumes=plan.resumes,
                killed=plan.killed,
                torn=plan.torn,
                subs=list(plan.subs),
            )
            top.run()
            for fp in plan.forks:
                fork = _Session(
                    self,
                    kind="fork",
                    sid=self.text.uuid4(),
                    project=plan.project,
                    era=era,
                    bundle_version=top.bundle.version,
                    start_ns=0,
                    weight=fp.weight,
                    resumes=fp.resumes,
                    fork_of=top,
                )
                fork.run()
            top.release_fork_state()
        elapsed = time.perf_counter() - t0
        recs = self.records
        return GenerationSummary(
            out_dir=self.out,
            layout=self.layout,
            seed=self.seed,
            target_bytes=self.target,
            sessions=len(recs),
            top_level=sum(1 for x in recs if x.kind == "top"),
            forks=sum(1 for x in recs if x.kind == "fork"),
            sub_sessions=sum(1 for x in recs if x.kind == "sub"),
            resumed=sum(1 for x in recs if x.resumes > 0),
            killed=sum(1 for x in recs if x.killed),
            torn=sum(1 for x in recs if x.torn),
            files=self.files,
            total_bytes=sum(
                x.events_bytes + x.transcript_bytes + x.metadata_bytes + x.other_bytes for x in recs
            ),
            events_bytes=sum(x.events_bytes for x in recs),
            transcript_bytes=sum(x.transcript_bytes for x in recs),
            metadata_bytes=sum(x.metadata_bytes for x in recs),
            other_bytes=sum(x.other_bytes for x in recs),
            events_lines=self.lines,
            llm_requests=sum(x.llm_requests for x in recs),
            elapsed_s=elapsed,
            records=recs,
        )


class _Session:
    """Generates one session folder (and, recursively, its sub-sessions)."""

    def __init__(
        self,
        g: _Generator,
        *,
        kind: str,
        sid: str,
        project: _Project,
        era: str,
        bundle_version: int,
        start_ns: int,
        weight: float,
        resumes: int = 0,
        killed: bool = False,
        torn: bool = False,
        subs: list[_SubPlan] | None = None,
        fork_of: _Session | None = None,
        parent: _Session | None = None,
        agent: str | None = None,
        instruction: str | None = None,
    ) -> None:
        self.g = g
        self.r = g.rng
        self.t = g.text
        self.kind = kind
        self.sid = sid
        self.project = project
        self.era = era
        self.bundle = g.bundle(bundle_version)
        self.weight = weight
        self.resumes_planned = resumes
        self.killed = killed
        self.torn = torn
        self.pending_subs = list(subs or [])
        self.fork_of = fork_of
        self.parent = parent
        self.agent = agent
        self.instruction = instruction
        self.dir = g.sessions_dir(project) / sid
        self.sorted = era in ("mid", "new")
        self.ascii = g.ascii
        self.fmt_ts = _ts_ns if self.sorted else _ts_ms
        self.ns = start_ns
        self.budget = 0.0
        self.own_bytes = 0.0
        self.events_bytes = 0
        self.nlines = 0
        self.ts_arr = array("q")
        self.llm_requests = 0
        self.resumes_done = 0
        self.copied_lines = 0
        self.forked_from_turn: int | None = None
        self.is_torn = False
        r = self.r
        if kind == "top":
            self.parent_id: str | None = None
            self.model = r.choice(_MODELS[era])
        elif kind == "sub":
            assert parent is not None
            self.parent_id = parent.sid
            self.model = parent.model
        else:
            assert fork_of is not None
            # a resumed fork is a top-level session: its events carry data.parent_id = null
            self.parent_id = None
            self.model = fork_of.model
        self.lineage_parent = parent.sid if parent else (fork_of.sid if fork_of else None)
        self.thinking = era != "legacy" and r.random() < 0.85
        self.max_tokens = r.choice((32000, 64000, 64000, 128000))
        self.pid = r.randint(1200, 4_190_000)
        # conversation state
        self.tlines: list[str] = []  # transcript.jsonl lines
        self.seq = 0
        self.api_plain: list[str] = []
        self.api_cc: list[str] = []
        self.api_cum: list[int] = [0]
        self.api_turn_starts: list[int] = []
        self.api_base = 0
        self.summary_msg: str | None = None
        self.turns = 0  # completed turns
        self.turn_end_bytes: list[int] = []
        # per completed turn: (len(tlines), len(api_plain), cutoff ns, events bytes, lines)
        self.turn_marks: list[tuple[int, int, int, int, int]] = []
        self.saved: tuple[int, int, bool, int] | None = (
            None  # (n tlines, turn_count, incremental, ns)
        )
        self.final_text = ""
        self.created_ns = start_ns
        self.name: tuple[str, str, int] | None = None
        self.last_updated_ns: int | None = None
        self.trace_id = ""  # sub-sessions: set by the parent when spawning
        self.child_span = ""
        self.fh: Any = None

    # ------------------------------------------------------------------ low-level writing ---
    def tick(self, lo_ms: float, hi_ms: float) -> None:
        self.ns += int(self.r.uniform(lo_ms, hi_ms) * _MS_NS) + self.r.randrange(1000)

    def _write(self, line: str, ns: int) -> None:
        self.fh.write(line)
        n = len(line) if line.isascii() else len(line.encode("utf-8"))
        self.events_bytes += n
        self.own_bytes += n
        self.nlines += 1
        self.ts_arr.append(ns)
        self.g.add_written(n)

    def _line(self, name: str, payload: dict[str, Any], ns: int) -> str:
        sk = self.sorted
        ea = self.ascii
        payload["session_id"] = self.sid
        hoisted: list[tuple[str, Any]] = []
        if sk:
            data = {}
            for k in sorted(payload):
                if k in _HOISTED_SET:
                    hoisted.append((k, payload[k]))
                else:
                    data[k] = payload[k]
        else:
            hoisted = [(k, payload[k]) for k in _HOISTED if k in payload]
            data = {k: v for k, v in payload.items() if k not in _HOISTED_SET}
        lvl = (
            "ERROR"
            if ("error" in name or payload.get("error") or payload.get("status") == "error")
            else "INFO"
        )
        parts = [
            '{"ts": "',
            self.fmt_ts(ns),
            '", "lvl": "',
            lvl,
            '", "schema": ',
            _SCHEMA_JSON,
            ', "event": ',
            json.dumps(name, ensure_ascii=ea),
        ]
        for k, v in hoisted:
            parts += [', "', k, '": ', json.dumps(v, sort_keys=sk, ensure_ascii=ea)]
        if data:
            parts += [', "data": ', json.dumps(data, sort_keys=sk, ensure_ascii=ea)]
        parts.append("}\n")
        return "".join(parts)

    def emit(
        self,
        name: str,
        payload: dict[str, Any],
        redact: bool = False,
        ns: int | None = None,
        advance: tuple[float, float] = (0.4, 6.0),
    ) -> str:
        if ns is None:
            self.tick(*advance)
            ns = self.ns
        if redact and self.era != "legacy":
            payload["redaction"] = _REDACTION
        line = self._line(name, payload, ns)
        self._write(line, ns)
        return line

    def d(self, **kw: Any) -> dict[str, Any]:
        """Event payload starting with ``parent_id`` (as every amplifier event carries)."""
        out: dict[str, Any] = {"parent_id": self.parent_id}
        out.update(kw)
        return out

    # ------------------------------------------------------------------ transcript / API ----
    def _tmsg(self, msg: dict[str, Any], reminder: bool = False) -> None:
        ts = _ts_ms(self.ns)
        if self.era in ("legacy", "old"):
            msg["timestamp"] = ts
        elif self.era == "mid":
            msg["metadata"] = {"timestamp": ts}
        else:
            meta: dict[str, Any] = {}
            if reminder:
                meta = {"ephemeral": True, "persisted": True, "reminder_placement": "pre_user"}
            meta["timestamp"] = ts
            meta["_seq"] = self.seq
            msg["metadata"] = meta
        self.seq += 1
        self._msg_ns_last = self.ns
        self.tlines.append(json.dumps(msg, ensure_ascii=False))

    def _api(self, msg: dict[str, Any]) -> None:
        sk, ea = self.sorted, self.ascii
        plain = json.dumps(msg, sort_keys=sk, ensure_ascii=ea)
        blocks = msg["content"]
        last = dict(blocks[-1])
        last["cache_control"] = {"type": "ephemeral"}
        cc = json.dumps({**msg, "content": [*blocks[:-1], last]}, sort_keys=sk, ensure_ascii=ea)
        self.api_plain.append(plain)
        self.api_cc.append(cc)
        self.api_cum.append(self.api_cum[-1] + len(plain) + 2)

    def _api_messages_json(self) -> tuple[str, int]:
        base = self.api_base
        parts = list(self.ctx_msgs)
        if self.summary_msg is not None:
            parts.append(self.summary_msg)
        parts.extend(self.api_plain[base:-1])
        parts.append(self.api_cc[-1])
        return "[" + ", ".join(parts) + "]", len(parts)

    # ------------------------------------------------------------------ setup ---------------
    def _setup_prompts(self) -> None:
        """Per-session system prompt, context messages and tool definitions (JSON)."""
        sk, ea = self.sorted, self.ascii
        wd = self.project.working_dir
        env = (
            f"\n\n<env>\nWorking directory: {wd}\nPlatform: linux\nOS version: Linux 6.8\n"
            f"Today's date: {_date(self.ns)}\nModel: {self.model}\n</env>"
        )
        if self.kind == "sub":
            agent_cfg = self.bundle.agents.get(self.agent or "", {})
            sys_text = agent_cfg.get("instructions", "") + "\n\n" + self.bundle.context_text + env
        else:
            sys_text = self.bundle.instruction_text + "\n\n" + self.bundle.context_text + env
        self.system_json = json.dumps(
            [{"type": "text", "text": sys_text, "cache_control": {"type": "ephemeral"}}],
            sort_keys=sk,
            ensure_ascii=ea,
        )
        self.tools_json = self.bundle.tools_json(sk, ea, with_delegate=self.kind != "sub")
        ctx = {
            "role": "user",
            "content": [
                {
                    "type": "text",
                    "text": (
                        f'<context_file path="{wd}/AGENTS.md">\n'
                        f"{self.project.agents_md}\n</context_file>"
                    ),
                }
            ],
        }
        self.ctx_msgs = [json.dumps(ctx, sort_keys=sk, ensure_ascii=ea)]
        self.req_base = len(self.system_json) + len(self.tools_json) + len(self.ctx_msgs[0]) + 400
        self.thinking_json = {"type": "enabled", "budget_tokens": 16000}

    def _config_raw_json(self) -> str:
        ea = self.ascii
        wd = self.project.working_dir
        r = self.r
        overrides: dict[str, Any] = {"model": self.model}
        if r.random() < 0.3:
            overrides["thinking_budget_tokens"] = r.choice((8000, 16000, 32000))
        if r.random() < 0.2:
            overrides["allowed_dirs"] = [wd, f"/tmp/{self.t.ident().lower()}"]
        if self.kind == "sub":
            overrides["agent"] = self.agent
        tail = self.bundle.config_tail(ea)
        tail = tail.replace(_J_WD, json.dumps(wd, ensure_ascii=ea)).replace(
            _J_OVR, json.dumps(overrides, ensure_ascii=ea)
        )
        return (
            '{"project_dir": '
            + json.dumps(wd, ensure_ascii=ea)
            + ', "working_dir": '
            + json.dumps(wd, ensure_ascii=ea)
            + ', "project_slug": '
            + json.dumps(self.project.slug, ensure_ascii=ea)
            + ", "
            + tail
        )

    def _emit_config(self) -> None:
        self.tick(1, 15)
        tpl = self._line("session:config", self.d(raw=_S_RAW), self.ns)
        self._write(_splice(tpl, {json.dumps(_S_RAW): self._config_raw_json()}), self.ns)

    # ------------------------------------------------------------------ groups --------------
    def _start_group(self, resume: bool) -> None:
        if resume:
            self.emit("session:resume", self.d(), advance=(0.1, 2))
        else:
            if self.kind == "sub":
                self.emit("session:fork", self.d(parent=self.parent_id), advance=(0.1, 2))
            self.emit("session:start", self.d(), redact=self.era != "legacy", advance=(0.1, 2))
        self._emit_config()

    def _end_group(self) -> None:
        if not self.sorted:
            self.emit("session:end", self.d(), redact=self.era != "legacy", advance=(5, 400))
            return
        self.emit("cleanup:store_begin", self.d(), advance=(1, 5))
        self.emit("cleanup:store_end", self.d(), advance=(1, 8))
        self.emit("cleanup:finally_begin", self.d(), advance=(100, 3000))
        fin_ns = self.ns
        for a in range(self.r.choice((0, 0, 0, 1, 3, 4))):
            self.emit(
                "provider:retry",
                self.d(
                    attempt=a + 1,
                    delay_seconds=round(1.0 * 2**a, 1),
                    provider="anthropic",
                    reason="background naming",
                ),
                advance=(900, 2200),
            )
        end_ns = fin_ns + self.r.randint(1, 4) * _MS_NS + self.r.randrange(_MS_NS)
        # session:end carries an earlier ts than the retries logged before it (not time-ordered)
        self.emit("session:end", self.d(), redact=True, ns=end_ns)
        self.emit("cleanup:finally_end", self.d(), advance=(50, 4000))

    # ------------------------------------------------------------------ turns ---------------
    def _user_prompt(self) -> str:
        r = self.r
        x = r.random()
        if x < 0.55:
            return self.t.sentence(6, 30)
        if x < 0.85:
            return self.t.paragraph(1, 4)
        kind = r.choice(("traceback", "code", "log"))
        body = (
            self.t.code(r.randint(8, 60))
            if kind != "log"
            else "\n".join(
                f"{_ts_ms(self.ns - r.randrange(10**11))} {r.choice(('INFO', 'WARN', 'ERROR'))} "
                f"{self.t.sentence(4, 14)}"
                for _ in range(r.randint(8, 60))
            )
        )
        return self.t.sentence(6, 20) + "\n\n```\n" + body + "\n```"

    def _reminder(self) -> str:
        return (
            "<system-reminders>\nThe blocks below were injected by the system. They are not from "
            "the user and are not a request; use them silently.\n\n"
            '<system-reminder source="hooks-status-context">\n'
            f"Today's date: {_date(self.ns)}\nWorking directory: {self.project.working_dir}\n"
            "</system-reminder>\n\n"
            '<system-reminder source="hooks-todo-reminder">\n'
            + (
                "The todo tool has not been used recently. Consider using it to track progress on "
                "multi-step work; ignore if not applicable."
                if self.r.random() < 0.6
                else "Todo list: "
                + "; ".join(self.t.sentence(3, 8, ascii_only=True) for _ in range(3))
            )
            + "\n</system-reminder>\n</system-reminders>"
        )

    def _tool_call(self, name: str) -> tuple[dict[str, Any], Any]:
        """Return (tool input, tool output) for a simulated call."""
        r, t, p = self.r, self.t, self.project
        if name == "read_file":
            path = r.choice(p.paths)
            lines = p.file(t, path)
            off = 1 if r.random() < 0.7 else r.randint(1, max(1, len(lines)))
            lim = min(len(lines) - off + 1, r.choice((2000, 2000, 200, 80)))
            body = "\n".join(
                f"{i:>6}\t{ln}" for i, ln in enumerate(lines[off - 1 : off - 1 + lim], off)
            )
            inp: dict[str, Any] = {"file_path": f"{p.working_dir}/{path}"}
            if off > 1:
                inp.update(offset=off, limit=lim)
            return inp, {
                "file_path": f"{p.working_dir}/{path}",
                "content": body,
                "total_lines": len(lines),
                "lines_read": max(lim, 0),
            }
        if name == "edit_file":
            path = r.choice(p.paths)
            lines = p.file(t, path)
            i = r.randrange(len(lines))
            old = lines[i]
            new = t.code(r.randint(1, 6))
            p.files[path] = lines[:i] + new.split("\n") + lines[i + 1 :]
            return (
                {"file_path": f"{p.working_dir}/{path}", "old_string": old, "new_string": new},
                {
                    "file_path": f"{p.working_dir}/{path}",
                    "replacements": 1,
                    "diff": f"@@ -{i + 1},1 +{i + 1},{new.count(chr(10)) + 1} @@\n-{old}\n"
                    + "\n".join("+" + x for x in new.split("\n")),
                },
            )
        if name == "write_file":
            path = t.path()
            body = (
                t.code(r.randint(10, 160))
                if path.endswith(".py")
                else t.prose(r.randint(500, 6000))
            )
            p.files[path] = body.split("\n")
            if path not in p.paths:
                p.paths.append(path)
            return (
                {"file_path": f"{p.working_dir}/{path}", "content": body},
                {"file_path": f"{p.working_dir}/{path}", "bytes_written": len(body.encode())},
            )
        if name == "bash":
            return self._bash()
        if name == "grep":
            pat = t.ident().lower()
            n = int(min(400, r.expovariate(1 / 25)))
            out = "\n".join(
                f"{r.choice(p.paths)}:{r.randint(1, 900)}:{t.code(1)}" for _ in range(n)
            )
            return (
                {
                    "pattern": pat,
                    "path": r.choice(("src", "tests", ".")),
                    "output_mode": "content",
                    "-n": True,
                },
                {"matches": out, "total_matches": n, "files_searched": r.randint(n, n + 300)},
            )
        if name == "glob":
            pat = r.choice(("src/**/*.py", "tests/**/*.py", "**/*.md", "**/*.toml"))
            matches = [
                {"path": f"{p.working_dir}/{x}", "size": r.randint(80, 90_000), "type": "file"}
                for x in r.sample(p.paths, min(len(p.paths), r.randint(1, 40)))
            ]
            return (
                {"pattern": pat},
                {
                    "base_path": p.working_dir,
                    "count": len(matches),
                    "matches": matches,
                    "pattern": pat,
                    "total_files": len(matches),
                },
            )
        if name == "todo":
            todos = [
                {
                    "content": t.sentence(3, 9),
                    "status": r.choice(("pending", "in_progress", "completed")),
                    "activeForm": t.sentence(2, 6),
                }
                for _ in range(r.randint(2, 9))
            ]
            return (
                {"action": r.choice(("create", "update")), "todos": todos},
                {"count": len(todos), "status": "updated", "todos": todos},
            )
        if name == "web_fetch":
            host, page = (t.ident().lower().replace("_", "-") for _ in range(2))
            url = f"https://{host}.dev/docs/{page}"
            return {"url": url}, {
                "url": url,
                "status_code": 200,
                "content": t.prose(int(min(60_000, r.lognormvariate(8.6, 0.9)))),
            }
        if name == "web_search":
            q = " ".join(t.words(r.randint(2, 6)))
            res = [
                {
                    "title": t.title(),
                    "url": f"https://{t.ident().lower().replace('_', '-')}.org/{t.ident().lower()}",
                    "snippet": t.sentence(10, 30),
                }
                for _ in range(r.randint(3, 10))
            ]
            return {"query": q}, {"query": q, "results": res}
        # python_check and anything else
        path = r.choice(p.paths)
        issues = [
            {
                "file": path,
                "line": r.randint(1, 500),
                "code": r.choice(("E501", "F401", "B008", "UP007")),
                "message": t.sentence(4, 10),
            }
            for _ in range(int(r.expovariate(1 / 3)))
        ]
        return {"paths": [path]}, {
            "clean": not issues,
            "issues": issues,
            "checks": ["ruff", "pyright"],
        }

    def _bash(self) -> tuple[dict[str, Any], Any]:
        r, t, p = self.r, self.t, self.project
        kind = r.choice(("pytest", "pytest", "git_status", "git_diff", "ls", "run", "rg"))
        rc = 0
        err = ""
        if kind == "pytest":
            cmd = f"uv run pytest -q {r.choice(p.paths) if r.random() < 0.5 else 'tests'}"
            color = r.random() < 0.3
            lines = []
            for _ in range(r.randint(2, 30)):
                dots = "".join(r.choices(".....F.s", k=r.randint(3, 40)))
                pct = r.randint(1, 100)
                line = f"tests/test_{t.ident().lower()}.py {dots}"
                lines.append(
                    f"\x1b[32m{line}\x1b[0m [{pct:3d}%]" if color else f"{line} [{pct:3d}%]"
                )
            if r.random() < 0.35:
                rc = 1
                lines.append("=" * 30 + " FAILURES " + "=" * 30)
                lines.append(t.code(r.randint(5, 40)))
                lines.append(f"E       AssertionError: {t.sentence(4, 12)}")
            passed, failed = r.randint(5, 900), rc * r.randint(1, 5)
            lines.append(f"{passed} passed, {failed} failed in {r.uniform(0.2, 90):.2f}s")
            out = "\n".join(lines)
        elif kind == "git_status":
            cmd = "git status --short"
            out = "\n".join(
                f"{r.choice((' M', '??', 'A ', ' D'))} {x}"
                for x in r.sample(p.paths, min(len(p.paths), r.randint(1, 12)))
            )
        elif kind == "git_diff":
            cmd = "git diff " + r.choice(p.paths)
            hunks = []
            for _ in range(r.randint(1, 6)):
                a = r.randint(1, 600)
                hunks.append(
                    f"@@ -{a},7 +{a},9 @@\n"
                    + "\n".join(
                        r.choice((" ", " ", "+", "-")) + ln
                        for ln in t.code(r.randint(4, 20)).split("\n")
                    )
                )
            out = f"diff --git a/x b/x\nindex {t.hexs(7)}..{t.hexs(7)} 100644\n" + "\n".join(hunks)
        elif kind == "ls":
            cmd = "ls -la " + r.choice(("src", "tests", "."))
            owner = p.working_dir.split("/")[2] if p.working_dir.count("/") > 2 else "user"
            months = ("Jan", "Mar", "Jun", "Sep")
            out = "\n".join(
                f"-rw-r--r--  1 {owner} staff {r.randint(80, 90000):>7} {r.choice(months)} "
                f"{r.randint(1, 28):>2} {r.randint(0, 23):02d}:{r.randint(0, 59):02d} "
                f"{x.rsplit('/', 1)[-1]}"
                for x in r.sample(p.paths, min(len(p.paths), r.randint(3, 30)))
            )
        elif kind == "rg":
            cmd = f"rg -n {t.ident().lower()} src"
            out = "\n".join(
                f"{r.choice(p.paths)}:{r.randint(1, 700)}:{t.code(1)}"
                for _ in range(r.randint(0, 40))
            )
        else:
            cmd = f"uv run python -m {t.ident().lower()} --{t.ident().lower().replace('_', '-')}"
            out = "\n".join(t.sentence(3, 12) for _ in range(r.randint(1, 40)))
            if r.random() < 0.2:
                rc = r.choice((1, 2, 127))
                err = (
                    "Traceback (most recent call last):\n"
                    + t.code(r.randint(3, 12))
                    + f"\nRuntimeError: {t.sentence(3, 9)}"
                )
        return {"command": cmd}, {"stdout": out, "stderr": err, "returncode": rc}

    def _new_tool_id(self) -> str:
        return "toolu_01" + self.t.b62(22)

    def _result_json(self, result: dict[str, Any]) -> str:
        """A tool result as the JSON string stored in transcript/tool_result content."""
        if self.sorted:
            return json.dumps(result, sort_keys=True, ensure_ascii=False)
        return json.dumps(result)

    def _maybe_compact(self) -> None:
        size = self.api_cum[-1] - self.api_cum[self.api_base]
        if size <= _COMPACT_LIMIT or not self.api_turn_starts:
            return
        new_base = self.api_turn_starts[-1]
        for ts in self.api_turn_starts:
            if ts > self.api_base and self.api_cum[-1] - self.api_cum[ts] <= _COMPACT_LIMIT * 0.35:
                new_base = ts
                break
        if new_base <= self.api_base:
            return
        before = len(self.api_plain) - self.api_base
        self.emit(
            "context:pre_compact",
            self.d(message_count=before + 1, token_count=size // 4, threshold=0.92),
            advance=(1, 20),
        )
        text = (
            "<conversation-summary>\n"
            + self.t.prose(self.r.randint(2500, 7000))
            + "\n</conversation-summary>"
        )
        self.summary_msg = json.dumps(
            {"role": "user", "content": [{"type": "text", "text": text}]},
            sort_keys=self.sorted,
            ensure_ascii=self.ascii,
        )
        self.api_base = new_base
        self.tick(3000, 25_000)
        self.emit(
            "context:post_compact",
            self.d(
                message_count=len(self.api_plain) - new_base + 2,
                token_count=(self.api_cum[-1] - self.api_cum[new_base]) // 4,
                removed_messages=new_base,
            ),
            advance=(1, 5),
        )

    def _llm_request(self, torn: bool) -> None:
        msgs, count = self._api_messages_json()
        if self.sorted:
            raw = {
                "max_tokens": self.max_tokens,
                "messages": _S_MSGS,
                "metadata": {"user_id": "[REDACTED:PII]"},
                "model": self.model,
                "stream": True,
                "system": _S_SYS,
                "tools": _S_TOOLS,
            }
            if self.thinking:
                raw["thinking"] = self.thinking_json
            payload = self.d(message_count=count, model=self.model, provider="anthropic", raw=raw)
        else:
            raw = {
                "model": self.model,
                "messages": _S_MSGS,
                "max_tokens": self.max_tokens,
                "system": _S_SYS,
                "tools": _S_TOOLS,
                "stream": True,
            }
            if self.thinking:
                raw["thinking"] = self.thinking_json
                raw["temperature"] = 1.0
            payload = {
                "provider": "anthropic",
                "model": self.model,
                "message_count": count,
                "raw": raw,
                "parent_id": self.parent_id,
            }
        if self.era != "legacy":
            payload["redaction"] = _REDACTION
        self.tick(5, 400)
        tpl = self._line("llm:request", payload, self.ns)
        line = _splice(
            tpl,
            {
                json.dumps(_S_MSGS): msgs,
                json.dumps(_S_SYS): self.system_json,
                json.dumps(_S_TOOLS): self.tools_json,
            },
        )
        self.llm_requests += 1
        if torn:
            cut = self.r.randrange(len(line) // 4, len(line) - 2)
            self.fh.write(line[:cut])
            n = len(line[:cut].encode("utf-8"))
            self.events_bytes += n
            self.own_bytes += n
            self.g.add_written(n)
            self.is_torn = True
            return
        self._write(line, self.ns)

    def _cost(self, inp: int, out: int, cw: int, cr: int) -> Any:
        units = inp * 500 + out * 2500 + cw * 625 + cr * 50  # 1e-8 USD
        if self.sorted:
            s = f"{units // 10**8}.{units % 10**8:08d}".rstrip("0")
            return s + "0" if s.endswith(".") else s
        return round(units / 1e8, 8)

    def _llm_response(self, blocks: list[dict[str, Any]], stop: str, duration_ms: int) -> None:
        r = self.r
        req_tokens = (self.api_cum[-1] - self.api_cum[self.api_base]) // 4 + len(
            self.system_json
        ) // 4
        cw = r.randint(200, 4000) if self.llm_requests > 1 else req_tokens
        cr = max(req_tokens - cw, 0)
        inp = r.randint(1, 12)
        out_tokens = sum(len(json.dumps(b)) for b in blocks) // 4 + r.randint(5, 120)
        cost = self._cost(inp, out_tokens, cw, cr)
        msg_id = "msg_01" + self.t.b62(22)
        if self.sorted:
            usage_raw = {
                "cache_creation": {"ephemeral_1h_input_tokens": 0, "ephemeral_5m_input_tokens": cw},
                "cache_creation_input_tokens": cw,
                "cache_read_input_tokens": cr,
                "inference_geo": "global",
                "input_tokens": inp,
                "output_tokens": out_tokens,
                "output_tokens_details": None,
                "server_tool_use": None,
                "service_tier": "standard",
            }
            raw = {
                "container": None,
                "content": blocks,
                "id": msg_id,
                "model": self.model,
                "role": "assistant",
                "stop_details": None,
                "stop_reason": stop,
                "stop_sequence": None,
                "type": "message",
                "usage": usage_raw,
            }
            reset = "[REDACTED:PII]T" + _iso_base(self.ns // _SEC_NS)[11:] + "Z"
            rl = {
                "input_tokens_limit": 20000000,
                "input_tokens_remaining": 20000000 - r.randint(0, 900000),
                "input_tokens_reset": reset,
                "output_tokens_limit": 4000000,
                "output_tokens_remaining": 4000000 - r.randint(0, 90000),
                "output_tokens_reset": reset,
                "requests_limit": 4000,
                "requests_remaining": r.randint(3900, 3999),
                "requests_reset": reset,
            }
            payload = self.d(
                duration_ms=duration_ms,
                model=self.model,
                provider="anthropic",
                rate_limits=rl,
                raw=raw,
                status="ok",
                usage={
                    "cache_read_tokens": cr,
                    "cache_write_tokens": cw,
                    "cost_usd": cost,
                    "input_tokens": inp,
                    "output_tokens": out_tokens,
                },
            )
        else:
            raw = {
                "id": msg_id,
                "type": "message",
                "role": "assistant",
                "model": self.model,
                "content": blocks,
                "stop_reason": stop,
                "stop_sequence": None,
                "usage": {
                    "input_tokens": inp,
                    "cache_creation_input_tokens": cw,
                    "cache_read_input_tokens": cr,
                    "output_tokens": out_tokens,
                },
            }
            payload = {
                "status": "ok",
                "duration_ms": duration_ms,
                "provider": "anthropic",
                "model": self.model,
                "usage": {
                    "input_tokens": inp,
                    "output_tokens": out_tokens,
                    "cache_read_tokens": cr,
                    "cache_write_tokens": cw,
                    "cost_usd": cost,
                },
                "raw": raw,
                "parent_id": self.parent_id,
            }
        self.emit("llm:response", payload, redact=self.era != "legacy", ns=self.ns)
        self.last_usage = {"input_tokens": inp, "output_tokens": out_tokens, "cost_usd": cost}

    def _assistant_round(
        self,
        final: bool,
        n_calls: int,
        pending_sub: _SubPlan | None,
        kill_at_tool: int | None,
        kill_in_request: bool,
        torn: bool,
    ) -> tuple[str, bool]:
        """One LLM call (+ its tool calls). Returns (final text, killed)."""
        r, t = self.r, self.t
        self._maybe_compact()
        self.emit(
            "provider:request",
            self.d(iteration=self.iteration, provider="anthropic"),
            redact=True,
            advance=(0.5, 4),
        )
        if self.sorted and self.iteration == 1:
            self.emit(
                "mentions:resolved",
                self.d(mentions=["@AGENTS.md"], resolved_count=1),
                advance=(2, 15),
            )
        if self.sorted and r.random() < 0.5:
            self.emit(
                "provider:concurrency",
                self.d(
                    active_requests=r.randint(1, 3),
                    max_concurrent=5,
                    model=self.model,
                    process_id=self.pid,
                    provider="anthropic",
                    waiting_requests=0,
                ),
                advance=(100, 500),
            )
        if r.random() < 0.02:
            self.emit(
                "provider:error",
                self.d(
                    error={"type": "overloaded_error", "message": "Overloaded"},
                    provider="anthropic",
                    retryable=True,
                ),
                advance=(300, 3000),
            )
            self.emit(
                "provider:retry",
                self.d(
                    attempt=1, delay_seconds=2.0, provider="anthropic", reason="overloaded_error"
                ),
                advance=(2000, 2500),
            )
        self._llm_request(torn=torn and kill_in_request)
        if kill_in_request:
            return "", True
        start_ns = self.ns
        # -------- response blocks
        api_blocks: list[dict[str, Any]] = []  # anthropic API form (llm:response raw.content)
        tr_blocks: list[dict[str, Any]] = []  # transcript form
        tool_calls: list[tuple[str, str, dict[str, Any], Any]] = []
        thinking_text = None
        if self.thinking and r.random() < 0.75:
            thinking_text = t.prose(int(min(9000, r.lognormvariate(6.3, 0.8))), markdown=False)
            sig = t.signature()
            api_blocks.append(
                {"signature": sig, "thinking": thinking_text, "type": "thinking"}
                if self.sorted
                else {"type": "thinking", "thinking": thinking_text, "signature": sig}
            )
            tb: dict[str, Any] = {"type": "thinking", "thinking": thinking_text, "signature": sig}
            if self.era == "new":
                tb["visibility"] = "internal"
            tr_blocks.append(tb)
        text = ""
        if final:
            text = t.prose(int(min(14_000, r.lognormvariate(7.2, 0.8))))
        elif r.random() < 0.45:
            text = t.sentence(6, 24)
        if text:
            api_blocks.append(
                {"citations": None, "text": text, "type": "text"}
                if self.sorted
                else {"type": "text", "text": text}
            )
            tr_blocks.append({"type": "text", "text": text})
        if not final:
            for k in range(n_calls):
                if pending_sub is not None and k == 0:
                    name = "delegate"
                    inp: dict[str, Any] = {
                        "agent": pending_sub.agent,
                        "instruction": t.paragraph(1, 3),
                        "context_depth": r.choice(("none", "recent", "all")),
                    }
                else:
                    name = r.choices(
                        [n for n, _ in _TOOL_FREQ], weights=[w for _, w in _TOOL_FREQ]
                    )[0]
                    inp = {}
                tid = self._new_tool_id()
                tool_calls.append((tid, name, inp, None))
        # tool inputs for non-delegate calls are produced together with their outputs
        resolved: list[tuple[str, str, dict[str, Any], Any]] = []
        for tid, name, inp, _ in tool_calls:
            if name == "delegate":
                resolved.append((tid, name, inp, None))
            else:
                tin, tout = self._tool_call(name)
                resolved.append((tid, name, tin, tout))
        for tid, name, tin, _ in resolved:
            api_blocks.append(
                {"id": tid, "input": tin, "name": name, "type": "tool_use"}
                if self.sorted
                else {"type": "tool_use", "id": tid, "name": name, "input": tin}
            )
            tr_blocks.append({"type": "tool_call", "id": tid, "name": name, "input": tin})
        # -------- stream + response events
        req_id = t.uuid4()
        if self.sorted:
            for i, b in enumerate(api_blocks):
                extra = {"name": b["name"]} if b["type"] == "tool_use" else {}
                self.emit(
                    "llm:stream_block_start",
                    self.d(block_index=i, block_type=b["type"], request_id=req_id, **extra),
                    advance=(300, 2500),
                )
                self.emit(
                    "llm:stream_block_end",
                    self.d(block_index=i, block_type=b["type"], request_id=req_id, **extra),
                    advance=(20, 3000),
                )
        else:
            self.tick(800, 9000)
        duration = (self.ns - start_ns) // _MS_NS + r.randint(5, 60)
        self.tick(2, 20)
        self._llm_response(api_blocks, "end_turn" if final else "tool_use", duration)
        self.emit(
            "provider:response",
            self.d(
                iteration=self.iteration,
                provider="anthropic",
                stop_reason="end_turn" if final else "tool_use",
                usage=self.last_usage,
            ),
            advance=(0.2, 2),
        )
        total = len(api_blocks)
        for i, b in enumerate(api_blocks):
            btype = b["type"]
            self.emit(
                "content_block:start",
                self.d(block_index=i, block_type=btype, metadata=None, total_blocks=total),
                advance=(0.2, 3),
            )
            if not self.sorted and btype == "text":
                chunks = max(1, len(b["text"]) // 400)
                step = len(b["text"]) // chunks + 1
                for c in range(chunks):
                    self.emit(
                        "content_block:delta",
                        self.d(
                            block_index=i,
                            delta={
                                "type": "text_delta",
                                "text": b["text"][c * step : (c + 1) * step],
                            },
                        ),
                        advance=(5, 60),
                    )
            if btype == "thinking" and self.sorted:
                self.emit(
                    "thinking:final", self.d(block_index=i, text=b["thinking"]), advance=(0.1, 1)
                )
            if btype == "tool_use":
                block = {"id": b["id"], "input": b["input"], "name": b["name"], "type": "tool_call"}
            elif btype == "thinking":
                block = {"signature": b["signature"], "thinking": b["thinking"], "type": "thinking"}
            else:
                block = {"text": b["text"], "type": "text"}
            cbe = self.d(block=block, block_index=i, total_blocks=total)
            if i == total - 1:
                cbe["usage"] = {
                    "cache_creation_input_tokens": 0,
                    "cache_read_tokens": None,
                    "cache_write_tokens": 0,
                    **self.last_usage,
                    "reasoning_tokens": None,
                    "total_tokens": self.last_usage["input_tokens"]
                    + self.last_usage["output_tokens"],
                }
            self.emit("content_block:end", cbe, redact=True, advance=(0.2, 3))
        # -------- transcript assistant message
        amsg: dict[str, Any] = {"role": "assistant"}
        if (
            final
            and not tool_calls
            and len(tr_blocks) == 1
            and self.era in ("legacy", "old")
            and r.random() < 0.4
        ):
            amsg["content"] = text
        else:
            amsg["content"] = tr_blocks
        if resolved:
            amsg["tool_calls"] = [
                {"id": tid, "tool": name, "arguments": tin} for tid, name, tin, _ in resolved
            ]
        if thinking_text is not None and self.era == "old" and r.random() < 0.5:
            amsg["thinking_block"] = {
                "type": "thinking",
                "thinking": thinking_text,
                "signature": tr_blocks[0]["signature"],
            }
        self._tmsg(amsg)
        self._api({"role": "assistant", "content": api_blocks})
        # -------- tools
        results: list[dict[str, Any]] = []
        for k, (tid, name, tin, tout) in enumerate(resolved):
            self.emit(
                "tool:pre",
                self.d(tool_call_id=tid, tool_input=tin, tool_name=name),
                advance=(0.5, 5),
            )
            if kill_at_tool is not None and k == kill_at_tool:
                return "", True
            failed = False
            if name == "delegate":
                assert pending_sub is not None
                child = self._spawn_sub(pending_sub, tin["instruction"])
                tout = {
                    "response": child.final_text,
                    "session_id": child.sid,
                    "status": "success",
                    "turn_count": child.turns,
                }
                self.ns = max(self.ns, child.end_of_first_run_ns)
            else:
                self.tick(30, 4000 if name != "bash" else 40_000)
                failed = r.random() < 0.03
            if failed:
                errmsg = f"{name} failed: {t.sentence(3, 10, ascii_only=True)}"
                self.emit(
                    "tool:error",
                    self.d(
                        error={"message": errmsg, "type": "ToolExecutionError"},
                        tool_call_id=tid,
                        tool_name=name,
                    ),
                    advance=(0.5, 5),
                )
                result: dict[str, Any] = {"error": errmsg, "output": None, "success": False}
            else:
                result = (
                    {"error": None, "output": tout, "success": True}
                    if self.sorted
                    else {"success": True, "output": tout, "error": None}
                )
                self.emit(
                    "tool:post",
                    self.d(result=result, tool_call_id=tid, tool_input=tin, tool_name=name),
                    advance=(0.5, 5),
                )
            content = self._result_json(result)
            self._tmsg({"role": "tool", "name": name, "tool_call_id": tid, "content": content})
            blk: dict[str, Any] = {"type": "tool_result", "tool_use_id": tid, "content": content}
            if failed:
                blk["is_error"] = True
            results.append(blk)
            self.saved = (len(self.tlines), self.turns + 1, True, self.ns)
        if results:
            self._api({"role": "user", "content": results})
        return text, False

    def _spawn_sub(self, plan: _SubPlan, instruction: str) -> _Session:
        g = self.g
        r = self.r
        agent_slug = re.sub(r"-{2,}", "-", re.sub(r"[^a-z0-9]+", "-", plan.agent.lower())).strip(
            "-"
        )
        root = self
        while root.parent is not None:
            root = root.parent
        trace_id = root.sid.replace("-", "") if "_" not in root.sid else root.sid
        child_span = self.t.hexs(16)
        if self.era == "legacy" or (self.era == "old" and r.random() < 0.35):
            sid = (
                f"{self.sid}-{agent_slug}-{self.t.hexs(8)}"
                if r.random() < 0.5
                else f"{self.sid}-{child_span}_{agent_slug}"
            )
        else:
            m = re.match(r"^([0-9a-f]{16})-([0-9a-f]{16})_", self.sid)
            if m:
                pspan = m.group(2)
            elif r.random() < 0.4 and re.fullmatch(r"[0-9a-f]{32}", trace_id):
                pspan = trace_id[8:24]
            else:
                pspan = "0" * 16
            sid = f"{pspan}-{child_span}_{agent_slug}"
        child = _Session(
            g,
            kind="sub",
            sid=sid,
            project=self.project,
            era=self.era,
            bundle_version=self.bundle.version,
            start_ns=self.ns + r.randint(2, 40) * _MS_NS,
            weight=plan.weight,
            resumes=plan.resumes,
            parent=self,
            agent=plan.agent,
            instruction=instruction,
        )
        child.trace_id = trace_id
        child.child_span = child_span
        self.emit(
            "delegate:agent_spawned",
            self.d(agent=plan.agent, sub_session_id=sid, context_depth="recent"),
            advance=(1, 20),
        )
        child.run()
        self.ns = max(self.ns, child.end_of_first_run_ns) + r.randint(2, 50) * _MS_NS
        self.emit(
            "delegate:agent_completed",
            self.d(agent=plan.agent, sub_session_id=sid, status="success", turn_count=child.turns),
            ns=self.ns,
        )
        return child

    def _turn(self, kill: bool = False) -> None:
        r = self.r
        self.iteration = 0
        # user message (+ injected reminder in the newest era)
        if self.kind == "sub" and self.turns == 0 and self.instruction:
            prompt = self.instruction
        else:
            prompt = self._user_prompt()
        if self.turns:
            self.tick(4000, 600_000)  # the user reads, thinks, types
        else:
            self.tick(500, 20_000)
        self.api_turn_starts.append(len(self.api_plain))
        if self.era == "new":
            rem = self._reminder()
            self._tmsg({"role": "user", "content": rem}, reminder=True)
            self._api({"role": "user", "content": [{"type": "text", "text": rem}]})
        self._tmsg({"role": "user", "content": prompt})
        self._api({"role": "user", "content": [{"type": "text", "text": prompt}]})
        self.emit("prompt:submit", self.d(prompt=prompt), redact=True, ns=self.ns)
        self.emit("execution:start", self.d(prompt=prompt), advance=(1, 6))
        rounds = min(int(r.expovariate(1 / 3.2)), 30)
        # keep small sessions near their size: no more LLM calls than the budget has room for
        per_call = 1.15 * (self.req_base + self.api_cum[-1] - self.api_cum[self.api_base])
        rounds = min(rounds, max(0, int((self.budget - self.own_bytes) / per_call) - 1))
        sub = self.pending_subs.pop(0) if self.pending_subs else None
        if sub is not None:
            rounds = max(rounds, 1)
        # kill -9 somewhere in this turn; in the very first turn: before any tool:post (so
        # only events.jsonl exists, as a real kill before the first save leaves it)
        kill_round = (0 if self.turns == 0 else r.randint(0, rounds)) if kill else -1
        text = ""
        for it in range(rounds + 1):
            self.iteration = it + 1
            final = it == rounds
            n_calls = 1 if r.random() < 0.8 else r.randint(2, 4)
            kill_here = it == kill_round
            kill_in_request = kill_here and (final or self.torn or r.random() < 0.4)
            kill_at_tool = (
                (r.randrange(n_calls) if self.turns else 0)
                if kill_here and not kill_in_request
                else None
            )
            text, dead = self._assistant_round(
                final, n_calls, sub if it == 0 else None, kill_at_tool, kill_in_request, self.torn
            )
            if dead:
                return
        self.emit("execution:end", self.d(response=text, status="completed"), advance=(1, 10))
        self.emit(
            "orchestrator:complete",
            self.d(orchestrator="loop-streaming", status="success", turn_count=self.turns + 1),
            advance=(0.5, 3),
        )
        self.emit(
            "prompt:complete", self.d(prompt=prompt, response=text), redact=True, advance=(1, 12)
        )
        self.turns += 1
        self.final_text = text
        self.saved = (len(self.tlines), self.turns, False, self.ns)
        self.turn_marks.append(
            (
                len(self.tlines),
                len(self.api_plain),
                self._last_msg_ns(),
                self.events_bytes,
                self.nlines,
            )
        )
        self.turn_end_bytes.append(self.events_bytes)
        if self.turns == 1 and self.kind == "top" and self.era != "legacy" and r.random() < 0.6:
            self.tick(800, 4000)
            self.name = (self.t.title(), self.t.sentence(8, 24, ascii_only=True), self.ns)

    def _last_msg_ns(self) -> int:
        # the transcript timestamp (ms precision) of the last message of the turn
        return (self._msg_ns_last // _MS_NS) * _MS_NS

    # ------------------------------------------------------------------ forks --------------
    def _copy_parent_events(self, parent: _Session, n_turn: int) -> None:
        cutoff_ns = parent.turn_marks[n_turn - 1][2]
        old = f'"session_id": {json.dumps(parent.sid)}'
        new = f'"session_id": {json.dumps(self.sid)}'
        tail_add = ', "parent_session_id": ' + json.dumps(parent.sid) + "}\n"
        ts_arr = parent.ts_arr
        with open(parent.dir / "events.jsonl", encoding="utf-8", newline="\n") as src:
            for i, line in enumerate(src):
                if not line.endswith("\n"):
                    break  # torn last line: json.loads fails, the fork skips it
                ns = ts_arr[i]
                if (ns // 1000) * 1000 > cutoff_ns:
                    continue
                out = line.replace(old, new, 1)[:-2] + tail_add
                self._write(out, ns)
                self.copied_lines += 1

    # ------------------------------------------------------------------ main ----------------
    def run(self) -> None:
        g = self.g
        self.budget = g.claim(self.weight)
        g.active.append(self)
        self.dir.mkdir(parents=True, exist_ok=True)
        try:
            with open(
                self.dir / "events.jsonl", "w", encoding="utf-8", newline="\n", buffering=1 << 20
            ) as fh:
                self.fh = fh
                self._run_events()
            self.fh = None
        finally:
            g.active.remove(self)
        self._write_files()

    def _run_events(self) -> None:
        r = self.r
        if self.kind == "fork":
            self._prepare_fork()
        else:
            self._setup_prompts()
            self.created_ns = self.ns
            self._msg_ns_last = self.ns
            self._start_group(resume=False)
        resume_at = sorted(r.uniform(0.25, 0.85) for _ in range(self.resumes_planned))
        early_kill = self.killed and not self.pending_subs and r.random() < 0.3
        self._first_run_end = 0
        last_turn_bytes = 0.0
        while not early_kill:
            if (
                self.turns_own() > 0
                and not self.pending_subs
                and (self.own_bytes + 0.5 * last_turn_bytes >= self.budget)
            ):
                break
            if self.turns_own() >= 400:
                break
            before = self.own_bytes
            self._turn()
            last_turn_bytes = self.own_bytes - before
            if resume_at and self.own_bytes >= self.budget * resume_at[0]:
                resume_at.pop(0)
                self._resume_gap()
        while resume_at:  # budget reached before the planned resume points: resume anyway
            resume_at.pop(0)
            self._resume_gap()
        if self.killed:
            self._turn(kill=True)
        else:
            self._end_group()
        # when the parent's delegate call returns (a sub-session's later resumes happen after it)
        self.end_of_first_run_ns = self._first_run_end if self.resumes_done else self.ns

    def turns_own(self) -> int:
        return self.turns - (self.forked_from_turn or 0)

    def _resume_gap(self) -> None:
        r = self.r
        self._end_group()
        if self.kind == "sub" and not self.resumes_done:
            self._first_run_end = self.ns
        if r.random() < 0.7:
            self.tick(60_000, 3 * 86_400_000)  # a minute to 3 days later
        else:
            self.tick(3_600_000, 20 * 86_400_000)
        self.resumes_done += 1
        self._start_group(resume=True)
        self.last_updated_ns = self.ns
        # at least one turn after a resume
        self._turn()

    def _prepare_fork(self) -> None:
        parent = self.fork_of
        assert parent is not None
        r = self.r
        marks = parent.turn_marks
        own_parent_turns = len(marks)
        if own_parent_turns == 0:
            raise RuntimeError("fork parent without completed turns")
        cands = [i + 1 for i, m in enumerate(marks) if m[3] <= 0.85 * self.budget] or [1]
        n_turn = r.choice(cands)
        n_tl, n_api, cutoff_ns, _, _ = marks[n_turn - 1]
        self.forked_from_turn = n_turn
        self.turns = n_turn
        # forked_at: some time after turn N, possibly after the parent's end
        lo = cutoff_ns + 30 * _SEC_NS
        hi = max(lo + _SEC_NS, parent.ns + 2 * _DAY_NS)
        self.ns = r.randrange(lo, hi)
        self.forked_at_ns = self.ns
        self.created_ns = self.ns
        self._copy_parent_events(parent, n_turn)
        self.ns = max(self.ns, self.forked_at_ns)
        # conversation state up to turn N
        self.tlines = parent.tlines[:n_tl]
        self.seq = parent.seq_at(n_tl)
        self.api_plain = parent.api_plain[:n_api]
        self.api_cc = parent.api_cc[:n_api]
        self.api_cum = parent.api_cum[: n_api + 1]
        self.api_turn_starts = [x for x in parent.api_turn_starts if x < n_api]
        self.api_base = 0
        self.summary_msg = None
        self.saved = (len(self.tlines), self.turns, False, self.ns)
        self._msg_ns_last = self.ns
        self.tick(30_000, 4 * 3_600_000)
        self._setup_prompts()
        self._start_group(resume=True)

    def seq_at(self, n_tl: int) -> int:
        return n_tl  # _seq numbers transcript lines 0..n-1 in the newest era

    def release_fork_state(self) -> None:
        self.api_plain = []
        self.api_cc = []
        self.api_cum = [0]
        self.tlines = []
        self.ts_arr = array("q")

    # ------------------------------------------------------------------ files ---------------
    def _metadata(self, n_turns: int, incremental: bool) -> dict[str, Any]:
        created = _ts_us(self.created_ns)
        if self.kind == "fork":
            parent = self.fork_of
            assert parent is not None
            return {
                "session_id": self.sid,
                "parent_id": parent.sid,
                "forked_from_turn": self.forked_from_turn,
                "forked_at": _ts_us(self.forked_at_ns),
                "created": created,
                "turn_count": n_turns,
                "bundle": parent.meta_bundle(),
                "model": self.model,
            }
        if self.kind == "sub":
            assert self.parent is not None
            agent_cfg = self.bundle.agents.get(self.agent or "", {})
            meta: dict[str, Any] = {
                "session_id": self.sid,
                "parent_id": self.parent.sid,
                "trace_id": self.trace_id,
                "agent_name": self.agent,
                "child_span": self.child_span,
                "created": created,
                "config": {
                    "session": {
                        "orchestrator": {
                            "module": "loop-streaming",
                            "config": {"max_iterations": 40},
                        },
                        "context": {"module": "context-simple", "config": {"max_tokens": 200000}},
                    },
                    "providers": [
                        {
                            "module": "provider-anthropic",
                            "config": {
                                "api_key": "[REDACTED:SECRET]",
                                "default_model": self.model,
                                "priority": 1,
                            },
                        }
                    ],
                    "tools": [
                        {"module": f"tool-{x.split('_')[0]}"} for x in agent_cfg.get("tools", [])
                    ],
                    "hooks": [{"module": "hooks-logging", "config": {"mode": "session-only"}}],
                },
                "agent_overlay": {
                    "description": agent_cfg.get("description", ""),
                    "tools": agent_cfg.get("tools", []),
                    "meta": agent_cfg.get("meta", {}),
                },
                "turn_count": n_turns,
                "bundle_context": {
                    "bundle": self.parent.meta_bundle() or "foundation",
                    "module_paths": [
                        f"~/.amplifier/cache/modules/{m}"
                        for m in ("loop-streaming", "context-simple", "provider-anthropic")
                    ],
                    "mention_mappings": {"foundation": "~/.amplifier/cache/bundles/foundation"},
                },
                "self_delegation_depth": 0 if self.parent.kind != "sub" else 1,
                "working_dir": self.project.working_dir,
            }
            if self.last_updated_ns is not None:
                meta["last_updated"] = _ts_us(self.saved[3] if self.saved else self.last_updated_ns)
            return meta
        meta = {"session_id": self.sid, "created": created}
        if self.era == "legacy":
            meta["profile"] = self.r.choice(("dev", "default", "full"))
            meta["model"] = self.model
            meta["turn_count"] = n_turns
            return meta
        meta["bundle"] = self.meta_bundle()
        meta["model"] = self.model
        meta["turn_count"] = n_turns
        if incremental:
            meta["incremental"] = True
        meta["working_dir"] = self.project.working_dir
        if self.name is not None:
            nm, desc, ns = self.name
            meta["name"] = nm
            meta["name_generated_at"] = _ts_us(ns)
            meta["description"] = desc
            meta["description_updated_at"] = _ts_us(ns)
        if self.last_updated_ns is not None:
            meta["last_updated"] = _ts_us(self.saved[3] if self.saved else self.last_updated_ns)
        return meta

    def meta_bundle(self) -> str | None:
        if self.era == "legacy":
            return None
        b = self.project.bundle
        if self.era == "old" and self.bundle.version == 0:
            return b.split(":", 1)[1]
        return b

    def _write_files(self) -> None:
        g = self.g
        transcript_bytes = metadata_bytes = other_bytes = 0
        files = 1
        if self.saved is not None:
            n_tl, n_turns, incremental, _ = self.saved
            body = "\n".join(self.tlines[:n_tl]) + "\n" if n_tl else ""
            data = body.encode("utf-8")
            (self.dir / "transcript.jsonl").write_bytes(data)
            transcript_bytes = len(data)
            meta = json.dumps(
                self._metadata(n_turns, incremental), indent=2, ensure_ascii=False
            ).encode("utf-8")
            (self.dir / "metadata.json").write_bytes(meta)
            metadata_bytes = len(meta)
            files += 2
        if self.era == "legacy" and self.kind == "top":
            prof = (
                "---\nprofile:\n  name: dev\n  extends: base\n---\n\n"
                + self.t.prose(800, ascii_only=True)
                + "\n"
            ).encode("utf-8")
            (self.dir / "profile.md").write_bytes(prof)
            other_bytes = len(prof)
            files += 1
        g.add_written(transcript_bytes + metadata_bytes + other_bytes)
        g.files += files
        g.lines += self.nlines
        g.records.append(
            SessionRecord(
                session_id=self.sid,
                kind=self.kind,
                path=self.dir,
                parent_id=self.lineage_parent,
                era=self.era,
                turns=self.saved[1] if self.saved else 0,
                llm_requests=self.llm_requests,
                resumes=self.resumes_done,
                killed=self.killed,
                torn=self.is_torn,
                forked_from_turn=self.forked_from_turn,
                copied_event_lines=self.copied_lines,
                events_bytes=self.events_bytes,
                transcript_bytes=transcript_bytes,
                metadata_bytes=metadata_bytes,
                other_bytes=other_bytes,
                budget_bytes=int(self.budget),
                turn_end_bytes=list(self.turn_end_bytes),
            )
        )


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------


def generate(
    out_dir: Path,
    sessions: int,
    target_bytes: int,
    seed: int,
    layout: str = "projects",
    *,
    torn: bool = False,
    ensure_ascii: bool = True,
    progress: Callable[[int], None] | None = None,
) -> GenerationSummary:
    """Write ``sessions`` realistic Amplifier session folders of about ``target_bytes`` in total.

    ``out_dir`` must not already contain ``projects/`` or ``sessions/``. Deterministic for a
    given (sessions, target_bytes, seed, layout, torn, ensure_ascii). ``torn`` leaves a torn
    (unterminated) last line in some killed sessions; ``ensure_ascii=False`` writes events
    lines with raw UTF-8 like the real hooks-logging module. ``progress`` is called with the
    number of bytes written at each step.
    """
    out = Path(out_dir)
    for sub in ("projects", "sessions"):
        if (out / sub).exists():
            raise FileExistsError(f"{out / sub} already exists")
    out.mkdir(parents=True, exist_ok=True)
    gen = _Generator(out, sessions, int(target_bytes), seed, layout, torn, ensure_ascii, progress)
    return gen.run()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "out_dir", type=Path, help="output directory (projects/ or sessions/ are created in it)"
    )
    ap.add_argument(
        "--sessions",
        type=int,
        required=True,
        help="number of session folders (incl. forks and sub-sessions)",
    )
    ap.add_argument(
        "--target-bytes",
        required=True,
        help="total size, e.g. 500M, 1G, 2.5GiB, 12000000 (binary units)",
    )
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--layout", choices=("projects", "legacy"), default="projects")
    ap.add_argument(
        "--torn", action="store_true", help="leave a torn last line in some killed sessions"
    )
    ap.add_argument(
        "--raw-unicode",
        action="store_true",
        help="write events lines with ensure_ascii=False (as hooks-logging really does)",
    )
    ap.add_argument(
        "--overwrite", action="store_true", help="delete OUT/projects and OUT/sessions first"
    )
    ap.add_argument("--quiet", action="store_true", help="no progress bar")
    args = ap.parse_args(argv)
    try:
        target = parse_size(args.target_bytes)
    except ValueError as e:
        ap.error(str(e))
    if args.overwrite:
        for sub in ("projects", "sessions"):
            shutil.rmtree(args.out_dir / sub, ignore_errors=True)
    progress_cb: Callable[[int], None] | None = None
    bar: Any = None
    if not args.quiet and sys.stderr.isatty():
        try:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                DownloadColumn,
                Progress,
                TimeElapsedColumn,
                TransferSpeedColumn,
            )

            bar = Progress(
                "[progress.description]{task.description}",
                BarColumn(),
                DownloadColumn(),
                TransferSpeedColumn(),
                TimeElapsedColumn(),
                console=Console(stderr=True),
                transient=True,
            )
            task = bar.add_task("generating", total=target)
            pending = [0]

            def progress_cb(n: int) -> None:
                pending[0] += n
                if pending[0] >= 8 << 20:
                    bar.advance(task, pending[0])
                    pending[0] = 0
        except ImportError:
            bar = None
    try:
        if bar is not None:
            with bar:
                summary = generate(
                    args.out_dir,
                    args.sessions,
                    target,
                    args.seed,
                    args.layout,
                    torn=args.torn,
                    ensure_ascii=not args.raw_unicode,
                    progress=progress_cb,
                )
        else:
            summary = generate(
                args.out_dir,
                args.sessions,
                target,
                args.seed,
                args.layout,
                torn=args.torn,
                ensure_ascii=not args.raw_unicode,
            )
    except FileExistsError as e:
        print(f"error: {e} (use --overwrite)", file=sys.stderr)
        return 2
    print(summary.format())
    return 0


if __name__ == "__main__":
    sys.exit(main())
