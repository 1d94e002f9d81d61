"""The history a crash worker keeps, and the checker that judges it.

A history is a text file of lines `KIND LIFE FIELD...`, appended by the worker with one
`os.write` each, before the worker moves on: a line that is there happened; a line that is
missing may still have happened (the process was killed between the act and the line). Only the
last line of a life can be torn by a kill (in practice a short `write` is never split); the next
life marks such a line TORN and starts on a fresh one.

    life L POINT K MESSAGES SEED    a worker started on the file (crash plan POINT at its K-th hit)
    send L INDEX KEY QUEUE          the producer is about to send job INDEX
    sent L INDEX ID KEY QUEUE       send() returned: message ID is acknowledged (durably stored)
    recv L ID ATTEMPT KEY QUEUE INDEX   the consumer received message ID (message.attempt)
    effect L ID ATTEMPT             the consumer's side effect for that delivery
    done L ID ATTEMPT               message.complete() returned for that delivery
    answer L ID OUTCOME             h.wait_for(ID) returned (a waiter of this life)
    final L ID OUTCOME              h.wait_for(ID) once everything is settled, for every known id
    state L KEY COUNT               the state the store holds for consumer KEY, once settled: COUNT
                                    entries of `c.state["done"]`, one `kept` line each
    kept L KEY ID INDEX BY_LIFE BY_ATTEMPT  one entry: delivery (BY_LIFE, BY_ATTEMPT) of message
                                    ID, job INDEX, appended it to the state before completing
    error L TEXT...                 the runtime reported trouble (actor.crashed, message.dead_lettered)
    stuck L TEXT...                 the life ran out of time
    finished L                      every job was answered and every queue drained

OUTCOME is `completed INDEX BY_LIFE BY_ATTEMPT` (the answer names the delivery that made it) or
`dead_lettered - - -`, `timed_out - - -`, `missing - - -`.

Properties, as `check` asserts them:

- lost: every acknowledged message (a `sent` line) ends completed in the last finished life.
- completed-redelivered: no delivery of a message comes after the delivery that completed it
  (known from a `done` line, or from the answer, which names its delivery even when the kill came
  before `done` was written).
- duplicate-not-in-flight: a message is delivered again only in a later life, after the life
  that had it died with it in flight; `message.attempt` grows with every delivery and never
  exceeds the number of lives since the message was sent.
- fifo: per actor and queue, acknowledged ids grow in send order; within a life deliveries
  follow id order; across lives first deliveries follow id order (nothing overtakes anything).
- answered-once: at most one `complete()` succeeds per message and it is the one the answer
  names; every answer ever observed for a message is the same; it answers that message's job;
  every message ever delivered (also those whose `sent` line a kill cut off) ends completed.
- state (when the last life wrote the consumers' state down): every completed message is in its
  consumer's state exactly once, put there by the delivery that completed it; nothing else is.
  A delivery cut short by a kill may have appended to the state in memory, but what the store
  keeps is committed with the completion: a kill never loses a completed message's entry (its
  completion returned, so it must be there) nor keeps one of a delivery that did not complete
  (it would be there twice once the message is delivered again).
- consistency and runtime: the history itself makes sense (deliveries of sent jobs, lives in
  order), and the runtime reported no crash of its own.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

KINDS: dict[str, int] = {
    "life": 4,
    "send": 3,
    "sent": 4,
    "recv": 5,
    "effect": 2,
    "done": 2,
    "answer": 5,
    "final": 5,
    "state": 2,
    "kept": 5,
    "finished": 0,
}
"""Fields after `KIND LIFE`, for kinds with a fixed shape; `error` and `stuck` take free text."""
FREE_TEXT = frozenset({"error", "stuck"})
INT_FIELDS: dict[str, tuple[int, ...]] = {
    "life": (1, 2, 3),
    "send": (0,),
    "sent": (0, 1),
    "recv": (0, 1, 4),
    "effect": (0, 1),
    "done": (0, 1),
    "answer": (0,),
    "final": (0,),
    "state": (1,),
    "kept": (1, 2, 3, 4),
}
Fail = Callable[..., None]
RULES = (
    "lost",
    "completed-redelivered",
    "duplicate-not-in-flight",
    "fifo",
    "answered-once",
    "state",
    "consistency",
    "runtime",
)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What `wait_for` said about a message: for a completed one, the answer's contents."""

    status: str
    index: int | None = None
    life: int | None = None
    attempt: int | None = None

    def fields(self) -> str:
        if self.status != "completed":
            return f"{self.status} - - -"
        return f"completed {self.index} {self.life} {self.attempt}"

    @classmethod
    def parse(cls, parts: list[str]) -> Outcome:
        status = parts[0]
        if status == "completed":
            return cls(status, int(parts[1]), int(parts[2]), int(parts[3]))
        if status not in ("dead_lettered", "timed_out", "missing") or parts[1:] != ["-", "-", "-"]:
            raise ValueError(f"bad outcome {' '.join(parts)!r}")
        return cls(status)


