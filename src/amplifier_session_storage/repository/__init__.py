"""The repository layer: the block DAG, session state, fsck and gc."""

from .maintenance import FsckReport, GcReport, fsck, gc, reachable
from .repo import ANY, Repository
from .state import SessionState, fold, linearize

__all__ = [
    "ANY",
    "FsckReport",
    "GcReport",
    "Repository",
    "SessionState",
    "fold",
    "fsck",
    "gc",
    "linearize",
    "reachable",
]
