"""Run the real NuGet client (nuget.exe 4.7.1 on mono) in isolation.

Every :class:`NuGetClient` gets its own HOME and NuGet.Config (no sources configured, so nothing ever reaches
nuget.org), and every single command gets a fresh global-packages folder and HTTP cache, so no run ever sees
another run's caches (nuget.exe keeps HTTP responses for 30 minutes otherwise).
"""

from __future__ import annotations

import fcntl
import itertools
import os
import pty
import re
import select
import shlex
import shutil
import signal
import struct
import subprocess
import termios
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NamedTuple

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_TIMEOUT = 180.0
SLOW_RUN = 20.0  # seconds: a run this long (most take 1-2 s) is reported in pytest's warnings summary


class SlowNuGetRun(UserWarning):
    """A nuget.exe run that took far longer than usual, with its output (which logs each HTTP request and
    its time), so that a stall in a passing test can still be traced to a request."""


_EMPTY_CONFIG = """<?xml version="1.0" encoding="utf-8"?>
<configuration>
  <packageSources>
    <clear />
  </packageSources>
  <config>
    <add key="http_proxy" value="" />
  </config>
</configuration>
"""


class NuGetExeMissing(RuntimeError):
    pass


def find_nuget_exe() -> Path:
    """nuget.exe from ``$NUGAT_NUGET_EXE`` or ``.tools/nuget.exe`` (``scripts/test`` fetches it)."""
    env = os.environ.get("NUGAT_NUGET_EXE")
    path = Path(env) if env else REPO_ROOT / ".tools" / "nuget.exe"
    if not path.is_file():
        raise NuGetExeMissing(
            f"nuget.exe not found at {path}: run `bash scripts/test` once (it fetches it into .tools/) "
            "or set NUGAT_NUGET_EXE"
        )
    return path.resolve()


def find_mono() -> str:
    mono = shutil.which("mono")
    if mono is None:
        raise NuGetExeMissing("mono is not installed (apt-get install mono-complete; scripts/test does it)")
    return mono


def isolated_env(home: Path, scratch: Path | None = None) -> dict[str, str]:
    """Environment for one nuget.exe process: private HOME, XDG dirs and NuGet caches, English output,
    and the ahead-of-time compiled assemblies of ``$NUGAT_MONO_AOT`` if there are (half the start-up CPU)."""
    scratch = scratch or home
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("NUGET_", "XDG_", "NUGAT_")) and k.lower() not in {"http_proxy", "https_proxy"}
    }
    env.update(
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / ".config"),
        XDG_DATA_HOME=str(home / ".local" / "share"),
        XDG_CACHE_HOME=str(home / ".cache"),
        NUGET_PACKAGES=str(scratch / "global-packages"),
        NUGET_HTTP_CACHE_PATH=str(scratch / "http-cache"),
        NUGET_PLUGINS_CACHE_PATH=str(scratch / "plugins-cache"),
        NUGET_CERT_REVOCATION_MODE="offline",
        DOTNET_CLI_TELEMETRY_OPTOUT="1",
        LANG="C.UTF-8",
        LC_ALL="C.UTF-8",
        NO_PROXY="*",
    )
    aot = os.environ.get("NUGAT_MONO_AOT")  # scripts/test compiles the assemblies nuget.exe loads
    if aot and Path(aot).is_dir():
        env["MONO_ENV_OPTIONS"] = f"{env.get('MONO_ENV_OPTIONS', '')} --aot-path={aot}".strip()
    return env


def _redact(argv: Sequence[str]) -> list[str]:
    out = list(argv)
    for i, arg in enumerate(out[:-1]):
        if arg.lower() in {"-apikey", "-symbolapikey"}:
            out[i + 1] = out[i + 1][:22] + "***"
    return out


class NuGetResult(NamedTuple):
    """What one nuget.exe run produced: its exit code and its stdout+stderr, interleaved."""

    returncode: int
    output: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0


