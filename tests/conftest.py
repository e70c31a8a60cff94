"""Shared test configuration.

Hypothesis profiles: `ci` (default) is derandomised with bounded examples so the default
run is fast and reproducible; `long` (SIMLOG_HYPOTHESIS_PROFILE=long) searches much more.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    derandomize=True,
    max_examples=40,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "long",
    max_examples=2000,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile(os.environ.get("SIMLOG_HYPOTHESIS_PROFILE", "ci"))
