"""The VM is a sandbox: two VMs never see each other's files, and nothing run in a VM reaches
the host's filesystem, processes, environment or network.

Every probe that must fail has a control beside it that must succeed (the same command on a
VM path, a host connection to the same server, an env var passed on purpose), so that a
probe failing for an unrelated reason cannot pass for isolation.
"""

from __future__ import annotations

import asyncio
import os
import re
import sqlite3
import uuid
from pathlib import Path

import pytest

from agentos_nb import agent_os
from agentos_nb.software import common
from conftest import wait_until

HOME = "/home/user"
VM_ROOT_ENTRIES = {"bin", "dev", "etc", "home", "tmp", "usr"}


@pytest.fixture
def secret() -> str:
    return f"host-secret-{uuid.uuid4().hex}"


@pytest.fixture
def host_marker(tmp_path, secret) -> Path:
    """A host file that no VM may read, holding `secret`."""
    marker = tmp_path / "host-marker.txt"
    marker.write_text(f"{secret}\n")
    return marker


@pytest.fixture
async def secret_env_vm(monkeypatch, secret, start_registry):
    """A VM whose registry started while the host's environment held `secret`."""
    monkeypatch.setenv("AGENTOS_HOST_SECRET", secret)
    registry = await start_registry(vm=agent_os(software=[common]))
    return registry.client().vm.get_or_create(["secret-env"])


def _on_host(path: Path | str) -> bool:
    """Whether `path` exists on the host (a sync helper: host checks are instant, local calls)."""
    return Path(path).exists()


@pytest.fixture
def host_passwd_names() -> set[str]:
    return {line.split(":", 1)[0] for line in Path("/etc/passwd").read_text().splitlines() if line}


def _seen(result) -> str:
    """Everything a command let out: stdout and stderr."""
    return result.stdout + result.stderr


# --- VM against VM --------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_files_written_in_one_vm_are_absent_in_another(start_registry):
    registry = await start_registry(vm=agent_os(software=[common]))
    a = registry.client().vm.get_or_create(["a"])
    b = registry.client().vm.get_or_create(["b"])
    await b.exec("true")  # b is awake before a writes anything

    await a.write_file(f"{HOME}/by-action.txt", "written by the action\n")
    written = await a.exec(
        "echo written-by-exec > by-exec.txt && mkdir -p /tmp/a-only && touch /tmp/a-only/f"
    )
    assert written.exit_code == 0, written.stderr
    paths = [f"{HOME}/by-action.txt", f"{HOME}/by-exec.txt", "/tmp/a-only/f"]

    for path in paths:  # control: a sees its own files
        assert await a.exists(path)
        assert (await a.exec(f"cat {path}")).exit_code == 0
    for path in paths:
        assert not await b.exists(path)
        cat = await b.exec(f"cat {path}")
        assert (cat.exit_code, cat.stdout) == (1, "")
        with pytest.raises(FileNotFoundError):
            await b.read_file(path)
    listing = await b.exec(f"ls -A {HOME} /tmp; find / -name 'by-*' -o -name 'a-only'")
    assert "by-action" not in listing.stdout
    assert "by-exec" not in listing.stdout
    assert "a-only" not in listing.stdout
    assert not await b.exists("/tmp/a-only")


# --- the host's files -----------------------------------------------------------------------------


@pytest.mark.anyio
async def test_etc_passwd_is_the_vms_own(vm, host_passwd_names):
    vm_lines = {"root:x:0:0:root:/root:/bin/bash", "user:x:1000:1000:user:/home/user:/bin/bash"}
    host_only = host_passwd_names - {"root", "user"}

    passwd = await vm.exec("cat /etc/passwd")
    assert passwd.exit_code == 0
    assert "user:x:1000" in passwd.stdout
    assert set(passwd.stdout.splitlines()) == vm_lines
    assert (await vm.read_file("/etc/passwd", encoding="utf-8")) == passwd.stdout
    assert not {line.split(":", 1)[0] for line in passwd.stdout.splitlines()} & host_only
    for name in sorted(host_only)[:5]:
        assert (await vm.exec(f"grep -q '^{name}:' /etc/passwd")).exit_code == 1

    shadow = await vm.exec("cat /etc/shadow")
    assert (shadow.exit_code, shadow.stdout) == (1, "")
    assert (await vm.exec("cat /etc/hostname")).stdout == "agentos\n"


