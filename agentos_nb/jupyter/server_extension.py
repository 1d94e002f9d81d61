"""The jupyter-server extension (extra `[server]`): /agentos/api/... under Jupyter's own
authentication, forwarding to the registries that kernels serve (see server_routes).

Installing the package enables it through etc/jupyter/jupyter_server_config.d/agentos_nb.json;
`jupyter server extension enable agentos_nb.jupyter.server_extension` does the same by hand.
The kernel-side runtime never imports this module: only jupyter_server does.
"""

from __future__ import annotations

from typing import Any

from jupyter_server.serverapp import ServerApp

from agentos_nb.jupyter.server_routes import registry_routes


def _jupyter_server_extension_points() -> list[dict[str, Any]]:
    return [{"module": "agentos_nb.jupyter.server_extension"}]


def _load_jupyter_server_extension(serverapp: ServerApp) -> None:
    web_app = serverapp.web_app
    web_app.add_handlers(".*$", registry_routes(web_app.settings["base_url"]))
    serverapp.log.info("agentos_nb | /agentos/api forwards to the registries kernels serve")
