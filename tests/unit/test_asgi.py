"""The ASGI entry point the server processes import: what the start made is kept out of the cyclic
collector's passes (``gc.freeze``), so that no request pays for a pass over it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SCRIPT = """
import gc
before = gc.get_freeze_count()
import nugat.asgi
print(before, gc.get_freeze_count(), len(gc.get_objects()))
"""


def test_a_worker_freezes_what_its_start_made(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NUGAT_")} | {
        "NUGAT_DATA_DIR": str(tmp_path)
    }
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=120, check=True
    )
    before, frozen, tracked = (int(n) for n in done.stdout.split())
    assert before == 0
    assert frozen > 10_000  # the modules, tables and templates of the app
    assert tracked < frozen / 10  # what the collector still walks: what came after
