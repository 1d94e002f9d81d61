"""The VM actor: file actions, exec as a fresh process, cancellation, limits, sleep, events."""

from __future__ import annotations

import asyncio
import time

import pytest

from agentos_nb import ExecResult, ShellLimits, actor, agent_os, errors
from agentos_nb.software import common
from agentos_nb.vm.agent_os import exec_command, is_vm, readdir
from agentos_nb.vm.languages import programs
from agentos_nb.vm.shell import engine_commands
from tests.conftest import next_event

pytestmark = pytest.mark.anyio


# --- files -----------------------------------------------------------------------------------


async def test_write_and_read_bytes_and_text_with_parents_made(vm):
    await vm.write_file("/home/user/src/deep/a.txt", "héllo\n")
    await vm.write_file("b.bin", b"\x00\x01\xff")  # relative to /home/user
    assert await vm.read_file("/home/user/src/deep/a.txt") == "héllo\n".encode()
    assert await vm.read_file("src/deep/a.txt", encoding="utf-8") == "héllo\n"
    assert await vm.read_file("~/b.bin") == b"\x00\x01\xff"
    assert (await vm.exec("cat src/deep/a.txt")).stdout == "héllo\n"


async def test_files_written_by_exec_are_read_by_actions(vm):
    await vm.exec("mkdir -p out && printf 'x\\ny\\n' > out/list.txt")
    assert await vm.read_file("out/list.txt") == b"x\ny\n"
    assert await vm.exists("/home/user/out")
    assert not await vm.exists("/home/user/nope")


@pytest.mark.parametrize(
    ("call", "error", "named"),
    [
        (("read_file", "/home/user/missing.txt"), FileNotFoundError, "/home/user/missing.txt"),
        (("read_file", "/home/user"), IsADirectoryError, "/home/user"),
        (("read_file", "/etc/hostname/x"), NotADirectoryError, "/etc/hostname/x"),
        (("write_file", "/etc/hostname/x", "y"), NotADirectoryError, "/etc/hostname/x"),
        (("write_file", "/home/user", "y"), IsADirectoryError, "/home/user"),
        (("readdir", "/nowhere"), FileNotFoundError, "/nowhere"),
        (("readdir", "/etc/hostname"), NotADirectoryError, "/etc/hostname"),
        (("stat", "/nowhere"), FileNotFoundError, "/nowhere"),
        (("delete_file", "/nowhere"), FileNotFoundError, "/nowhere"),
        (("delete_file", "/"), PermissionError, "/"),
        (("move", "/nowhere", "/b"), FileNotFoundError, "/nowhere"),
        (("read_file", "../../../etc/passwd"), PermissionError, "../../../etc/passwd"),
        (("write_file", "/../x", "y"), PermissionError, "/../x"),
    ],
)
async def test_host_side_errors_are_os_errors_naming_the_path(vm, call, error, named):
    action, *args = call
    with pytest.raises(error) as raised:
        await getattr(vm, action)(*args)
    assert raised.value.filename == named


async def test_mkdir_refuses_a_file_in_the_way_and_an_existing_dir_when_asked(vm):
    await vm.write_file("f", "x")
    with pytest.raises(FileExistsError):
        await vm.mkdir("f")
    await vm.mkdir("d/e")
    await vm.mkdir("d/e")  # exist_ok by default
    with pytest.raises(FileExistsError):
        await vm.mkdir("d/e", exist_ok=False)
    with pytest.raises(FileNotFoundError):
        await vm.mkdir("x/y", parents=False)


async def test_bad_paths_are_refused_before_anything_happens(vm):
    with pytest.raises(ValueError, match="NUL"):
        await vm.write_file("a\0b", "x")
    with pytest.raises(ValueError, match="empty"):
        await vm.read_file("")
    with pytest.raises(TypeError, match="bytes or str"):
        await vm.write_file("n.txt", 12)
    assert not await vm.exists("n.txt")


