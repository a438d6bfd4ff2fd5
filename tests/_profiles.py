"""The hypothesis profiles of tests/ and property_tests/ (``HYPOTHESIS_PROFILE``).

ci (the default): the same 60 examples on every run (derandomized), so a red CI
reproduces; dev (200) and nightly (5,000) draw new ones, and a failure they find
becomes a unit test.
"""

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", max_examples=200, deadline=None)
settings.register_profile(
    "nightly", max_examples=5000, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
