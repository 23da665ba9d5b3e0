"""Tela Memory recall index on Chroma."""
