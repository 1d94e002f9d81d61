"""VM processes (`spawn`): streamed output, stdin, kill, wait, the bounded ring, the VM's
sleep and its host's death, and what hostile use of them cannot do."""

from __future__ import annotations

import asyncio
import resource

import pytest

from agentos_nb import agent_os, errors
from agentos_nb.software import common
from agentos_nb.vm.host.pool import pool_for
from agentos_nb.vm.processes import OutputRing, signal_name
from tests.conftest import next_event, wait_until

pytestmark = pytest.mark.anyio


# --- output, as it comes -------------------------------------------------------------------------


async def test_spawn_returns_at_once_and_streams_chunks_in_order_before_the_exit(vm):
    script = "for i in 1 2 3; do echo line $i; sleep 0.2; done; echo oops >&2; exit 3"
    process = await vm.spawn(script)
    assert process.status == "running"
    assert process.pid == 1
    seen = []
    async for chunk in vm.process_output(process.pid):
        seen.append((chunk.stream, chunk.data, (await vm.get_process(process.pid)).status))
    assert [data for _, data, _ in seen] == ["line 1\n", "line 2\n", "line 3\n", "oops\n"]
    assert seen[0][2] == "running"  # the first chunk came while the process still ran
    assert seen[-1][0] == "stderr"
    assert await vm.wait(process.pid) == 3
    info = await vm.get_process(process.pid)
    assert (info.status, info.exit_code, info.output_bytes, info.dropped_bytes) == ("exited", 3, 26, 0)


async def test_output_is_a_process_output_event_each_chunk_before_the_end(start_registry):
    registry = await start_registry(vm=agent_os(software=[common]))
    vm = registry.client().vm.get_or_create(["events"])
    await vm.exec("true")  # awake first
    with registry.bus.subscribe(types=["process.started", "process.output", "process.ended"]) as events:
        process = await vm.spawn("echo one; sleep 0.1; echo two")
        assert await vm.wait(process.pid) == 0
        seen = [await next_event(events, kind) for kind in ("process.started",)]
        seen += [await next_event(events, "process.output") for _ in range(2)]
        seen.append(await next_event(events, "process.ended"))
    assert [getattr(event, "data", None) for event in seen[1:3]] == ["one\n", "two\n"]
    assert (seen[-1].status, seen[-1].exit_code, seen[0].pid) == ("exited", 0, process.pid)


async def test_output_can_be_read_again_and_resumed_after_a_chunk(vm):
    process = await vm.spawn("echo a; sleep 0.1; echo b; sleep 0.1; echo c")
    await vm.wait(process.pid)
    chunks = await vm.process_output(process.pid)
    assert "".join(chunk.data for chunk in chunks) == "a\nb\nc\n"
    rest = await vm.process_output(process.pid, since=chunks[0].end)
    assert "".join(chunk.data for chunk in rest) == "b\nc\n"


async def test_env_cwd_and_a_stdin_given_whole(vm):
    await vm.mkdir("work")
    process = await vm.spawn("pwd; echo $GREETING; sort", env={"GREETING": "hi"}, cwd="work", stdin="b\na\n")
    assert await vm.wait(process.pid, timeout=10) == 0
    assert "".join(c.data for c in await vm.process_output(process.pid)) == "/home/user/work\nhi\na\nb\n"
    with pytest.raises(BrokenPipeError, match="takes no more stdin"):
        await vm.write_stdin(process.pid, "more")


async def test_files_a_process_writes_are_the_vms(vm):
    process = await vm.spawn("echo made > made.txt")
    await vm.wait(process.pid)
    assert await vm.read_file("made.txt") == b"made\n"


# --- stdin ---------------------------------------------------------------------------------------


async def test_stdin_round_trip_line_by_line(vm):
    process = await vm.spawn("while read line; do echo got $line; done; echo bye", keep_stdin_open=True)
    replies = vm.process_output(process.pid).__aiter__()
    await vm.write_stdin(process.pid, "hello\n")
    assert (await anext(replies)).data == "got hello\n"  # answered before stdin closed
    await vm.write_stdin(process.pid, b"world\n")
    assert (await anext(replies)).data == "got world\n"
    await vm.close_stdin(process.pid)
    assert await vm.wait(process.pid, timeout=10) == 0
    assert (await anext(replies)).data == "bye\n"
    with pytest.raises(BrokenPipeError):
        await vm.write_stdin(process.pid, "late\n")


async def test_a_process_that_never_reads_its_open_stdin_still_ends(vm):
    process = await vm.spawn("echo done", keep_stdin_open=True)
    assert await vm.wait(process.pid, timeout=10) == 0
    assert (await vm.get_process(process.pid)).stdin_open is False


