"""Run ``nugat`` commands for the tests in processes forked from one that has imported nugat already.

Each command still runs ``nugat.cli.main`` in a process of its own, with the server's environment, working
folder and standard streams, and exits with its code. What it skips is the interpreter's start and nugat's
imports: about 1 s of each of the suite's ~350 commands (users, keys, organizations made by the tests).

Run as a script, it is the zygote: it reads one request a line (JSON) on its standard input, forks a child
for it and answers one line when the child has ended. ``Zygote`` is the tests' side. ``nugat serve`` and
the tests of the console script itself still start ``nugat`` as a program.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any, NoReturn


def _child(request: Mapping[str, Any]) -> NoReturn:
    """Become the command: its folder, environment and streams, then ``main``; never returns."""
    code = 1
    try:
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        created = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
        for fd, (path, flags) in enumerate(
            ((request["stdin"], os.O_RDONLY), (request["stdout"], created), (request["stderr"], created))
        ):
            opened = os.open(path, flags, 0o600)
            os.dup2(opened, fd)
            os.close(opened)
        # New objects: the zygote's sys.stdin may hold lines read ahead from its pipe.
        sys.stdin = open(0, encoding="utf-8", closefd=False)  # noqa: SIM115 (the process's until it exits)
        sys.stdout = open(1, "w", encoding="utf-8", closefd=False)  # noqa: SIM115
        sys.stderr = open(2, "w", encoding="utf-8", closefd=False)  # noqa: SIM115
        from nugat.cli import main

        try:
            code = main(request["argv"])
        except SystemExit as exc:  # as the interpreter treats it: argparse's errors, sys.exit()
            if exc.code is None:
                code = 0
            elif isinstance(exc.code, int):
                code = exc.code
            else:
                print(exc.code, file=sys.stderr)
                code = 1
    except BaseException:  # what an uncaught exception does to a program
        traceback.print_exc()
        code = 1
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(BaseException):  # exiting anyway
                stream.flush()
        os._exit(code)


def _wait(pid: int, timeout: float) -> tuple[int, bool]:
    """The child's exit code as ``subprocess`` gives it (negative: the signal), and whether it was killed
    for running past ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status), False
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            _, status = os.waitpid(pid, 0)
            return os.waitstatus_to_exitcode(status), True
        time.sleep(0.005)


def serve() -> None:
    import nugat.cli  # noqa: F401 (the point: imported once, before any fork)
    from nugat.core import import_all

    import_all()  # the services' modules too (a command imports the one it uses)

    answers = os.fdopen(os.dup(1), "w")  # the children's fd 1 is their own stdout
    for line in sys.stdin:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            _child(request)
        code, timed_out = _wait(pid, request["timeout"])
        answers.write(json.dumps({"returncode": code, "timed_out": timed_out}) + "\n")
        answers.flush()


class Zygote:
    """The tests' side: one zygote per test process, started on first use; commands run one at a time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._process: subprocess.Popen[str] | None = None

    def _started(self) -> subprocess.Popen[str]:
        if self._process is None or self._process.poll() is not None:
            self._process = subprocess.Popen(  # -I: this folder's modules must not shadow any other
                [sys.executable, "-I", __file__], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
            )
        return self._process

    def run(
        self, argv: list[str], *, env: Mapping[str, str], cwd: Path, input: str | None, timeout: float
    ) -> subprocess.CompletedProcess[str]:
        """``subprocess.run(["nugat", *argv], capture_output=True, text=True, ...)``, forked."""
        with self._lock, tempfile.TemporaryDirectory(prefix="nugat-cli-") as tmp:
            folder = Path(tmp)
            (folder / "stdin").write_text(input or "", encoding="utf-8")
            request = {
                "argv": argv,
                "env": dict(env),
                "cwd": str(cwd),
                "stdin": str(folder / "stdin"),
                "stdout": str(folder / "stdout"),
                "stderr": str(folder / "stderr"),
                "timeout": timeout,
            }
            process = self._started()
            pipe_in: IO[str] | None = process.stdin
            pipe_out: IO[str] | None = process.stdout
            assert pipe_in is not None and pipe_out is not None
            pipe_in.write(json.dumps(request) + "\n")
            pipe_in.flush()
            line = pipe_out.readline()
            if not line:
                raise RuntimeError(f"the nugat command zygote ended (exit {process.wait()})")
            answer = json.loads(line)
            stdout = (folder / "stdout").read_text(encoding="utf-8", errors="replace")
            stderr = (folder / "stderr").read_text(encoding="utf-8", errors="replace")
        if answer["timed_out"]:
            raise subprocess.TimeoutExpired(["nugat", *argv], timeout, stdout, stderr)
        return subprocess.CompletedProcess(["nugat", *argv], answer["returncode"], stdout, stderr)

    def close(self) -> None:
        if self._process is not None:
            if self._process.stdin is not None:
                self._process.stdin.close()
            self._process.wait(timeout=10)
            self._process = None


if __name__ == "__main__":
    serve()
