"""Tela Memory for qdrant (filled by its own issue)."""