async def test_without_stdin_commands_see_its_end_at_once(vm):
    process = await vm.spawn("seq 3; cat; echo after")
    assert await vm.wait(process.pid, timeout=10) == 0
    assert "".join(c.data for c in await vm.process_output(process.pid)) == "1\n2\n3\nafter\n"
    sleeper = await vm.spawn("sleep 30")
    with pytest.raises(BrokenPipeError, match="never kept open"):
        await vm.write_stdin(sleeper.pid, "x")
    await vm.kill(sleeper.pid)


async def test_a_command_given_an_open_stdin_reads_all_of_it_once_closed(vm):
    process = await vm.spawn("sort", keep_stdin_open=True)
    await vm.write_stdin(process.pid, "b\n")
    await vm.write_stdin(process.pid, "a\n")
    await vm.close_stdin(process.pid)
    assert await vm.wait(process.pid, timeout=10) == 0
    assert "".join(c.data for c in await vm.process_output(process.pid)) == "a\nb\n"


# --- kill, wait, list ----------------------------------------------------------------------------


async def test_kill_stops_a_process_for_good(vm):
    process = await vm.spawn("i=0; while true; do i=$((i+1)); echo $i > count; sleep 0.05; done")
    await wait_until(lambda: vm.exists("count"))
    killed = await vm.kill(process.pid)
    assert (killed.status, killed.exit_code, killed.signal) == ("killed", 143, "SIGTERM")
    assert await vm.wait(process.pid) == 143
    counted = await vm.read_file("count")
    await asyncio.sleep(0.3)
    assert await vm.read_file("count") == counted  # nothing runs any more
    again = await vm.kill(process.pid, "SIGKILL")  # an ended process is left as it was
    assert again.signal == "SIGTERM"


async def test_kill_takes_signal_names_and_numbers(vm):
    process = await vm.spawn("sleep 30")
    assert (await vm.kill(process.pid, 9)).exit_code == 137
    assert [signal_name("int"), signal_name("sigquit")] == ["SIGINT", "SIGQUIT"]


async def test_wait_with_a_timeout_leaves_the_process_running(vm):
    process = await vm.spawn("sleep 30")
    with pytest.raises(errors.ActionTimeout, match="still running"):
        await vm.wait(process.pid, timeout=0.2)
    assert (await vm.get_process(process.pid)).status == "running"
    await vm.kill(process.pid)


async def test_list_processes_shows_running_and_ended(vm):
    done = await vm.spawn("true")
    await vm.wait(done.pid)
    running = await vm.spawn("sleep 30")
    listed = {info.pid: info.status for info in await vm.list_processes()}
    assert listed == {done.pid: "exited", running.pid: "running"}
    await vm.kill(running.pid)


async def test_a_script_that_does_not_parse_exits_2_saying_why(vm):
    process = await vm.spawn("echo 'unclosed")
    assert await vm.wait(process.pid) == 2
    assert "parse error" in "".join(c.data for c in await vm.process_output(process.pid))


async def test_a_process_timeout_stops_it_with_124(vm):
    process = await vm.spawn("sleep 30", timeout=0.3)
    assert await vm.wait(process.pid, timeout=10) == 124
    assert "timed out" in "".join(c.data for c in await vm.process_output(process.pid))


@pytest.mark.parametrize(
    ("action", "args", "kwargs", "error", "says"),
    [
        ("wait", (99,), {}, errors.ProcessNotFound, "no process 99"),
        ("kill", (99,), {}, errors.ProcessNotFound, "no process 99"),
        ("write_stdin", (99, "x"), {}, errors.ProcessNotFound, "no process 99"),
        ("get_process", ("1",), {}, TypeError, "process id is an int"),
        ("spawn", (["ls"],), {}, TypeError, "one str"),
        ("spawn", ("ls",), {"env": {"1BAD": "x"}}, ValueError, "'1BAD' is not a valid variable name"),
        ("spawn", ("ls",), {"cwd": "/nowhere"}, FileNotFoundError, "/nowhere"),
        ("spawn", ("ls",), {"timeout": -1}, ValueError, "positive number"),
        ("spawn", ("ls",), {"stdin": b"\xff"}, ValueError, "UTF-8"),
        ("process_output", (1,), {"since": -1}, ValueError, "since is a byte offset"),
        ("wait", (1,), {"timeout": -1}, ValueError, "wait timeout must be"),
        ("write_stdin", (1, 5), {}, TypeError, "str or bytes"),
    ],
)
async def test_bad_arguments_are_clear_errors(vm, action, args, kwargs, error, says):
    await vm.spawn("sleep 30")  # process 1, for the calls that name it
    with pytest.raises(error, match=says):
        await vm.call(action, *args, **kwargs)


