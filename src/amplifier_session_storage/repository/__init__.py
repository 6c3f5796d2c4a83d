"""The repository layer: the block DAG, session state, fsck and gc."""

from .maintenance import FsckReport, GcReport, fsck, gc, reachable
from .repo import ANY, Repository
from .state import PayloadRender, SessionState, fold, linearize

__all__ = [
    "ANY",
    "FsckReport",
    "GcReport",
    "PayloadRender",
    "Repository",
    "SessionState",
    "fold",
    "fsck",
    "gc",
    "linearize",
    "reachable",
]
