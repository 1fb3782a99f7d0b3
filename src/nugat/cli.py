"""The ``nugat`` command: run the server and manage users and API keys (also while the server runs)."""

from __future__ import annotations

import argparse
import getpass
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from datetime import timedelta
from pathlib import Path

from nugat.core import Core
from nugat.services import ServiceError
from nugat.services.accounts import KeyView
from nugat.settings import Settings


def _settings(args: argparse.Namespace) -> Settings:
    return Settings().with_overrides(
        data_dir=Path(args.data_dir) if args.data_dir else None,
        host=getattr(args, "host", None),
        port=getattr(args, "port", None),
    )


def _core(args: argparse.Namespace) -> Core:
    core = Core(_settings(args))
    core.db.upgrade()
    return core


def _print_key(view: KeyView, secret: str | None, as_json: bool) -> None:
    data = view.as_json()
    if secret is not None:
        data = {"key": secret, **data}
    if as_json:
        print(json.dumps(data))
        return
    if secret is not None:
        print(f"API key {view.id} ({view.name}): {secret}")
        print("Copy it now: it is stored only as a hash and cannot be shown again.")
    else:
        state = "EXPIRED" if view.expired else f"expires {data['expires']}"
        packages = ", ".join(view.globs + view.packages)
        print(
            f"{view.id}  {view.name!r}  owner={view.owner}  scopes={','.join(view.scopes)}  "
            f"packages={packages}  {state}  last used={data['last_used'] or 'never'}"
        )


def cmd_serve(args: argparse.Namespace) -> int:
    from granian import Granian
    from granian.constants import Interfaces

    settings = _settings(args)
    core = Core(settings)
    core.db.upgrade()
    # With SQLite only this host's processes share the data, and none runs yet: recover everything now.
    older = timedelta(0) if settings.db_url.startswith("sqlite") else timedelta(minutes=15)
    removed, rebuilt = core.packages.recover(older_than=older)
    if removed or rebuilt:
        logging.getLogger("nugat").warning(
            "recovered: %d orphan blobs removed, %d ids rebuilt", removed, rebuilt
        )
    core.close()
    os.environ["NUGAT_DATA_DIR"] = str(settings.data_dir.resolve())
    server = Granian(
        "nugat.asgi:app",
        address=settings.host,
        port=settings.port,
        interface=Interfaces.ASGI,
        workers=args.workers,
        ssl_cert=Path(args.certfile) if args.certfile else None,
        ssl_key=Path(args.keyfile) if args.keyfile else None,
        log_access=False,
    )
    print(
        f"nugat serving http{'s' if args.certfile else ''}://{settings.host}:{settings.port}/v3/index.json",
        flush=True,
    )
    server.serve()
    return 0


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    _core(args).close()
    print("database is up to date")
    return 0


def cmd_rebuild(args: argparse.Namespace) -> int:
    core = _core(args)
    print(f"rebuilt the documents of {core.materializer.rebuild_all()} package ids")
    return 0


def cmd_user_create(args: argparse.Namespace) -> int:
    password = None
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    elif sys.stdin.isatty():
        password = getpass.getpass("Password: ")
    user = _core(args).accounts.create_user(args.name, args.email, password, admin=args.admin)
    print(f"created user {user.name}{' (site admin)' if user.is_admin else ''}")
    return 0


def cmd_user_list(args: argparse.Namespace) -> int:
    users = _core(args).accounts.users()
    if args.json:
        print(json.dumps([{"name": u.name, "email": u.email, "admin": u.is_admin} for u in users]))
    for u in users if not args.json else []:
        print(f"{u.name}  {u.email}{'  admin' if u.is_admin else ''}")
    return 0


def cmd_key_create(args: argparse.Namespace) -> int:
    view, secret = _core(args).accounts.create_key(
        args.user,
        args.name,
        args.scope or [],
        args.glob or [],
        args.package or [],
        args.expires_in_days,
        args.owner,
    )
    _print_key(view, secret, args.json)
    return 0


def cmd_key_list(args: argparse.Namespace) -> int:
    views = _core(args).accounts.list_keys(args.user)
    if args.json:
        print(json.dumps([v.as_json() for v in views]))
    else:
        for view in views:
            _print_key(view, None, False)
    return 0


