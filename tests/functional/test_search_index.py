"""The search index of one process follows changes made by another process on the same database."""

from __future__ import annotations

from pathlib import Path

from functional.test_feed_http import nupkg
from nugat.core import Core
from nugat.services.search import Query
from nugat.settings import Settings


def test_a_change_through_another_process_is_searchable_at_the_next_query(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    writer, reader = Core(settings), Core(settings)
    writer.db.upgrade()
    writer.accounts.create_user("alice", "alice@example.test", None)
    _, key = writer.accounts.create_key("alice", "k", ["push", "unlist"], ["*"], [], 30)
    grant, _ = writer.accounts.verify_key(key, "127.0.0.1")

    def push(package_id: str, version: str) -> None:
        upload = tmp_path / "upload.nupkg"
        upload.write_bytes(nupkg(package_id, version, description="Reads JSON"))
        writer.packages.push(upload, grant)

    def found(q: str = "json", **flags: bool) -> list[tuple[str, str]]:
        _, hits = reader.search.search(Query(q=q, **flags))
        return [(h.registration.package_id, h.latest.version) for h in hits]

    assert found() == []
    push("Json.Reader", "1.0.0")
    assert found() == [("Json.Reader", "1.0.0")]
    push("Json.Reader", "1.1.0-beta")
    push("Json.Writer", "2.0.0")
    assert found() == [("Json.Reader", "1.0.0"), ("Json.Writer", "2.0.0")]
    assert found(prerelease=True)[0] == ("Json.Reader", "1.1.0-beta")
    writer.packages.set_listed("Json.Writer", "2.0.0", False, grant)
    assert found() == [("Json.Reader", "1.0.0")]
    assert found("json.reader")[0] == ("Json.Reader", "1.0.0")
    writer.packages.set_listed("Json.Writer", "2.0.0", True, grant)
    assert [p for p, _ in found("writer")] == ["Json.Writer"]
    writer.close()
    reader.close()
