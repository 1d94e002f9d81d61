"""Permission requests in Jupyter, read through widget state (no browser): the `%%agent`
output's buttons and the dashboard's Sessions tab answer a waiting request with a click, and
the turn goes on; a request answered elsewhere, or cancelled, disables them."""

from __future__ import annotations

import asyncio

import pytest
from test_dashboard import PAUSED, by_class, sent, text  # noqa: F401 (sent is a fixture)
from test_permissions import next_request

from agentos_nb import agent_os
from agentos_nb.agents.offline import Reply, Write, offline_model
from agentos_nb.jupyter.agent_cell import DisplaySink, LiveTurn, run_turn
from agentos_nb.jupyter.dashboard import Dashboard
from agentos_nb.jupyter.permission_buttons import PermissionButtons
from agentos_nb.software import Pi, common
from agentos_nb.vm.session_models import PermissionRequest
from conftest import wait_until

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("sent")]


@pytest.fixture
async def gated(start_registry):
    """A registry whose VM's agent writes a.txt, then says so; its sessions ask before a write."""
    model = offline_model([Write("a.txt", "approved\n"), Reply("wrote it")])
    registry = await start_registry(vm=agent_os(software=[common, Pi(model=model, permissions=["write"])]))
    return registry, registry.client().vm.get_or_create(["main"])


class ClickingSink(DisplaySink):
    """The cell's own display, with a user who clicks `option` as soon as the buttons show."""

    def __init__(self, option: str) -> None:
        super().__init__()
        self.option = option

    def ask(self, request: PermissionRequest, respond) -> None:
        super().ask(request, respond)
        buttons = self.asks[request.request_id]
        [button] = [b for b in buttons.buttons if b.tooltip == self.option]
        asyncio.get_running_loop().call_soon(button.click)


async def test_a_click_in_the_agent_output_answers_and_the_turn_goes_on(gated):
    _, vm = gated
    session = await vm.create_session("pi")
    sink = ClickingSink("allow_once")
    turn = LiveTurn("vm/main", session)
    result = await run_turn(vm, turn, "write a.txt", sink)
    assert (result.stop_reason, result.text) == ("end_turn", "wrote it")
    assert await vm.read_file("a.txt", encoding="utf-8") == "approved\n"
    [buttons] = sink.asks.values()
    assert "write a.txt" in buttons.label.get_state()["value"]
    assert [b.get_state()["description"] for b in buttons.buttons] == [
        "Allow once",
        "Always allow",
        "Reject",
        "Always reject",
    ]
    assert all(b.get_state()["disabled"] for b in buttons.buttons)
    assert buttons.status.get_state()["value"] == "allowed once"
    assert "permission for <code>write a.txt</code>: allowed once" in turn._repr_html_()


async def test_a_reject_click_refuses_and_the_turn_still_ends_normally(gated):
    _, vm = gated
    session = await vm.create_session("pi")
    sink = ClickingSink("reject_once")
    result = await run_turn(vm, LiveTurn("vm/main", session), "write a.txt", sink)
    assert result.stop_reason == "end_turn"
    assert not await vm.exists("a.txt")
    [buttons] = sink.asks.values()
    assert buttons.status.get_state()["value"] == "rejected"


async def test_buttons_answered_from_code_are_disabled_and_a_cancel_says_so(gated):
    _, vm = gated
    session = await vm.create_session("pi")
    sink = DisplaySink()
    running = asyncio.ensure_future(run_turn(vm, LiveTurn("vm/main", session), "write", sink))
    request = await next_request(vm, session.session_id)
    await vm.respond_permission(session.session_id, request.request_id, "allow_always")
    await running
    [buttons] = sink.asks.values()
    assert all(b.disabled for b in buttons.buttons)
    assert buttons.status.value == "allowed for this session"

    second = await vm.create_session("pi")
    sink = DisplaySink()
    running = asyncio.ensure_future(run_turn(vm, LiveTurn("vm/main", second), "write", sink))
    await next_request(vm, second.session_id)
    await vm.cancel_prompt(second.session_id)
    assert (await running).stop_reason == "cancelled"
    [buttons] = sink.asks.values()
    assert all(b.disabled for b in buttons.buttons)
    assert buttons.status.value == "cancelled with the turn"
    buttons.buttons[0].click()  # a late click sends nothing and breaks nothing
    assert buttons.status.value == "cancelled with the turn"