@dataclass(frozen=True, slots=True)
class Line:
    number: int  # 1-based, in the file
    kind: str
    life: int
    fields: tuple[int | str, ...]
    text: str

    def __str__(self) -> str:
        return f"{self.number:>5}: {self.text}"


def format_line(kind: str, life: int, *fields: object) -> str:
    return " ".join([kind, str(life), *(str(f) for f in fields)])


def parse_line(number: int, text: str) -> Line:
    """One line; raises ValueError if it is not a well-formed history line."""
    parts = text.split(" ")
    if len(parts) < 2 or (parts[0] not in KINDS and parts[0] not in FREE_TEXT):
        raise ValueError(f"unknown line {text!r}")
    kind, life = parts[0], int(parts[1])
    rest: list[int | str] = list(parts[2:])
    if kind in FREE_TEXT:
        return Line(number, kind, life, (" ".join(parts[2:]),), text)
    if len(rest) != KINDS[kind]:
        raise ValueError(f"{kind} takes {KINDS[kind]} fields: {text!r}")
    for position in INT_FIELDS.get(kind, ()):
        rest[position] = int(rest[position])
    if kind in ("answer", "final"):
        Outcome.parse([str(p) for p in rest[1:]])
    return Line(number, kind, life, tuple(rest), text)


@dataclass(slots=True)
class Parsed:
    lines: list[Line]
    malformed: list[tuple[int, str]]
    """Lines that could not be parsed and were not torn by a kill."""


TORN = " TORN"
"""Appended by the next life to a line a kill cut short, so that it never parses as a shorter one."""


def parse(text: str) -> Parsed:
    """Parse a history, skipping lines a kill tore (marked TORN, or the unfinished last one)."""
    raw = text.split("\n")
    raw.pop()  # after the last newline: empty, or a line torn by a kill nobody restarted after
    lines: list[Line] = []
    malformed: list[tuple[int, str]] = []
    for number, content in enumerate(raw, start=1):
        if content.endswith(TORN):
            continue
        try:
            lines.append(parse_line(number, content))
        except (ValueError, IndexError):
            malformed.append((number, content))
    return Parsed(lines, malformed)


@dataclass(frozen=True, slots=True)
class Violation:
    rule: str
    detail: str
    lines: tuple[Line, ...] = ()

    def __str__(self) -> str:
        excerpt = "".join(f"\n      {line}" for line in self.lines[:12])
        return f"[{self.rule}] {self.detail}{excerpt}"


@dataclass(slots=True)
class Stats:
    lives: int = 0
    crashed_lives: int = 0
    acknowledged: int = 0
    unacknowledged_sends: int = 0
    """Messages delivered although the kill cut their `sent` line off (send returned or not)."""
    deliveries: int = 0
    redeliveries: int = 0
    repeated_effects: int = 0
    completed_unrecorded: int = 0
    """Messages whose answer names a delivery with no `done` line: killed right after complete()."""
    answers_after_restart: int = 0
    """Waiters answered from the store with a response an earlier life made."""
    state_entries: int = 0
    """Entries of the consumers' stored state that the checker compared with the completions."""


@dataclass(slots=True)
class Report:
    violations: list[Violation]
    stats: Stats

    @property
    def ok(self) -> bool:
        return not self.violations

    def summary(self) -> str:
        s = self.stats
        head = (
            f"{s.lives} lives ({s.crashed_lives} ended by a crash), {s.acknowledged} acknowledged "
            f"messages, {s.unacknowledged_sends} delivered without acknowledgement, {s.deliveries} "
            f"deliveries ({s.redeliveries} redeliveries, {s.repeated_effects} repeated side effects), "
            f"{s.completed_unrecorded} completions a kill kept from the history, "
            f"{s.answers_after_restart} answers read back after a restart, {s.state_entries} entries of "
            f"stored state checked, {len(self.violations)} violations"
        )
        return "\n".join([head, *(f"  {v}" for v in self.violations)])


