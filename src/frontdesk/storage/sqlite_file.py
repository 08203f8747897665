"""The SQLite database file and the files SQLite makes beside it: readable by frontdesk's user alone."""

from __future__ import annotations

import contextlib
import logging
import os
import stat
from pathlib import Path

__all__ = ["owner_only"]

log = logging.getLogger("frontdesk.storage")


def owner_only(path: str) -> None:
    """Create the SQLite database file 0600 before SQLite opens it, and make an existing one and its ``-wal`` and
    ``-shm`` files 0600: it holds password hashes and sealed keys. SQLite gives the files it creates beside a
    database that database's mode, so the log and shared-memory files follow."""
    database = Path(path)
    if not database.parent.is_dir():
        database.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(database, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    for name in (path, f"{path}-wal", f"{path}-shm"):
        try:
            mode = stat.S_IMODE(os.stat(name).st_mode)
            if mode & 0o077:
                os.chmod(name, 0o600)
                log.warning("%s was mode %04o; made it 0600", name, mode)
        except FileNotFoundError:
            continue
        except OSError as exc:
            log.warning("%s is readable by others and could not be made 0600: %s", name, exc.strerror or exc)
