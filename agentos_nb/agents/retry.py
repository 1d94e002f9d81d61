"""How a session retries a provider's transient failures. Its own module so that declaring a
VM type (`Pi(retry=...)`) imports nothing of the agent loop or pydantic-ai."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How transient provider failures (rate limits, overload, 5xx, network) are retried."""

    attempts: int = 4
    first_delay: float = 1.0
    max_delay: float = 30.0

    def delay(self, retry: int, retry_after: float | None) -> float:
        """Exponential backoff with jitter, or the provider's Retry-After when it is longer."""
        backoff = min(self.max_delay, self.first_delay * 2**retry) * (0.5 + random.random() / 2)
        return min(self.max_delay, max(backoff, retry_after or 0.0))
