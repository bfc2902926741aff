"""Signed events from the banks (RFC 8417 SETs): verification and handling."""
