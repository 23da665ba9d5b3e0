"""Evaluation of recall on labelled conversation data (LoCoMo), without an LLM."""

from tela_memory.evaluation.locomo import Conversation, Question, load
from tela_memory.evaluation.runner import LocomoReport, Scores, run_locomo

__all__ = ["Conversation", "LocomoReport", "Question", "Scores", "load", "run_locomo"]
