"""Poll timing: a scout per cohort finds when processing is done; the rest poll once then."""

from __future__ import annotations

from zsync.engine.polls import PollSchedule
from zsync.model import PollJob


def _simulate(
    schedule: PollSchedule, creates: list[tuple[float, str]], processing: float
) -> tuple[dict[str, float], int]:
    """Run the schedule against a server that processes each signal ``processing`` seconds
    after its create. Returns when each signal was seen processed, and the poll count."""
    created = dict((ext, t) for t, ext in creates)
    pending = sorted(creates)
    seen: dict[str, float] = {}
    polls = 0
    now = 0.0
    while pending or len(schedule):
        due = schedule.next_due()
        if pending and (due is None or pending[0][0] <= due):
            now, ext = pending.pop(0)
            schedule.created(ext, f"SIGNAL-{ext}", now)
            continue
        assert due is not None
        now = max(now, due)
        job = schedule.pop_due(now)
        assert job is not None
        polls += 1
        done = now >= created[job.external_id] + processing
        if done:
            seen[job.external_id] = now
        schedule.seen(job, done, now)
    return seen, polls


def test_signals_processed_after_8_s_are_seen_within_a_second_and_a_half() -> None:
    creates = [(i * 0.01, f"r{i}") for i in range(200)]
    seen, polls = _simulate(PollSchedule(), creates, processing=8.0)
    lags = [seen[ext] - (t + 8.0) for t, ext in creates]
    assert len(seen) == 200
    assert max(lags) <= 1.5
    assert polls < 200 + 40  # one poll per signal, plus the scout's probing


def test_the_old_doubling_schedule_saw_them_at_13_5_s() -> None:
    """What a fixed doubling schedule (0.5, 1, 2, 4, 6 s gaps) did: the lag this fixes."""
    t, gap = 0.0, 0.5
    while t < 8.0:
        t += gap
        gap = min(gap * 2, 6.0)
    assert t == 13.5


def test_later_cohorts_start_from_what_the_first_ones_learned() -> None:
    schedule = PollSchedule()
    creates = [(i * 0.1, f"r{i}") for i in range(200)]  # 20 s of creates, ten per cohort
    seen, polls = _simulate(schedule, creates, processing=3.0)
    assert len(seen) == 200
    estimate = schedule.estimate
    assert estimate is not None and 3.0 <= estimate <= 3.5
    # The first scout probes about ten times; a later one two or three times.
    assert polls <= 200 + 10 + 20 * 3


def test_faster_processing_lowers_the_estimate() -> None:
    schedule = PollSchedule()
    _simulate(schedule, [(0.0, "a")], processing=8.0)
    first = schedule.estimate
    assert first is not None and first >= 8.0
    _simulate(schedule, [(100.0 + i * 2, f"b{i}") for i in range(15)], processing=2.0)
    estimate = schedule.estimate
    assert estimate is not None and estimate < 4.0


def test_a_member_not_processed_when_its_scout_was_backs_off_on_its_own() -> None:
    schedule = PollSchedule(longest=6.0)
    schedule.created("scout", "S-1", 0.0)
    schedule.created("slow", "S-2", 0.1)
    assert len(schedule) == 2
    job = schedule.pop_due(0.5)
    assert job is not None and job.external_id == "scout"
    schedule.seen(job, True, 0.5)
    member = schedule.pop_due(0.6)
    assert member is not None and member.external_id == "slow"
    schedule.seen(member, False, 0.6)
    assert schedule.pop_due(0.8) is None
    again = schedule.next_due()
    assert again is not None and 0.8 < again <= 0.6 + 6.0


def test_polls_without_a_create_time_double_their_interval() -> None:
    schedule = PollSchedule(longest=6.0)
    schedule.add(PollJob("old", "S-9", 2.0), 2.0)
    job = schedule.pop_due(2.0)
    assert job is not None
    schedule.seen(job, False, 2.0)
    assert schedule.next_due() == 6.0
    schedule.clear()
    assert len(schedule) == 0 and schedule.next_due() is None
