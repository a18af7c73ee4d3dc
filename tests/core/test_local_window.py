"""The in-process moving window (app/core/local_window.py), on a clock the test moves."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.core.local_window import RESOLUTION, LocalMovingWindow

WINDOW = 60.0
BUCKET = WINDOW / RESOLUTION


class Clock:
    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def window(amount: int, clock: Clock) -> LocalMovingWindow:
    return LocalMovingWindow(amount, WINDOW, clock=clock)


def test_a_full_window_refuses_uncounted_until_its_reset_then_allows_again() -> None:
    clock = Clock()
    limit = window(3, clock)

    states = [limit.hit("ann") for _ in range(3)]
    refused = limit.hit("ann")

    assert [state.remaining for state in states] == [2, 1, 0]
    assert all(state.counted for state in states)
    assert (refused.counted, refused.remaining) == (False, 0)
    # The three hits share a bucket, which counts until the last of them is a window old.
    assert refused.reset_seconds == WINDOW
    clock.now += refused.reset_seconds - 0.001
    assert not limit.hit("ann").counted
    clock.now += 0.001
    allowed = limit.hit("ann")
    # The three hits shared one bucket, and left the window together.
    assert (allowed.counted, allowed.remaining) == (True, 2)


def test_clients_are_counted_apart_and_check_counts_nothing() -> None:
    clock = Clock()
    limit = window(2, clock)
    limit.hit("ann")

    assert limit.check("ann").remaining == 1
    assert limit.check("ann").remaining == 1
    assert limit.check("bob").remaining == 2
    assert limit.hit("bob").remaining == 1


def test_clear_forgets_every_hit_of_its_client_only() -> None:
    clock = Clock()
    limit = window(1, clock)
    limit.hit("ann")
    limit.hit("bob")

    limit.clear("ann")

    assert limit.hit("ann").counted
    assert not limit.hit("bob").counted


def test_memory_stays_a_few_buckets_a_client_whatever_the_rate() -> None:
    clock = Clock()
    limit = window(10**9, clock)
    for _ in range(100_000):
        clock.now += 0.003  # 20,000 hits a minute, for five minutes
        limit.hit("busy")

    kept = limit._clients["busy"]
    assert len(kept.buckets) <= RESOLUTION + 1
    # What the window holds: the last minute's hits, and at most one bucket more.
    assert 20_000 <= kept.total <= 20_000 + BUCKET / 0.003 + 1


def test_clients_whose_window_has_passed_are_dropped_as_others_hit() -> None:
    clock = Clock()
    limit = window(5, clock)
    for number in range(1_000):
        limit.hit(f"client-{number}")
    assert len(limit) == 1_000

    clock.now += WINDOW
    limit.hit("late")

    assert len(limit) == 1


@settings(max_examples=200, deadline=None)
@given(
    amount=st.integers(min_value=1, max_value=8),
    gaps=st.lists(st.floats(min_value=0, max_value=WINDOW / 4), min_size=1, max_size=80),
)
def test_never_more_than_the_amount_in_any_span_one_window_long(
    amount: int, gaps: list[float]
) -> None:
    clock = Clock()
    limit = window(amount, clock)
    allowed = []
    for gap in gaps:
        clock.now += gap
        if limit.hit("ann").counted:
            allowed.append(clock.now)

    for index, start in enumerate(allowed):
        within = [moment for moment in allowed[index:] if moment - start < WINDOW]
        assert len(within) <= amount


@pytest.mark.parametrize("gap", [0.0, BUCKET / 3, BUCKET * 0.99])
def test_a_refused_client_waits_at_most_a_bucket_longer_than_an_exact_log(gap: float) -> None:
    clock = Clock()
    limit = window(10, clock)
    first = clock.now
    for _ in range(10):
        limit.hit("ann")
        clock.now += gap / 10

    refused = limit.hit("ann")

    exact_wait = first + WINDOW - clock.now
    assert exact_wait <= refused.reset_seconds <= exact_wait + BUCKET
    assert refused.reset_seconds <= WINDOW


def test_hits_a_bucket_apart_are_kept_exactly() -> None:
    clock = Clock()
    limit = window(3, clock)
    for _ in range(3):
        limit.hit("ann")
        clock.now += BUCKET * 2

    refused = limit.hit("ann")

    # The oldest hit alone leaves first, a window after it was made.
    assert refused.reset_seconds == pytest.approx(WINDOW - 3 * 2 * BUCKET)
    clock.now += refused.reset_seconds
    assert limit.hit("ann").remaining == 0
