"""VM host processes: where VMs' engines run, away from the kernel (see `engine.py`)."""
