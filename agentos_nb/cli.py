"""`agentos-nb`: the command line. `agentos-nb demo` runs seed 002's queue examples in a terminal."""

from __future__ import annotations

import argparse
import asyncio
import itertools
from collections.abc import Sequence

from pydantic import BaseModel
from rich.console import Console
from rich.markup import escape

from agentos_nb import ActorContext, Registry, actor, errors, queue, setup
from agentos_nb.events import Event, Subscription

TASK_AGENT, REVIEW_AGENT, ISSUE_AGENT = "task-agent", "reviewer", "issue-worker"  # stand-in VMs
TASKS = ["Review PR #123", "Fix the flaky test in auth.test.ts", "Update the README"]


class Task(BaseModel):
    prompt: str


class ReviewRequest(BaseModel):
    file: str


class ReviewResponse(BaseModel):
    summary: str


class Issue(BaseModel):
    title: str
    body: str


def demo_registry(work_seconds: float = 0.3) -> Registry:
    """Seed 002's three actors, with a stand-in `vm` actor where the seed has an agent VM."""
    session_ids = itertools.count(1)

    async def create_session(c: ActorContext, agent: str) -> str:
        return f"{agent}-{next(session_ids)}"

    async def send_prompt(c: ActorContext, session_id: str, text: str) -> str:
        await asyncio.sleep(work_seconds)
        c.state["prompts"] += 1
        return f"[{session_id}] done: {text.splitlines()[0]}"

    async def close_session(c: ActorContext, session_id: str) -> None:
        return None

    def prompts_handled(c: ActorContext) -> int:
        return c.state["prompts"]

    async def run_tasks(c: ActorContext) -> None:
        agent = c.actors.vm.get_or_create([TASK_AGENT])
        async for message in c.queue.iter():
            session = await agent.create_session("pi")
            reply = await agent.send_prompt(session, message.body.prompt)
            c.broadcast("reply", reply)
            await agent.close_session(session)

    async def run_reviews(c: ActorContext) -> None:
        agent = c.actors.vm.get_or_create([REVIEW_AGENT])
        session = await agent.create_session("pi")
        async for message in c.queue.iter(completable=True):
            reply = await agent.send_prompt(session, f"Review {message.body.file}")
            await message.complete(ReviewResponse(summary=reply))

    async def ingest_issue(c: ActorContext, title: str, body: str) -> None:
        await c.queue.push("issues", {"title": title, "body": body})

    async def run_issues(c: ActorContext) -> None:
        agent = c.actors.vm.get_or_create([ISSUE_AGENT])
        async for message in c.queue.iter():
            session = await agent.create_session("pi")
            reply = await agent.send_prompt(session, f"Investigate and fix: {message.body.title}")
            c.broadcast("reply", reply)
            await agent.close_session(session)

    return setup(
        use={
            "vm": actor(
                state={"prompts": 0},
                actions={
                    "create_session": create_session,
                    "send_prompt": send_prompt,
                    "close_session": close_session,
                    "prompts_handled": prompts_handled,
                },
            ),
            "task_runner": actor(queues={"tasks": queue(Task)}, run=run_tasks, options={"max_queue_size": 3}),
            "reviewer": actor(queues={"review": queue(ReviewRequest, ReviewResponse)}, run=run_reviews),
            "issue_worker": actor(
                queues={"issues": queue(Issue)}, actions={"ingest_issue": ingest_issue}, run=run_issues
            ),
        },
        name="agentos-nb-demo",
    )


async def run_demo(console: Console, work_seconds: float = 0.3) -> None:
    """Send the seed's work and narrate every event until all of it is done."""
    async with demo_registry(work_seconds) as registry:
        events = registry.bus.subscribe(
            types=["actor.created", "message.", "actor.broadcast", "actor.crashed"]
        )
        replies_expected = len(TASKS) + 2  # the tasks, the one sent after backpressure, the issue
        printer = asyncio.create_task(_print_events(console, events, replies_expected))
        client = registry.client()

        console.rule("Serial tasks: one message at a time")
        tasks = client.task_runner.get_or_create(["main"])
        for prompt in TASKS:
            await tasks.send("tasks", {"prompt": prompt})
        try:
            await tasks.send("tasks", {"prompt": "one too many"})
        except errors.QueueFull as error:
            console.print(f"[yellow]backpressure:[/] {escape(str(error))}")
        await tasks.send("tasks", {"prompt": "one too many"}, block=True)
        try:
            await tasks.send("tasks", {"prompt": 123})
        except errors.ValidationError as error:
            console.print(f"[red]refused:[/] {escape(str(error))}")

        console.rule("Request/response: completable messages")
        result = await client.reviewer.get_or_create(["main"]).send(
            "review", {"file": "/home/user/src/auth.ts"}, wait=True, timeout=120
        )
        if result.status == "completed":
            console.print(f"[green]Review:[/] {escape(result.response.summary)}")

        console.rule("Ingesting from external systems: an action pushes to a queue")
        await client.issue_worker.get_or_create(["main"]).ingest_issue(
            "Login redirect broken", "Users are redirected to /undefined after login on mobile"
        )
        await printer
        events.close()
        prompts = sum(
            [await client.vm.get(key).prompts_handled() for key in (TASK_AGENT, REVIEW_AGENT, ISSUE_AGENT)]
        )
        console.rule(f"[green]Done: {replies_expected} replies, {prompts} prompts to the stand-in VMs")


async def _print_events(console: Console, events: Subscription, replies_expected: int) -> None:
    """Print events until the agents have replied `replies_expected` times."""
    replies = 0
    async for event in events:
        console.print(_describe(event))
        replies += event.type == "actor.broadcast"
        if replies == replies_expected:
            return


def _describe(event: Event) -> str:
    data = event.model_dump()
    actor_ref = data.pop("actor", None)
    data.pop("at"), data.pop("type")
    who = f"{actor_ref['name']}/{'/'.join(actor_ref['key'])}" if actor_ref else ""
    details = " ".join(f"{k}={v!r}" for k, v in data.items() if v not in (None, ()))
    return f"[dim]{event.type:<22}[/] [bold]{escape(who)}[/] {escape(details)}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="agentos-nb", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="run seed 002's queue examples in the terminal")
    demo.add_argument("--work-seconds", type=float, default=0.3, help="how long each stand-in prompt takes")
    args = parser.parse_args(argv)
    if args.command == "demo":
        asyncio.run(run_demo(Console(), args.work_seconds))
    return 0
