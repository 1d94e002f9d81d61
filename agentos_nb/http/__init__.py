"""The HTTP face: a registry's API served by tornado on its own loop (`registry.serve()`,
`registry.start()` in a script), and `create_client(url)`, the same handle API over httpx.

Nothing here is imported by the runtime except where `registry.start`/`serve` reach for it.
"""