@pytest.mark.parametrize("signal", ["SIGSTOP", 19, "USR1", 0, True])
async def test_a_signal_the_vm_cannot_send_is_refused_and_the_process_runs_on(vm, signal):
    process = await vm.spawn("sleep 30")
    with pytest.raises(ValueError, match="kill takes one of SIGTERM, SIGKILL"):
        await vm.kill(process.pid, signal)
    assert (await vm.get_process(process.pid)).status == "running"
    await vm.kill(process.pid)


# --- bounded output ------------------------------------------------------------------------------


async def test_output_past_the_ring_keeps_the_latest_and_says_what_was_dropped(start_registry):
    registry = await start_registry(vm=agent_os(software=[common], limits={"max_process_output": 4096}))
    vm = registry.client().vm.get_or_create(["ring"])
    process = await vm.spawn("for i in $(seq 1 3000); do echo line $i; done; echo last")
    assert await vm.wait(process.pid, timeout=30) == 0
    info = await vm.get_process(process.pid)
    assert info.output_bytes == sum(len(f"line {i}\n") for i in range(1, 3001)) + len("last\n")
    chunks = await vm.process_output(process.pid)
    kept = sum(chunk.end - chunk.offset for chunk in chunks)
    assert kept <= 4096
    assert info.dropped_bytes == info.output_bytes - kept > 0
    assert chunks[0].dropped == chunks[0].offset == info.dropped_bytes  # said, to the reader
    assert "".join(chunk.data for chunk in chunks).endswith("line 3000\nlast\n")


def test_the_ring_counts_bytes_cuts_an_oversized_chunk_and_counts_tiny_ones_whole():
    ring = OutputRing(1024)
    ring.append("stdout", "é" * 1000, 2000)  # one chunk past the capacity: its tail is kept
    [chunk] = ring.after(0)
    assert chunk.end == 2000
    assert chunk.end - chunk.offset == len(chunk.data.encode()) <= 1024
    for _ in range(100):
        ring.append("stdout", "x", 1)
    assert len(ring.after(0)) < 10  # each kept chunk costs its overhead too
    assert ring.total == 2100
    assert ring.dropped == ring.total - sum(c.end - c.offset for c in ring.after(0))


# --- the VM's life -------------------------------------------------------------------------------


async def test_a_running_process_keeps_the_vm_awake_then_it_sleeps(start_registry):
    registry = await start_registry(vm=agent_os(software=[common], options={"sleep_timeout": 0.2}))
    vm = registry.client().vm.get_or_create(["busy"])
    with registry.bus.subscribe(types=["actor.slept", "process.ended"]) as events:
        process = await vm.spawn("sleep 1")
        ended = await next_event(events, "process.ended")  # not actor.slept first
        assert (ended.pid, ended.status) == (process.pid, "exited")
        await next_event(events, "actor.slept")


async def test_a_vm_put_to_sleep_kills_its_processes_and_their_waiters_hear_it(start_registry):
    registry = await start_registry(vm=agent_os(software=[common], options={"sleep_grace_period": 0.1}))
    vm = registry.client().vm.get_or_create(["napper"])
    process = await vm.spawn("while true; do echo tick >> ticks; sleep 0.05; done")
    await wait_until(lambda: vm.exists("ticks"))
    instance = registry.instance(await vm.resolve())
    assert instance is not None
    with registry.bus.subscribe(types=["actor.slept", "process.ended"]) as events:
        instance.request_stop(destroy=False)
        ended = await next_event(events, "process.ended")
        assert ended.status == "lost"
        assert "sleep" in (ended.error or "")
        await next_event(events, "actor.slept")
    ticks = await vm.read_file("ticks")  # wakes the VM: the loop is not running any more
    await asyncio.sleep(0.3)
    assert await vm.read_file("ticks") == ticks
    with pytest.raises(errors.ProcessNotFound, match="processes end with their VM's sleep"):
        await vm.wait(process.pid)


async def test_a_host_crash_ends_running_processes_with_a_clear_error(start_registry):
    registry = await start_registry(vm=agent_os(software=[common], hosts=None))
    vm = registry.client().vm.get_or_create(["crashy"])
    process = await vm.spawn("sleep 30")
    [host] = pool_for(None, 2 * 1024**3).processes
    waiter = asyncio.ensure_future(vm.wait(process.pid))
    other_waiter = asyncio.ensure_future(vm.wait(process.pid))
    reader = asyncio.ensure_future(vm.process_output(process.pid))
    await asyncio.sleep(0.1)
    host.kill()
    with pytest.raises(errors.ProcessLost, match=r"process 1 \(sleep 30\) was lost: the VM's host process"):
        await waiter
    with pytest.raises(errors.ProcessLost) as other:
        await other_waiter
    with pytest.raises(errors.ProcessLost) as later:
        await vm.wait(process.pid)
    assert other.value.to_dict() == later.value.to_dict()
    assert other.value is not later.value  # each waiter its own error, not one shared traceback
    assert await reader == []  # the output stream ends too
    info = await vm.get_process(process.pid)
    assert info.status == "lost"
    assert "SIGKILL" in (info.error or "")
    assert (await vm.exec("echo back")).stdout == "back\n"  # the VM itself came back


