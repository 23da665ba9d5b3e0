"""The package surface: lazy exports and the error for a missing optional dependency."""

from __future__ import annotations

import pytest

import tela_memory_langchain
from tela_memory.errors import MissingDependency
from tela_memory_langchain._optional import require


def test_lazy_exports_resolve() -> None:
    for name in tela_memory_langchain.__all__:
        assert getattr(tela_memory_langchain, name) is not None
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        tela_memory_langchain.Nope  # noqa: B018


def test_missing_optional_dependency_says_what_to_install() -> None:
    with pytest.raises(MissingDependency, match=r'pip install "tela-memory\[langchain\]"'):
        require("no_such_module_for_tela")
