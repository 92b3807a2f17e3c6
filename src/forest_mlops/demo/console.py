"""What the demo tells the person running it: steps, progress of long steps, warnings.

This is the command's output (not logging): it goes to a text stream, stdout by default.
On a terminal, a long step redraws one status line in place; in a log or pipe it prints one
line per update so the file stays readable.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO


class Console:
    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream if stream is not None else sys.stdout
        self.interactive = self.stream.isatty()
        self._status_open = False
        self._started = time.monotonic()
        self._last_status_key: object = None
        self._last_status_at = 0.0

    def _write(self, text: str) -> None:
        if self._status_open:
            self.stream.write("\n")
            self._status_open = False
        self.stream.write(text + "\n")
        self.stream.flush()

    def elapsed(self) -> float:
        return time.monotonic() - self._started

    def step(self, title: str) -> None:
        self._write(f"\n==> [{self.elapsed():6.1f}s] {title}")

    def info(self, text: str) -> None:
        self._write(f"    {text}")

    def lines(self, lines: list[str]) -> None:
        for line in lines:
            self._write(line)

    def warn(self, text: str) -> None:
        """A warning nobody should miss (e.g. synthetic data): framed, on its own lines."""
        bar = "!" * 78
        self._write(bar)
        for line in text.splitlines():
            self._write(f"!!  {line}")
        self._write(bar)

    def status(self, text: str, key: object = None, every: float = 15.0) -> None:
        """Progress of a long step: redrawn in place on a terminal.

        In a log or pipe, a line is written only when `key` changes or every `every` seconds,
        so that polling several times a second does not flood the file.
        """
        if self.interactive:
            self.stream.write(f"\r    {text}\x1b[K")
            self.stream.flush()
            self._status_open = True
            return
        now = time.monotonic()
        if key != self._last_status_key or now - self._last_status_at >= every:
            self._last_status_key = key
            self._last_status_at = now
            self._write(f"    {text}")

    @contextmanager
    def timed(self, title: str) -> Iterator[None]:
        """A step whose duration is printed when it ends."""
        self.step(title)
        started = time.monotonic()
        yield
        self.info(f"done in {time.monotonic() - started:.1f} s")
