"""Role mapping per provider family, in one place.

Providers disagree on roles: OpenAI has ``developer`` beside ``system``, most servers that
speak the OpenAI API (vLLM, Ollama, LM Studio ...) only know ``system``; Anthropic and Gemini
take the system prompt outside the message list and carry tool results in user turns; Gemini
calls the assistant ``model``; OpenAI tool messages cannot hold images. Every converter (the
built-in OpenAI-compatible client, the LangChain and LlamaIndex adapters, the format codecs)
asks :func:`role_map` instead of deciding for itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from tela_memory.errors import InvalidMessageError
from tela_memory.messages import Message, Role


class ProviderFamily(StrEnum):
    """Families of chat APIs that share role rules."""

    OPENAI = "openai"
    """OpenAI's own API: ``developer`` is a real role."""
    OPENAI_COMPATIBLE = "openai_compatible"
    """Servers speaking the OpenAI chat API without ``developer`` (vLLM, Ollama, LM Studio)."""
    ANTHROPIC = "anthropic"
    GEMINI = "gemini"


@dataclass(frozen=True, slots=True)
class RoleMap:
    """How one provider family spells each role.

    Attributes:
        system: wire role for system messages, or ``None`` when they go to a separate
            top-level ``system`` parameter.
        developer: wire role for developer messages (``None``: top-level, like ``system``).
        user: wire role for user messages.
        assistant: wire role for assistant messages.
        tool: wire role of the message that carries tool results.
        tool_images: what to do with images inside tool results: ``inline`` (the tool turn
            holds them), ``follow_up_user`` (send them in a user message right after),
            ``drop`` (text only).
    """

    system: str | None
    developer: str | None
    user: str
    assistant: str
    tool: str
    tool_images: Literal["inline", "follow_up_user", "drop"]

    def wire_role(self, role: Role) -> str | None:
        """The provider's role name for ``role`` (``None``: sent outside the message list)."""
        match role:
            case Role.SYSTEM:
                return self.system
            case Role.DEVELOPER:
                return self.developer
            case Role.USER:
                return self.user
            case Role.ASSISTANT:
                return self.assistant
            case Role.TOOL:
                return self.tool
        raise InvalidMessageError(f"unknown role {role!r}")  # pragma: no cover


_MAPS: dict[ProviderFamily, RoleMap] = {
    ProviderFamily.OPENAI: RoleMap(
        system="system",
        developer="developer",
        user="user",
        assistant="assistant",
        tool="tool",
        tool_images="follow_up_user",
    ),
    ProviderFamily.OPENAI_COMPATIBLE: RoleMap(
        system="system",
        developer="system",
        user="user",
        assistant="assistant",
        tool="tool",
        tool_images="follow_up_user",
    ),
    ProviderFamily.ANTHROPIC: RoleMap(
        system=None,
        developer=None,
        user="user",
        assistant="assistant",
        tool="user",
        tool_images="inline",
    ),
    ProviderFamily.GEMINI: RoleMap(
        system=None,
        developer=None,
        user="user",
        assistant="model",
        tool="user",
        tool_images="inline",
    ),
}


def role_map(family: ProviderFamily | str) -> RoleMap:
    """The role rules of a provider family (``"openai"``, ``"anthropic"`` ...)."""
    try:
        return _MAPS[ProviderFamily(family)]
    except ValueError as exc:
        known = ", ".join(f.value for f in ProviderFamily)
        raise InvalidMessageError(f"unknown provider family {family!r}; known: {known}") from exc


def adapt_roles(messages: Sequence[Message], family: ProviderFamily | str) -> list[Message]:
    """Rewrite roles a family does not have: ``developer`` becomes ``system`` where the
    family has no developer role (everything but OpenAI). Other messages are returned as is."""
    rules = role_map(family)
    if rules.developer == "developer":
        return list(messages)
    return [
        m.model_copy(update={"role": Role.SYSTEM}) if m.role is Role.DEVELOPER else m
        for m in messages
    ]


def family_for(provider: str | None) -> ProviderFamily:
    """Guess the family from a provider or class name (``"ChatAnthropic"``, ``"gemini"`` ...).

    Unknown names get :attr:`ProviderFamily.OPENAI_COMPATIBLE`, the safest common ground.
    """
    name = (provider or "").lower()
    if "anthropic" in name or "claude" in name or "bedrock" in name:
        return ProviderFamily.ANTHROPIC
    if "gemini" in name or "google" in name or "vertex" in name:
        return ProviderFamily.GEMINI
    if "azure" in name or name in {"openai", "chatopenai"} or name.startswith("openai"):
        return ProviderFamily.OPENAI
    return ProviderFamily.OPENAI_COMPATIBLE


__all__ = ["ProviderFamily", "RoleMap", "adapt_roles", "family_for", "role_map"]
