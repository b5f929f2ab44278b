"""One writer per run folder: an advisory lock held for the whole of a training session.

Two ``ganforge run`` processes writing into one ``--out`` would interleave metrics, overwrite each
other's checkpoints and delete each other's files in the keep-N clean-up; a ``--resume`` started
while the original still runs would do the same. ``flock`` is released by the kernel when the
holder exits in any way (``kill -9`` included), so a crashed run never leaves a stale lock.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from ganforge.errors import ConfigError

LOCK_NAME = ".lock"


class RunLock:
    def __init__(self, root: Path) -> None:
        self.path = root / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> None:
        if self.path.parent.exists() and not self.path.parent.is_dir():
            raise ConfigError(f"--out {self.path.parent} is a file, not a folder; choose another --out")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"cannot create the run folder {self.path.parent} ({exc.strerror}); "
                              f"choose an --out you can write to") from None
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise ConfigError(f"{self.path.parent} is in use by a running ganforge process (pid {holder}); "
                              f"wait for it to finish, stop it, or choose another --out") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing drops the lock
            self._fd = None
