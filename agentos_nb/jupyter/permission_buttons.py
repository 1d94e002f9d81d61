"""A permission request with the buttons that answer it, shown in the `%%agent` output and in
the dashboard's Sessions tab.

A click sends the answer (`respond_permission`) from a task on the kernel's loop, kept
referenced until it ends; ipykernel 7 delivers widget messages while a cell still awaits, so
the turn the cell waits on goes on. Once the request is answered (here, from code, or
cancelled with its turn) the buttons are disabled and the row says how it ended.
"""

from __future__ import annotations

import asyncio
import html
import json
from collections.abc import Awaitable, Callable

import ipywidgets as widgets

from agentos_nb.jupyter.transcript import PERMISSION_ENDINGS
from agentos_nb.vm.session_models import PermissionRequest, PermissionResponse

Respond = Callable[[str], Awaitable[None]]
"""Sends one answer (an option id) to the request's session."""

_STYLE = {
    "allow_once": "success",
    "allow_always": "info",
    "reject_once": "warning",
    "reject_always": "danger",
}


class PermissionButtons(widgets.VBox):
    """One request: what the agent wants to do, and a button per option."""

    def __init__(self, request: PermissionRequest, respond: Respond) -> None:
        self.request = request
        self._respond = respond
        self._sending: asyncio.Task[None] | None = None
        self._over = False
        call = request.tool_call
        detail = json.dumps(call.raw_input, ensure_ascii=False)
        if len(detail) > 300:
            detail = detail[:297] + "..."
        self.label = widgets.HTML(
            value=f"<b>Permission needed</b>: {html.escape(call.title)} <code>{html.escape(detail)}</code>",
        )
        self.status = widgets.HTML(value="")
        self.buttons = [
            widgets.Button(
                description=option.name, button_style=_STYLE[option.option_id], tooltip=option.option_id
            )
            for option in request.options
        ]
        for option, button in zip(request.options, self.buttons, strict=True):
            button.add_class(f"agentos-permission-{option.option_id.replace('_', '-')}")
            button.on_click(lambda _, chosen=option.option_id: self.choose(chosen))
        super().__init__([self.label, widgets.HBox(self.buttons), self.status])
        self.add_class("agentos-permission")

    def choose(self, option: str) -> None:
        """What a click does: send `option`, once, while the request waits."""
        if self._sending is not None or self._over:
            return
        for button in self.buttons:
            button.disabled = True
        self.status.value = f"sending {html.escape(option)}…"
        self._sending = asyncio.get_running_loop().create_task(self._answer(option))

    async def _answer(self, option: str) -> None:
        try:
            await self._respond(option)
        except Exception as error:  # answered meanwhile, or the VM is gone: say so, never raise
            self.status.value = (
                f"<span style='color:#b91c1c'>{html.escape(f'{type(error).__name__}: {error}')}</span>"
            )
            return
        self.status.value = PERMISSION_ENDINGS.get(option, option)

    def ended(self) -> None:
        """The turn is over: a request still unanswered here was cancelled with it."""
        if self._sending is None and not self._over:
            self.answered(
                PermissionResponse(
                    request_id=self.request.request_id,
                    tool_call_id=self.request.tool_call.tool_call_id,
                    outcome="cancelled",
                )
            )

    def answered(self, response: PermissionResponse) -> None:
        """The request ended: disable the buttons and say how."""
        self._over = True
        for button in self.buttons:
            button.disabled = True
        if response.outcome == "cancelled":
            self.status.value = PERMISSION_ENDINGS["cancelled"]
        elif response.option_id is not None:
            self.status.value = PERMISSION_ENDINGS[response.option_id]
