"""Sessions: conversations that persist themselves, streamed replies included."""

from tela_memory.session.context import ContextPolicyLike, SelectsContext, SessionContext
from tela_memory.session.lock import SessionBusyError
from tela_memory.session.session import Content, Session
from tela_memory.session.writer import FlushPolicy

__all__ = [
    "Content",
    "ContextPolicyLike",
    "FlushPolicy",
    "SelectsContext",
    "Session",
    "SessionBusyError",
    "SessionContext",
]
