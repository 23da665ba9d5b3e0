"""Tela Memory for langchain (filled by its own issue)."""
