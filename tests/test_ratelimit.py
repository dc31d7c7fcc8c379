"""--rpm / --tpm pacing, on a fake clock: what is tested is the schedule, not how fast this machine is."""

from __future__ import annotations

import asyncio

import pytest

from synthqa.ratelimit import RateLimiter, make_limiter


class FakeTime:
    """A clock that only moves when the limiter sleeps."""

    def __init__(self) -> None:
        self.now = 0.0

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        await asyncio.sleep(0)


def schedule(limiter_args: dict, costs: list[int], time: FakeTime) -> list[float]:
    """The fake time at which each of ``costs`` (tokens per request) was let through, in order."""
    limiter = RateLimiter(**limiter_args, clock=time.clock, sleep=time.sleep)
    times: list[float] = []

    async def main() -> None:
        async def one(tokens: int) -> None:
            await limiter.acquire(tokens)
            times.append(time.now)

        await asyncio.gather(*(one(c) for c in costs))

    asyncio.run(main())
    return times


def in_any_minute(times: list[float], weights: list[int] | None = None) -> int:
    weights = weights or [1] * len(times)
    return max(sum(w for t, w in zip(times, weights) if start <= t < start + 60) for start in times)


def test_rpm_paces_requests_after_a_burst_of_about_one_second():
    time = FakeTime()
    times = schedule({"rpm": 240}, [0] * 20, time)  # 240/61 ≈ 3.93 a second
    assert sum(t == 0 for t in times) == 3  # the bucket holds ~one second's worth
    gaps = [b - a for a, b in zip(times[3:], times[4:])]
    assert all(g == pytest.approx(61 / 240) for g in gaps)


@pytest.mark.parametrize("rpm", [7, 60, 500])
def test_no_sixty_seconds_ever_hold_more_than_rpm_requests(rpm):
    time = FakeTime()
    times = schedule({"rpm": rpm}, [0] * (rpm * 3), time)
    assert in_any_minute(times) <= rpm
    assert times[-1] <= 3 * 61 + 1  # and the limit is used, not wasted


def test_tpm_counts_tokens_and_a_large_request_waits_for_a_full_bucket():
    time = FakeTime()
    costs = [500, 500, 3000, 500, 500, 500]
    times = schedule({"tpm": 6000}, costs, time)
    assert in_any_minute(times, costs) <= 6000
    assert times == sorted(times) and times[2] > times[1]  # served in arrival order


def test_both_quotas_apply_together():
    time = FakeTime()
    times = schedule({"rpm": 600, "tpm": 1220}, [100] * 30, time)
    assert in_any_minute(times) <= 600 and in_any_minute(times, [100] * 30) <= 1220


def test_no_quota_means_no_limiter():
    assert make_limiter(None, None) is None
    assert isinstance(make_limiter(10, None), RateLimiter)
