"""The context engine: what enters the model's context window, under a hard token budget.

Compose a :class:`ContextPolicy` from parts (pinned prefix, recent window, importance pruning,
progressive summary, recall slot, memory pressure) and build a :class:`Context` (the messages
to send plus a report) from a list of messages, incrementally with a :class:`ContextBuilder`,
or from a store with a :class:`ContextEngine`.
"""

from tela_memory.context.budget import DEFAULT_FRACTIONS, Budget, TaskKind, classify_task
from tela_memory.context.builder import ContextBuilder
from tela_memory.context.engine import SUMMARY_KEY, ContextEngine
from tela_memory.context.errors import BrokenHistoryError, BudgetError
from tela_memory.context.parts import (
    Importance,
    PinnedPrefix,
    Pressure,
    Recall,
    RecallSource,
    RecentWindow,
    Summary,
)
from tela_memory.context.policy import ContextPolicy
from tela_memory.context.recall_slot import RecallerSlot
from tela_memory.context.report import (
    Context,
    ContextReport,
    Decision,
    MessageReport,
    PressureEvent,
    PressureLevel,
    Reason,
    prefix_hash,
)
from tela_memory.context.state import SummaryState
from tela_memory.context.summarize import (
    AsyncSummarizer,
    ExtractiveSummarizer,
    LLMSummarizer,
    Summarizer,
)
from tela_memory.context.truncate import truncate_message
from tela_memory.context.units import Unit, group

__all__ = [
    "DEFAULT_FRACTIONS",
    "SUMMARY_KEY",
    "AsyncSummarizer",
    "BrokenHistoryError",
    "Budget",
    "BudgetError",
    "Context",
    "ContextBuilder",
    "ContextEngine",
    "ContextPolicy",
    "ContextReport",
    "Decision",
    "ExtractiveSummarizer",
    "Importance",
    "LLMSummarizer",
    "MessageReport",
    "PinnedPrefix",
    "Pressure",
    "PressureEvent",
    "PressureLevel",
    "Reason",
    "Recall",
    "RecallSource",
    "RecallerSlot",
    "RecentWindow",
    "Summarizer",
    "Summary",
    "SummaryState",
    "TaskKind",
    "Unit",
    "classify_task",
    "group",
    "prefix_hash",
    "truncate_message",
]
