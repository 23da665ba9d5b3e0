"""Optional imports that fail with the ``pip install`` that fixes them."""

from __future__ import annotations

import importlib.util

from tela_memory.errors import MissingDependency


def require(module: str, extra: str = "langchain") -> None:
    """Raise ``MissingDependency`` unless ``module`` can be imported.

    The message names ``pip install "tela-memory[langchain]"``: the meta package's
    ``langchain`` extra brings ``tela-memory-langchain[agents]`` (langchain and langgraph).
    """
    if importlib.util.find_spec(module) is None:
        raise MissingDependency(module, extra)
