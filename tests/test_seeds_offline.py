"""The seeds end to end on real VMs, answered by the offline model: seed 000 (a writer and a
reviewer joined by a host tool) and the three examples of seed 002 (queues feeding agents).

The code is the seeds' own, in Python, as DESIGN.md writes it.
"""

from __future__ import annotations

import re

import pytest
from pydantic import BaseModel, Field

from agentos_nb import actor, agent_os, host_tool, queue, toolkit
from agentos_nb.software import common, pi
from conftest import next_event, wait_until

pytestmark = pytest.mark.anyio


# --- seed 000 --------------------------------------------------------------------------------


class SubmitInput(BaseModel):
    path: str = Field(description="Path to the file to review")


async def submit(input: SubmitInput, ctx):  # runs on the host, never in the VM
    writer = ctx.client.writer.get_or_create(["my-project"])
    reviewer = ctx.client.reviewer.get_or_create(["my-project"])
    content = await writer.read_file(input.path)
    await reviewer.write_file(input.path, content)
    session = await reviewer.create_session("pi")
    reply = await reviewer.send_prompt(
        session.session_id, f"Review the code at {input.path} and list any issues."
    )
    await reviewer.close_session(session.session_id)
    return {"review": reply.text}


review = toolkit(
    name="review",
    description="Send code to the reviewer agent",
    tools={
        "submit": host_tool(
            description="Submit a file for code review", input_schema=SubmitInput, execute=submit
        )
    },
)


async def test_seed_000_the_writer_gets_the_reviewers_review(start_registry):
    registry = await start_registry(
        writer=agent_os(software=[common, pi], toolkits=[review]),
        reviewer=agent_os(software=[common, pi]),
    )
    calls = registry.bus.subscribe(types=["tool.call_finished"])
    client = registry.client()
    writer = client.writer.get_or_create(["my-project"])
    session = await writer.create_session("pi")
    assert session.offline
    result = await writer.send_prompt(
        session.session_id, "Write a REST API at /home/user/api.ts, then submit it for review."
    )
    assert result.stop_reason == "end_turn"

    # The writer wrote the file, and the host tool copied it into the reviewer's VM.
    reviewer = client.reviewer.get_or_create(["my-project"])
    code = await writer.read_file("/home/user/api.ts", encoding="utf-8")
    assert await reviewer.read_file("/home/user/api.ts", encoding="utf-8") == code
    assert len(code.splitlines()) >= 20

    # The call went writer -> review.submit, and succeeded.
    call = await next_event(calls, "tool.call_finished")
    assert (call.actor.name, call.toolkit, call.tool, call.ok) == ("writer", "review", "submit", True)
    assert call.input == {"path": "/home/user/api.ts"}

    # The reviewer's review names real lines of the file, and the writer's answer carries it.
    review_text = call.result["review"]
    assert review_text in result.text
    cited = re.findall(r"[Ll]ine (\d+): `([^`]+)`", review_text)
    assert len(cited) >= 2, review_text
    lines = code.splitlines()
    for number, text in cited:
        assert text.strip() in lines[int(number) - 1], (number, text)

    # The reviewer's session was closed by the tool; the writer's is still open.
    assert await reviewer.list_sessions() == []
    [closed] = await reviewer.list_sessions(include_closed=True)
    assert closed.closed
    assert [s.session_id for s in await writer.list_sessions()] == [session.session_id]


# --- seed 002 --------------------------------------------------------------------------------


class Task(BaseModel):
    prompt: str


class ReviewReq(BaseModel):
    file: str


class ReviewResp(BaseModel):
    summary: str


class Issue(BaseModel):
    title: str
    body: str


async def run_tasks(c):
    agent = c.actors.vm.get_or_create(["task-agent"])
    async for message in c.queue.iter():  # one message at a time
        session = await agent.create_session("pi")
        await agent.send_prompt(session.session_id, message.body.prompt)
        await agent.close_session(session.session_id)


