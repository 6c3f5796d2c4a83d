"""Tools that applications give their agents: SessionTool queries stored sessions."""

from .session_tool import SessionTool, SessionToolConfig

__all__ = ["SessionTool", "SessionToolConfig"]