@pytest.mark.anyio
async def test_proc_shows_nothing_of_the_host(secret_env_vm, secret):
    vm = secret_env_vm
    host_pid = str(os.getpid())
    host_path = os.environ["PATH"]
    vm_path = (await vm.exec("echo $PATH")).stdout.strip()
    probes = [
        "cat /proc/self/environ",
        "cat /proc/1/cmdline",
        "cat /proc/self/cmdline",
        "cat /proc/self/status",
        "ls /proc",
        "ls /proc/self/",
        f"ls /proc/{host_pid}",
        f"cat /proc/{host_pid}/environ",
        f"cat /proc/{host_pid}/cmdline",
        "cat /proc/self/mounts",
        "ls /proc/self/fd",
    ]
    for probe in probes:
        result = await vm.exec(probe)
        seen = _seen(result)
        assert secret not in seen, probe
        if host_path != vm_path:
            assert host_path not in seen, probe
        assert "pytest" not in result.stdout, probe
        assert host_pid not in re.findall(r"\d+", result.stdout), probe
    assert not await vm.exists(f"/proc/{host_pid}")
    listing = await vm.exec("ls /proc")
    assert host_pid not in listing.stdout.split()


@pytest.mark.anyio
async def test_paths_out_of_the_vm_reach_vm_contents_or_errors_never_the_hosts(
    vm, tmp_path, host_marker, secret
):
    marker = str(host_marker)
    climb = "../" * 12

    shadow = await vm.exec("ln -s /etc/shadow x && cat x")
    assert shadow.exit_code == 1
    assert "root:" not in shadow.stdout
    hostname = await vm.exec("ln -s ../../../../../etc/hostname y && cat y")
    assert (hostname.exit_code, hostname.stdout) == (0, "agentos\n")  # the VM's file, through the link

    probes = [
        f"cat {marker}",
        f"ln -s {marker} z && cat z",
        f"cat {climb}{marker.lstrip('/')}",
        f"cd {HOME}/{climb} && cat .{marker}",
        f"cd {climb}{str(tmp_path).lstrip('/')} && ls",
        f"cp {marker} copy.txt; cat copy.txt",
        f"grep -r {secret} / ; find / -name {host_marker.name}",
        f"tar cf - {marker} | tar xf - -O",
    ]
    for probe in probes:
        result = await vm.exec(probe)
        assert secret not in _seen(result), probe
        assert host_marker.name not in result.stdout, probe

    # the file actions: a path that climbs out is refused, a host path is simply not there
    climbing = f"{HOME}/../../../..{marker}"
    with pytest.raises(PermissionError) as refused:
        await vm.read_file(climbing)
    assert refused.value.filename == climbing
    assert climbing in str(refused.value)
    with pytest.raises(FileNotFoundError):
        await vm.read_file(marker)
    assert not await vm.exists(marker)
    with pytest.raises(FileNotFoundError):
        await vm.read_file(f"{HOME}/z")  # the link to the host path
    with pytest.raises(PermissionError):
        await vm.write_file(f"{HOME}/{climb}tmp/escaped-by-action.txt", "x")
    assert not _on_host("/tmp/escaped-by-action.txt")

    # control: the same paths, made inside the VM, reach the VM's own files
    control = await vm.exec(
        f"mkdir -p {tmp_path} && echo vm-side > {marker} && cat {climb}{marker.lstrip('/')} z"
    )
    assert control.stdout == "vm-side\nvm-side\n"
    assert await vm.read_file(marker) == b"vm-side\n"
    assert host_marker.read_text() == f"{secret}\n"

    # writes through a link to a host path stay in the VM
    escaped = tmp_path / "escaped.txt"
    written = await vm.exec(
        f"ln -s {escaped} w && echo data > w && cat {escaped}; echo more > /tmp/{escaped.name}"
    )
    assert (written.exit_code, written.stdout) == (0, "data\n")
    assert not _on_host(escaped)
    assert not _on_host(f"/tmp/{escaped.name}")


@pytest.fixture
def host_db(tmp_path, secret) -> Path:
    """A host SQLite database with `secret` in its table `secret`."""
    path = tmp_path / "host.db"
    connection = sqlite3.connect(path)
    with connection:
        connection.execute("create table secret(value text)")
        connection.execute("insert into secret values (?)", (secret,))
    connection.close()
    return path


