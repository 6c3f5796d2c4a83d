"""Read-side views of a repository for people and scripts (what ``sessctl`` prints).

Library logic the CLI only calls: opening a local store, resolving ``SESSION[@REV]`` and hex
prefixes, a session's log (first parent or the whole DAG) and the git-style lanes that draw
forks, rewinds and merges, the message diff of two heads, store statistics, turn numbers and
a demo data set. Results are plain dataclasses or dicts with a JSON form, so the human and
the ``--json`` output carry the same facts.
"""

from .common import (
    GC_STATE_FILE,
    block_summary,
    human_size,
    init_store,
    iso_time,
    jsonable,
    message_text,
    new_session_id,
    open_store,
)
from .demo import DemoReport, build_demo, run_demo
from .edit import fork_session, rewind_session, turn_end
from .log import GraphRow, LogEntry, format_log, graph_layout, log, reflog
from .lookup import (
    MessageDiff,
    StoreStatus,
    Target,
    diff_heads,
    raw_object,
    read_verified,
    resolve_target,
    session_summary,
    show,
    show_block,
    split_rev,
    store_status,
)

__all__ = [
    "GC_STATE_FILE",
    "DemoReport",
    "GraphRow",
    "LogEntry",
    "MessageDiff",
    "StoreStatus",
    "Target",
    "block_summary",
    "build_demo",
    "diff_heads",
    "fork_session",
    "format_log",
    "graph_layout",
    "human_size",
    "init_store",
    "iso_time",
    "jsonable",
    "log",
    "message_text",
    "new_session_id",
    "open_store",
    "raw_object",
    "read_verified",
    "reflog",
    "resolve_target",
    "rewind_session",
    "run_demo",
    "session_summary",
    "show",
    "show_block",
    "split_rev",
    "store_status",
    "turn_end",
]
