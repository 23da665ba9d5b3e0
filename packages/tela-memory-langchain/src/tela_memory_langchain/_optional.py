"""Optional imports that fail with the ``pip install`` that fixes them."""

from __future__ import annotations

import importlib.util

from tela_memory.errors import MissingDependency

_EXTRAS = {"langgraph": "langgraph", "langchain": "agents"}


def require(module: str, extra: str | None = None) -> None:
    """Raise ``MissingDependency`` unless ``module`` can be imported."""
    if importlib.util.find_spec(module) is None:
        raise MissingDependency(module, f"langchain,{extra or _EXTRAS.get(module, module)}")
