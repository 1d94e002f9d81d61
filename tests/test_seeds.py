"""The three examples of seed 002 (queues), in Python, with a plain stand-in for the agent VM.

The stand-in `vm` actor records what it is asked; its `send_prompt` takes a little while and
counts the prompts in progress, so overlapping work would show.
"""

from __future__ import annotations

import asyncio
import itertools

import anyio
import pytest
from pydantic import BaseModel

from agentos_nb import actor, queue, setup
from agentos_nb.errors import ValidationError
from conftest import wait_until


class Session(BaseModel):
    session_id: str


class VmLog:
    """What every stand-in VM was asked, and how many prompts ran at once at most."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []
        self.active = 0
        self.max_active = 0
        self.ids = itertools.count(1)

    def of(self, key: str) -> list[tuple]:
        return [call[1:] for call in self.calls if call[0] == (key,)]


def stand_in_vm(log: VmLog):
    """A plain actor with the VM actions the seed uses; files live in its state."""

    def create_session(c, agent, env=None):
        session = Session(session_id=f"s{next(log.ids)}")
        log.calls.append((c.key, "create_session", agent, session.session_id))
        return session

    async def send_prompt(c, session_id, prompt):
        log.calls.append((c.key, "send_prompt", session_id, prompt))
        log.active += 1
        log.max_active = max(log.max_active, log.active)
        try:
            for _ in range(5):  # agent work takes a while: overlapping prompts would show
                await asyncio.sleep(0.002)
        finally:
            log.active -= 1
        if "review.txt" in prompt:
            reviewed = prompt.split("\n\n", 1)[1]
            c.state["files"]["/home/user/review.txt"] = f"{len(reviewed.splitlines())} lines, looks fine"
        return {"text": "done", "stop_reason": "end_turn"}

    def close_session(c, session_id):
        log.calls.append((c.key, "close_session", session_id))

    def read_file(c, path):
        log.calls.append((c.key, "read_file", path))
        return c.state["files"][path].encode()

    def write_file(c, path, content):
        c.state["files"][path] = content

    return actor(
        state={"files": {}},
        actions={
            "create_session": create_session,
            "send_prompt": send_prompt,
            "close_session": close_session,
            "read_file": read_file,
            "write_file": write_file,
        },
    )


# --- Queue agent commands ----------------------------------------------------------------------


class Task(BaseModel):
    prompt: str


@pytest.mark.anyio
async def test_task_runner_processes_tasks_one_at_a_time_in_order():
    log = VmLog()
    in_progress = []  # messages the run loop holds right now
    most_in_progress = 0

    async def run_tasks(c):
        nonlocal most_in_progress
        agent = c.actors.vm.get_or_create(["task-agent"])
        async for message in c.queue.iter():  # one message at a time
            in_progress.append(message.id)
            most_in_progress = max(most_in_progress, len(in_progress))
            session = await agent.create_session("pi", env={"ANTHROPIC_API_KEY": "unused"})
            await agent.send_prompt(session.session_id, message.body.prompt)
            await agent.close_session(session.session_id)
            in_progress.remove(message.id)

    task_runner = actor(queues={"tasks": queue(Task)}, run=run_tasks)
    vm = stand_in_vm(log)

    async with setup(use={"task_runner": task_runner, "vm": vm}) as registry:
        client = registry.client()
        handle = client.task_runner.get_or_create(["main"])
        prompts = ["Review PR #123", "Fix the flaky test in auth.test.ts", "Update the README"]
        with registry.bus.subscribe(types=["message.completed"]) as completed:
            results = [await handle.send("tasks", {"prompt": p}) for p in prompts]
            assert [r.status for r in results] == ["enqueued"] * 3
            with anyio.fail_after(10):
                done = [(await completed.get()).message_id for _ in prompts]
        assert done == [r.message_id for r in results]

    assert log.of("task-agent") == [
        ("create_session", "pi", "s1"),
        ("send_prompt", "s1", "Review PR #123"),
        ("close_session", "s1"),
        ("create_session", "pi", "s2"),
        ("send_prompt", "s2", "Fix the flaky test in auth.test.ts"),
        ("close_session", "s2"),
        ("create_session", "pi", "s3"),
        ("send_prompt", "s3", "Update the README"),
        ("close_session", "s3"),
    ]
    assert most_in_progress == 1
    assert log.max_active == 1


@pytest.mark.anyio
async def test_task_runner_refuses_a_task_without_a_prompt():
    task_runner = actor(queues={"tasks": queue(Task)}, run=lambda c: None)
    async with setup(use={"task_runner": task_runner}) as registry:
        handle = registry.client().task_runner.get_or_create(["main"])
        with pytest.raises(ValidationError, match="prompt"):
            await handle.send("tasks", {"title": "no prompt"})


# --- Request/response with completable messages ------------------------------------------------


class ReviewReq(BaseModel):
    file: str


class ReviewResp(BaseModel):
    summary: str


async def run_reviewer(c):
    agent = c.actors.vm.get_or_create(["reviewer"])
    session = await agent.create_session("pi", env={"ANTHROPIC_API_KEY": "unused"})
    async for message in c.queue.iter(completable=True):
        content = await agent.read_file(message.body.file)
        text = content.decode()
        await agent.send_prompt(
            session.session_id,
            f"Review this code and write a summary to /home/user/review.txt:\n\n{text}",
        )
        review = await agent.read_file("/home/user/review.txt")
        await message.complete(ReviewResp(summary=review.decode()))


@pytest.mark.anyio
async def test_reviewer_answers_a_completable_message():
    log = VmLog()
    reviewer = actor(queues={"review": queue(ReviewReq, ReviewResp)}, run=run_reviewer)
    async with setup(use={"reviewer": reviewer, "vm": stand_in_vm(log)}) as registry:
        client = registry.client()
        code = "export function login() {\n  return redirect(next);\n}\n"
        await client.vm.get_or_create(["reviewer"]).write_file("/home/user/src/auth.ts", code)

        handle = client.reviewer.get_or_create(["main"])
        result = await handle.send("review", {"file": "/home/user/src/auth.ts"}, wait=True, timeout=120)

    assert result.status == "completed"
    assert isinstance(result.response, ReviewResp)
    assert result.response.summary == "3 lines, looks fine"
    assert log.of("reviewer") == [
        ("create_session", "pi", "s1"),
        ("read_file", "/home/user/src/auth.ts"),
        (
            "send_prompt",
            "s1",
            f"Review this code and write a summary to /home/user/review.txt:\n\n{code}",
        ),
        ("read_file", "/home/user/review.txt"),
    ]


@pytest.mark.anyio
async def test_reviewer_waiter_times_out_while_the_review_is_queued():
    gate = asyncio.Event()

    async def slow_reviewer(c):
        async for message in c.queue.iter(completable=True):
            await gate.wait()
            await message.complete({"summary": f"reviewed {message.body.file}"})

    reviewer = actor(queues={"review": queue(ReviewReq, ReviewResp)}, run=slow_reviewer)
    async with setup(use={"reviewer": reviewer}) as registry:
        handle = registry.client().reviewer.get_or_create(["main"])
        result = await handle.send("review", {"file": "a.ts"}, wait=True, timeout=0.05)
        assert result.status == "timed_out"
        gate.set()
        later = await handle.wait_for(result.message_id, timeout=10)
    assert later.status == "completed"
    assert later.response == ReviewResp(summary="reviewed a.ts")


# --- Ingesting from external systems -----------------------------------------------------------


class Issue(BaseModel):
    title: str
    body: str


async def ingest_issue(c, title: str, body: str):
    await c.queue.push("issues", {"title": title, "body": body})


@pytest.mark.anyio
async def test_issue_worker_ingests_through_an_action_and_processes_the_issue():
    log = VmLog()

    async def run_issues(c):
        agent = c.actors.vm.get_or_create(["issue-worker"])
        async for message in c.queue.iter():
            session = await agent.create_session("pi", env={"ANTHROPIC_API_KEY": "unused"})
            await agent.send_prompt(
                session.session_id,
                f"Investigate and fix this issue:\n\nTitle: {message.body.title}\n\n{message.body.body}",
            )
            await agent.close_session(session.session_id)

    issue_worker = actor(
        queues={"issues": queue(Issue)}, actions={"ingest_issue": ingest_issue}, run=run_issues
    )
    async with setup(use={"issue_worker": issue_worker, "vm": stand_in_vm(log)}) as registry:
        handle = registry.client().issue_worker.get_or_create(["main"])
        with registry.bus.subscribe(types=["message.enqueued", "message.completed"]) as events:
            assert (
                await handle.ingest_issue(
                    "Login redirect broken",
                    "Users are redirected to /undefined after login on mobile",
                )
                is None
            )
            with anyio.fail_after(10):
                enqueued = await events.get()
                completed = await events.get()
        assert (enqueued.type, enqueued.queue) == ("message.enqueued", "issues")
        assert (completed.type, completed.message_id) == ("message.completed", enqueued.message_id)

    assert log.of("issue-worker") == [
        ("create_session", "pi", "s1"),
        (
            "send_prompt",
            "s1",
            "Investigate and fix this issue:\n\nTitle: Login redirect broken\n\n"
            "Users are redirected to /undefined after login on mobile",
        ),
        ("close_session", "s1"),
    ]


@pytest.mark.anyio
async def test_ingested_issues_are_processed_in_arrival_order():
    processed = []

    async def run_issues(c):
        async for message in c.queue.iter():
            processed.append(message.body.title)

    issue_worker = actor(
        queues={"issues": queue(Issue)}, actions={"ingest_issue": ingest_issue}, run=run_issues
    )
    async with setup(use={"issue_worker": issue_worker}) as registry:
        handle = registry.client().issue_worker.get_or_create(["main"])
        for i in range(20):
            await handle.ingest_issue(f"issue {i}", "body")
        await wait_until(lambda: len(processed) == 20)
    assert processed == [f"issue {i}" for i in range(20)]
