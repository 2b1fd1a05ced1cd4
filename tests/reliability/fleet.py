"""Charter processes for the reliability runs: started, killed, restarted and stopped by
the test, each writing its output to a log file the test shows when something fails."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
STARTUP = 5.0
"""Seconds a process is given to start (and install its SIGTERM handler) before a stop."""


class Fleet:
    """The processes of one run, by name; a restarted one keeps its name and log."""

    def __init__(self, logs: Path, secret: str) -> None:
        self.logs = logs
        self.environment = {**{k: v for k, v in os.environ.items()
                               if not k.startswith("CHARTER_")}, "CHARTER_SECRET": secret}
        self.running: dict[str, subprocess.Popen[bytes]] = {}
        self.commands: dict[str, list[str]] = {}
        self.kills: dict[str, int] = {}
        self.spawned: dict[str, float] = {}
        logs.mkdir(parents=True, exist_ok=True)

    def start(self, name: str, *arguments: str) -> None:
        """Start `python ARGUMENTS` as `name`."""
        self.commands[name] = [sys.executable, *arguments]
        self._spawn(name)

    def kill(self, name: str) -> None:
        """SIGKILL `name` (no chance to finish or release anything), then start it again."""
        process = self.running[name]
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
        self.kills[name] = self.kills.get(name, 0) + 1
        self._spawn(name)

    def stop(self, timeout: float = 60) -> dict[str, int | None]:
        """SIGTERM every process and wait for it; their exit codes (None: it had to be
        killed)."""
        youngest = max(self.spawned.values(), default=0.0)
        time.sleep(max(0.0, youngest + STARTUP - time.monotonic()))
        for process in self.running.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        codes: dict[str, int | None] = {}
        for name, process in self.running.items():
            try:
                codes[name] = process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=30)
                codes[name] = None
        self.running.clear()
        return codes

    def exited(self) -> dict[str, int]:
        """The processes that ended by themselves, with their exit codes."""
        return {name: code for name, process in self.running.items()
                if (code := process.poll()) is not None}

    def tail(self, name: str, lines: int = 40) -> str:
        path = self.logs / f"{name}.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        return f"--- {name} ---\n" + "\n".join(text.splitlines()[-lines:])

    def tails(self) -> str:
        return "\n".join(self.tail(name) for name in self.commands)

    def _spawn(self, name: str) -> None:
        self.spawned[name] = time.monotonic()
        with (self.logs / f"{name}.log").open("ab") as log:
            self.running[name] = subprocess.Popen(
                self.commands[name], cwd=ROOT, env=self.environment, stdout=log,
                stderr=subprocess.STDOUT)
