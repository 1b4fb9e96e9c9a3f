"""Hypothesis profiles for the fuzz suite: ``ci`` (when ``CI=true``: 2,000 examples per property,
derandomized so that a run is reproducible) and ``dev`` (300, random). ``HYPOTHESIS_PROFILE``
picks one explicitly."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

# Fixtures are set up once per test function, not per example: the properties seed a fixed data
# set once and every example runs against it (they never depend on state an example leaves).
_SHARED = {
    "deadline": None,
    "database": None,
    "suppress_health_check": [
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ],
}
settings.register_profile("ci", max_examples=2000, derandomize=True, print_blob=True, **_SHARED)
settings.register_profile("dev", max_examples=300, **_SHARED)
_CI = os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if _CI else "dev"))