class NuGetClient:
    """``mono nuget.exe <command> ... -NonInteractive`` with an isolated HOME, config and caches."""

    def __init__(self, nuget_exe: Path, home: Path, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.nuget_exe = nuget_exe.resolve()
        self.mono = find_mono()
        self.home = home
        self.timeout = timeout
        home.mkdir(parents=True, exist_ok=True)
        self.config_file = home / "NuGet.Config"
        self.config_file.write_text(_EMPTY_CONFIG)
        self._runs = itertools.count(1)
        self.history: list[tuple[list[str], NuGetResult]] = []

    def run(self, *args: str, timeout: float | None = None) -> NuGetResult:
        """Run one nuget.exe command; every run gets fresh global-packages and HTTP-cache folders."""
        scratch = self.home / f"run-{next(self._runs):03d}"
        scratch.mkdir()
        argv = [self.mono, str(self.nuget_exe), *args]
        if "-NonInteractive" not in args:
            argv.append("-NonInteractive")
        if "-ConfigFile" not in args:
            argv += ["-ConfigFile", str(self.config_file)]
        argv.append("-ForceEnglishOutput")
        started = time.monotonic()
        try:
            proc = subprocess.run(
                argv,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=isolated_env(self.home, scratch),
                cwd=scratch,
                timeout=timeout or self.timeout,
                check=False,
            )
            result = _past_mono_teardown_abort(
                NuGetResult(proc.returncode, proc.stdout.decode("utf-8", "replace"))
            )
        except subprocess.TimeoutExpired as exc:
            out = (exc.stdout or b"").decode("utf-8", "replace") if isinstance(exc.stdout, bytes) else ""
            result = NuGetResult(-9, f"{out}\n[nuget.exe timed out after {exc.timeout} s]")
        shown = shlex.join(_redact(argv[1:]))  # API keys shortened to their public key id part
        _report_if_slow(time.monotonic() - started, shown, result)
        self.history.append((argv, result))
        # Captured by pytest and shown when a test fails.
        print(f"$ {shown}\n[exit {result.returncode}]\n{result.output}")
        return result

    def run_in_terminal(self, *args: str, timeout: float = 90.0, confirm: bool = False) -> NuGetResult:
        """Run one nuget.exe command as a person at a terminal would: without ``-NonInteractive``, its
        stdin, stdout and stderr a pseudo-terminal (stdlib ``pty``). Should it prompt for credentials
        (``UserName:``), it is killed at once and the output so far returned (exit code -9), so a test
        sees the prompt instead of hanging on it; likewise after ``timeout`` seconds. ``confirm``: answer
        ``y`` to its one yes/no question (``nuget delete`` asks "Are you sure …? (y/N)")."""
        scratch = self.home / f"run-{next(self._runs):03d}"
        scratch.mkdir()
        argv = [self.mono, str(self.nuget_exe), *args, "-ConfigFile", str(self.config_file)]
        argv.append("-ForceEnglishOutput")

        def watch(output: bytes, answer: Callable[[bytes], None]) -> bool:
            nonlocal confirm
            if confirm and b"(y/N)" in output:
                answer(b"y\n")
                confirm = False
            return b"UserName:" in output or b"Password:" in output  # a dead key must never get here

        env = {**isolated_env(self.home, scratch), "TERM": "xterm"}
        # it has printed all when it stops writing: give it a moment to exit
        returncode, output = in_terminal(argv, env, scratch, timeout, watch=watch, linger=2)
        result = NuGetResult(returncode, output.decode("utf-8", "replace").replace("\r\n", "\n"))
        self.history.append((argv, result))
        print(f"$ [terminal] {shlex.join(_redact(argv[1:]))}\n[exit {result.returncode}]\n{result.output}")
        return result

    def push(self, nupkg: Path, api_key: str | None, source: str, *extra: str) -> NuGetResult:
        args = ["push", str(nupkg), "-Source", source]
        if api_key is not None:
            args += ["-ApiKey", api_key]
        return self.run(*args, *extra)

    def delete(self, package_id: str, version: str, api_key: str | None, source: str) -> NuGetResult:
        args = ["delete", package_id, version, "-Source", source]  # -NonInteractive: no prompt
        if api_key is not None:
            args += ["-ApiKey", api_key]
        return self.run(*args)

    def install(
        self,
        package_id: str,
        version: str | None = None,
        *,
        source: str,
        output_dir: Path,
        prerelease: bool = False,
        extra: Sequence[str] = (),
    ) -> NuGetResult:
        args = ["install", package_id, "-Source", source, "-OutputDirectory", str(output_dir), "-NoCache"]
        if version is not None:
            args += ["-Version", version]
        if prerelease:
            args.append("-Prerelease")
        return self.run(*args, *extra)

    def list(self, search: str = "", *, source: str, extra: Sequence[str] = ()) -> NuGetResult:
        """``nuget list`` (needs a V2 feed / LegacyGallery; with a V3-only server it lists nothing)."""
        args = ["list", *([search] if search else []), "-Source", source, *extra]
        return self.run(*args)


def in_terminal(
    argv: list[str],
    env: dict[str, str],
    cwd: Path,
    timeout: float,
    *,
    columns: int | None = None,
    watch: Callable[[bytes, Callable[[bytes], None]], bool] | None = None,
    linger: float,
) -> tuple[int, bytes]:
    """Run ``argv`` on a pseudo-terminal (``columns`` wide, else the default): its exit code (-9 when
    killed) and all it printed. Reading stops when it ends, at ``timeout``, past 1 MiB, or when
    ``watch(output, answer)`` says so (``answer`` types into the terminal); it then has ``linger``
    seconds to exit before it is killed."""
    controller, terminal = pty.openpty()
    if columns is not None:
        fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
    proc = subprocess.Popen(
        argv, stdin=terminal, stdout=terminal, stderr=terminal, env=env, cwd=cwd, start_new_session=True
    )
    os.close(terminal)
    output = bytearray()
    deadline = time.monotonic() + timeout
    returncode: int | None = None

    def answer(text: bytes) -> None:
        os.write(controller, text)

    try:
        while time.monotonic() < deadline and len(output) < 1 << 20:
            ready, _, _ = select.select([controller], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(controller, 65536)
                except OSError:  # the terminal closed: the process has ended
                    chunk = b""
                if not chunk:
                    break
                output += chunk
                if watch is not None and watch(
                    bytes(output), lambda text: os.write(controller, text) and None
                ):
                    break
            elif proc.poll() is not None:
                break
        try:
            returncode = proc.wait(timeout=linger)
        except subprocess.TimeoutExpired:
            returncode = None
    finally:
        if returncode is None:
            proc.kill()
            proc.wait(timeout=30)
            returncode = -9
        os.close(controller)
    return returncode, bytes(output)


def installed_packages(output_dir: Path) -> set[str]:
    """Folder names ``Id.Version`` that ``nuget install`` created in an output directory."""
    if not output_dir.is_dir():
        return set()
    return {p.name for p in output_dir.iterdir() if p.is_dir() and any(p.glob("*.nupkg"))}


LEGACY_NUGET = Path("/usr/bin/nuget")  # Debian's package `nuget`: NuGet 2.8.7 on mono
LEGACY_NUGET_DIR = Path("/usr/lib/nuget")  # its NuGet.exe and assemblies


class LegacyNuGetClient:
    """Debian's ``nuget`` (NuGet 2.8.7, the client an old build machine may still have), isolated like
    :class:`NuGetClient`. It pushes to the source URL it is given, so ``-Source http://host/api/v2/``
    sends ``PUT /api/v2/``."""

    def __init__(self, home: Path, timeout: float = DEFAULT_TIMEOUT) -> None:
        if not LEGACY_NUGET.is_file():
            raise NuGetExeMissing(f"{LEGACY_NUGET} is missing: apt-get install nuget (scripts/test does it)")
        self.home = home
        self.timeout = timeout
        home.mkdir(parents=True, exist_ok=True)
        self.config_file = home / "NuGet.Config"
        self.config_file.write_text(_EMPTY_CONFIG)

    def push(self, nupkg: Path, api_key: str, source: str) -> NuGetResult:
        # 2.8.7 on mono joins an absolute package path to the current folder: give it a relative one.
        return self._run(["push", nupkg.name], api_key, source, nupkg.parent)

    def delete(self, package_id: str, version: str, api_key: str, source: str) -> NuGetResult:
        """``nuget delete ID VERSION KEY``: 2.8.7 sends ``DELETE <source>/ID/VERSION``."""
        return self._run(["delete", package_id, version], api_key, source, self.home)

    def install(
        self, package_id: str, *, source: str, output_dir: Path, prerelease: bool = False
    ) -> NuGetResult:
        """``nuget install ID`` without a version: 2.8.7 asks ``FindPackagesById()`` for the latest."""
        command = ["install", package_id, "-OutputDirectory", str(output_dir), "-NoCache"]
        return self._run(command + (["-Prerelease"] if prerelease else []), None, source, self.home)

    def list(self, search: str, *, source: str, extra: Sequence[str] = ()) -> NuGetResult:
        """``nuget list``: 2.8.7 pages through ``Search()?$orderby=Id`` 30 at a time. Run in a terminal
        200 columns wide: with its output a pipe, 2.8.7 on mono wraps its lines to a console width of 0
        and never ends (printing nothing); escape sequences and carriage returns are taken out."""
        argv = [str(LEGACY_NUGET), "list", search, *extra, "-Source", source, "-NonInteractive"]
        argv += ["-ConfigFile", str(self.config_file)]
        env = {**isolated_env(self.home), "TERM": "xterm"}
        returncode, output = in_terminal(argv, env, self.home, self.timeout, columns=200, linger=5)
        text = re.sub(r"\x1b(?:\[[0-9;?]*[A-Za-z]|[=>])", "", output.decode("utf-8", "replace"))
        result = _past_mono_teardown_abort(NuGetResult(returncode, text.replace("\r", "")))
        print(f"$ [terminal] {shlex.join(argv)}\n[exit {result.returncode}]\n{result.output}")
        return result

    def update_self(self, copy_dir: Path, proxy_url: str) -> NuGetResult:
        """``nuget update -Self`` of a copy of 2.8.7 put in ``copy_dir`` (the one it replaces), through the
        proxy at ``proxy_url``: 2.8.7 asks ``https://www.nuget.org/api/v2/`` ``GetUpdates()`` for
        NuGet.CommandLine, whatever its sources (``support.tlsproxy`` passes that to a nugat server)."""
        copy_dir.mkdir(parents=True, exist_ok=True)
        for part in LEGACY_NUGET_DIR.iterdir():
            shutil.copy2(part, copy_dir / part.name)
        env = {k: v for k, v in isolated_env(self.home).items() if k != "NO_PROXY"}
        env.update(http_proxy=proxy_url, https_proxy=proxy_url)
        argv = [find_mono(), str(copy_dir / "NuGet.exe"), "update", "-Self", "-NonInteractive"]
        try:
            proc = subprocess.run(
                argv, capture_output=True, env=env, cwd=copy_dir, timeout=self.timeout, check=False
            )
            result = NuGetResult(proc.returncode, (proc.stdout + proc.stderr).decode("utf-8", "replace"))
        except subprocess.TimeoutExpired as exc:
            result = NuGetResult(-9, f"[nuget 2.8.7 timed out after {exc.timeout} s]")
        print(f"$ {shlex.join(argv)}\n[exit {result.returncode}]\n{result.output}")
        return result

    def _run(self, command: list[str], api_key: str | None, source: str, cwd: Path) -> NuGetResult:
        key = [api_key] if api_key is not None else []
        argv = [str(LEGACY_NUGET), *command, *key, "-Source", source, "-NonInteractive"]
        argv += ["-ConfigFile", str(self.config_file)]
        started = time.monotonic()
        try:
            proc = subprocess.run(
                argv,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=isolated_env(self.home),
                cwd=cwd,
                timeout=self.timeout,
                check=False,
            )
            result = NuGetResult(proc.returncode, proc.stdout.decode("utf-8", "replace"))
        except subprocess.TimeoutExpired as exc:
            result = NuGetResult(-9, f"[nuget 2.8.7 timed out after {exc.timeout} s]")
        result = _past_mono_teardown_abort(result)
        key_at = len(command) + 1
        shown = [*argv[:key_at], api_key[:22] + "***", *argv[key_at + 1 :]] if api_key is not None else argv
        _report_if_slow(time.monotonic() - started, shlex.join(shown), result)
        print(f"$ {shlex.join(shown)}\n[exit {result.returncode}]\n{result.output}")
        return result


def _report_if_slow(took: float, command: str, result: NuGetResult) -> None:
    if took > SLOW_RUN:
        warnings.warn(SlowNuGetRun(f"took {took:.0f} s: {command}\n{result.output}"), stacklevel=3)


# Debian's mono sometimes aborts in its own thread teardown once nuget (2.8.7, and 4.7.1 too) has finished
# and printed its result ("* Assertion at mono-threads.c:2005, condition `previous_token == NULL || ...'
# not met", then SIGABRT; seen in CI runs, after "Your package was pushed." and "... was deleted
# successfully."). The exit code then says nothing of the
# command: only in that case, and only when the last thing the command printed is its success line, the
# run counts as exit 0. Any other abort, and every refusal, keeps its exit code.
_MONO_TEARDOWN_ABORT = "* Assertion at mono-threads.c:"
_LEGACY_DONE = ("Your package was pushed.", "was deleted successfully.")


def _past_mono_teardown_abort(result: NuGetResult) -> NuGetResult:
    if result.returncode != -signal.SIGABRT or _MONO_TEARDOWN_ABORT not in result.output:
        return result
    printed = result.output.split(_MONO_TEARDOWN_ABORT, 1)[0].rstrip()
    return NuGetResult(0, result.output) if printed.endswith(_LEGACY_DONE) else result