@dataclass(slots=True)
class _Message:
    """Everything the history says about one message id."""

    message_id: int
    sent: Line | None = None
    recvs: list[Line] = field(default_factory=list)
    dones: list[Line] = field(default_factory=list)
    effects: list[Line] = field(default_factory=list)
    outcomes: list[tuple[Line, Outcome]] = field(default_factory=list)

    @property
    def key_queue_index(self) -> tuple[str, str, int] | None:
        if self.sent is not None:
            index, _, key, queue = self.sent.fields
            return str(key), str(queue), int(index)
        if self.recvs:
            _, _, key, queue, index = self.recvs[0].fields
            return str(key), str(queue), int(index)
        return None


def check(history: str | Parsed) -> Report:
    """Judge a whole history (every life); see the module docstring for the properties."""
    parsed = parse(history) if isinstance(history, str) else history
    violations: list[Violation] = []
    stats = Stats()

    def fail(rule: str, detail: str, *lines: Line) -> None:
        violations.append(Violation(rule, detail, tuple(sorted(set(lines), key=lambda x: x.number))))

    for number, content in parsed.malformed:
        fail("consistency", f"line {number} is not a history line: {content!r}")

    lives: list[int] = []
    ends: dict[int, str] = {}
    messages: dict[int, _Message] = {}
    intents: dict[int, list[Line]] = defaultdict(list)  # job index -> its `send` lines
    states: dict[int, dict[str, tuple[Line, list[Line]]]] = defaultdict(dict)  # life -> key -> lines
    sent_in_life: set[tuple[int, int]] = set()  # (life, index) of `sent` lines

    def message(message_id: int) -> _Message:
        if message_id not in messages:
            messages[message_id] = _Message(message_id)
        return messages[message_id]

    for line in parsed.lines:
        if line.kind == "life":
            if line.life != len(lives) + 1:
                fail("consistency", f"life {line.life} follows life {len(lives)}", line)
            lives.append(line.life)
            ends[line.life] = "crashed"
            continue
        if not lives or line.life != lives[-1]:
            fail("consistency", "a line of a life that is not the current one", line)
            continue
        if ends[line.life] == "finished":
            fail("consistency", "a line after `finished`", line)
        match line.kind:
            case "send":
                intents[int(line.fields[0])].append(line)
            case "sent":
                record = message(int(line.fields[1]))
                if record.sent is not None:
                    fail("consistency", "one message id acknowledged twice", record.sent, line)
                record.sent = line
                sent_in_life.add((line.life, int(line.fields[0])))
            case "recv":
                message(int(line.fields[0])).recvs.append(line)
            case "effect":
                message(int(line.fields[0])).effects.append(line)
            case "done":
                message(int(line.fields[0])).dones.append(line)
            case "answer" | "final":
                outcome = Outcome.parse([str(p) for p in line.fields[1:]])
                message(int(line.fields[0])).outcomes.append((line, outcome))
            case "state":
                states[line.life][str(line.fields[0])] = (line, [])
            case "kept":
                recorded = states[line.life].get(str(line.fields[0]))
                if recorded is None:
                    fail("consistency", "an entry of a state that was not announced", line)
                else:
                    recorded[1].append(line)
            case "error" | "stuck":
                fail("runtime", f"the worker reported: {line.fields[0]}", line)
            case "finished":
                ends[line.life] = "finished"

    stats.lives = len(lives)
    stats.crashed_lives = sum(1 for end in ends.values() if end == "crashed")
    finished = [life for life in lives if ends[life] == "finished"]
    last_finished = finished[-1] if finished else None
    if last_finished is None:
        fail("lost", "no life finished: nothing shows the acknowledged messages were answered")
    elif last_finished != lives[-1]:
        fail("consistency", f"life {lives[-1]} came after the last finished life {last_finished}")

    for record in messages.values():
        _check_message(record, intents, sent_in_life, ends, last_finished, stats, fail)
    _check_fifo(messages, fail)
    if last_finished is not None:
        for key, (announced, kept) in states[last_finished].items():
            _check_state(key, announced, kept, messages, stats, fail)
    return Report(violations, stats)


