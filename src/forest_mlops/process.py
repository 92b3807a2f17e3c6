"""Child processes: started with their output in a log file, waited on over HTTP, always stopped.

The one process manager of the project: the demo runs its services with it, and the tests and
benchmarks start their real servers with it (tests/support/processes.py only names it for them).
Each child runs in its own session (process group), so a Ctrl-C in the terminal reaches only
the parent, which then stops all its children together (SIGTERM to every group at once, SIGKILL
to any still running after its grace period) instead of leaving a half-stopped set behind.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType

import httpx

log = logging.getLogger(__name__)

# The interpreter's own scripts folder: children run the console scripts of this environment.
VENV_BIN = Path(sys.executable).parent


class ServiceError(RuntimeError):
    """A child process failed to start or died; the message ends with its log's tail."""


def port_is_free(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def pick_port(host: str, preferred: int) -> int:
    """`preferred` when it is free, else any free port (the demo must not fail on a busy 8000)."""
    return preferred if port_is_free(host, preferred) else free_port(host)


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on now (the OS picks it)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def forest_mlops_argv(*args: str) -> list[str]:
    """Run the CLI with this interpreter, so the child uses the same environment."""
    return [sys.executable, "-m", "forest_mlops", *args]


class ManagedProcess:
    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        log_path: Path,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        scrub_prefixes: tuple[str, ...] = (),
        inherit_env: bool = True,
        stop_grace: float = 15.0,
    ) -> None:
        self.name = name
        self.stop_grace = stop_grace
        self.argv = list(argv)
        self.log_path = log_path
        self._log = open(log_path, "ab")  # noqa: SIM115 - closed in stop()
        # inherit_env=False runs the child with exactly `env`, as a container gets it (tests that
        # call mlflow.set_tracking_uri() leave MLFLOW_* in os.environ).
        inherited = os.environ if inherit_env else {}
        self.proc = subprocess.Popen(
            self.argv,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env={
                **{k: v for k, v in inherited.items() if not k.startswith(scrub_prefixes)},
                **(env or {}),
            },
            cwd=cwd,
            start_new_session=True,
        )
        log.debug("started %s (pid %d): %s", name, self.proc.pid, " ".join(self.argv))

    @property
    def pid(self) -> int:
        return self.proc.pid

    def running(self) -> bool:
        return self.proc.poll() is None

    def log_tail(self, chars: int = 6000) -> str:
        self._log.flush()
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def failure(self, what: str) -> ServiceError:
        return ServiceError(
            f"{self.name} {what} (log: {self.log_path}):\n{self.log_tail()}".rstrip()
        )

    def wait_http(
        self,
        url: str,
        *,
        timeout: float,
        ready: Callable[[httpx.Response], bool] | None = None,
        on_wait: Callable[[float], None] | None = None,
    ) -> None:
        """Poll `url` until it answers (and `ready(response)` holds); fail early if we exit."""
        started = time.monotonic()
        while (waited := time.monotonic() - started) < timeout:
            if not self.running():
                raise self.failure(f"exited with code {self.proc.returncode} while starting")
            try:
                response = httpx.get(url, timeout=2.0)
                if response.status_code < 500 and (ready is None or ready(response)):
                    return
            except httpx.HTTPError:
                pass
            if on_wait is not None:
                on_wait(waited)
            time.sleep(0.25)
        raise self.failure(f"did not answer {url} within {timeout:.0f} s")

    def wait(self, timeout: float | None = None) -> int:
        return self.proc.wait(timeout=timeout)

    def kill(self) -> None:
        """SIGKILL the whole process group: a crash, not a shutdown."""
        if self.running():
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self, grace: float | None = None) -> None:
        grace = self.stop_grace if grace is None else grace
        self.request_stop()
        self.finish_stop(time.monotonic() + grace)

    def request_stop(self) -> None:
        """SIGTERM the process group and return at once (`finish_stop` waits for it)."""
        if self.running():
            # It may exit between the check and the signal: finish_stop reaps it then.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)

    def finish_stop(self, deadline: float) -> None:
        """Wait until `deadline` (time.monotonic()) for the child to exit, then SIGKILL it."""
        try:
            self.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            log.warning("%s did not stop within its grace period; killing it", self.name)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        self._log.close()


class ProcessGroup:
    """Owns a set of children (the demo's); leaving the `with` block stops them, newest first."""

    def __init__(self) -> None:
        self._processes: list[ManagedProcess] = []
        self._services: list[ManagedProcess] = []

    def start(
        self,
        name: str,
        argv: Sequence[str],
        *,
        log_path: Path,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        service: bool = True,
        scrub_prefixes: tuple[str, ...] = (),
        stop_grace: float = 15.0,
    ) -> ManagedProcess:
        """Start a child; a `service` must keep running until the demo stops it.

        The child inherits this environment plus `env`, minus variables starting with one
        of `scrub_prefixes`. `stop()` gives it `stop_grace` seconds after SIGTERM.
        """
        process = ManagedProcess(
            name,
            argv,
            log_path=log_path,
            env=env,
            cwd=cwd,
            scrub_prefixes=scrub_prefixes,
            stop_grace=stop_grace,
        )
        self._processes.append(process)
        if service:
            self._services.append(process)
        return process

    def check_services(self) -> None:
        """Fail with the log of the first service that has died."""
        for process in self._services:
            if not process.running():
                raise process.failure(f"exited unexpectedly with code {process.proc.returncode}")

    def has_running(self) -> bool:
        return any(process.running() for process in self._processes)

    def stop_all(self) -> None:
        """SIGTERM every child at once, newest first, then give each its grace period.

        The grace periods run concurrently: stopping them one after another made a demo
        Ctrl-C wait up to 15 s per service (over 60 s under a loaded machine). A child leaves
        the group only once it is stopped; should the waiting itself be cut short (a second
        Ctrl-C), every child not yet stopped is SIGKILLed on the way out, never abandoned.
        """
        stopping = list(reversed(self._processes))
        for process in stopping:
            try:
                process.request_stop()
            except Exception:  # finish_stop below still waits for it and kills it
                log.exception("could not signal %s (pid %d)", process.name, process.pid)
        started = time.monotonic()
        try:
            for process in stopping:
                try:
                    process.finish_stop(started + process.stop_grace)
                except Exception:  # keep stopping the others; this one is reported
                    log.exception("could not stop %s (pid %d)", process.name, process.pid)
                self._forget(process)
        finally:
            for process in list(self._processes):
                with contextlib.suppress(Exception):
                    process.kill()
                self._forget(process)

    def _forget(self, process: ManagedProcess) -> None:
        if process in self._processes:
            self._processes.remove(process)
        if process in self._services:
            self._services.remove(process)

    def __enter__(self) -> ProcessGroup:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop_all()
