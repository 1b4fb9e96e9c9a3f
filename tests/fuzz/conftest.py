"""Hypothesis profiles for the fuzz suite: ``ci`` (when ``CI=true``: 2,000 examples per property,
derandomized so that every run tries the same examples) and ``dev`` (300, random). The
``HYPOTHESIS_PROFILE`` environment variable picks one explicitly."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, Phase, settings

# Fixtures are set up once per test function, not per example: a property seeds its data once and
# every example runs against it. No example database: a failure prints its example (and a
# @reproduce_failure blob), and the repository stays free of .hypothesis/.
_BASE = settings(
    deadline=None,
    database=None,
    phases=[Phase.explicit, Phase.generate, Phase.shrink],
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ],
)
settings.register_profile("ci", parent=_BASE, max_examples=2000, derandomize=True, print_blob=True)
settings.register_profile("dev", parent=_BASE, max_examples=300)
_CI = os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if _CI else "dev"))
