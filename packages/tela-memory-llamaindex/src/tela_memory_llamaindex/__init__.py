"""Tela Memory for llamaindex (filled by its own issue)."""