def _check_state(
    key: str, announced: Line, kept: list[Line], messages: dict[int, _Message], stats: Stats, fail: Fail
) -> None:
    """Consumer `key`'s stored state against the completions: one entry per completed message,
    by the delivery that completed it, and nothing else."""
    stats.state_entries += len(kept)
    if len(kept) != int(announced.fields[1]):
        fail("consistency", f"the state of {key!r} announced {announced.fields[1]} entries", announced, *kept)
    entries: dict[int, list[Line]] = defaultdict(list)
    for line in kept:
        entries[int(line.fields[1])].append(line)
    for record in messages.values():
        shape = record.key_queue_index
        if shape is None or shape[0] != key:
            continue
        completed = [o for _, o in record.outcomes if o.status == "completed"]
        if not completed:
            continue
        by, index = (completed[0].life, completed[0].attempt), shape[2]
        found = entries.pop(record.message_id, [])
        mid = record.message_id
        if not found:
            fail("state", f"message {mid} was completed by delivery {by}, but the state lacks it", announced)
            continue
        if len(found) > 1:
            fail("state", f"message {mid} is in the state {len(found)} times", *found, *_lines(record))
        for line in found:
            _, _, entry_index, entry_life, entry_attempt = line.fields
            if (entry_life, entry_attempt) != by:
                fail(
                    "state",
                    f"the state keeps what delivery {(entry_life, entry_attempt)} of message {mid} did, "
                    f"but delivery {by} completed it",
                    line,
                    *_lines(record),
                )
            if entry_index != index:
                fail("state", f"the state has message {mid} as job {entry_index}, not {index}", line)
    for mid, lines in entries.items():
        fail("state", f"the state keeps message {mid}, which was never completed", *lines)


def _born(record: _Message, intents: dict[int, list[Line]]) -> int | None:
    """The first life that may have stored this message: where its job was first sent."""
    shape = record.key_queue_index
    if shape is None:
        return None
    lives = [line.life for line in intents.get(shape[2], [])]
    if record.sent is not None:
        lives.append(record.sent.life)
    return min(lives) if lives else None


def _check_message(
    record: _Message,
    intents: dict[int, list[Line]],
    sent_in_life: set[tuple[int, int]],
    ends: dict[int, str],
    last_finished: int | None,
    stats: Stats,
    fail: Fail,
) -> None:
    mid = record.message_id
    shape = record.key_queue_index
    if record.sent is not None:
        stats.acknowledged += 1
    elif record.recvs:
        stats.unacknowledged_sends += 1
    stats.deliveries += len(record.recvs)
    stats.redeliveries += max(0, len(record.recvs) - 1)
    stats.repeated_effects += max(0, len(record.effects) - 1)

    # consistency: each delivery is of the job that was sent, to where it was sent
    for recv in record.recvs:
        _, _, key, queue, index = recv.fields
        if shape is not None and (str(key), str(queue), int(index)) != shape:
            fail("consistency", f"message {mid} delivered as another job", *_lines(record), recv)
    if record.sent is None and record.recvs:
        index = int(record.recvs[0].fields[4])
        unacked = [
            line
            for line in intents.get(index, [])
            if (line.life, index) not in sent_in_life and line.life <= record.recvs[0].life
        ]
        if not unacked:
            fail("consistency", f"message {mid} was delivered but no send of job {index} is unaccounted for")
    if record.sent is None and not record.recvs and not record.outcomes:
        return

    # which delivery completed it, by the answer; a `done` line must agree
    completed = [o for _, o in record.outcomes if o.status == "completed"]
    completing_key = (completed[0].life, completed[0].attempt) if completed else None
    if record.dones:
        done = record.dones[0]
        done_key = (done.life, int(done.fields[1]))
        if completing_key is not None and done_key != completing_key:
            fail(
                "answered-once",
                f"message {mid}: complete() returned for delivery {done_key} but the stored answer "
                f"was made by delivery {completing_key}",
                *_lines(record),
            )
        completing_key = completing_key or done_key
    if len(record.dones) > 1:
        fail("answered-once", f"message {mid}: complete() succeeded more than once", *record.dones)
    completing = None
    if completing_key is not None:
        completing = next((r for r in record.recvs if (r.life, int(r.fields[1])) == completing_key), None)
        if completing is None:
            fail(
                "answered-once",
                f"message {mid}: its answer names delivery (life, attempt) {completing_key}, which "
                "the history does not hold",
                *_lines(record),
            )
        elif not record.dones:
            stats.completed_unrecorded += 1
        if completing is not None and not any(
            (e.life, int(e.fields[1])) == completing_key for e in record.effects
        ):
            fail("consistency", f"message {mid} was answered by a delivery that did no side effect")

    # completed-redelivered
    if completing is not None:
        later = [r for r in record.recvs if r.number > completing.number]
        if later:
            fail(
                "completed-redelivered",
                f"message {mid} was delivered again after delivery {completing_key} completed it",
                completing,
                *later,
                *record.dones,
            )
    for done in record.dones:
        after = [r for r in record.recvs if r.number > done.number]
        if after:
            fail("completed-redelivered", f"message {mid} delivered after complete() returned", done, *after)

    # duplicate-not-in-flight, and attempts
    born = _born(record, intents)
    previous: Line | None = None
    for recv in record.recvs:
        attempt = int(recv.fields[1])
        if attempt < 1:
            fail("duplicate-not-in-flight", f"message {mid} delivered with attempt {attempt}", recv)
        if born is not None and attempt > recv.life - born + 1:
            fail(
                "duplicate-not-in-flight",
                f"message {mid}: attempt {attempt} in life {recv.life} counts more deliveries than the "
                f"{recv.life - born + 1} lives since it was sent",
                *_lines(record),
            )
        if previous is not None:
            if recv.life == previous.life:
                fail(
                    "duplicate-not-in-flight",
                    f"message {mid} delivered twice in life {recv.life}, with no crash between",
                    previous,
                    recv,
                )
            elif ends.get(previous.life) != "crashed":
                fail(
                    "duplicate-not-in-flight",
                    f"message {mid} delivered again although life {previous.life} did not crash",
                    previous,
                    recv,
                )
            if attempt <= int(previous.fields[1]):
                fail("duplicate-not-in-flight", f"message {mid}: attempt did not grow", previous, recv)
        previous = recv

    # answered-once: one answer, always the same, to this job
    distinct = {o for _, o in record.outcomes}
    if len(distinct) > 1:
        fail(
            "answered-once",
            f"message {mid} was answered differently: {sorted(map(str, distinct))}",
            *(line for line, _ in record.outcomes),
        )
    for line, outcome in record.outcomes:
        if line.kind == "answer" and outcome.life is not None and outcome.life < line.life:
            stats.answers_after_restart += 1
        if outcome.status == "missing" and record.sent is not None:
            fail("lost", f"acknowledged message {mid} is not in the store", record.sent, line)
        elif outcome.status != "completed":
            fail("answered-once", f"message {mid} was {outcome.status}, not answered", line)
        elif shape is not None and outcome.index != shape[2]:
            fail("answered-once", f"message {mid} got the answer to job {outcome.index}", *_lines(record))

    # lost / unanswered at the end
    if last_finished is not None:
        finals = [
            (line, o) for line, o in record.outcomes if line.kind == "final" and line.life == last_finished
        ]
        ok = any(o.status == "completed" for _, o in finals)
        if record.sent is not None and not ok:
            fail("lost", f"acknowledged message {mid} was not answered in the end", *_lines(record))
        elif record.sent is None and record.recvs and not ok:
            fail("answered-once", f"delivered message {mid} was not answered in the end", *_lines(record))


