"""Typed handles: what a type checker makes of user code, and the one call object behind them.

mypy runs over small snippets of user code; a line ending in `# error` must be an error, and
no other line may be. Third-party modules are skipped (`follow_imports = skip`), so that a cold
run checks agentos_nb alone and takes seconds, not minutes.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from pathlib import Path

import pytest

from agentos_nb import ActorHandle, VmHandle, actor, agent_os
from agentos_nb.actors.calls import ActionCall
from agentos_nb.errors import UnknownAction
from agentos_nb.vm.handle import LocalVmHandle

PACKAGE = Path(__file__).resolve().parent.parent / "agentos_nb"

USER_CODE = """\
import contextlib

from agentos_nb import ActorContext, SessionUpdate, VmHandle, agent_os, create_client, setup


async def in_process() -> None:
    registry = setup(use={"writer": agent_os()})
    vm: VmHandle = registry.client().writer.get_or_create(["p"])
    result = await vm.exec("ls", cwd="/home/user", timeout=5)
    code: int = result.exit_code + 1
    data: bytes = await vm.read_file("/a")
    text: str = await vm.read_file("/a", encoding="utf-8")
    session = await vm.create_session("pi")
    async for update in vm.stream_prompt(session.session_id, "Hello"):
        seen: SessionUpdate = update
    async with contextlib.aclosing(vm.stream_prompt(session.session_id, "Again")) as updates:
        async for update in updates:
            seen = update
    every: list[SessionUpdate] = await vm.stream_prompt(session.session_id, "Once more")
    other = registry.client().task_runner.get_or_create("main")
    await other.any_action(1, flag=True)
    async for item in other.any_stream():
        pass


async def remote() -> None:
    async with create_client() as client:
        vm: VmHandle = client.writer.get_or_create(["p"])
        listing = await vm.readdir()
        names: list[str] = [entry.name for entry in listing]
        data: bytes = await vm.read_file("/a")
        await vm.write_file("/b", data)
        async for update in vm.stream_prompt("s", "Hello"):
            pass


class Counter:
    count: int = 0


async def typed(c: ActorContext[Counter, VmHandle]) -> int:
    c.state.count += 1
    await c.vars.mkdir("/home/user/out")
    return c.state.count


async def bare(c: ActorContext) -> None:
    c.state.anything = c.vars.whatever
"""

MISTAKES = """\
from agentos_nb import ActorContext, VmHandle


async def mistakes(vm: VmHandle) -> None:
    await vm.exec(123)  # error
    (await vm.exec("ls")).exit_code + "1"  # error
    async for item in vm.exec("ls"):  # error
        pass
    await vm.no_such_action()  # error
    text: str = await vm.read_file("/a")  # error


class Counter:
    count: int = 0


async def typed(c: ActorContext[Counter, None]) -> None:
    c.state.missing  # error
"""


def test_user_code_with_typed_handles_type_checks_and_mistakes_do_not(tmp_path):
    mypy_api = pytest.importorskip("mypy.api")
    (tmp_path / "user_code.py").write_text(USER_CODE)
    (tmp_path / "mistakes.py").write_text(MISTAKES)
    report, errors, _status = mypy_api.run(
        [
            "--config-file=",
            "--follow-imports=skip",
            "--no-error-summary",
            "--show-absolute-path",
            f"--cache-dir={tmp_path / 'cache'}",
            str(PACKAGE),
            str(tmp_path / "user_code.py"),
            str(tmp_path / "mistakes.py"),
        ]
    )
    assert not errors, errors
    found: dict[str, set[int]] = {"user_code.py": set(), "mistakes.py": set()}
    for line in report.splitlines():
        path, _, rest = line.partition(":")
        name = Path(path).name
        if Path(path).parent == tmp_path and ": error:" in line:
            found[name].add(int(rest.split(":")[0]))
    expected = {n for n, text in enumerate(MISTAKES.splitlines(), 1) if text.endswith("# error")}
    assert found == {"user_code.py": set(), "mistakes.py": expected}, report


def test_vm_handle_lists_every_vm_action_with_its_signature():
    actions = agent_os().actions
    own = {"name", "key", "actor_id", "resolve", "call", "stream"}
    methods = {name for name in dir(VmHandle) if not name.startswith("_")} - own
    assert methods == set(actions)
    for name, action in actions.items():
        expected = list(inspect.signature(action).parameters.values())[1:]  # without `c`
        method = inspect.signature(getattr(VmHandle, name))
        assert list(method.parameters.values())[1:] == expected, name  # without `self`
        if not inspect.isasyncgenfunction(action):
            assert method.return_annotation == inspect.signature(action).return_annotation, name


@pytest.mark.anyio
async def test_a_vm_type_hands_out_typed_handles_and_other_types_plain_ones(start_registry):
    registry = await start_registry(vm=agent_os(), plain=actor(actions={"ping": lambda c: "pong"}))
    vm = registry.client().vm.get_or_create(["typed"])
    assert isinstance(vm, LocalVmHandle)
    assert isinstance(registry.client().vm.get_for_id("any"), LocalVmHandle)
    assert "command" in inspect.signature(vm.exec).parameters  # what `vm.exec?` shows
    assert "exec" in dir(vm)
    assert dir(vm) == sorted(set(dir(vm)))
    assert (await vm.exec("echo hi")).stdout == "hi\n"
    assert type(registry.client().plain.get_or_create("p")) is ActorHandle


@pytest.mark.anyio
async def test_one_call_object_is_awaited_for_a_result_or_iterated_for_a_stream(start_registry):
    async def count(c, up_to: int):
        for n in range(up_to):
            yield n

    registry = await start_registry(a=actor(actions={"count": count, "ping": lambda c: "pong"}))
    handle = registry.client().a.get_or_create("k")
    assert isinstance(handle.ping(), ActionCall)
    assert await handle.ping() == "pong"
    assert await asyncio.create_task(handle.ping()) == "pong"  # a coroutine, as `async def` gives
    assert await asyncio.gather(handle.ping(), handle.ping()) == ["pong", "pong"]
    assert [n async for n in handle.count(3)] == [0, 1, 2]
    assert await handle.count(3) == [0, 1, 2]  # awaited: the list of its items, as over HTTP
    async with contextlib.aclosing(handle.count(10)) as counting:
        async for n in counting:
            if n == 1:
                break
    with pytest.raises(UnknownAction, match="no streaming action 'ping'"):
        async for _ in handle.ping():
            pass
