"""Software packages for `agent_os(software=[...])`: `from agentos_nb.software import common, pi`."""

from agentos_nb.agents.pi import Pi, pi
from agentos_nb.agents.retry import RetryPolicy
from agentos_nb.vm.software import Common, SoftwarePackage, VmSetup, common

__all__ = ["Common", "Pi", "RetryPolicy", "SoftwarePackage", "VmSetup", "common", "pi"]
