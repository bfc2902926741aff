"""Simulated banks (ASPSPs): a UK Open Banking v3.1.11 Account Information subset, OAuth 2.0
with PKCE, a consent approval page, card controls and a fraud engine that pushes signed events.

This package imports neither ``consent`` nor ``bot``: it is the far side of the trust boundary.
"""
