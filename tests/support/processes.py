"""The tests' name for the project's process manager (forest_mlops.process).

`ServerProcess(argv, log_path=...)` is a ManagedProcess named after its program; `wait_http`
fails with the process's log when it exits or times out, so a broken start shows its own error.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from forest_mlops.process import VENV_BIN, ManagedProcess, free_port

__all__ = ["VENV_BIN", "ServerProcess", "free_port"]


class ServerProcess(ManagedProcess):
    def __init__(
        self,
        argv: Sequence[str],
        *,
        log_path: Path,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        inherit_env: bool = True,
    ) -> None:
        super().__init__(
            Path(argv[0]).name,
            argv,
            log_path=log_path,
            env=env,
            cwd=cwd,
            inherit_env=inherit_env,
        )
