"""Keep a run under a provider's requests-per-minute and tokens-per-minute quotas.

Each quota is a token bucket that refills smoothly. The bucket holds about one second's worth, so requests
are paced rather than burst: providers enforce their per-minute limits over shorter periods too. The refill
rate is ``limit / 61`` so that a full bucket plus sixty seconds of refill never exceeds ``limit``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable


class _Bucket:
    def __init__(self, per_minute: int, clock: Callable[[], float]):
        self.rate = per_minute / 61.0  # per second
        self.capacity = max(1.0, self.rate)
        self.level = self.capacity
        self.clock = clock
        self.stamp = clock()

    def wait_for(self, cost: float) -> float:
        """Seconds until ``cost`` may be spent (a cost above the capacity waits for a full bucket)."""
        now = self.clock()
        self.level = min(self.capacity, self.level + (now - self.stamp) * self.rate)
        self.stamp = now
        need = min(cost, self.capacity)
        # A refill computed as exactly `need` can land a rounding error short of it: that is not a wait.
        return 0.0 if self.level >= need - 1e-9 else (need - self.level) / self.rate

    def spend(self, cost: float) -> None:
        self.level -= cost  # may go negative: a large request is paid back before the next one


class RateLimiter:
    """``await limiter.acquire(tokens)`` before each request; waiters are served in arrival order."""

    def __init__(self, rpm: int | None = None, tpm: int | None = None, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep):
        self._requests = _Bucket(rpm, clock) if rpm else None
        self._tokens = _Bucket(tpm, clock) if tpm else None
        self._sleep = sleep  # injectable with ``clock``, so pacing is tested without waiting
        self._lock = asyncio.Lock()

    async def acquire(self, tokens: int = 0) -> None:
        """Wait until one more request of about ``tokens`` tokens fits both quotas, then count it."""
        async with self._lock:
            while True:
                delay = max(
                    self._requests.wait_for(1) if self._requests else 0.0,
                    self._tokens.wait_for(tokens) if self._tokens else 0.0,
                )
                if delay <= 0:
                    break
                await self._sleep(delay)
            if self._requests:
                self._requests.spend(1)
            if self._tokens:
                self._tokens.spend(tokens)


def make_limiter(rpm: int | None, tpm: int | None) -> RateLimiter | None:
    """A limiter, or ``None`` when no quota is set (so the hot path costs nothing)."""
    return RateLimiter(rpm, tpm) if (rpm or tpm) else None
