"""What is imported when: a ``nugat`` command only what it uses (it starts in well under the second it took
when it imported every service), the server everything at start (no request waits for an import)."""

from __future__ import annotations

import json
import subprocess
import sys
from functools import cached_property
from pathlib import Path

from nugat.core import Core


def _in_a_new_interpreter(code: str, cwd: Path) -> object:
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, cwd=cwd, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


def test_a_command_imports_neither_the_web_app_nor_jwt_nor_mail_templates_nor_psycopg(tmp_path: Path) -> None:
    heavy = ["jwt", "cryptography", "jinja2", "starlette", "granian", "nugat.web", "nugat.protocol"]
    heavy += ["psycopg", "nugat.services.account_mail", "nugat.services.packages", "nugat.services.search"]
    loaded = _in_a_new_interpreter(
        f"import json, sys, nugat.cli; print(json.dumps([m for m in {heavy!r} if m in sys.modules]))",
        tmp_path,
    )
    assert loaded == []


SERVICES = [name for name, value in vars(Core).items() if isinstance(value, cached_property)]


def test_the_server_imports_every_service_before_its_first_request(tmp_path: Path) -> None:
    """Once ``create_app`` has run, building each service imports no service module, and PyJWT is loaded
    already (storage backends are imported as the settings choose one, as before)."""
    assert len(SERVICES) > 15, SERVICES
    code = f"""
import json, sys
from pathlib import Path
from nugat.app import create_app
from nugat.core import Core
from nugat.settings import Settings
create_app(Settings(data_dir=Path("data")))
core = Core(Settings(data_dir=Path("data")))
core.db.upgrade()
before = set(sys.modules)
for name in {SERVICES!r}:
    getattr(core, name)
late = sorted(m for m in set(sys.modules) - before if m.startswith("nugat.services"))
print(json.dumps({{"late": late, "jwt": "jwt" in before}}))
"""
    assert _in_a_new_interpreter(code, tmp_path) == {"late": [], "jwt": True}
