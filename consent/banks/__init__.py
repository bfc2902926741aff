"""Talking to banks over HTTP (never by importing them): discovery, OAuth, OBIE reads."""
