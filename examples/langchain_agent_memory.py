"""An agent with Tela's context middleware and LangGraph long-term memory.

``create_agent`` gets two pieces of Tela Memory:

* ``TelaContextMiddleware``: before each model call, the whole thread (read from the store)
  goes through the context engine: the system message stays pinned, older turns are folded
  into a summary, tool calls stay with their results, and the view fits the budget. Every turn
  is persisted, so the agent remembers across runs without a checkpointer.
* ``TelaStore``: a LangGraph ``BaseStore`` in the same SQLite file, which the tools use to
  save and search facts about the user across threads.

Both act for one user (``user_id="ada"``): her thread ids and namespaces are her own. One
middleware can also serve every user, each run naming its user with
``agent.invoke(..., context={"user_id": ...})``.

Offline by default (a scripted fake model); with OPENAI_API_KEY set and ``langchain-openai``
installed it uses a real model.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Sequence
from typing import Any

from langchain.agents import create_agent
from langchain.tools import ToolRuntime
from langchain_core.language_models import BaseChatModel
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.runnables import Runnable
from langchain_core.tools import tool

from tela_memory import open_store
from tela_memory.context.policy import ContextPolicy
from tela_memory.testing.embedders import HashEmbedder
from tela_memory.tokens import ApproxCounter
from tela_memory_langchain import TelaContextMiddleware, TelaStore


class ScriptedModel(GenericFakeChatModel):
    """LangChain's fake chat model, accepting tools (it replies from a script)."""

    disable_streaming: bool = True

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> Runnable[Any, Any]:
        return self


def chat_model() -> BaseChatModel:
    if os.environ.get("OPENAI_API_KEY"):
        try:
            from langchain.chat_models import init_chat_model

            return init_chat_model("openai:gpt-4o-mini")
        except ImportError:
            pass

    def use(name: str, call_id: str, **args: Any) -> AIMessage:
        return AIMessage("", tool_calls=[{"name": name, "args": args, "id": call_id}])

    script = [use("remember", "c1", fact="The user drinks green tea.")]
    script += [AIMessage("Noted: green tea.")]
    script += [AIMessage(f"Reply {i}: " + "lorem ipsum " * 20) for i in range(8)]
    script += [use("recall", "c2", query="what does the user drink"), AIMessage("Green tea!")]
    return ScriptedModel(messages=iter(script))


@tool
def remember(fact: str, runtime: ToolRuntime) -> str:
    """Save a fact about the user for later conversations."""
    assert runtime.store is not None
    runtime.store.put(("user", "facts"), uuid.uuid4().hex, {"text": fact})
    return "saved"


@tool
def recall(query: str, runtime: ToolRuntime) -> str:
    """Search the facts saved about the user."""
    assert runtime.store is not None
    found = runtime.store.search(("user", "facts"), query=query, limit=3)
    return "; ".join(item.value["text"] for item in found) or "nothing saved"


def main() -> None:
    thread = f"lc-agent-{uuid.uuid4().hex[:8]}"
    with open_store(os.environ.get("TELA_MEMORY_URL")) as store:
        # Ada's long-term memory: every namespace is inside her space.
        long_term = TelaStore.for_store(
            store, user_id="ada", index={"embed": HashEmbedder(64), "dims": 64, "fields": ["text"]}
        )
        middleware = TelaContextMiddleware(
            store, policy=ContextPolicy(400, counter=ApproxCounter()), user_id="ada"
        )
        agent = create_agent(
            chat_model(),
            tools=[remember, recall],
            system_prompt="You are a concise assistant. Use your tools to remember facts.",
            middleware=[middleware],
            store=long_term,
        )
        config = {"configurable": {"thread_id": thread}}
        questions = ["I only drink green tea, remember that."]
        questions += [f"Tell me something, part {i}." for i in range(8)]
        questions += ["What do I like to drink?"]
        for question in questions:
            # No checkpointer: each run passes only the new message; the middleware brings
            # the rest of the conversation back from the store.
            out = agent.invoke({"messages": [HumanMessage(question)]}, config=config)
            context = middleware.last_context(thread)
            assert context is not None
            stored = len(store.read(thread, user_id="ada"))
            print(
                f"user: {question}\n  assistant: {out['messages'][-1].text[:60]}\n"
                f"  model saw {len(context.messages)} messages ({stored} stored now), "
                f"{context.report.tokens_out}/{context.report.budget} tokens"
            )
        print("\nlong-term facts:", [i.value["text"] for i in long_term.search(("user",))])
        for item in long_term.search(("user", "facts")):
            long_term.delete(item.namespace, item.key)
        long_term.close()
        store.delete_thread(thread, user_id="ada")


if __name__ == "__main__":
    main()
