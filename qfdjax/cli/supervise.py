"""A team process's failures in one line: the command runs as a child and this parent reads its stderr.

Why a parent at all: when a peer dies or never arrives, JAX's distributed
runtime ends the process from C++ (a fatal log, a stack trace and SIGABRT),
which no Python handler can intercept.  The parent, which never imports JAX,
passes the child's own output through, keeps the runtime's log lines in
OUT/logs/process-I.log, and turns a fatal end into one line saying what
happened and what to do.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

CHILD_ENV = "QFDJAX_TEAM_CHILD"
# absl/glog lines: "F1125 23:26:02.069430   26680 client.h:80] ..." and the stack frames after a fatal one.
_RUNTIME_LINE = re.compile(r"^[FEWI]\d{4} \d\d:\d\d:\d\d\.\d+\s+\d+ \S+:\d+\]")


def is_child() -> bool:
    return os.environ.get(CHILD_ENV) == "1"


def follow_parent() -> None:
    """In the child: die with the parent.  A killed parent must not leave a team member running
    unseen; its end then reaches the other processes through the runtime's heartbeat."""
    parent = os.getppid()

    def watch():
        while os.getppid() == parent:
            time.sleep(0.5)
        os.kill(os.getpid(), signal.SIGKILL)

    threading.Thread(target=watch, daemon=True).start()


def explain(runtime_log: str, settings, out: str) -> str:
    """One line for a run the JAX runtime ended, from what it logged."""
    who = settings.label()
    if "Failed to add port" in runtime_log:
        return f"{who}: cannot listen on the coordinator's port ({settings.coordinator}): choose another port"
    if "RegisterTask" in runtime_log or ("Connect" in runtime_log and "DEADLINE_EXCEEDED" in runtime_log):
        return (f"{who}: not every process reached the coordinator {settings.coordinator} within "
                f"--connect-timeout {settings.connect_timeout} s: start all {settings.num_processes or 'N'} "
                f"processes with the same --coordinator (process 0 on that host), or raise --connect-timeout")
    if "heartbeat" in runtime_log.lower() or "unhealthy" in runtime_log:
        return (f"{who}: another process of the team stopped (no heartbeat for {settings.heartbeat_timeout} s); "
                f"finished chunks are kept in {out}: rerun every process's command to resume")
    if "UNAVAILABLE" in runtime_log or "Socket closed" in runtime_log or "Connection reset" in runtime_log:
        return (f"{who}: lost the coordinator (process 0) at {settings.coordinator}; finished chunks are kept in "
                f"{out}: rerun every process's command to resume")
    first = next((line.split("]", 1)[1].strip() for line in runtime_log.splitlines()
                  if line.startswith("F") and _RUNTIME_LINE.match(line)), "no message")
    return f"{who}: stopped by the JAX distributed runtime: {first[:200]}"


def killed_message(signum: int, settings, out: str) -> str:
    try:
        name = signal.Signals(signum).name
    except ValueError:
        name = f"signal {signum}"
    hint = " (out of memory? a smaller --chunk needs less)" if signum == signal.SIGKILL else ""
    return (f"{settings.label()}: its worker was killed by {name}{hint}; finished chunks are kept in {out}: "
            f"rerun every process's command to resume")


def run_child(argv: list[str], settings, out: str, command: str = "scan") -> int:
    """Run `qfdjax ARGV` as a child process of this one; its exit status, or 1 with one line on a runtime abort."""
    env = dict(os.environ, **{CHILD_ENV: "1"})
    # Its own session, so that whatever it leaves behind (plot workers) can be ended with it.
    child = subprocess.Popen([sys.executable, "-P", "-m", "qfdjax", *argv], env=env, stderr=subprocess.PIPE,
                             text=True, errors="replace", bufsize=1, start_new_session=True)

    def forward(signum, frame):
        child.send_signal(signum)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM)}
    runtime_lines: list[str] = []
    said_why = [False]

    def relay():
        for line in child.stderr or ():
            ours = line.startswith("qfdjax")
            said_why[0] |= ours and ": error: " in line
            if (runtime_lines and not ours) or _RUNTIME_LINE.match(line):
                runtime_lines.append(line)
            else:
                sys.stderr.write(line)
                sys.stderr.flush()

    reader = threading.Thread(target=relay, daemon=True)
    reader.start()
    try:
        status = child.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        # The child's end, not the pipe's EOF, ends the run: a leftover holding the pipe is ended here.
        reader.join(timeout=2.0)
        try:
            os.killpg(child.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        reader.join(timeout=1.0)
        if child.stderr is not None and not reader.is_alive():
            child.stderr.close()
    if not runtime_lines and status < 0:
        # Killed by a signal with nothing logged (the kernel's OOM killer, a scheduler, kill -9):
        # Python would pass -9 on as exit status 247 with no word, so say it and use the shell's 128 + N.
        print(f"qfdjax {command}: error: {killed_message(-status, settings, out)}", file=sys.stderr, flush=True)
        return 128 - status
    if not runtime_lines:
        return status
    log = "".join(runtime_lines)
    rank = settings.process_id if settings.process_id is not None else os.environ.get("SLURM_PROCID", "x")
    path = Path(out) / "logs" / f"process-{rank}.log"
    try:
        from ..errors import InputError
        from ..io import write_text

        write_text(path, log)  # atomic, and never through a link planted in --out
        where = f" (runtime log: {path})"
    except (OSError, InputError):
        where = ""
    if status == 0:
        return 0
    if status > 0 and said_why[0] or status in (2, 130):
        return status  # the child already said why in its own words
    print(f"qfdjax {command}: error: {explain(log, settings, out)}{where}", file=sys.stderr, flush=True)
    return 1
