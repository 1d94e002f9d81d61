"""Handlers for the registry as a whole: whether it is up, its API document, its actors and its
events."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pydantic_core

from agentos_nb.http.api_models import ActorList, EventsQuery
from agentos_nb.http.routing import Reply, Request, StreamEvent, json_bytes

KEEPALIVE_SECONDS = 15.0
"""An idle event stream sends a comment this often, so proxies keep it and a gone reader shows."""


async def health(request: Request) -> Reply:
    return Reply(body=b'{"status":"ok"}')


async def openapi(request: Request) -> Reply:
    return Reply(body=request.api.openapi())


async def list_actors(request: Request) -> Reply:
    """Every actor; for a scoped token, those its patterns cover."""
    views = await request.api.registry.overview()
    scope = request.scope
    if scope is not None:
        views = [view for view in views if scope.covers_actor(view.name, view.key)]
    return Reply(body=json_bytes(ActorList(actors=views)))


async def events(request: Request) -> AsyncIterator[StreamEvent]:
    """The registry's events; for a scoped token, only those of actors its patterns cover."""
    query = request.query_as(EventsQuery)
    names = frozenset(query.actor)
    scope = request.scope

    def wanted(event: Any) -> bool:
        actor = getattr(event, "actor", None)
        if actor is None:
            return not names and scope is None
        return (not names or actor.name in names) and (
            scope is None or scope.covers_actor(actor.name, actor.key)
        )

    subscription = request.api.registry.bus.subscribe(
        buffer=query.buffer, types=query.type or None, accept=wanted if names or scope else None
    )
    with subscription:
        yield None
        while True:
            try:
                event = await asyncio.wait_for(subscription.get(), KEEPALIVE_SECONDS)
            except TimeoutError:
                yield None
                continue
            except StopAsyncIteration:  # the registry stopped
                return
            yield event.type, pydantic_core.to_json(event, by_alias=False, fallback=repr)
