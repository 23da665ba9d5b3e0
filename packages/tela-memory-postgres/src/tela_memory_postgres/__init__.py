"""Tela Memory on PostgreSQL."""