@pytest.mark.anyio
async def test_sqlite_cannot_attach_a_host_database_and_its_files_stay_in_the_vm(
    vm, tmp_path, host_db, secret
):
    absent_db = tmp_path / "created-by-attach.db"

    for target in (host_db, absent_db):
        attach = await vm.exec(f"sqlite3 vm.db \"attach '{target}' as x; select * from x.secret;\"")
        assert attach.exit_code != 0
        assert secret not in _seen(attach)
    assert not _on_host(absent_db)

    name = f"agentos-sandbox-{uuid.uuid4().hex}.db"
    made = await vm.exec(
        f"sqlite3 {name} 'create table t(a); insert into t values (42), (58); select sum(a) from t;'"
    )
    assert (made.exit_code, made.stdout) == (0, "100\n"), made.stderr
    assert (await vm.exec(f"sqlite3 {name} 'select count(*) from t'")).stdout == "2\n"
    assert await vm.exists(f"{HOME}/{name}")
    assert (await vm.read_file(f"{HOME}/{name}")).startswith(b"SQLite format 3\0")
    for directory in {Path.cwd(), Path.home(), Path("/tmp"), Path(HOME), tmp_path}:
        assert not _on_host(directory / name), directory


# --- interpreters ---------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_python3_is_sandboxed(vm, tmp_path, host_marker, secret):
    control = await vm.exec("python3 -c 'print(open(\"/etc/hostname\").read().strip())'")
    assert (control.exit_code, control.stdout) == (0, "agentos\n")  # python3 runs and reads VM files

    outside = tmp_path / "written-by-python.txt"
    probes = [
        f"python3 -c 'print(open(\"{host_marker}\").read())'",
        f"python3 -c 'from pathlib import Path; print(Path(\"{host_marker}\").read_text())'",
        f'python3 -c \'open("{outside}", "w").write("x")\'',
        "python3 -c 'import os; os.system(\"id\")'",
        'python3 -c \'__import__("os").popen("id")\'',
        "python3 -c 'import subprocess; subprocess.run([\"id\"])'",
        "python3 -c 'import socket; socket.socket().connect((\"127.0.0.1\", 22))'",
        "python3 -c 'import ctypes; ctypes.CDLL(\"libc.so.6\")'",
        "python3 -c 'import urllib.request; urllib.request.urlopen(\"http://127.0.0.1:22\")'",
        f"python -c 'print(open(\"{host_marker}\").read())'",
    ]
    for probe in probes:
        result = await vm.exec(probe)
        assert result.exit_code != 0, probe
        assert secret not in _seen(result), probe
    assert not _on_host(outside)
    environ = await vm.exec("python3 -c 'import os; print(os.environ)'")
    assert environ.exit_code == 0
    assert secret not in environ.stdout


@pytest.mark.anyio
async def test_nested_shells_and_tools_that_run_commands_stay_in_the_vm(vm, tmp_path, host_marker, secret):
    for shell in ("bash", "sh"):
        root = await vm.exec(f"{shell} -c 'ls /'")
        assert set(root.stdout.split()) == VM_ROOT_ENTRIES
        reading = await vm.exec(f"{shell} -c 'cat {host_marker}'")
        assert reading.exit_code != 0
        assert secret not in _seen(reading)
        # the same path, made inside the VM, holds the VM's content and never the host's
        target = tmp_path / f"nested-{shell}.txt"
        writing = await vm.exec(f"{shell} -c 'mkdir -p {tmp_path} && echo nested > {target} && cat {target}'")
        assert (writing.exit_code, writing.stdout) == (0, "nested\n")
        assert not _on_host(target)
    for probe in (
        f"awk 'BEGIN {{ system(\"cat {host_marker}\") }}'",
        f"awk 'BEGIN {{ while ((\"cat {host_marker}\" | getline line) > 0) print line }}'",
        f"echo x | sed 'e cat {host_marker}'",
        f"find / -maxdepth 1 -exec cat {host_marker} \\;",
        f"echo {host_marker} | xargs cat",
        f"busybox cat {host_marker}",
        f"timeout 5 cat {host_marker}",
        f"env cat {host_marker}",
        f"sudo cat {host_marker}",
    ):
        result = await vm.exec(probe)
        assert secret not in _seen(result), probe


@pytest.mark.anyio
@pytest.mark.parametrize("interpreter", ["perl", "ruby", "php", "gcc", "git", "apt-get"])  # node: languages
async def test_other_interpreters_and_host_programs_are_absent(vm, interpreter):
    result = await vm.exec(f"{interpreter} --version")
    assert (result.exit_code, result.stdout) == (127, "")


