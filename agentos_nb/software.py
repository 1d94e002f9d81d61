"""Software packages for `agent_os(software=[...])`: `from agentos_nb.software import common`."""

from agentos_nb.vm.software import Common, SoftwarePackage, VmSetup, common

__all__ = ["Common", "SoftwarePackage", "VmSetup", "common"]
