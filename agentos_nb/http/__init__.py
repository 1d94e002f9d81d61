"""The HTTP face: a registry's API served by tornado on its own loop (`registry.serve()`,
`registry.start()` in a script), and `create_client(url)`, the same handle API over httpx.

The runtime never imports this: `agentos_nb.app` composes it on top, and the server is attached
to the registry as a face (`actors/faces.py`) so that stopping the registry drains it.
"""
