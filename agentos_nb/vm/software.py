"""Software packages: what `agent_os(software=[...])` installs into a VM type.

A package is any object with a `name` and an `install(setup)` hook. The hook runs once, when
the VM type is defined, and records what the package brings: files, shell features, a
section of the OS instructions, agent types. Every VM of that type then boots with them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from agentos_nb.errors import InvalidDefinition
from agentos_nb.vm.languages import program_names
from agentos_nb.vm.sessions import AgentType
from agentos_nb.vm.shell import Feature, engine_commands


@dataclass
class VmSetup:
    """What the installed packages bring, gathered before any VM boots."""

    files: dict[str, tuple[bytes, int]] = field(default_factory=dict)
    links: dict[str, str] = field(default_factory=dict)
    features: set[Feature] = field(default_factory=set)
    instructions: list[str] = field(default_factory=list)
    agent_types: dict[str, AgentType] = field(default_factory=dict)
    packages: list[str] = field(default_factory=list)

    def add_file(self, path: str, content: bytes | str, *, mode: int = 0o644) -> None:
        if not path.startswith("/"):
            raise InvalidDefinition(f"a package file needs an absolute path, not {path!r}")
        self.files[path] = (content.encode() if isinstance(content, str) else content, mode)

    def add_symlink(self, path: str, target: str) -> None:
        if not path.startswith("/"):
            raise InvalidDefinition(f"a package link needs an absolute path, not {path!r}")
        self.links[path] = target

    def enable(self, feature: Feature) -> None:
        """Turn on a part of the shell engine that is off by default (python3, sqlite3)."""
        self.features.add(feature)

    def add_instructions(self, text: str) -> None:
        """A section of /etc/agentos/instructions.md, which agents read in their system prompt."""
        self.instructions.append(text.strip())

    def add_agent_type(self, name: str, agent_type: AgentType) -> None:
        if name in self.agent_types:
            raise InvalidDefinition(f"two packages both provide the agent type {name!r}")
        self.agent_types[name] = agent_type


@runtime_checkable
class SoftwarePackage(Protocol):
    name: str

    def install(self, setup: VmSetup) -> None: ...


def install_all(packages: list[SoftwarePackage]) -> VmSetup:
    setup = VmSetup()
    for package in packages:
        if not isinstance(package, SoftwarePackage):
            raise InvalidDefinition(
                f"software must be packages with a name and an install(setup) hook, not {package!r}"
            )
        if package.name in setup.packages:
            raise InvalidDefinition(f"software package {package.name!r} is listed twice")
        package.install(setup)
        setup.packages.append(package.name)
    return setup


_COMMON_INSTRUCTIONS = """\
## Shell commands (package `common`)

The usual command-line tools are installed: coreutils (ls, cat, cp, mv, rm, mkdir, head,
tail, wc, sort, uniq, cut, tr, tee, diff, patch, find, xargs, ...), grep and rg, sed, awk,
jq and yq, tar, gzip and zip, sqlite3, python3 and node (see above). `ls /usr/bin` lists every
command. There is no network, no package manager and no compiler."""


class Common:
    """The shell commands: a stub in /usr/bin (and /bin) for every command of the engine, python3
    and sqlite3."""

    name = "common"

    def install(self, setup: VmSetup) -> None:
        setup.enable("python")
        setup.enable("sqlite")
        setup.enable("javascript")
        for command in {*engine_commands(), *program_names(setup.features)}:
            setup.add_file(f"/usr/bin/{command}", _stub(command), mode=0o755)
        setup.add_symlink("/bin", "usr/bin")  # as on current distributions: /bin/sh, /bin/bash
        setup.add_instructions(_COMMON_INSTRUCTIONS)


def _stub(command: str) -> str:
    return f'#!/bin/sh\n# {command} is built into the agentOS shell\nexec {command} "$@"\n'


common = Common()
