"""Telegram handlers: flat async functions, one module per conversation."""
