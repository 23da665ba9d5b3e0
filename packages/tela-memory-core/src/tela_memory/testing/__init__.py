"""Shared conformance suites and test helpers for backends (needs ``tela-memory-core[testing]``).

A new backend is done when its subclass of each suite passes against a real server.
"""

from tela_memory.testing.embedders import HashEmbedder
from tela_memory.testing.index_suite import IndexConformance
from tela_memory.testing.record_suite import FakeClock, RecordConformance, cas_increment_worker
from tela_memory.testing.store_suite import ChangeFeedConformance, StoreConformance

__all__ = [
    "ChangeFeedConformance",
    "FakeClock",
    "HashEmbedder",
    "IndexConformance",
    "RecordConformance",
    "StoreConformance",
    "cas_increment_worker",
]
