"""Hypothesis profiles for property fault tests in your CI.

    # conftest.py
    from simlog.testing import register_profiles
    register_profiles()          # loads $SIMLOG_HYPOTHESIS_PROFILE, default simlog-ci

- `simlog-ci`: derandomised (the same examples on every run), `ci_examples` examples
  (default 5), no deadline (one example runs a whole cluster), no database.
- `simlog-long`: random search, `long_examples` examples (default 200), no deadline;
  failing examples are kept in hypothesis' database and tried first next time.

Both suppress the too_slow / data_too_large health checks and print the reproduction blob.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

CI_PROFILE = "simlog-ci"
LONG_PROFILE = "simlog-long"
PROFILE_ENV = "SIMLOG_HYPOTHESIS_PROFILE"
_SUPPRESS = [HealthCheck.too_slow, HealthCheck.data_too_large]


def register_profiles(ci_examples: int = 5, long_examples: int = 200,
                      load: bool = True) -> str | None:
    """Register `simlog-ci` and `simlog-long`; with `load`, load the one named by
    $SIMLOG_HYPOTHESIS_PROFILE (default simlog-ci; `ci`/`long` are read as those two, an
    unknown name is loaded as is). Returns the loaded profile's name."""
    base = settings.get_profile("default")  # hypothesis' own, not whatever is loaded
    settings.register_profile(CI_PROFILE, parent=base, derandomize=True, max_examples=ci_examples,
                              deadline=None, database=None, print_blob=True,
                              suppress_health_check=_SUPPRESS)
    settings.register_profile(LONG_PROFILE, parent=base, max_examples=long_examples, deadline=None,
                              print_blob=True, suppress_health_check=_SUPPRESS)
    if not load:
        return None
    name = os.environ.get(PROFILE_ENV) or CI_PROFILE
    name = {"ci": CI_PROFILE, "long": LONG_PROFILE}.get(name, name)
    settings.load_profile(name)
    return name
