"""Suite-wide settings: Hypothesis must not fail a property because a busy 2-core machine made
data generation slow (the properties themselves still run their full example counts)."""

from __future__ import annotations

from hypothesis import HealthCheck, settings

settings.register_profile("chatbank", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("chatbank")