def cmd_key_regenerate(args: argparse.Namespace) -> int:
    view, secret = _core(args).accounts.regenerate_key(args.user, args.key_id)
    _print_key(view, secret, args.json)
    return 0


def cmd_key_edit(args: argparse.Namespace) -> int:
    view = _core(args).accounts.edit_key(
        args.user,
        args.key_id,
        name=args.name,
        scopes=args.scope,
        globs=[] if args.clear_globs else args.glob,
        packages=[] if args.clear_packages else args.package,
    )
    _print_key(view, None, args.json)
    return 0


def cmd_key_delete(args: argparse.Namespace) -> int:
    _core(args).accounts.delete_key(args.user, args.key_id)
    print(f"deleted API key {args.key_id}")
    return 0


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--data-dir", help="data folder (default $NUGAT_DATA_DIR or ./nugat-data)")
    parser = argparse.ArgumentParser(prog="nugat", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    def add(
        parent: argparse._SubParsersAction[argparse.ArgumentParser],
        name: str,
        func: Callable[..., int],
        help_: str,
    ) -> argparse.ArgumentParser:
        p = parent.add_parser(name, parents=[common], help=help_)
        p.set_defaults(func=func)
        return p

    serve = add(sub, "serve", cmd_serve, "run the server")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--workers", type=int, default=1, help="server processes")
    serve.add_argument("--certfile", help="TLS certificate (PEM)")
    serve.add_argument("--keyfile", help="TLS private key (PEM)")

    db = sub.add_parser("db", help="database").add_subparsers(dest="db_command", required=True)
    add(db, "upgrade", cmd_db_upgrade, "apply migrations")
    add(sub, "rebuild", cmd_rebuild, "regenerate every stored V3 document from the database")

    user = sub.add_parser("user", help="users").add_subparsers(dest="user_command", required=True)
    p = add(user, "create", cmd_user_create, "create a user")
    p.add_argument("name")
    p.add_argument("--email", required=True)
    p.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    p.add_argument("--admin", action="store_true", help="make the user a site admin")
    p = add(user, "list", cmd_user_list, "list users")
    p.add_argument("--json", action="store_true")

    key = sub.add_parser("key", help="API keys").add_subparsers(dest="key_command", required=True)
    p = add(key, "create", cmd_key_create, "create an API key (the secret is printed once)")
    p.add_argument("--user", required=True)
    p.add_argument("--name", required=True)
    p.add_argument(
        "--owner", help="the package owner the key acts for: the user (default) or one of its orgs"
    )
    p.add_argument("--scope", action="append", choices=["push", "push-version", "unlist"], required=True)
    p.add_argument("--glob", action="append", help="package id glob, such as * or Contoso.*")
    p.add_argument("--package", action="append", help="a package id")
    p.add_argument("--expires-in-days", type=int, help="1 to 365 (default 365)")
    p.add_argument("--json", action="store_true")
    p = add(key, "list", cmd_key_list, "list a user's keys (never their secrets)")
    p.add_argument("--user", required=True)
    p.add_argument("--json", action="store_true")
    p = add(key, "regenerate", cmd_key_regenerate, "new secret, same settings")
    p.add_argument("--user", required=True)
    p.add_argument("key_id")
    p.add_argument("--json", action="store_true")
    p = add(key, "edit", cmd_key_edit, "change a key's name, scopes or packages")
    p.add_argument("--user", required=True)
    p.add_argument("key_id")
    p.add_argument("--name")
    p.add_argument("--scope", action="append", choices=["push", "push-version", "unlist"])
    p.add_argument("--glob", action="append")
    p.add_argument("--package", action="append")
    p.add_argument("--clear-globs", action="store_true")
    p.add_argument("--clear-packages", action="store_true")
    p.add_argument("--json", action="store_true")
    p = add(key, "delete", cmd_key_delete, "delete a key")
    p.add_argument("--user", required=True)
    p.add_argument("key_id")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = _parser().parse_args(argv)
    try:
        return int(args.func(args))
    except ServiceError as exc:
        print(f"nugat: {exc.message}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