async def test_the_filesystem_limits_are_clear_errors_and_keep_what_was_there(vm):
    import errno

    with pytest.raises(OSError, match="10000000 byte limit") as too_big:
        await vm.write_file("big.bin", b"x" * 10_000_001)
    assert (too_big.value.errno, too_big.value.filename) == (errno.EFBIG, "/home/user/big.bin")
    for n in range(9):
        await vm.write_file(f"fill/{n}.bin", b"x" * 10_000_000)
    await vm.write_file("keep.txt", "kept")
    with pytest.raises(OSError, match="full") as full:
        await vm.write_file("fill/last.bin", b"x" * 10_000_000)
    assert full.value.errno == errno.ENOSPC
    assert await vm.read_file("keep.txt") == b"kept"
    assert not await vm.exists("fill/last.bin")
    in_shell = await vm.exec("cp fill/0.bin fill/copy.bin")
    assert in_shell.exit_code != 0
    assert "full" in in_shell.stderr


async def test_read_files_and_write_files_give_a_result_per_path(vm):
    written = await vm.write_files({"a.txt": "A", "sub/b.txt": b"B", "/etc/hostname/bad": "x"})
    assert [(w.path, w.ok) for w in written] == [
        ("a.txt", True),
        ("sub/b.txt", True),
        ("/etc/hostname/bad", False),
    ]
    assert "NotADirectoryError" in written[2].error
    read = await vm.read_files(["a.txt", "missing", "sub/b.txt"], encoding="utf-8")
    assert [(r.path, r.content) for r in read] == [("a.txt", "A"), ("missing", None), ("sub/b.txt", "B")]
    assert "FileNotFoundError" in read[1].error
    assert "/home/user/missing" in read[1].error


async def test_readdir_stat_move_and_delete(vm):
    await vm.write_files({"p/a.py": "1", "p/b.txt": "22", "p/node_modules/x.js": "3", "p/sub/c.py": "4"})
    entries = await vm.readdir("p")
    assert [(e.name, e.kind) for e in entries] == [
        ("a.py", "file"),
        ("b.txt", "file"),
        ("node_modules", "directory"),
        ("sub", "directory"),
    ]
    everything = await vm.readdir_recursive("p", exclude=["node_modules", "*.txt"])
    assert [e.path for e in everything] == ["/home/user/p/a.py", "/home/user/p/sub", "/home/user/p/sub/c.py"]
    shallow = await vm.readdir_recursive("p", max_depth=1)
    assert "/home/user/p/sub/c.py" not in [e.path for e in shallow]
    stat = await vm.stat("p/b.txt")
    assert (stat.path, stat.kind, stat.size) == ("/home/user/p/b.txt", "file", 2)
    await vm.move("p/b.txt", "q/renamed.txt")
    assert await vm.read_file("q/renamed.txt") == b"22"
    assert not await vm.exists("p/b.txt")
    with pytest.raises(OSError, match="into itself"):
        await vm.move("p", "p/sub/p")
    with pytest.raises(IsADirectoryError):
        await vm.delete_file("p")
    await vm.delete_file("p", recursive=True)
    assert not await vm.exists("p")
    assert (await vm.exec("ls p")).exit_code != 0


# --- exec ------------------------------------------------------------------------------------


async def test_exec_returns_exit_code_stdout_and_stderr(vm):
    result = await vm.exec("echo out; echo err >&2; exit 3")
    assert result == ExecResult(exit_code=3, stdout="out\n", stderr="err\n")
    assert (await vm.exec("pwd; whoami; hostname")).stdout == "/home/user\nuser\nagentos\n"


async def test_each_exec_starts_from_a_fresh_shell(vm):
    first = await vm.exec(
        "cd /tmp; X=1; export Y=2; alias ll='echo aliased'; f() { echo func; }; "
        "set -e; shopt -s nullglob; exit 4"
    )
    assert first.exit_code == 4
    second = await vm.exec(
        'pwd; echo "X=$X Y=$Y"; type ll >/dev/null 2>&1 || echo no-alias; '
        "type f >/dev/null 2>&1 || echo no-func; false; echo survived-set-e; shopt nullglob"
    )
    assert second.stdout.splitlines()[:5] == ["/home/user", "X= Y=", "no-alias", "no-func", "survived-set-e"]
    assert "off" in second.stdout.splitlines()[5]