def _check_fifo(messages: dict[int, _Message], fail: Fail) -> None:
    by_queue: dict[tuple[str, str], list[_Message]] = defaultdict(list)
    for record in messages.values():
        shape = record.key_queue_index
        if shape is not None:
            by_queue[shape[:2]].append(record)
    for (key, queue), records in by_queue.items():
        where = f"queue {queue!r} of actor {key!r}"
        sent = sorted((r.sent for r in records if r.sent is not None), key=lambda line: line.number)
        for a, b in itertools.pairwise(sent):
            if int(b.fields[1]) <= int(a.fields[1]):
                fail("fifo", f"{where}: a later send got a smaller message id", a, b)
        recvs = sorted((r for m in records for r in m.recvs), key=lambda line: line.number)
        last_in_life: dict[int, Line] = {}
        first_seen: set[int] = set()
        last_first: Line | None = None
        for recv in recvs:
            mid = int(recv.fields[0])
            before = last_in_life.get(recv.life)
            if before is not None and mid <= int(before.fields[0]):
                fail(
                    "fifo", f"{where}: message {mid} delivered after message {before.fields[0]}", before, recv
                )
            last_in_life[recv.life] = recv
            if mid not in first_seen:
                if last_first is not None and mid < int(last_first.fields[0]):
                    fail(
                        "fifo",
                        f"{where}: message {mid} first delivered after message {last_first.fields[0]}",
                        last_first,
                        recv,
                    )
                first_seen.add(mid)
                last_first = recv


def _lines(record: _Message) -> list[Line]:
    lines = [*record.recvs, *record.effects, *record.dones, *(line for line, _ in record.outcomes)]
    if record.sent is not None:
        lines.append(record.sent)
    return lines