async def test_a_click_on_a_request_no_longer_waiting_says_why(gated):
    _, vm = gated
    session = await vm.create_session("pi")
    turn = asyncio.ensure_future(vm.send_prompt(session.session_id, "write"))
    request = await next_request(vm, session.session_id)
    buttons = PermissionButtons(
        request, lambda option: vm.respond_permission(session.session_id, "perm-x", option)
    )
    buttons.buttons[0].click()
    await wait_until(lambda: "PermissionRequestNotFound" in buttons.status.value)
    await vm.respond_permission(session.session_id, request.request_id, "allow_once")
    assert (await turn).text == "wrote it"


async def test_the_sessions_tab_shows_a_waiting_request_whose_buttons_answer_it(gated):
    registry, vm = gated
    dashboard = Dashboard(registry, tabs=["Sessions"], interval=PAUSED)
    try:
        session = await vm.create_session("pi")
        turn = asyncio.ensure_future(vm.send_prompt(session.session_id, "write a.txt"))
        await next_request(vm, session.session_id)
        asks = None

        async def shown() -> bool:
            nonlocal asks
            await dashboard.refresh()
            try:
                asks = by_class(dashboard.widget, "agentos-permission")
            except AssertionError:
                return False
            return True

        await wait_until(shown)
        assert asks is not None
        assert "write a.txt" in text(asks.children[0].value)
        allow = by_class(asks, "agentos-permission-allow-once")
        allow.click()
        assert (await turn).text == "wrote it"

        async def gone() -> bool:
            await dashboard.refresh()
            return not any(
                "agentos-permission" in w.get_state()["_dom_classes"] for w in _tree(dashboard.widget)
            )

        await wait_until(gone)
        transcript = by_class(dashboard.widget, "agentos-transcript")
        values = [text(child.value) for child in transcript.children]
        assert any(value.startswith("permission write a.txt allowed once") for value in values), values
    finally:
        dashboard.close()


def _tree(root):
    yield root
    for child in getattr(root, "children", ()):
        yield from _tree(child)


async def test_what_the_agent_asks_about_is_shown_as_text_never_as_markup(start_registry):
    hostile = "<img src=x onerror=alert(1)>.txt"
    model = offline_model([Write(hostile, "<script>alert(2)</script>"), Reply("done")])
    registry = await start_registry(vm=agent_os(software=[common, Pi(model=model, permissions=["write"])]))
    vm = registry.client().vm.get_or_create(["main"])
    session = await vm.create_session("pi")
    sink = ClickingSink("reject_once")
    turn = LiveTurn("vm/main", session)
    await run_turn(vm, turn, "write", sink)
    [buttons] = sink.asks.values()
    shown = buttons.label.get_state()["value"] + turn._repr_html_()
    assert "<img" not in shown
    assert "<script>" not in shown
    assert "&lt;img src=x onerror=alert(1)&gt;.txt" in shown


async def test_the_sessions_tab_head_shows_the_mode(gated):
    registry, vm = gated
    dashboard = Dashboard(registry, tabs=["Sessions"], interval=PAUSED)
    try:
        session = await vm.create_session("pi")
        await vm.set_mode(session.session_id, "plan")

        async def shown() -> bool:
            await dashboard.refresh()
            return "plan mode" in text(by_class(dashboard.widget, "agentos-session-head").value)

        await wait_until(shown)
    finally:
        dashboard.close()
