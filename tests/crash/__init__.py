"""Crash testing of the SQLite store: a worker program that keeps a history of what it did,
a fork server and a driver that kill it and restart it, and the checker that judges the history.

`tests/test_crash.py` runs it within the test suite; `bench/crash_soak.py` runs it for longer.
"""
