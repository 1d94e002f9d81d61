"""Crash tests of the SQLite store (DESIGN "Store", "Testing" tier 5).

A registry in a subprocess works through a stream of completable messages, recording each in
its state before completing it (seed 002's pattern), and is killed, by `os._exit` at injected
points (also inside the store's transaction, between the state write and the acknowledgement)
and by SIGKILL at random moments, then restarted on the same file, again and again; a checker
then judges the history of all its lives, messages and stored state (see `crash/history.py` for
the properties). The checker is tested first, on hand-written histories that break each
property, so that a passing crash test means something.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from crash.driver import ForkServer, Scenario, run_scenario
from crash.history import check
from crash.worker import POINTS

# --- the checker, on hand-written histories -------------------------------------------------------

# Two jobs on one queue. Life 1 completes message 1, receives message 2 and is killed (after
# receive); life 2 gets message 2 again (attempt 2), completes it, and finishes.
CLEAN = """\
life 1 after_receive 2 2 7
send 1 0 a left
sent 1 0 1 a left
recv 1 1 1 a left 0
effect 1 1 1
done 1 1 1
answer 1 1 completed 0 1 1
send 1 1 a left
sent 1 1 2 a left
recv 1 2 1 a left 1
life 2 none 0 2 7
recv 2 2 2 a left 1
effect 2 2 2
done 2 2 2
answer 2 2 completed 1 2 2
final 2 1 completed 0 1 1
final 2 2 completed 1 2 2
finished 2
"""


def edited(history: str, old: str, new: str) -> str:
    """`history` with `old` replaced (it must be there, or the test would prove nothing)."""
    assert history.count(old) == 1, old
    return history.replace(old, new)


def rules(history: str) -> set[str]:
    return {violation.rule for violation in check(history).violations}


def test_a_clean_history_passes_and_is_counted() -> None:
    report = check(CLEAN)
    assert report.ok, report.summary()
    stats = report.stats
    assert (stats.lives, stats.crashed_lives, stats.acknowledged) == (2, 1, 2)
    assert (stats.deliveries, stats.redeliveries, stats.repeated_effects) == (3, 1, 0)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        # the store lost message 2: the restarted life never sees it, and wait_for finds nothing
        (
            "recv 2 2 2 a left 1\neffect 2 2 2\ndone 2 2 2\nanswer 2 2 completed 1 2 2\n",
            "answer 2 2 missing - - -\n",
        ),
        # ... or the last life simply never answers it
        ("final 2 2 completed 1 2 2\n", ""),
        # ... or no life ever finished
        ("finished 2\n", ""),
    ],
    ids=["missing-from-store", "never-answered", "never-finished"],
)
def test_an_acknowledged_message_not_answered_in_the_end_is_lost(old: str, new: str) -> None:
    assert "lost" in rules(edited(CLEAN, old, new))


def test_a_message_delivered_after_its_complete_returned_is_caught() -> None:
    history = edited(CLEAN, "life 2 none 0 2 7\n", "life 2 none 0 2 7\nrecv 2 1 2 a left 0\n")
    assert rules(history) == {"completed-redelivered"}


def test_a_completion_that_a_kill_kept_out_of_the_history_still_counts() -> None:
    """Killed after complete() returned, before `done`: the stored answer names the delivery,
    so a redelivery is caught all the same."""
    history = edited(CLEAN, "done 1 1 1\n", "")
    assert check(history).ok
    assert check(history).stats.completed_unrecorded == 1
    history = edited(history, "life 2 none 0 2 7\n", "life 2 none 0 2 7\nrecv 2 1 2 a left 0\n")
    assert rules(history) == {"completed-redelivered"}


@pytest.mark.parametrize(
    ("old", "new"),
    [
        # delivered twice in one life, with no crash between
        ("recv 1 2 1 a left 1\n", "recv 1 2 1 a left 1\nrecv 1 2 2 a left 1\n"),
        # an attempt count that no number of lives explains
        (
            "recv 2 2 2 a left 1\neffect 2 2 2\ndone 2 2 2\n",
            "recv 2 2 3 a left 1\neffect 2 2 3\ndone 2 2 3\n",
        ),
    ],
    ids=["same-life", "attempt-too-high"],
)
def test_a_duplicate_of_a_message_not_in_flight_is_caught(old: str, new: str) -> None:
    assert "duplicate-not-in-flight" in rules(edited(CLEAN, old, new))


def test_a_redelivery_after_a_life_that_did_not_crash_is_caught() -> None:
    history = edited(CLEAN, "recv 1 2 1 a left 1\n", "recv 1 2 1 a left 1\nfinished 1\n")
    assert "duplicate-not-in-flight" in rules(history)


ONE_LIFE = """\
life 1 none 0 3 7
send 1 0 a left
sent 1 0 1 a left
send 1 1 a right
sent 1 1 2 a right
send 1 2 a left
sent 1 2 3 a left
{deliveries}final 1 1 completed 0 1 1
final 1 2 completed 1 1 1
final 1 3 completed 2 1 1
finished 1
"""


def deliveries(*ids: int) -> str:
    index = {1: 0, 2: 1, 3: 2}
    queue = {1: "left", 2: "right", 3: "left"}
    return "".join(f"recv 1 {i} 1 a {queue[i]} {index[i]}\neffect 1 {i} 1\ndone 1 {i} 1\n" for i in ids)


def test_fifo_is_per_queue() -> None:
    assert check(ONE_LIFE.format(deliveries=deliveries(1, 2, 3))).ok
    assert check(ONE_LIFE.format(deliveries=deliveries(2, 1, 3))).ok  # another queue may go first
    assert rules(ONE_LIFE.format(deliveries=deliveries(3, 2, 1))) == {"fifo"}


def test_a_later_send_with_a_smaller_id_breaks_fifo() -> None:
    history = ONE_LIFE.format(deliveries=deliveries(1, 2, 3))
    history = edited(history, "sent 1 0 1 a left\n", "sent 1 0 4 a left\n")
    assert "fifo" in rules(history)


def test_a_message_overtaken_across_a_restart_breaks_fifo() -> None:
    history = """\
