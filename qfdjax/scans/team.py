"""Several processes, one scan, on JAX's multi-controller runtime (`jax.distributed`).

Every process runs the same command.  Process 0 hosts the coordination
service; the team uses only its key-value store and barriers, never an XLA
collective: grid points are independent, so each process fits its own share
of the points on its own devices, in its own time, and writes verified chunk
files into the output directory the processes share.  A global mesh would tie
every process's LM rounds to one program (they re-pack lanes as they converge,
so shapes differ per process) and needs gloo/NCCL for no gain.

A process that dies stops sending heartbeats; JAX then stops the others
within the heartbeat timeout, and a process whose peers never arrive gives up
after the connection timeout.  Both end in JAX's own fatal log, which the
command line turns into one line (see cli/supervise.py).  An error a process
can report itself (bad input, Ctrl-C, a directory in use) is published under
"qfdjax/abort" and every peer ends with it at its next check.
"""

from __future__ import annotations

from typing import Any
import json
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError
from ..io import safe_mkdir
from .rendezvous import announce, await_announcement, claim_rank

# Environment variables read when the flags are not given (a batch script can set them once).
ENVIRONMENT = {"coordinator": "QFDJAX_COORDINATOR", "num_processes": "QFDJAX_NUM_PROCESSES",
               "process_id": "QFDJAX_PROCESS_ID", "connect_timeout": "QFDJAX_CONNECT_TIMEOUT",
               "heartbeat_timeout": "QFDJAX_HEARTBEAT_TIMEOUT"}
_POLL_S = 0.2


class TeamAborted(RuntimeError):
    """Another process of the team stopped with an error; the message is theirs."""


@dataclass(frozen=True)
class TeamSettings:
    """How this process joins a team: explicit address/size/rank, or `auto` (Slurm, Open MPI, ...)."""

    coordinator: str | None = None
    num_processes: int | None = None
    process_id: int | None = None
    auto: bool = False
    connect_timeout: int = 120
    heartbeat_timeout: int = 60

    @property
    def enabled(self) -> bool:
        return self.auto or self.coordinator is not None or self.num_processes is not None \
            or self.process_id is not None

    def label(self) -> str:
        rank, size = self.process_id, self.num_processes
        if self.auto and rank is None:
            rank, size = _cluster_rank_and_size(os.environ)
        if rank is None or size is None:
            return "this process"
        return f"process {rank} of {size}"

    def check(self) -> "TeamSettings":
        """Raise InputError naming the first bad setting; returns self."""
        if not self.enabled:
            return self
        for name in ("connect_timeout", "heartbeat_timeout"):
            value = getattr(self, name)
            if not isinstance(value, int) or not 1 <= value <= 86_400:
                raise InputError(f"{name.replace('_', '-')} = {value!r} is out of range: must be an integer "
                                 f"number of seconds in 1..86400")
        explicit = (self.coordinator, self.num_processes, self.process_id)
        if not self.auto and None in explicit:
            missing = [f"--{n}" for n, v in zip(("coordinator", "num-processes", "process-id"), explicit, strict=True) if v is None]
            raise InputError(f"a multi-process scan needs --coordinator HOST:PORT, --num-processes N and "
                             f"--process-id I (missing {', '.join(missing)}; or {', '.join(ENVIRONMENT.values())}), "
                             f"or --distributed to take them from Slurm / Open MPI")
        if self.coordinator is not None:
            host, _, port = self.coordinator.rpartition(":")
            if not host or not port.isdigit() or not 1 <= int(port) <= 65535:
                raise InputError(f"coordinator = {self.coordinator!r} is invalid: must be HOST:PORT with a port "
                                 f"in 1..65535 (e.g. node001:12345)")
        if self.num_processes is not None and self.num_processes < 1:
            raise InputError(f"num-processes = {self.num_processes} is out of range: must be >= 1")
        if self.process_id is not None and self.num_processes is not None \
                and not 0 <= self.process_id < self.num_processes:
            raise InputError(f"process-id = {self.process_id} is out of range: must be in 0..{self.num_processes - 1} "
                             f"(--num-processes {self.num_processes})")
        return self


# Where the batch systems JAX detects put a task's rank and the task count (for messages only:
# with --distributed JAX itself reads them, and the coordinator's address).
_CLUSTER_RANKS = (("SLURM_PROCID", "SLURM_NTASKS"), ("OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE"),
                  ("PMI_RANK", "PMI_SIZE"))


def _cluster_rank_and_size(environ):
    for rank, size in _CLUSTER_RANKS:
        if rank in environ and size in environ:
            return environ[rank], environ[size]
    return None, None


def settings_from(coordinator=None, num_processes=None, process_id=None, auto=False, connect_timeout=None,
                  environ=None) -> TeamSettings:
    """Flags first, then the QFDJAX_* environment variables; validated."""
    environ = os.environ if environ is None else environ

    def pick(name, value, cast):
        if value is not None:
            return value
        text = environ.get(ENVIRONMENT[name])
        if text is None or text == "":
            return None
        try:
            return cast(text)
        except ValueError:
            raise InputError(f"{ENVIRONMENT[name]} = {text!r} is invalid: must be "
                             f"{'HOST:PORT' if cast is str else 'an integer'}") from None

    timeout = pick("connect_timeout", connect_timeout, int)
    heartbeat = pick("heartbeat_timeout", None, int)
    return TeamSettings(coordinator=pick("coordinator", coordinator, str),
                        num_processes=pick("num_processes", num_processes, int),
                        process_id=pick("process_id", process_id, int), auto=bool(auto),
                        connect_timeout=120 if timeout is None else timeout,
                        heartbeat_timeout=60 if heartbeat is None else heartbeat).check()


