"""The registry the HTTP tests serve from a subprocess: seed 000's writer and reviewer, seed
002's issue worker and its VM, and a sleeper whose naps are work in flight when the server is
told to stop.

    python tests/http_registry.py PORT [TOKEN [TOKEN_FILE]]

serves it as the seed's server does, with `registry.start(...)`, blocking until SIGTERM or
Ctrl-C; PORT 0 picks a free port, which the runtime file (in $AGENTOS_NB_RUNTIME_DIR) tells.
TOKEN_FILE adds scoped tokens and webhooks, as `agentos-nb serve --token-file` reads them.
Sessions use the offline model only, whatever a request asks for.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pydantic_ai.models
from pydantic import BaseModel, Field

from agentos_nb import ActorContext, actor, agent_os, queue, setup
from agentos_nb.demo import Issue, ingest_issue, review, run_issues
from agentos_nb.http.scopes import TokenFile
from agentos_nb.software import common, pi


class Nap(BaseModel):
    seconds: float = Field(ge=0, le=5)


class Woke(BaseModel):
    slept: float


async def run_naps(c: ActorContext) -> None:
    async for message in c.queue.iter(completable=True):
        await asyncio.sleep(message.body.seconds)
        await message.complete(Woke(slept=message.body.seconds))


registry = setup(
    use={
        "writer": agent_os(software=[common, pi], toolkits=[review]),
        "reviewer": agent_os(software=[common, pi]),
        "issue_worker": actor(
            queues={"issues": queue(Issue)}, actions={"ingest_issue": ingest_issue}, run=run_issues
        ),
        "vm": agent_os(software=[common, pi]),
        "sleeper": actor(queues={"naps": queue(Nap, Woke)}, run=run_naps),
    },
    name="http-tests",
)

pydantic_ai.models.ALLOW_MODEL_REQUESTS = False  # a request naming a real model fails, never reaches one

if __name__ == "__main__":
    extra = (
        TokenFile.model_validate_json(Path(sys.argv[3]).read_bytes()) if len(sys.argv) > 3 else TokenFile()
    )
    registry.start(
        host="127.0.0.1",
        port=int(sys.argv[1]),
        token=sys.argv[2] if len(sys.argv) > 2 else None,
        tokens=extra.tokens,
        webhooks=extra.webhooks,
    )
