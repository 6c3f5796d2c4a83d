"""Amplifier's on-disk session format: import into the repository and exact export.

* :mod:`.format` -- line codecs for transcript.jsonl and metadata.json, timestamps, fork rules;
* :mod:`.dedup` -- events.jsonl and transcript.jsonl lines cut into a skeleton and shared
  blobs, nodes and runs (structural deduplication; docs/design-amplifier.md);
* :mod:`.reading`, :mod:`.compare`, :mod:`.importer` -- incremental, content-checked import
  of one session folder;
* :mod:`.render`, :mod:`.exporter` -- byte-identical export back to the Amplifier layout;
* :mod:`.session_info` -- the import state, metadata and fork rule a session's blocks hold;
* :mod:`.view` -- what readers show for imported blocks: the messages and event lines the
  stored skeletons stand for (:class:`PayloadRenderer`, for the CLI, SessionTool and
  SessionStateReader).

``SessionMigrator`` (``compat.migrator``) discovers folders and drives the importer. Library
calls for the CLI verbs: ``import`` -> ``SessionMigrator(storage, user).import_path(path)``;
``export`` -> :func:`export_session` (one session into a folder); ``archive`` ->
:func:`export_all` (every session under a root, in Amplifier's layout).
"""

from .dedup import BlobCache, EventCodec
from .exporter import ExportResult, export_all, export_path, export_session, render_lines
from .format import ForkRule, parse_ts_ns
from .importer import ImportOutcome, ImportWarning, SessionFiles, SessionImporter
from .session_info import OwnInfo, own_info
from .view import PayloadRenderer

__all__ = [
    "BlobCache",
    "EventCodec",
    "ExportResult",
    "ForkRule",
    "ImportOutcome",
    "ImportWarning",
    "OwnInfo",
    "PayloadRenderer",
    "SessionFiles",
    "SessionImporter",
    "export_all",
    "export_path",
    "export_session",
    "own_info",
    "parse_ts_ns",
    "render_lines",
]
