"""The broker's HTTP API: the platform API under /v1, the admin API, the bank callback."""
