"""Hostile commands (DESIGN "Agent VMs", "Testing" tier 7): what crashed, starved or bloated the
kernel when VMs ran in it. Each runs in a VM of a kernel in a child process (`hostile_kernel.py`)
while another VM answers `echo ok` every 100 ms; the kernel must live through every one with its
loop, its memory and the other VM untouched, and the VM must come back with its files."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from agentos_nb import agent_os, errors, setup
from agentos_nb.software import common
from tests.conftest import next_event
from tests.hostile_kernel import HOSTILE

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def outcomes() -> dict[str, dict]:
    child = subprocess.run(
        [sys.executable, "-m", "tests.hostile_kernel"], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert child.returncode == 0, child.stderr[-3000:]
    lines = [json.loads(line) for line in child.stdout.splitlines()]
    assert lines[-1] == {"done": True}, child.stderr[-3000:]
    return {line["command"]: line for line in lines[:-1]}


@pytest.mark.timeout(300)
@pytest.mark.parametrize(("command", "timeout"), HOSTILE)
def test_a_hostile_command_harms_nothing_but_its_own_vm(outcomes, command, timeout):
    seen = outcomes[command]
    if "crashed" in seen:  # its host died: the caller heard why, and the bus which command it was
        assert seen["crashed"] == "vm.crashed"
        assert command in seen["host_crashed"], seen
    else:  # the engine's own limits ended it, or it was stopped at its timeout
        assert seen["took"] < timeout + 0.5, seen
        assert seen["exit_code"] == 124 if seen["timed_out"] else seen["took"] < timeout, seen
        # a stray that kept on past its grace (or its memory limit) was killed with its host
        assert all(event == command for event in seen["host_crashed"]), seen
    assert seen["marker_back"], seen  # the VM's files, from its last snapshot
    assert seen["stall"] < 0.1, seen
    assert seen["slowest_ping"] < 1.0, seen
    assert seen["rss_growth"] < 100, seen


EVAL_BOMB = HOSTILE[0][0]


@pytest.mark.anyio
async def test_a_crash_on_a_shared_host_brings_back_every_vm_on_it_and_says_which_ran_it():
    """`hosts=1`: both VMs live on the one host, so both restart from their snapshots; the
    caller hears `VmCrashed`, and the events name the command for the VM that ran it only."""
    registry = setup(use={"vm": agent_os(software=[common], hosts=1, snapshot_every=0.05)})
    registry.start()
    try:
        client = registry.client()
        bomb, neighbour = client.vm.get_or_create(["bomb"]), client.vm.get_or_create(["neighbour"])
        await bomb.write_file("mine.txt", "bomb's")
        await neighbour.write_file("mine.txt", "neighbour's")
        await asyncio.sleep(0.3)  # both snapshots taken
        with registry.bus.subscribe(types=["vm.host_crashed"]) as crashes:
            with pytest.raises(errors.VmCrashed) as raised:
                await bomb.exec(EVAL_BOMB)
            assert raised.value.details == {"exit_code": None, "signal": signal.SIGSEGV}
            events = [await next_event(crashes, "vm.host_crashed") for _ in range(2)]
        assert {event.actor.key: event.command for event in events} == {
            ("bomb",): EVAL_BOMB,
            ("neighbour",): None,
        }
        assert await neighbour.read_file("mine.txt") == b"neighbour's"
        assert (await bomb.exec("cat mine.txt")).stdout == "bomb's"
    finally:
        await registry.stop()


@pytest.mark.anyio
async def test_a_timeout_too_large_for_the_engine_is_no_timeout():
    registry = setup(use={"vm": agent_os(software=[common])})
    registry.start()
    try:
        vm = registry.client().vm.get_or_create(["patient"])
        for timeout in (1e308, float("inf")):
            assert (await vm.exec("echo hi", timeout=timeout)).stdout == "hi\n"
    finally:
        await registry.stop()
