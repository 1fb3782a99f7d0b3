"""``nugat.feed`` is pure: its modules import only ``nugat.versions``, ``nugat.clock``, each other and
the standard library, and the domain (services, pure modules) never imports the HTTP layer."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import nugat

SRC = Path(nugat.__file__).parent
ALLOWED = {"nugat.versions", "nugat.clock", "nugat.feed"}
HTTP_LAYER = ("nugat.protocol", "nugat.web", "nugat.httpcommon")


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path.name}: relative import"
            assert node.module is not None
            if node.module == "nugat":  # from nugat import versions
                names.update(f"nugat.{alias.name}" for alias in node.names)
            else:
                names.add(node.module)
    return names


def _allowed(name: str) -> bool:
    if name == "__future__" or name.split(".")[0] in sys.stdlib_module_names:
        return True
    return any(name == ok or name.startswith(f"{ok}.") for ok in ALLOWED)


def test_feed_imports_only_versions_clock_and_the_standard_library() -> None:
    modules = sorted((SRC / "feed").glob("*.py"))
    assert modules, "no modules in nugat/feed"
    for path in modules:
        bad = sorted(name for name in _imports(path) if not _allowed(name))
        assert not bad, f"nugat/feed/{path.name} imports {bad}"


def test_services_and_feed_do_not_import_the_http_layer() -> None:
    for path in sorted([*(SRC / "services").glob("*.py"), *(SRC / "feed").glob("*.py")]):
        bad = sorted(n for n in _imports(path) if any(n == h or n.startswith(f"{h}.") for h in HTTP_LAYER))
        assert not bad, f"{path.relative_to(SRC)} imports {bad}"