# --- hostile use ---------------------------------------------------------------------------------


async def test_a_fork_bomb_of_spawns_hits_the_per_vm_cap(start_registry):
    registry = await start_registry(vm=agent_os(software=[common], limits={"max_processes": 4}))
    vm = registry.client().vm.get_or_create(["bomb"])
    started = [await vm.spawn("sleep 30") for _ in range(4)]
    with pytest.raises(errors.TooManyProcesses, match="runs 4 processes, its limit"):
        await vm.spawn("sleep 30")
    await vm.kill(started[0].pid)
    replacement = await vm.spawn("echo room again")  # one ended: there is room for one
    assert await vm.wait(replacement.pid, timeout=10) == 0
    for process in started[1:]:
        await vm.kill(process.pid)


async def test_spawns_made_all_at_once_cannot_slip_past_the_cap(start_registry):
    registry = await start_registry(vm=agent_os(software=[common], limits={"max_processes": 4}))
    vm = registry.client().vm.get_or_create(["swarm"])
    await vm.mkdir("work")
    tried = await asyncio.gather(
        *(vm.spawn("sleep 30", cwd="work") for _ in range(12)), return_exceptions=True
    )
    assert sum(not isinstance(outcome, BaseException) for outcome in tried) == 4
    assert all(isinstance(o, errors.TooManyProcesses) for o in tried if isinstance(o, BaseException))
    assert len(await vm.list_processes()) == 4


async def test_a_flood_of_output_does_not_bloat_the_kernel(start_registry):
    """Megabytes printed as fast as the engine can: the kernel keeps the ring's worth (its pace
    and the loop's latency meanwhile are measured in `bench/processes.py`)."""
    registry = await start_registry(vm=agent_os(software=[common], limits={"max_process_output": 64 * 1024}))
    vm = registry.client().vm.get_or_create(["flood"])
    await vm.exec("true")
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    line = "x" * 1000
    process = await vm.spawn(f"for i in $(seq 1 20000); do echo {line}; done; echo end")
    await vm.wait(process.pid, timeout=120)
    info = await vm.get_process(process.pid)
    assert info.output_bytes >= 10 * 1024 * 1024  # the engine's own cap on one script's output
    kept = sum(chunk.end - chunk.offset for chunk in await vm.process_output(process.pid))
    assert kept <= 64 * 1024
    assert info.dropped_bytes == info.output_bytes - kept
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert grown_kib < 100 * 1024, f"the kernel grew {grown_kib} KiB"


async def test_processes_of_one_vm_are_not_another_vms(start_registry):
    registry = await start_registry(vm=agent_os(software=[common]))
    a = registry.client().vm.get_or_create(["a"])
    b = registry.client().vm.get_or_create(["b"])
    process = await a.spawn("sleep 30")
    with pytest.raises(errors.ProcessNotFound):
        await b.kill(process.pid)
    assert await b.list_processes() == []
    await a.kill(process.pid)


# --- the dashboard -------------------------------------------------------------------------------


async def test_the_dashboard_shows_running_processes_with_their_live_output(start_registry):
    from agentos_nb.jupyter.dashboard.dashboard import Dashboard

    registry = await start_registry(vm=agent_os(software=[common]))
    vm = registry.client().vm.get_or_create(["shown"])
    dashboard = Dashboard(registry, tabs=["Processes"], interval=3600.0)
    try:
        shown = dashboard._views[0].widget.children[0]
        assert "No processes yet" in shown.value
        process = await vm.spawn("echo '<b>first</b>'; sleep 30", keep_stdin_open=True)
        await wait_until(lambda: _printed(vm, process.pid))
        await dashboard.refresh()
        assert "running" in shown.value
        assert "&lt;b&gt;first&lt;/b&gt;" in shown.value  # live output, escaped
        await vm.kill(process.pid)
        await dashboard.refresh()
        assert "killed 143" in shown.value
        assert "1 processes running" not in repr(dashboard)
    finally:
        dashboard.close()


async def _printed(vm, pid: int) -> bool:
    return (await vm.get_process(pid)).output_bytes > 0