async def test_exec_env_cwd_and_stdin(vm):
    await vm.mkdir("/work/dir")
    result = await vm.exec(
        'pwd; echo "$GREETING"; wc -c', env={"GREETING": "hi there"}, cwd="/work/dir", stdin="abc"
    )
    assert result.stdout.split() == ["/work/dir", "hi", "there", "3"]
    assert (await vm.exec("cat", stdin=b"bytes in")).stdout == "bytes in"
    assert (await vm.exec("echo ${GREETING:-unset}")).stdout == "unset\n"


async def test_exec_refuses_bad_arguments_naming_them(vm):
    with pytest.raises(FileNotFoundError) as missing:
        await vm.exec("ls", cwd="/no/such/dir")
    assert missing.value.filename == "/no/such/dir"
    await vm.write_file("plain", "x")
    with pytest.raises(NotADirectoryError):
        await vm.exec("ls", cwd="plain")
    with pytest.raises(ValueError, match="'1BAD'"):
        await vm.exec("true", env={"1BAD": "x"})
    with pytest.raises(ValueError, match="timeout"):
        await vm.exec("true", timeout=0)
    with pytest.raises(TypeError, match="one str"):
        await vm.exec(["ls", "-l"])


async def test_a_timed_out_exec_stops_and_the_next_one_starts_at_once(vm):
    started = time.monotonic()
    result = await vm.exec("echo before > t.txt; sleep 30; echo after >> t.txt", timeout=0.3)
    assert result.timed_out
    assert result.exit_code == 124
    assert "timed out after 0.3 s" in result.stderr
    assert time.monotonic() - started < 5
    began = time.monotonic()
    assert (await vm.exec("echo next")).stdout == "next\n"
    assert time.monotonic() - began < 1
    assert await vm.read_file("t.txt") == b"before\n"