async def run_reviews(c):
    agent = c.actors.vm.get_or_create(["reviewer"])
    session = await agent.create_session("pi")
    async for message in c.queue.iter(completable=True):
        text = (await agent.read_file(message.body.file)).decode()
        await agent.send_prompt(
            session.session_id, f"Review this code and write a summary to /home/user/review.txt:\n\n{text}"
        )
        review = await agent.read_file("/home/user/review.txt")
        await message.complete(ReviewResp(summary=review.decode()))


async def ingest_issue(c, title: str, body: str) -> None:
    await c.queue.push("issues", {"title": title, "body": body})


async def run_issues(c):
    agent = c.actors.vm.get_or_create(["issue-worker"])
    async for message in c.queue.iter():
        session = await agent.create_session("pi")
        await agent.send_prompt(
            session.session_id,
            f"Investigate and fix this issue:\n\nTitle: {message.body.title}\n\n{message.body.body}",
        )
        await agent.close_session(session.session_id)


vm = agent_os(software=[common, pi])


async def test_seed_002_task_runner_works_through_its_tasks_in_order(start_registry):
    registry = await start_registry(task_runner=actor(queues={"tasks": queue(Task)}, run=run_tasks), vm=vm)
    client = registry.client()
    handle = client.task_runner.get_or_create(["main"])
    prompts = ["Review PR #123", "Fix the flaky test in auth.test.ts", "Update the README"]
    for prompt in prompts:
        await handle.send("tasks", {"prompt": prompt})

    agent = client.vm.get_or_create(["task-agent"])

    async def all_done() -> bool:
        sessions = await agent.list_sessions(include_closed=True)
        return len(sessions) == 3 and all(s.closed for s in sessions)

    await wait_until(all_done, timeout=20)
    sessions = await agent.list_sessions(include_closed=True)
    asked = []
    for session in sessions:
        updates = await agent.get_session_events(session.session_id)
        asked += [u.content.text for u in updates if u.session_update == "user_message_chunk"]
        assert updates[-1].stop_reason == "end_turn"
        assert any(
            u.session_update == "tool_call" and u.kind == "execute" for u in updates
        )  # it looked around
    assert asked == prompts  # one at a time, in order
    ended = [s.created_at for s in sessions]
    assert ended == sorted(ended)


async def test_seed_002_reviewer_answers_a_completable_message(start_registry):
    registry = await start_registry(
        reviewer=actor(queues={"review": queue(ReviewReq, ReviewResp)}, run=run_reviews), vm=vm
    )
    client = registry.client()
    code = "export function login(user: any) {\n  console.log(user)\n  return user == null\n}\n"
    await client.vm.get_or_create(["reviewer"]).write_file("/home/user/src/auth.ts", code)
    res = await client.reviewer.get_or_create(["main"]).send(
        "review", {"file": "/home/user/src/auth.ts"}, wait=True, timeout=120
    )
    assert res.status == "completed"
    summary = res.response.summary
    cited = re.findall(r"[Ll]ine (\d+): `([^`]+)`", summary)
    assert cited, summary
    for number, text in cited:
        assert text.strip() in code.splitlines()[int(number) - 1]


async def test_seed_002_issue_worker_investigates_an_ingested_issue(start_registry):
    registry = await start_registry(
        issue_worker=actor(
            queues={"issues": queue(Issue)}, actions={"ingest_issue": ingest_issue}, run=run_issues
        ),
        vm=vm,
    )
    client = registry.client()
    handle = client.issue_worker.get_or_create(["main"])
    await handle.ingest_issue(
        "Login redirect broken", "Users are redirected to /undefined after login on mobile"
    )
    agent = client.vm.get_or_create(["issue-worker"])

    async def closed() -> bool:
        sessions = await agent.list_sessions(include_closed=True)
        return bool(sessions) and sessions[0].closed

    await wait_until(closed, timeout=20)
    [session] = await agent.list_sessions(include_closed=True)
    updates = await agent.get_session_events(session.session_id)
    assert updates[1].content.text.startswith(
        "Investigate and fix this issue:\n\nTitle: Login redirect broken"
    )
    reply = "".join(u.content.text for u in updates if u.session_update == "agent_message_chunk")
    assert "offline model" in reply
