"""`dlio_core.signals.StopSignals`: SIGINT/SIGTERM become a flag, handlers come back, exit codes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading

import pytest

from dlio_core.signals import EXIT_SIGINT, EXIT_SIGTERM, StopSignals, exit_code_for


def test_a_signal_is_recorded_not_fatal():
    with StopSignals() as stop:
        assert stop.installed and stop.received is None and stop.exit_code is None and stop.name is None
        os.kill(os.getpid(), signal.SIGTERM)
        os.kill(os.getpid(), signal.SIGTERM)  # a second SIGTERM changes nothing
        assert (stop.received, stop.count, stop.exit_code, stop.name) == (signal.SIGTERM, 2, 143, "SIGTERM")


def test_the_first_signal_decides_the_exit_code():
    with StopSignals() as stop:
        os.kill(os.getpid(), signal.SIGINT)
        assert stop.exit_code == EXIT_SIGINT == 130
        with pytest.raises(KeyboardInterrupt):  # Ctrl-C twice: stop now
            os.kill(os.getpid(), signal.SIGINT)
    assert EXIT_SIGTERM == exit_code_for(signal.SIGTERM) == 143


def test_previous_handlers_come_back():
    seen = []
    sigint_before = signal.getsignal(signal.SIGINT)  # default_int_handler, or SIG_IGN in a background job
    previous = signal.signal(signal.SIGTERM, lambda s, f: seen.append(s))
    try:
        with StopSignals() as stop:
            os.kill(os.getpid(), signal.SIGTERM)
        assert stop.received == signal.SIGTERM and seen == [] and not stop.installed
        os.kill(os.getpid(), signal.SIGTERM)
        assert seen == [signal.SIGTERM]
        assert signal.getsignal(signal.SIGINT) is sigint_before
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_outside_the_main_thread_nothing_is_installed():
    result = {}

    def worker():
        stop = StopSignals().install()
        result["installed"] = stop.installed
        stop.restore()

    t = threading.Thread(target=worker)
    t.start()
    t.join()
    assert result == {"installed": False}


def test_a_process_stops_at_its_next_check_and_exits_143():
    code = """
import os, signal, sys, time
from dlio_core.signals import StopSignals
stop = StopSignals().install()
for step in range(1, 1000):
    if step == 3:
        os.kill(os.getpid(), signal.SIGTERM)
    if stop.received is not None:
        print("stopped at", step)
        sys.exit(stop.exit_code)
    time.sleep(0.001)
"""
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert (res.returncode, res.stdout.strip()) == (143, "stopped at 3"), res.stderr
