"""Actors with typed, durable queues, run as asyncio tasks on the running loop."""