async def test_a_cancelled_exec_stops_for_real_and_frees_the_shell(vm):
    task = asyncio.ensure_future(vm.exec("sleep 1; echo late > late.txt"))
    await asyncio.sleep(0.2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    began = time.monotonic()
    assert (await vm.exec("echo next")).stdout == "next\n"
    assert time.monotonic() - began < 0.5
    await asyncio.sleep(1.3)  # the cancelled script's sleep is over: its next command must not run
    assert not await vm.exists("late.txt")


async def test_concurrent_execs_run_side_by_side(vm):
    began = time.monotonic()
    results = await asyncio.gather(*(vm.exec(f"sleep 0.4; echo {n}") for n in range(3)))
    assert [r.stdout for r in results] == ["0\n", "1\n", "2\n"]
    assert time.monotonic() - began < 1.0


async def test_output_past_the_limit_is_cut_and_flagged(start_registry):
    registry = await start_registry(vm=agent_os(software=[common], limits={"max_output_bytes": 1000}))
    vm = registry.client().vm.get_or_create(["limited"])
    result = await vm.exec("seq 1 10000")
    assert result.truncated
    assert len(result.stdout) == 1000
    assert not (await vm.exec("seq 1 10")).truncated


async def test_loop_and_command_limits_stop_runaway_scripts(start_registry):
    limits = ShellLimits(max_loop_iterations=50, max_commands=200)
    registry = await start_registry(vm=agent_os(limits=limits))
    vm = registry.client().vm.get_or_create(["limited"])
    assert (await vm.exec("while true; do :; done")).exit_code != 0
    assert (await vm.exec("for i in $(seq 1 40); do echo $i; done | wc -l")).stdout.strip() == "40"


async def test_many_execs_never_exhaust_the_vm(vm):
    """bashkit's default profile stops an interpreter after 1,000 executions; ours must not."""
    for _ in range(1200):
        result = await vm.exec("true")
    assert result.exit_code == 0


async def test_limits_are_checked_when_the_vm_type_is_defined():
    with pytest.raises(errors.InvalidDefinition, match="timeout"):
        agent_os(limits={"timeout": -1})
    with pytest.raises(errors.InvalidDefinition, match="twice"):
        agent_os(software=[common, common])


# --- the OS and packages ---------------------------------------------------------------------


async def test_the_os_writes_its_files_and_instructions(vm):
    passwd = await vm.read_file("/etc/passwd", encoding="utf-8")
    assert "user:x:1000:1000:user:/home/user:/bin/bash" in passwd
    instructions = await vm.read_file("/etc/agentos/instructions.md", encoding="utf-8")
    assert "/home/user" in instructions
    assert "package `common`" in instructions


async def test_common_puts_every_engine_command_on_path(vm):
    listed = set((await vm.exec("ls /usr/bin")).stdout.split())
    assert listed == set(engine_commands()) | set(programs(["python", "javascript"]))
    assert (await vm.exec("which grep")).stdout.strip() == "/usr/bin/grep"
    assert (await vm.exec("python3 -c 'print(6 * 7)'")).stdout == "42\n"
    assert (await vm.exec("sqlite3 :memory: 'select 1 + 1'")).stdout == "2\n"


async def test_without_common_python_and_sqlite_are_absent(start_registry):
    registry = await start_registry(bare=agent_os())
    bare = registry.client().bare.get_or_create(["x"])
    assert (await bare.exec("python3 -c 1")).exit_code == 127
    assert (await bare.exec("ls /usr/bin")).exit_code != 0


async def test_a_package_installs_files_features_instructions_and_agent_types(start_registry):
    from agentos_nb.software import VmSetup

    class Greeter:
        name = "greeter"

        def install(self, setup: VmSetup) -> None:
            setup.add_file("/opt/greeter/hello.sh", "echo hello from greeter\n", mode=0o755)
            setup.add_instructions("## Greeter\n\nRun `sh /opt/greeter/hello.sh`.")
            setup.add_agent_type("greeter-agent", object())

    definition = agent_os(software=[Greeter()], additional_instructions="Be brief.")
    registry = await start_registry(vm=definition)
    vm = registry.client().vm.get_or_create(["g"])
    assert (await vm.exec("sh /opt/greeter/hello.sh")).stdout == "hello from greeter\n"
    instructions = await vm.read_file("/etc/agentos/instructions.md", encoding="utf-8")
    assert "## Greeter" in instructions
    assert instructions.rstrip().endswith("Be brief.")
    with pytest.raises(errors.InvalidDefinition, match="install"):
        agent_os(software=["not a package"])


# --- lifecycle -------------------------------------------------------------------------------


async def test_files_outlive_sleep(start_registry):
    registry = await start_registry(vm=agent_os(software=[common], options={"sleep_timeout": 0.2}))
    vm = registry.client().vm.get_or_create(["sleepy"])
    await vm.write_file("keep/me.txt", "still here")
    await vm.exec("ln -s keep/me.txt link; chmod 600 keep/me.txt")
    with registry.bus.subscribe(types=["actor.slept"]) as slept:
        await next_event(slept, "actor.slept")
    assert await vm.read_file("keep/me.txt") == b"still here"
    assert (await vm.exec("cat link; stat -c %a keep/me.txt")).stdout == "still here600\n"


async def test_two_vms_of_one_type_have_their_own_files(start_registry):
    registry = await start_registry(vm=agent_os(software=[common]))
    a = registry.client().vm.get_or_create(["a"])
    b = registry.client().vm.get_or_create(["b"])
    await a.write_file("only-a.txt", "a")
    assert not await b.exists("only-a.txt")
    assert (await b.exec("cat only-a.txt")).exit_code == 1


async def test_exec_is_an_event(start_registry):
    registry = await start_registry(vm=agent_os())
    vm = registry.client().vm.get_or_create(["events"])
    with registry.bus.subscribe(types=["shell.command"]) as commands:
        await vm.exec("echo hi; exit 2", cwd="/tmp")
        event = await next_event(commands, "shell.command")
    assert (event.command, event.cwd, event.exit_code, event.actor.name) == (
        "echo hi; exit 2",
        "/tmp",
        2,
        "vm",
    )
    assert event.duration >= 0


async def test_a_stopped_registry_leaves_no_shell_running(start_registry):
    registry = await start_registry(vm=agent_os(software=[common]))
    vm = registry.client().vm.get_or_create(["busy"])
    running = asyncio.ensure_future(vm.exec("sleep 20"))
    await asyncio.sleep(0.1)
    await registry.stop(grace=0)
    with pytest.raises(errors.ActorStopped):
        await running


async def test_the_store_keeps_a_sleeping_vms_files_until_the_vm_is_deleted(start_registry):
    registry = await start_registry(vm=agent_os(options={"sleep_timeout": 0.1}))
    vm = registry.client().vm.get_or_create(["kept"])
    await vm.write_file("mine.txt", "x")
    actor_id = await vm.resolve()
    with registry.bus.subscribe(types=["actor.slept"]) as slept:
        await next_event(slept, "actor.slept")
    packed = await registry.store.load_blob(actor_id, "filesystem")
    assert packed is not None
    assert b"home/user/mine.txt" in packed
    assert b"etc/passwd" not in packed  # what every boot lays down is not saved
    await registry.store.delete_actor(actor_id)
    assert await registry.store.load_blob(actor_id, "filesystem") is None


# --- found in review: each a regression test -------------------------------------------------


async def test_a_script_that_does_not_parse_alone_runs_nothing_and_leaves_nothing(vm):
    escape = await vm.exec("true ); X=leaked; cat() { echo HIJACKED; }; cd /tmp; ( true")
    assert escape.exit_code == 2
    assert "parse error" in escape.stderr
    after = await vm.exec('echo "X=$X"; pwd; cat /etc/hostname')
    assert after.stdout == "X=\n/home/user\nagentos\n"


async def test_history_shows_nothing_of_earlier_commands(vm):
    await vm.exec("echo secret-in-command", env={"TOKEN": "secret-in-env"})
    history = await vm.exec("history")
    assert "secret" not in history.stdout


async def test_a_timeout_inside_python3_stops_the_whole_script(vm):
    result = await vm.exec("python3 -c 'while True: pass'; echo after > after.txt", timeout=0.5)
    assert result.timed_out
    await asyncio.sleep(0.3)
    assert not await vm.exists("after.txt")


async def test_binary_stdin_is_refused_clearly(vm):
    with pytest.raises(ValueError, match="UTF-8"):
        await vm.exec("cat", stdin=b"\xff\xfe")


async def test_a_vm_whose_os_directories_were_replaced_still_wakes_with_its_files(start_registry):
    registry = await start_registry(vm=agent_os(software=[common], options={"sleep_timeout": 0.2}))
    vm = registry.client().vm.get_or_create(["vandal"])
    wrecked = await vm.exec(
        "echo mine > keep.txt && rm -rf /tmp && echo x > /tmp && mkdir -p /home/user/etc2 "
        "&& rm -rf /etc && ln -s /home/user/etc2 /etc && rm -rf /usr/local && echo y > /usr/local"
    )
    assert wrecked.exit_code == 0, wrecked
    with registry.bus.subscribe(types=["actor.slept"]) as slept:
        await next_event(slept, "actor.slept")
    assert await vm.read_file("keep.txt") == b"mine\n"
    checked = await vm.exec("cat /etc/hostname; echo ok > /tmp/t && cat /tmp/t")
    assert checked.stdout == "agentos\nok\n"
    assert (await vm.stat("/tmp")).mode == 0o1777


async def test_a_fifo_is_listed_as_other_and_does_not_break_sleep(start_registry):
    registry = await start_registry(vm=agent_os(software=[common], options={"sleep_timeout": 0.2}))
    vm = registry.client().vm.get_or_create(["fifo"])
    await vm.exec("mkfifo pipe && echo x > plain.txt")
    kinds = {entry.name: entry.kind for entry in await vm.readdir()}
    assert kinds == {"pipe": "other", "plain.txt": "file"}
    assert (await vm.stat("pipe")).kind == "other"
    with registry.bus.subscribe(types=["actor.slept"]) as slept:
        await next_event(slept, "actor.slept")
    assert await vm.read_file("plain.txt") == b"x\n"


async def test_file_actions_follow_symlinks_as_the_shell_does(vm):
    await vm.exec(
        "mkdir -p real/sub && echo inside > real/sub/f.txt && ln -s real linkdir && "
        "ln -s real/sub/f.txt linkfile && ln -s /home/user/real abs && ln -s loop2 loop1 && ln -s loop1 loop2"
    )
    assert await vm.read_file("linkfile") == b"inside\n"
    assert await vm.read_file("linkdir/sub/f.txt") == b"inside\n"
    assert await vm.read_file("abs/sub/f.txt") == b"inside\n"
    assert [e.path for e in await vm.readdir("linkdir")] == ["/home/user/linkdir/sub"]
    assert (await vm.exec("pwd", cwd="linkdir/sub")).exit_code == 0
    await vm.write_file("linkfile", "rewritten\n")  # through the link, as open(path, "w")
    assert (await vm.exec("cat real/sub/f.txt")).stdout == "rewritten\n"
    assert (await vm.stat("linkfile")).kind == "file"
    assert (await vm.stat("linkfile", follow_symlinks=False)).kind == "symlink"
    await vm.write_file("linkdir/new.txt", "via link")
    assert await vm.read_file("real/new.txt") == b"via link"
    with pytest.raises(OSError, match="symbolic links") as looped:
        await vm.read_file("loop1")
    assert looped.value.filename == "/home/user/loop1"
    assert not await vm.exists("loop1")
    await vm.delete_file("linkfile")  # the link, not its target
    assert await vm.exists("real/sub/f.txt")


async def test_file_action_edge_cases_fail_cleanly(vm):
    await vm.write_file("file.txt", "x")
    await vm.mkdir("dir/inner")
    with pytest.raises(NotADirectoryError):
        await vm.move("dir", "file.txt")
    with pytest.raises(IsADirectoryError):
        await vm.write_file("newfile/", "x")
    with pytest.raises(OSError, match="limit"):
        await vm.write_file("made/on/the/way/big.bin", b"x" * 10_000_001)
    assert not await vm.exists("made")  # the directories made for the failed write are gone
    with pytest.raises(TypeError, match="item 2"):
        await vm.write_files([("first.txt", "1"), "not a pair"])
    assert not await vm.exists("first.txt")


async def test_control_bytes_run_and_completions_do_not_leak(vm):
    assert (await vm.exec("printf 'a\x01b' | wc -c")).stdout == "3\n"
    await vm.exec("complete -C 'echo INJECTED' foo")
    assert "INJECTED" not in (await vm.exec("complete -p")).stdout


async def test_errors_name_the_path_given_not_where_links_led(vm):
    await vm.exec("ln -s nowhere dangling && echo x > f && ln -s f filelink")
    with pytest.raises(FileNotFoundError) as missing:
        await vm.read_file("dangling")
    assert missing.value.filename == "/home/user/dangling"
    with pytest.raises(NotADirectoryError) as under_file:
        await vm.read_file("filelink/x")
    assert under_file.value.filename == "/home/user/filelink/x"
    with pytest.raises(FileExistsError):
        await vm.mkdir("dangling")
    assert not await vm.exists("nowhere")


def test_a_subdirectory_removed_during_a_recursive_listing_is_skipped():
    """As `os.walk` does: a command may remove a directory while the host lists the tree."""
    from agentos_nb.vm.files import VmFiles
    from agentos_nb.vm.shell import Shell

    shell = Shell(limits=ShellLimits(), commands={})
    files = VmFiles(shell)
    files.write_file("t/a/x", "1")
    files.write_file("t/b/y", "2")
    listed = shell.list_dir

    def racing(path: str):
        if path == "/home/user/t/a":
            raise FileNotFoundError(2, "not found", path)
        return listed(path)

    shell.list_dir = racing
    paths = [entry.path for entry in files.readdir_recursive("t")]
    assert paths == ["/home/user/t/a", "/home/user/t/b", "/home/user/t/b/y"]
    with pytest.raises(FileNotFoundError):
        files.readdir_recursive("t/a")  # the directory asked for is another matter


async def test_dev_is_not_saved_as_files(start_registry):
    registry = await start_registry(vm=agent_os(options={"sleep_timeout": 0.1}))
    vm = registry.client().vm.get_or_create(["dev"])
    await vm.exec("head -c 4 /dev/urandom | wc -c")
    actor_id = await vm.resolve()
    with registry.bus.subscribe(types=["actor.slept"]) as slept:
        await next_event(slept, "actor.slept")
    assert b"dev/urandom" not in await registry.store.load_blob(actor_id, "filesystem")


def test_a_vm_type_is_one_agent_os_made_not_one_with_the_same_actions():
    assert is_vm(agent_os())
    assert is_vm(agent_os(software=[common], options={"sleep_timeout": 5}))
    assert not is_vm(actor(actions={"exec": exec_command, "readdir": readdir}))
