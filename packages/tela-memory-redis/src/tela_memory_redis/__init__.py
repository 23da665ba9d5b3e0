"""Tela Memory for redis (filled by its own issue)."""
