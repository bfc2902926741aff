"""Operability shared by every service: ``/healthz``, ``/readyz`` and Prometheus ``/metrics``."""
