"""How the processes of one team find their own run, and only it, before they connect.

Why: JAX's runtime treats a second process arriving with a rank the coordinator already knows as
that process restarted, and stops the run.  So process 0 announces its run in the directory the
team shares (a token of the command, configuration, directory, size and address) before it opens
the coordinator; every other process connects only after reading its own run's announcement, and
every process first holds its rank in the directory (a lock on one file per rank).  A stranger from
another directory or configuration, or the same command started twice, gives up in one line
without contacting the coordinator.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import time
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import InputError

if TYPE_CHECKING:
    from .team import TeamSettings

_POLL_S = 0.2
# This process's claimed ranks (open, locked files).
_CLAIMS: list[int] = []

# Process 0 announces its run here, in the directory the team shares, before it opens the coordinator;
# every other process connects only after reading its own run's announcement.
RENDEZVOUS = ".team.json"


def run_token(**identity) -> str:
    """What makes two processes members of one run (command, configuration, directory, team size, address)."""
    text = json.dumps(identity, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def announce(directory: Path, token: str, settings: TeamSettings) -> None:
    from ..io import safe_mkdir, write_json

    safe_mkdir(directory)
    write_json(directory / RENDEZVOUS, {"token": token, "coordinator": settings.coordinator,
                                         "num_processes": settings.num_processes, "host": socket.gethostname(),
                                         "pid": os.getpid(), "created": time.time()})


def await_announcement(directory: Path, token: str, settings: TeamSettings) -> dict:
    """Wait for process 0 of this very run; a coordinator serving another run is never contacted.

    Joining a coordinator as a rank another run's process already holds would make JAX's runtime treat
    that process as restarted and stop the other run: so a process that cannot prove it belongs to the
    run listening there gives up, in one line, without connecting.
    """
    path = directory / RENDEZVOUS
    deadline = time.monotonic() + settings.connect_timeout
    seen = None
    while True:
        try:
            data = json.loads(path.read_text()) if path.is_file() and not path.is_symlink() else None
        except (OSError, ValueError):
            data = None
        if isinstance(data, dict):
            if data.get("token") == token and data.get("coordinator") == settings.coordinator:
                return data
            seen = data
        if time.monotonic() >= deadline:
            break
        time.sleep(_POLL_S)
    other = (f"; {str(path)!r} announces another run (token {seen.get('token')}, coordinator "
             f"{seen.get('coordinator')})") if seen else ""
    raise InputError(f"process {settings.process_id} of {settings.num_processes}: process 0 of this run did not "
                     f"announce itself in {str(directory)!r} within --connect-timeout {settings.connect_timeout} s"
                     f"{other}: not joining {settings.coordinator}, which may serve another run; start every "
                     f"process with the same command and directory")


def claim_rank(directory: Path, settings: TeamSettings) -> None:
    """Hold this process's rank in the directory's team for as long as it lives, or refuse.

    The same command started twice carries the same token, and a second process I connecting
    would stop the running team.  The claim is an exclusive lock on one file per rank, which the
    kernel releases when its holder dies, so a crashed run's rerun is never refused.
    """
    import fcntl

    path = directory / f".team.process-{settings.process_id}"
    if path.is_symlink():
        path.unlink()  # a link planted in the directory is replaced, never followed
    fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise InputError(f"process {settings.process_id} of {settings.num_processes}: a process {settings.process_id} "
                         f"of a team in {str(directory)!r} is running (it holds {str(path)!r}): not joining "
                         f"{settings.coordinator}; wait for it to end") from None
    _CLAIMS.append(fd)  # held, never closed: the lock ends with the process
