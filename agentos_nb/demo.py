"""The seeds that `agentos-nb demo` runs, as registries a script or a notebook can start too.

The code is the seeds' own, in Python, as DESIGN.md writes it. The one addition is `model`:
every session of these VMs uses it, and without it the environment picks one (an API key),
else the offline model answers.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from agentos_nb import (
    ActorContext,
    Registry,
    ToolContext,
    VmHandle,
    actor,
    agent_os,
    host_tool,
    queue,
    setup,
    toolkit,
)
from agentos_nb.software import Pi, SoftwarePackage, common, pi

# --- seed 000: a writer and a reviewer joined by a host tool -----------------------------------

PROJECT = ["my-project"]
WRITER_PROMPT = "Write a REST API at /home/user/api.ts, then submit it for review."

REVIEW_TIMEOUT = 600.0
"""A real model's review takes minutes, well past a host tool's default 30 s."""


class SubmitInput(BaseModel):
    path: str = Field(description="Path to the file to review")


async def submit(input: SubmitInput, ctx: ToolContext) -> dict[str, str]:
    """Runs on the host, never in the VM: copies the file to the reviewer and asks for a review."""
    writer: VmHandle = ctx.client.writer.get_or_create(PROJECT)
    reviewer: VmHandle = ctx.client.reviewer.get_or_create(PROJECT)
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
            description="Submit a file for code review",
            input_schema=SubmitInput,
            execute=submit,
            timeout=REVIEW_TIMEOUT,
        )
    },
)


def seed_000_registry(model: Any = None) -> Registry:
    """The writer, with the review toolkit, and the plain reviewer."""
    agent = _pi(model)
    return setup(
        use={
            "writer": agent_os(software=[common, agent], toolkits=[review]),
            "reviewer": agent_os(software=[common, agent]),
        },
        name="seed-000",
    )


# --- seed 002: queues feeding agents ---------------------------------------------------------

TASKS = ["Review PR #123", "Fix the flaky test in auth.test.ts", "Update the README"]
MAX_TASKS_QUEUED = 3
"""Small, so that the demo's fourth task meets backpressure."""
REVIEWED_FILE = "/home/user/src/auth.ts"
AUTH_TS = """\
export function login(user: any, password: string) {
  console.log("login", user, password)
  if (user == null) return false
  return user.password == password
}
"""
"""What the reviewer VM holds at `REVIEWED_FILE` for the completable review."""
ISSUE = {"title": "Login redirect broken", "body": "Users are redirected to /undefined after login on mobile"}


class Task(BaseModel):
    prompt: str


class ReviewRequest(BaseModel):
    file: str


class ReviewResponse(BaseModel):
    summary: str


class Issue(BaseModel):
    title: str
    body: str


async def run_tasks(c: ActorContext) -> None:
    agent: VmHandle = c.actors.vm.get_or_create(["task-agent"])
    async for message in c.queue.iter():  # one message at a time
        session = await agent.create_session("pi")
        await agent.send_prompt(session.session_id, message.body.prompt)
        await agent.close_session(session.session_id)


async def run_reviews(c: ActorContext) -> None:
    agent: VmHandle = c.actors.vm.get_or_create(["reviewer"])
    session = await agent.create_session("pi")
    async for message in c.queue.iter(completable=True):
        text = (await agent.read_file(message.body.file)).decode()
        await agent.send_prompt(
            session.session_id, f"Review this code and write a summary to /home/user/review.txt:\n\n{text}"
        )
        summary = await agent.read_file("/home/user/review.txt")
        await message.complete(ReviewResponse(summary=summary.decode()))


async def ingest_issue(c: ActorContext, title: str, body: str) -> None:
    """Where a webhook's payload enters: straight into the queue."""
    await c.queue.push("issues", {"title": title, "body": body})


async def run_issues(c: ActorContext) -> None:
    agent: VmHandle = c.actors.vm.get_or_create(["issue-worker"])
    async for message in c.queue.iter():
        session = await agent.create_session("pi")
        await agent.send_prompt(
            session.session_id,
            f"Investigate and fix this issue:\n\nTitle: {message.body.title}\n\n{message.body.body}",
        )
        await agent.close_session(session.session_id)


def seed_002_registry(model: Any = None) -> Registry:
    """Seed 002's three actors in one registry, sharing one VM type whose keys are the agents."""
    return setup(
        use={
            "task_runner": actor(
                queues={"tasks": queue(Task)}, run=run_tasks, options={"max_queue_size": MAX_TASKS_QUEUED}
            ),
            "reviewer": actor(queues={"review": queue(ReviewRequest, ReviewResponse)}, run=run_reviews),
            "issue_worker": actor(
                queues={"issues": queue(Issue)}, actions={"ingest_issue": ingest_issue}, run=run_issues
            ),
            "vm": agent_os(software=[common, _pi(model)]),
        },
        name="seed-002",
    )


def _pi(model: Any) -> SoftwarePackage:
    return pi if model is None else Pi(model=model)
