"""Confine a program, then become it: `python -I -S confine.py SPEC PROGRAM ARGS...`.

Deno's permission flags do not cover everything Deno itself reads: a script's `import` of a
local file (`import x from "/etc/passwd.json" with {type: "json"}`), the main module, a config
file. So the kernel's Landlock confines the process first: it may read the directories the spec
lists, read and write its working copy, connect over TCP to the spec's ports only (none, or the
port of its run's network proxy: `deno_proxy.py`), bind none, signal nothing outside
itself, with resource limits for CPU time, file size and open files. Then it execs the program,
which keeps the confinement. It runs as a file, with the standard library only, before anything
else: so it costs a bare interpreter's start, not the package's.

SPEC is JSON: {"read": [paths], "write": [paths], "cpu_seconds": n, "file_bytes": n,
"data_bytes": n, "open_files": n, "connect_ports": [ports]} ("connect_ports" may be left out).
"""

from __future__ import annotations

import ctypes
import json
import os
import resource
import struct
import sys

_CREATE_RULESET, _ADD_RULE, _RESTRICT_SELF = 444, 445, 446  # the same on x86-64 and arm64
_RULESET_VERSION = 1
_RULE_PATH_BENEATH = 1
_RULE_NET_PORT = 2
_NO_NEW_PRIVS = 38

_EXECUTE, _WRITE_FILE, _READ_FILE, _READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
_ALL_BY_ABI = {1: (1 << 13) - 1, 2: (1 << 14) - 1, 3: (1 << 15) - 1, 5: (1 << 16) - 1}
_FILE_ONLY = _EXECUTE | _WRITE_FILE | _READ_FILE | (1 << 14) | (1 << 15)  # rights a file rule may hold
_TCP_BIND, _TCP_CONNECT = 1, 2
_SCOPE_ABSTRACT_UNIX, _SCOPE_SIGNAL = 1, 2


class ConfinementUnavailable(OSError):
    """The kernel cannot confine a program: no Landlock, or too old a one."""


def landlock_abi() -> int:
    """The kernel's Landlock version, 0 where there is none."""
    libc = ctypes.CDLL(None, use_errno=True)
    version = libc.syscall(_CREATE_RULESET, None, ctypes.c_size_t(0), ctypes.c_uint32(_RULESET_VERSION))
    return max(version, 0)


def confine(read: list[str], write: list[str], connect_ports: list[int] | None = None) -> None:
    """Restrict this process (and what it execs) to reading `read` and reading and writing
    `write`, TCP connections to `connect_ports` only (on any address: Landlock knows ports, not
    hosts), and no signals or abstract sockets outside itself."""
    libc = ctypes.CDLL(None, use_errno=True)
    abi = landlock_abi()
    if abi < 4:
        raise ConfinementUnavailable(f"this kernel's Landlock (version {abi}) cannot confine a program")
    every = _ALL_BY_ABI[max(known for known in _ALL_BY_ABI if known <= abi)]
    attributes = struct.pack("QQQ", every, _TCP_BIND | _TCP_CONNECT, _SCOPE_ABSTRACT_UNIX | _SCOPE_SIGNAL)
    size = 24 if abi >= 6 else 16
    ruleset = libc.syscall(_CREATE_RULESET, attributes[:size], ctypes.c_size_t(size), ctypes.c_uint32(0))
    if ruleset < 0:
        raise ConfinementUnavailable(ctypes.get_errno(), "creating a Landlock ruleset failed")
    readable = _EXECUTE | _READ_FILE | _READ_DIR
    for paths, allowed in ((read, readable), (write, every)):
        for path in paths:
            _allow(libc, ruleset, path, allowed)
    for port in connect_ports or []:
        if not 0 < port < 65536:
            raise ConfinementUnavailable(f"{port} is not a TCP port")
        if libc.syscall(_ADD_RULE, ruleset, _RULE_NET_PORT, struct.pack("=QQ", _TCP_CONNECT, port), 0) != 0:
            raise ConfinementUnavailable(ctypes.get_errno(), f"allowing TCP port {port} failed")
    if libc.prctl(_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 or libc.syscall(_RESTRICT_SELF, ruleset, 0) != 0:
        raise ConfinementUnavailable(ctypes.get_errno(), "applying the Landlock ruleset failed")
    os.close(ruleset)


def _allow(libc: ctypes.CDLL, ruleset: int, path: str, allowed: int) -> None:
    try:
        descriptor = os.open(path, os.O_PATH | os.O_CLOEXEC)
    except FileNotFoundError:
        return  # nothing there to allow
    try:
        if not os.path.isdir(path):
            allowed &= _FILE_ONLY
        rule = struct.pack("=Qi", allowed, descriptor)
        if libc.syscall(_ADD_RULE, ruleset, _RULE_PATH_BENEATH, rule, 0) != 0:
            raise ConfinementUnavailable(ctypes.get_errno(), f"allowing {path} failed")
    finally:
        os.close(descriptor)


def main(argv: list[str]) -> None:
    """Apply SPEC to this process, then exec the program."""
    spec = json.loads(argv[1])
    cpu = int(spec["cpu_seconds"])
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    resource.setrlimit(resource.RLIMIT_FSIZE, (spec["file_bytes"], spec["file_bytes"]))
    resource.setrlimit(resource.RLIMIT_NOFILE, (spec["open_files"], spec["open_files"]))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    # Address space is what V8 reserves up front (gigabytes, mostly never touched), so the host's
    # limit on it is lifted; memory is held to the data limit instead, which counts what is written.
    hard = resource.getrlimit(resource.RLIMIT_AS)[1]
    resource.setrlimit(resource.RLIMIT_AS, (hard, hard))
    resource.setrlimit(resource.RLIMIT_DATA, (spec["data_bytes"], spec["data_bytes"]))
    confine(spec["read"], spec["write"], [int(port) for port in spec.get("connect_ports", [])])
    os.execv(argv[2], argv[2:])


if __name__ == "__main__":
    main(sys.argv)
