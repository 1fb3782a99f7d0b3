"""Build real .nupkg files with ``mono nuget.exe pack`` from generated nuspecs (cached per session)."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import threading
import time
import zipfile
from collections.abc import Sequence
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

from .nugetexe import find_mono, isolated_env

NUSPEC_NS = "http://schemas.microsoft.com/packaging/2013/05/nuspec.xsd"


class PackError(RuntimeError):
    pass


def make_nuspec(
    package_id: str,
    version: str,
    *,
    dependencies: Sequence[tuple[str, str]] = (),
    description: str | None = None,
    authors: str = "nugat-tests",
    tags: Sequence[str] = (),
    extra_metadata_xml: str = "",
    content_file: str = "content/readme.txt",
) -> str:
    deps = ""
    if dependencies:
        items = "\n".join(
            f"        <dependency id={quoteattr(dep_id)} version={quoteattr(dep_range)} />"
            for dep_id, dep_range in dependencies
        )
        deps = f"    <dependencies>\n      <group>\n{items}\n      </group>\n    </dependencies>\n"
    tag_xml = f"    <tags>{escape(' '.join(tags))}</tags>\n" if tags else ""
    desc = description if description is not None else f"{package_id} {version}, built by the nugat tests."
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        f'<package xmlns="{NUSPEC_NS}">\n'
        "  <metadata>\n"
        f"    <id>{escape(package_id)}</id>\n"
        f"    <version>{escape(version)}</version>\n"
        f"    <authors>{escape(authors)}</authors>\n"
        f"    <description>{escape(desc)}</description>\n"
        f"{tag_xml}{deps}{extra_metadata_xml}"
        "  </metadata>\n"
        "  <files>\n"
        f'    <file src="payload.txt" target={quoteattr(content_file)} />\n'
        "  </files>\n"
        "</package>\n"
    )


def rewrite_nuspec_version(nupkg: Path, dest: Path, version: str) -> Path:
    """Copy ``nupkg`` to ``dest`` with the nuspec's ``<version>`` replaced verbatim.

    ``nuget pack`` normalizes versions (``1.02.3.0`` -> ``1.2.3``, ``1.0`` -> ``1.0.0``); a package whose
    nuspec carries a non-normalized version (what older tools produced) has to be made by hand.
    """
    with zipfile.ZipFile(nupkg) as src, zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as out:
        for info in src.infolist():
            data = src.read(info.filename)
            if "/" not in info.filename and info.filename.lower().endswith(".nuspec"):
                text = data.decode("utf-8-sig")
                text, n = re.subn(
                    r"<version>[^<]*</version>", f"<version>{escape(version)}</version>", text, count=1
                )
                if n != 1:
                    raise PackError(f"no <version> in {info.filename} of {nupkg}")
                data = text.encode("utf-8")
            out.writestr(info, data)
    return dest


def read_nuspec(nupkg: Path) -> str:
    with zipfile.ZipFile(nupkg) as zf:
        for name in zf.namelist():
            if "/" not in name and name.lower().endswith(".nuspec"):
                return zf.read(name).decode("utf-8-sig")
    raise PackError(f"no nuspec in {nupkg}")


class PackageBuilder:
    """Builds packages with the real ``nuget.exe pack``; identical requests are built once per session."""

    def __init__(self, nuget_exe: Path, work_dir: Path, timeout: float = 120.0) -> None:
        self.nuget_exe = nuget_exe.resolve()
        self.work_dir = work_dir
        self.timeout = timeout
        self.home = work_dir / "home"
        self.home.mkdir(parents=True, exist_ok=True)
        self._cache: dict[str, Path] = {}
        self._lock = threading.Lock()
        self.pack_seconds: list[float] = []

    def build(
        self,
        package_id: str,
        version: str,
        dependencies: Sequence[tuple[str, str]] = (),
        *,
        description: str | None = None,
        authors: str = "nugat-tests",
        tags: Sequence[str] = (),
        extra_metadata_xml: str = "",
        nuspec_version: str | None = None,
    ) -> Path:
        """Path to ``{id}.{normalized version}.nupkg`` (or ``{id}.{nuspec_version}.nupkg``).

        ``nuspec_version`` writes that exact string into the packed nuspec afterwards (see
        :func:`rewrite_nuspec_version`); ``nuget pack`` itself always normalizes.
        """
        spec = make_nuspec(
            package_id,
            version,
            dependencies=dependencies,
            description=description,
            authors=authors,
            tags=tags,
            extra_metadata_xml=extra_metadata_xml,
        )
        key = hashlib.sha256(json.dumps([spec, nuspec_version]).encode()).hexdigest()[:16]
        with self._lock:
            cached = self._cache.get(key)
            if cached is not None and cached.exists():
                return cached
            path = self._pack(key, package_id, version, spec)
            if nuspec_version is not None:
                path = rewrite_nuspec_version(
                    path, path.with_name(f"{package_id}.{nuspec_version}.nupkg"), nuspec_version
                )
            self._cache[key] = path
            return path

    def _pack(self, key: str, package_id: str, version: str, spec: str) -> Path:
        src = self.work_dir / f"src-{key}"
        out = self.work_dir / f"out-{key}"
        shutil.rmtree(src, ignore_errors=True)
        shutil.rmtree(out, ignore_errors=True)
        src.mkdir()
        out.mkdir()
        (src / "payload.txt").write_text(f"{package_id} {version}\n")
        nuspec = src / f"{package_id}.nuspec"
        nuspec.write_text(spec)
        argv = [
            find_mono(),
            str(self.nuget_exe),
            "pack",
            str(nuspec),
            "-OutputDirectory",
            str(out),
            "-BasePath",
            str(src),
            "-NonInteractive",
            "-ForceEnglishOutput",
        ]
        start = time.monotonic()
        proc = subprocess.run(
            argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=isolated_env(self.home),
            cwd=src,
            timeout=self.timeout,
            check=False,
        )
        self.pack_seconds.append(time.monotonic() - start)
        text = proc.stdout.decode("utf-8", "replace")
        built = sorted(out.glob("*.nupkg"))
        if proc.returncode != 0 or len(built) != 1:
            raise PackError(f"nuget pack failed (exit {proc.returncode}):\n{text}\nnuspec:\n{spec}")
        return built[0]
