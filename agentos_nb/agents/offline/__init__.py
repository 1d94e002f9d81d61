"""The offline model: a deterministic, scriptable stand-in for an LLM, used when no API key is set.

Why it exists: Binder, CI and the tests have no API key, yet every seed example must run and mean
something. So a session without a key gets this model, a pydantic-ai `FunctionModel` that answers
each request from the message history alone: the same history always gives the same response.
A script of steps (`offline_model(script=[Bash("ls"), Reply("done")])`) takes precedence until it
runs out; then the default behaviours of `flows` play the seeds' parts.
"""

from agentos_nb.agents.offline.model import OFFLINE_MODEL_NAME, offline_model
from agentos_nb.agents.offline.script import Bash, Edit, Read, Reply, Step, ToolCall, Write

__all__ = [
    "OFFLINE_MODEL_NAME",
    "Bash",
    "Edit",
    "Read",
    "Reply",
    "Step",
    "ToolCall",
    "Write",
    "offline_model",
]
