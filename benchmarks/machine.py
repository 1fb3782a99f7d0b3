"""What a benchmark figure depends on, measured in the same run as the figure.

Machines of one kind differ by about 2x (CPU model and steal, the disk under the data folder, other tenants),
so a push or search figure without these facts cannot be compared with another run. Printed with every table:

* the CPU model and count, from /proc/cpuinfo;
* a fixed CPU-bound calibration: the time of a pure-Python loop and of SHA-256 over 64 MiB (best of five, so a
  busy neighbour shows as a slower best, not as noise); a push figure scales with the first;
* the fsync latency of the data folder (4 KiB write + fsync, median and p90 of 50): each push commits durably,
  so a slow disk bounds pushes/s whatever the CPU;
* the load average before and after.

    .venv/bin/python benchmarks/machine.py [FOLDER]      # the facts alone, as one Markdown line
"""

from __future__ import annotations

import hashlib
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

LOOP = 3_000_000  # iterations of the pure-Python loop
HASHED = 64 << 20  # bytes hashed by the SHA-256 calibration


@dataclass(frozen=True)
class Machine:
    cpu_model: str
    cpus: int
    python_loop_ms: float  # best of 5
    sha256_mib_s: float  # best of 5
    fsync_p50_ms: float
    fsync_p90_ms: float
    load: tuple[float, float, float]

    def line(self) -> str:
        return (
            f"{self.cpus} x {self.cpu_model}; calibration: Python loop {self.python_loop_ms:.0f} ms, "
            f"SHA-256 {self.sha256_mib_s:,.0f} MiB/s; "
            f"fsync of the data folder p50 {self.fsync_p50_ms:.2f} ms, p90 {self.fsync_p90_ms:.2f} ms; "
            f"load average {self.load[0]:.2f}"
        )


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def python_loop_ms() -> float:
    """Best of five runs of a fixed loop of integer arithmetic: the interpreter's speed on this CPU."""
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        total = 0
        for i in range(LOOP):
            total += i * i % 7
        best = min(best, time.perf_counter() - start)
    return best * 1000


def sha256_mib_s() -> float:
    chunk = b"\x5a" * (1 << 20)
    best = float("inf")
    for _ in range(5):
        digest = hashlib.sha256()
        start = time.perf_counter()
        for _ in range(HASHED // len(chunk)):
            digest.update(chunk)
        best = min(best, time.perf_counter() - start)
    return (HASHED / (1 << 20)) / best


def fsync_ms(folder: Path, count: int = 50) -> tuple[float, float]:
    """Median and p90 of writing 4 KiB to a new file in ``folder`` and fsyncing it: a durable write's cost."""
    folder.mkdir(parents=True, exist_ok=True)
    times: list[float] = []
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        for n in range(count):
            path = Path(tmp) / f"f{n}"
            start = time.perf_counter()
            fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
            try:
                os.write(fd, b"\0" * 4096)
                os.fsync(fd)
            finally:
                os.close(fd)
            times.append((time.perf_counter() - start) * 1000)
    times.sort()
    return statistics.median(times), times[int(0.9 * (len(times) - 1))]


def measure(folder: Path) -> Machine:
    p50, p90 = fsync_ms(folder)
    return Machine(
        cpu_model(), os.cpu_count() or 1, python_loop_ms(), sha256_mib_s(), p50, p90, os.getloadavg()
    )


def process_cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of these processes so far (from /proc/PID/stat), for CPU cost per request."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return total / ticks


if __name__ == "__main__":
    print(measure(Path(sys.argv[1] if len(sys.argv) > 1 else tempfile.gettempdir())).line())
