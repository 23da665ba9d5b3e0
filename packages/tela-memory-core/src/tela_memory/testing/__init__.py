"""Shared conformance suites and test helpers for backends (needs ``tela-memory-core[testing]``).

A new backend is done when its subclass of each suite passes against a real server.
"""

from tela_memory.testing.embedders import HashEmbedder
from tela_memory.testing.index_suite import IndexConformance
from tela_memory.testing.store_suite import StoreConformance

__all__ = ["HashEmbedder", "IndexConformance", "StoreConformance"]