life 1 after_receive 1 2 7
send 1 0 a left
sent 1 0 1 a left
send 1 1 a left
sent 1 1 2 a left
recv 1 2 1 a left 1
life 2 none 0 2 7
recv 2 1 1 a left 0
effect 2 1 1
done 2 1 1
recv 2 2 2 a left 1
effect 2 2 2
done 2 2 2
final 2 1 completed 0 2 1
final 2 2 completed 1 2 2
finished 2
"""
    assert rules(history) == {"fifo"}


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("done 2 2 2\n", "done 2 2 2\ndone 2 2 2\n"),  # complete() succeeded twice
        ("final 2 2 completed 1 2 2\n", "final 2 2 completed 1 1 1\n"),  # the stored answer changed
        ("answer 1 1 completed 0 1 1\n", "answer 1 1 completed 1 1 1\n"),  # the answer of another job
        ("final 2 2 completed 1 2 2\n", "final 2 2 dead_lettered - - -\n"),
        ("done 2 2 2\n", "done 2 2 2\nanswer 2 2 completed 1 7 2\n"),  # made by no delivery at all
    ],
    ids=["completed-twice", "answer-changed", "wrong-job", "dead-lettered", "unknown-delivery"],
)
def test_a_message_not_answered_exactly_once_is_caught(old: str, new: str) -> None:
    assert "answered-once" in rules(edited(CLEAN, old, new))


UNACKNOWLEDGED = """\
life 1 after_send 1 1 7
send 1 0 a left
life 2 none 0 1 7
send 2 0 a left
sent 2 0 2 a left
recv 2 1 1 a left 0
effect 2 1 1
done 2 1 1
recv 2 2 1 a left 0
effect 2 2 1
done 2 2 1
answer 2 2 completed 0 2 1
final 2 1 completed 0 2 1
final 2 2 completed 0 2 1
finished 2
"""


def test_a_send_a_kill_cut_off_may_be_delivered_but_must_be_answered() -> None:
    """Life 1 stored message 1 but died before writing `sent`; life 2 sent the job again."""
    report = check(UNACKNOWLEDGED)
    assert report.ok, report.summary()
    assert report.stats.unacknowledged_sends == 1
    assert rules(edited(UNACKNOWLEDGED, "final 2 1 completed 0 2 1\n", "")) == {"answered-once"}
    # a delivery of a job whose every send was acknowledged under another id came from nowhere
    assert rules(edited(UNACKNOWLEDGED, "life 2 none 0 1 7\n", "sent 1 0 3 a left\nlife 2 none 0 1 7\n")) >= {
        "consistency"
    }


def test_a_reported_runtime_crash_and_a_garbled_line_are_violations() -> None:
    assert rules(edited(CLEAN, "finished 2\n", "error 2 the run loop crashed\nfinished 2\n")) == {"runtime"}
    assert rules(edited(CLEAN, "effect 2 2 2\n", "effect 2 2 2\nrecv 2 x\n")) == {"consistency"}


# The last life of CLEAN writes down the state: message 1 recorded by delivery (1, 1), message 2 by
# delivery (2, 2); the entry that delivery (1, 2) of message 2 made in memory died with life 1.
WITH_STATE = edited(CLEAN, "finished 2\n", "state 2 a 2\nkept 2 a 1 0 1 1\nkept 2 a 2 1 2 2\nfinished 2\n")


def test_a_stored_state_with_each_completion_once_passes() -> None:
    report = check(WITH_STATE)
    assert report.ok, report.summary()
    assert report.stats.state_entries == 2


@pytest.mark.parametrize(
    ("old", "new"),
    [
        # the completion of message 2 was committed, its entry was not: the old periodic save
        ("state 2 a 2\nkept 2 a 1 0 1 1\nkept 2 a 2 1 2 2\n", "state 2 a 1\nkept 2 a 1 0 1 1\n"),
        # the entry of the delivery that a kill cut short was kept, then the redelivery's too
        ("state 2 a 2\n", "state 2 a 3\nkept 2 a 2 1 1 1\n"),
        # ... or only that one: the state of a delivery that did not complete the message
        ("kept 2 a 2 1 2 2\n", "kept 2 a 2 1 1 1\n"),
        # an entry of a message that was never completed
        ("state 2 a 2\n", "state 2 a 3\nkept 2 a 9 5 2 1\n"),
        # the entry of another job
        ("kept 2 a 2 1 2 2\n", "kept 2 a 2 0 2 2\n"),
    ],
    ids=["lost", "applied-twice", "not-the-completing-delivery", "never-completed", "wrong-job"],
)
def test_a_stored_state_not_matching_the_completions_is_caught(old: str, new: str) -> None:
    assert rules(edited(WITH_STATE, old, new)) == {"state"}


def test_a_state_list_a_kill_cut_short_is_inconsistent() -> None:
    assert "consistency" in rules(edited(WITH_STATE, "state 2 a 2\n", "state 2 a 3\n"))


def test_lines_torn_by_a_kill_are_skipped() -> None:
    torn = edited(CLEAN, "life 2 none", "recv 1 2 1 a le TORN\nlife 2 none")
    assert check(torn).ok
    assert check(CLEAN + "answer 2 2 compl").ok  # the last life's last line, cut short


# --- killing a real registry --------------------------------------------------------------------

INJECTED = [Scenario(point=point, kills=15, seed=10 + n) for n, point in enumerate(POINTS)]
SIGKILLED = [
    Scenario(point="sigkill", kills=20, seed=101),
    Scenario(point="sigkill", kills=20, seed=102),
    Scenario(point="sigkill", kills=20, seed=103, synchronous="FULL"),
]
SCENARIOS = [*INJECTED, *SIGKILLED]


def test_the_suite_kills_at_least_50_times() -> None:
    assert sum(s.kills for s in SCENARIOS) >= 50
    assert {s.point for s in INJECTED} == {
        "after_send",
        "after_receive",
        "after_effect",
        "before_complete",
        "during_complete",
        "after_complete",
        "after_state_write",
        "after_ack_write",
    }


@pytest.fixture(scope="module")
def fork_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ForkServer]:
    """One worker process that imports agentos_nb once and forks a fresh child per life."""
    with ForkServer(tmp_path_factory.mktemp("crash") / "worker.log") as server:
        yield server


@pytest.mark.parametrize(
    "scenario", SCENARIOS, ids=[f"{s.point}-{s.synchronous.lower()}-{s.seed}" for s in SCENARIOS]
)
def test_killed_and_restarted_the_store_loses_nothing_acknowledged(
    fork_server: ForkServer, tmp_path: Path, scenario: Scenario
) -> None:
    result = run_scenario(fork_server, tmp_path, scenario)
    assert result.ok, result.describe()
    assert result.kills == scenario.kills
    # Each crash point really did what it is there for, or the test would prove little.
    stats = result.report.stats
    assert stats.state_entries >= stats.acknowledged, result.describe()  # the state was checked
    if scenario.point == "after_send":
        assert stats.unacknowledged_sends >= scenario.kills, result.describe()
    if scenario.point in ("after_receive", "after_effect", "before_complete"):
        assert stats.redeliveries >= scenario.kills, result.describe()
    if scenario.point in ("after_effect", "before_complete"):
        assert stats.repeated_effects >= scenario.kills, result.describe()
    if scenario.point in ("after_state_write", "after_ack_write"):
        # killed mid-transaction: the completion (all but a state save or two) was undone
        assert stats.repeated_effects >= scenario.kills - 2, result.describe()
    if scenario.point == "after_complete":
        assert stats.completed_unrecorded >= scenario.kills, result.describe()
        # each of those was answered by a later life's wait_for, from the stored response
        assert stats.answers_after_restart >= scenario.kills, result.describe()


# --- and a store with a planted bug fails them ----------------------------------------------------

PLANTED = [
    # acknowledged before it is durable: a kill loses completions the history saw return
    (
        Scenario(point="after_effect", kills=6, seed=201, fault="complete-before-commit"),
        "completed-redelivered",
    ),
    # deliveries not recorded: a redelivered message comes back with the same attempt
    (
        Scenario(point="after_receive", kills=6, seed=202, fault="lease-not-durable"),
        "duplicate-not-in-flight",
    ),
    # stored messages reloaded newest first
    (Scenario(point="after_receive", kills=6, seed=203, fault="reversed-reload"), "fifo"),
    # the newest live message of each actor lost on reopening
    (Scenario(point="after_receive", kills=6, seed=204, fault="dropped-on-reload"), "lost"),
    # the state written after the completion, in a transaction of its own: killed between them
    (Scenario(point="after_state_write", kills=6, seed=205, fault="state-after-ack"), "state"),
    # ... or before it: the completion is undone, the state kept, and the redelivery adds to it
    (Scenario(point="after_ack_write", kills=6, seed=206, fault="state-before-ack"), "state"),
]


@pytest.mark.parametrize(("scenario", "rule"), PLANTED, ids=[s.fault for s, _ in PLANTED])
def test_a_store_with_a_durability_bug_fails_the_crash_test(
    fork_server: ForkServer, tmp_path: Path, scenario: Scenario, rule: str
) -> None:
    """The end-to-end proof that the crash test can fail: the same kills, against a store
    broken on purpose (through the store protocol, see worker._plant), break the property."""
    result = run_scenario(fork_server, tmp_path, scenario)
    assert result.problem is None, result.describe()
    assert rule in {violation.rule for violation in result.report.violations}, result.describe()
