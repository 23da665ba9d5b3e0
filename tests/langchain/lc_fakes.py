"""LangChain's own fake chat model, made able to take tools and to record what it was sent."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatResult
from langchain_core.runnables import Runnable
from pydantic import Field


class ScriptedChatModel(GenericFakeChatModel):
    """Replies with the scripted messages in order; ``seen`` holds every request's messages."""

    seen: list[list[BaseMessage]] = Field(default_factory=list)
    disable_streaming: bool = True

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> Runnable[Any, BaseMessage]:
        return self

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        self.seen.append(list(messages))
        return super()._generate(messages, stop=stop, run_manager=run_manager, **kwargs)


def scripted(*replies: AIMessage | str) -> ScriptedChatModel:
    items: Iterator[AIMessage] = iter(
        r if isinstance(r, AIMessage) else AIMessage(r) for r in replies
    )
    return ScriptedChatModel(messages=items)


def call(name: str, call_id: str, **args: Any) -> AIMessage:
    """An assistant message calling one tool."""
    return AIMessage("", tool_calls=[{"name": name, "args": args, "id": call_id}])
