"""The one backoff rule: exponential, capped, with jitter (so retries from many jobs spread out)."""
from __future__ import annotations

import random


def backoff_delay(attempt: int, base: float, cap: float) -> float:
    """Seconds to wait before retry number `attempt` (1 = the first retry)."""
    return min(cap, base * 2 ** min(max(0, attempt - 1), 30)) * random.uniform(0.5, 1.0)
