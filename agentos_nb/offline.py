"""The offline model, for sessions with no API key (Binder, tests, demos):
`create_session("pi", model=offline_model(script=[Bash("ls"), Reply("done")]))`.

Without a script it behaves so that the seed examples make sense; a script makes it say and
do exactly what a lesson or a test needs, step by step.
"""

from agentos_nb.agents.offline import Bash, Edit, Read, Reply, Step, ToolCall, Write, offline_model

__all__ = ["Bash", "Edit", "Read", "Reply", "Step", "ToolCall", "Write", "offline_model"]