def _check_port_free(coordinator: str) -> None:
    """Process 0 binds the coordinator's port: a port in use is one clear line, not a crash inside JAX."""
    port = int(coordinator.rpartition(":")[2])
    probe = socket.socket(socket.AF_INET6 if socket.has_ipv6 else socket.AF_INET)
    try:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind(("", port))
    except OSError as err:
        raise InputError(f"coordinator = {coordinator!r}: process 0 cannot listen on port {port} "
                         f"({err.strerror}): choose another port") from None
    finally:
        probe.close()


class Team:
    """This process's place in a team of `size` processes (a team of one needs no runtime)."""

    def __init__(self, rank: int = 0, size: int = 1, client=None, coordinator: str | None = None):
        self.rank, self.size, self.client, self.coordinator = rank, size, client, coordinator

    @classmethod
    def solo(cls) -> "Team":
        return cls()

    @property
    def lead(self) -> bool:
        return self.rank == 0

    def label(self) -> str:
        return f"process {self.rank} of {self.size}"

    # --- messages ------------------------------------------------------------
    def publish(self, key: str, value) -> None:
        if self.client is not None:
            self.client.key_value_set(f"qfdjax/{key}", json.dumps(value), allow_overwrite=True)

    def _try_get(self, key: str):
        try:
            return json.loads(self.client.key_value_try_get(f"qfdjax/{key}"))
        except Exception:  # noqa: BLE001 - NOT_FOUND is how the store says "not yet"
            return None

    def check_abort(self) -> None:
        """Raise TeamAborted if another process has stopped with an error."""
        if self.client is None:
            return
        message = self._try_get("abort")
        if message is not None and message.get("rank") != self.rank:
            raise TeamAborted(f"process {message['rank']} of {self.size} stopped: {message['error']}")

    def abort(self, error: str) -> None:
        """Tell every other process that this one stops (first error wins; never raises)."""
        if self.client is None:
            return
        try:
            if self._try_get("abort") is None:
                self.publish("abort", {"rank": self.rank, "error": error})
        except Exception:  # noqa: BLE001 - the runtime may already be gone; the heartbeat then tells them
            pass

    def wait_for(self, key: str):
        """The value published under `key`, however long that takes; a peer's abort ends the wait."""
        while True:
            value = self._try_get(key)
            if value is not None:
                return value
            self.check_abort()
            time.sleep(_POLL_S)

    def gather(self, key: str) -> list:
        """Every process's value published under f"{key}/{rank}", in rank order (waits for all)."""
        if self.client is None:
            return []
        return [self.wait_for(f"{key}/{rank}") for rank in range(self.size)]

    def barrier(self, name: str) -> None:
        """Wait until every process has arrived here (or one aborted)."""
        if self.client is None:
            return
        self.publish(f"{name}/{self.rank}", True)
        self.gather(name)


def join(settings: TeamSettings, directory=None, token: str | None = None) -> Team:
    """Join the team described by `settings` (a team of one when it is not enabled).

    Must run before anything initialises a JAX backend.  Connecting waits up to
    `connect_timeout` seconds for every process to arrive.  With `directory` (shared by the team)
    and `token` (`run_token` of the command), process 0 announces the run there first and the
    others connect only to their own run's coordinator (not under --distributed, whose cluster
    gives each job its own address).
    """
    if not settings.enabled:
        return Team.solo()
    import jax

    from ..runtime import configure_jax

    configure_jax()
    if settings.process_id == 0 and settings.coordinator is not None:
        _check_port_free(settings.coordinator)
    if directory is not None and token is not None and not settings.auto:
        if settings.process_id == 0:
            safe_mkdir(Path(directory))
            claim_rank(Path(directory), settings)
            announce(Path(directory), token, settings)
        else:
            await_announcement(Path(directory), token, settings)
            claim_rank(Path(directory), settings)
    kwargs: dict[str, Any] = dict(initialization_timeout=settings.connect_timeout,
                  heartbeat_timeout_seconds=settings.heartbeat_timeout,
                  shutdown_timeout_seconds=settings.connect_timeout)
    if not settings.auto:
        kwargs.update(coordinator_address=settings.coordinator, num_processes=settings.num_processes,
                      process_id=settings.process_id)
        if settings.process_id == 0:
            # Listen only where asked (127.0.0.1:P stays on this host); JAX's default binds every interface.
            kwargs["coordinator_bind_address"] = settings.coordinator
    try:
        jax.distributed.initialize(**kwargs)
    except (ValueError, RuntimeError) as err:
        if settings.auto:
            raise InputError(f"--distributed found no cluster to join ({err}): run it under srun / mpirun, or give "
                             f"--coordinator, --num-processes and --process-id") from None
        raise
    from jax._src import distributed  # the runtime's client: how multihost_utils and orbax reach it too

    return Team(jax.process_index(), jax.process_count(), distributed.global_state.client,
                distributed.global_state.coordinator_address)
