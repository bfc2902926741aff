"""Operability shared by every service: ``/healthz``, ``/readyz``, Prometheus ``/metrics`` and
the production check of a public address. The services import this package, never each other."""
