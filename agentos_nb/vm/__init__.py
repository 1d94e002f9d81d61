"""Agent VMs: the VM actor, its sandboxed shell, host toolkits and software packages."""