# --- network --------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_network_clients_cannot_reach_a_host_server(vm):
    connections: list[str] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(str(writer.get_extra_info("peername")))
        writer.write(b"HTTP/1.0 200 OK\r\nContent-Length: 13\r\n\r\nserver-secret")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        probes = {
            f"curl -sS http://127.0.0.1:{port}/": True,
            f"curl -s --max-time 3 http://localhost:{port}/": True,
            f"wget -q -O- http://127.0.0.1:{port}/": True,
            f"wget -O - http://localhost:{port}/": True,
            f"echo hi > /dev/tcp/127.0.0.1/{port}": True,
            f"http GET http://127.0.0.1:{port}/": False,  # prints the refusal but exits 0
        }
        for probe, must_fail in probes.items():
            result = await vm.exec(probe, timeout=10)
            if must_fail:
                assert result.exit_code != 0, probe
            assert "server-secret" not in result.stdout, probe

        # control: the server was there all along, and a host client is its first connection
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        assert b"server-secret" in await reader.read()
        writer.close()
        await wait_until(lambda: len(connections) >= 1)
        assert len(connections) == 1, connections
    finally:
        server.close()
        await server.wait_closed()


# --- processes ------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_processes_of_the_host_are_neither_seen_nor_killable(vm):
    sleeper = await asyncio.create_subprocess_exec("sleep", "60")
    try:
        host_pids = {str(os.getpid()), str(sleeper.pid)}
        for listing in ("ps", "ps aux", "ps -ef", "pgrep -a sleep", "pgrep -f pytest"):
            result = await vm.exec(listing)
            assert not host_pids & set(re.findall(r"\d+", result.stdout)), listing
            assert "pytest" not in result.stdout, listing
            assert "sleep 60" not in result.stdout, listing

        for kill in (
            "kill -9 1",
            f"kill -9 {sleeper.pid}",
            f"kill -9 {os.getpid()}",
            "pkill -9 sleep",
            "pkill -9 -f pytest",
            "kill -9 -1",
        ):
            await vm.exec(kill)  # its exit status does not matter; what it reached does
            assert sleeper.returncode is None, kill
        # nothing to wait for; a signal, had one been sent, would have landed within this pause
        await asyncio.sleep(0.05)
        assert sleeper.returncode is None
        os.kill(sleeper.pid, 0)  # raises if the host process is gone
        after = await vm.exec("echo still-working")
        assert (after.exit_code, after.stdout) == (0, "still-working\n")
    finally:
        sleeper.kill()
        await sleeper.wait()


# --- environment ----------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_an_exec_does_not_see_the_hosts_environment(secret_env_vm, secret):
    vm = secret_env_vm
    assert os.environ["AGENTOS_HOST_SECRET"] == secret
    given = f"given-{uuid.uuid4().hex}"
    passed = await vm.exec("echo $GIVEN", env={"GIVEN": given})
    assert passed.stdout == f"{given}\n"  # control: a value passed on purpose does show
    assert (await vm.exec('echo "[$GIVEN]"')).stdout == "[]\n"  # and only to that exec

    search = await vm.exec(f"grep -r {secret} /")
    assert (search.exit_code, search.stdout) == (1, "")
    for probe in (
        "env",
        "printenv",
        "export -p",
        "set",
        "echo $AGENTOS_HOST_SECRET",
        "printenv AGENTOS_HOST_SECRET",
        "awk 'BEGIN { print ENVIRON[\"AGENTOS_HOST_SECRET\"] }'",
        "jq -n 'env.AGENTOS_HOST_SECRET, $ENV.AGENTOS_HOST_SECRET'",
        "echo 'v=$AGENTOS_HOST_SECRET' | envsubst",
        "python3 -c 'import os; print(os.environ)'",
        "bash -c 'echo $AGENTOS_HOST_SECRET'",
    ):
        result = await vm.exec(probe)
        assert secret not in _seen(result), probe
        assert "AGENTOS_HOST_SECRET=" not in result.stdout, probe
    missing = await vm.exec("printenv AGENTOS_HOST_SECRET")
    assert (missing.exit_code, missing.stdout) == (1, "")


@pytest.mark.anyio
async def test_the_host_process_running_agent_code_starts_without_the_kernels_secrets(secret_env_vm, secret):
    """Defence in depth: even an escape from the engine would find no key in its own process."""
    import psutil

    await secret_env_vm.exec("echo started")
    hosts = [
        child
        for child in psutil.Process().children(recursive=True)
        if "agentos_nb.vm.host" in " ".join(child.cmdline())
    ]
    assert hosts
    for host in hosts:
        environment = host.environ()
        assert "AGENTOS_HOST_SECRET" not in environment
        assert secret not in "".join(environment.values())
        assert set(environment) <= {
            "PATH",
            "PYTHONPATH",
            "PYTHONHASHSEED",
            "LANG",
            "LC_ALL",
            "LC_CTYPE",
            "TMPDIR",
        }
