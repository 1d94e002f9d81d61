"""`python -m agentos_nb.vm.host MEMORY_LIMIT`: a VM host, started by the kernel's supervisor.
It ends when the kernel closes the channel (or dies); `os._exit`, since an engine thread still
computing a stopped command must not keep it alive."""

import asyncio
import os
import sys

from agentos_nb.vm.host.engine import main

asyncio.run(main(int(sys.argv[1])))
sys.stderr.flush()
os._exit(0)
