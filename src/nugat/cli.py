"""The ``nugat`` command: run the server and manage users and API keys (also while the server runs)."""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import errno
import gc
import getpass
import json
import logging
import logging.config
import multiprocessing
import os
import resource
import shutil
import socket
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy.exc import ArgumentError

from nugat import oidc
from nugat.authz import OPERATOR
from nugat.core import Core
from nugat.keys import Scope, scope_help
from nugat.logs import FORMATS, logging_config
from nugat.proxies import InvalidProxySetting
from nugat.services import ServiceError
from nugat.settings import InvalidSetting, Settings
from nugat.storage import StorageError

if TYPE_CHECKING:
    from nugat.services.accounts import KeyView
    from nugat.services.trusted import PolicySettings, PolicyView


def _settings(args: argparse.Namespace) -> Settings:
    return Settings().with_overrides(
        data_dir=Path(args.data_dir) if args.data_dir else None,
        host=getattr(args, "host", None),
        port=getattr(args, "port", None),
        log_format=getattr(args, "log_format", None),
    )


class StartProblem(Exception):
    """A setting nugat found unusable when it opened the database or the storage: one line, exit 2."""


DATABASE_URLS = "sqlite:////path/to/nugat.db or postgresql://user:password@host/db"
STORAGE_URLS = "file:///path or s3://bucket/prefix?region=…"


def _open(settings: Settings, *, storage: bool = False, data_dir: bool = False) -> Core:
    """A core on these settings; ``storage``: the package storage opened now, for a command that uses it;
    ``data_dir``: the data folder made even when the database and the storage are elsewhere (the server
    receives uploads in it).

    A data folder, database or storage URL nugat cannot use is a ``StartProblem`` naming its setting, not
    a traceback (the database URL is never shown: it may hold a password)."""
    try:
        if data_dir:
            settings.data_dir.mkdir(parents=True, exist_ok=True)
        core = Core(settings)
    except OSError as exc:  # the data folder (the embedded SQLite database's)
        raise StartProblem(
            f"cannot create the data folder {settings.data_dir} (--data-dir, NUGAT_DATA_DIR): "
            f"{exc.strerror or exc}"
        ) from None
    except (ArgumentError, ImportError, ValueError) as exc:
        raise StartProblem(f"NUGAT_DATABASE_URL must be a database URL ({DATABASE_URLS}): {exc}") from None
    if storage:
        _open_storage(core)
    return core


def _open_storage(core: Core) -> None:
    """Open the core's package storage now: one it cannot open is a ``StartProblem``."""
    try:
        _ = core.storage
    except (StorageError, OSError, ValueError) as exc:
        core.close()
        detail = f"{exc.strerror}: {exc.filename}" if isinstance(exc, OSError) and exc.strerror else exc
        where = "NUGAT_STORAGE_URL: " + STORAGE_URLS if core.settings.storage_url else "in the data folder"
        raise StartProblem(f"cannot open the package storage ({where}): {detail}") from None


def _core(args: argparse.Namespace, *, storage: bool = False) -> Core:
    core = _open(_settings(args), storage=storage)
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
        state = {
            "revoked": f"REVOKED {data['revoked']}: {view.revoked_reason}",
            "expired": f"EXPIRED {data['expires']} (regenerate renews it)",
            "expiring": f"EXPIRES SOON {data['expires']} (regenerate renews it)",
        }.get(view.state, f"expires {data['expires']}")
        packages = ", ".join(view.globs + view.packages)
        print(
            f"{view.id}  {view.name!r}  owner={view.owner}  scopes={','.join(view.scopes)}  "
            f"packages={packages}  {state}  last used={data['last_used'] or 'never'}"
        )


def _follow_documents_base(core: Core) -> None:
    """Mark the stored documents stale if they carry another base URL than the settings now give."""
    log = logging.getLogger("nugat")
    try:
        rewritten = core.materializer.follow_base()
    except StorageError as exc:  # /health says so; the next start with the storage back rewrites them
        log.error("could not check the base URL of the stored documents: %s", exc)
        return
    if rewritten:
        log.warning(
            "the documents' base URL changed (NUGAT_PUBLIC_URL, NUGAT_CONTENT_URL): %d ids rewritten while"
            " serving (in the background, and each on its first read)",
            rewritten,
        )


# Slow clients (headers or bodies trickled, idle keep-alives) must not keep others out. granian's
# backpressure counts connections, not requests, and defaults to its backlog (1,024): that many slow
# connections held every new one in the kernel's queue until a 30 s header timeout freed a slot.
BACKPRESSURE = 32_768  # connections a worker accepts at once: bounded by the open-file limit instead
BACKLOG = 4096  # connections the kernel queues before they are accepted (capped by net.core.somaxconn)
HEADER_READ_TIMEOUT_MS = 10_000  # headers not complete in 10 s, or an idle keep-alive for 10 s: closed


def raise_open_file_limit() -> int:
    """Raise this process's open-file limit (soft) to its hard limit, which the workers inherit: each
    connection is a file, and 1,024 (a common default) is less than a few thousand slow clients."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 1 << 20 if hard == resource.RLIM_INFINITY else hard
    if soft != resource.RLIM_INFINITY and soft < wanted:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def port_taken(host: str, port: int) -> str | None:
    """Why ``host:port`` cannot be this server's own, or None when it is free.

    The workers bind with ``SO_REUSEPORT`` (one port for N processes), and the kernel lets any other
    process that did so too (another nugat, a second ``nugat serve`` started by mistake) share a port with
    them, splitting the connections between two servers. So the address is first bound without it, before
    any worker exists: that bind fails whenever anything listens there already."""
    if port == 0:
        return None  # the kernel picks a free one
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except OSError as exc:
        return f"cannot use the address {host}:{port}: {exc}"
    with socket.socket(family, kind, proto) as probe:
        # as the workers do: connections of a server stopped just now (TIME_WAIT) do not hold the port
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return (
                    f"{host}:{port} is already in use by another process (another nugat?): stop it,"
                    " or choose another --port"
                )
            return f"cannot listen on {host}:{port}: {exc.strerror or exc}"
    return None


def cmd_serve(args: argparse.Namespace) -> int:
    from granian import Granian
    from granian.constants import Interfaces, SSLProtocols
    from granian.http import HTTP1Settings

    from nugat import metrics
    from nugat.upload import remove_abandoned

    settings = _settings(args)
    problems = settings.problems()
    if problems:
        for problem in problems:
            print(f"nugat: {problem}", file=sys.stderr)
        return 2
    core = _open(settings, data_dir=True)
    _ = core.proxies  # a wrong NUGAT_TRUSTED_PROXIES stops the start, naming the wrong entry
    try:
        core.trusted  # noqa: B018 (a wrong issuer configuration stops the start, not the first CI job)
    except oidc.InvalidIssuers as exc:
        print(f"nugat: trusted publishing: {exc} (NUGAT_OIDC_ISSUERS, NUGAT_OIDC_CONFIG)", file=sys.stderr)
        return 2
    taken = port_taken(settings.host, settings.port)  # before the database and the storage are touched
    if taken:
        print(f"nugat: {taken}", file=sys.stderr)
        return 2
    _open_storage(core)  # a wrong NUGAT_STORAGE_URL stops the start, before any migration
    core.db.upgrade()
    # Leftovers of a crash (kill -9, power loss) in the middle of pushes, by this or another process.
    uploads = remove_abandoned(settings.tmp_dir)
    removed, rebuilt = core.packages.recover()
    if uploads or removed or rebuilt:
        logging.getLogger("nugat").warning(
            "recovered: %d abandoned uploads and %d orphan blobs removed, %d ids rebuilt",
            uploads,
            removed,
            rebuilt,
        )
    _follow_documents_base(core)
    core.close()
    os.environ["NUGAT_DATA_DIR"] = str(settings.data_dir.resolve())
    os.environ["NUGAT_LOG_FORMAT"] = settings.log_format
    # The workers save their counts here, and /metrics sums them up (see nugat.metrics).
    metrics_dir = metrics.server_dir(settings.tmp_dir)
    os.environ["NUGAT_METRICS_DIR"] = str(metrics_dir)
    raise_open_file_limit()
    server = Granian(
        "nugat.asgi:app",
        address=settings.host,
        port=settings.port,
        interface=Interfaces.ASGI,
        workers=args.workers,
        backlog=BACKLOG,
        backpressure=BACKPRESSURE,
        http1_settings=HTTP1Settings(header_read_timeout=HEADER_READ_TIMEOUT_MS),
        ssl_cert=Path(args.certfile) if args.certfile else None,
        ssl_key=Path(args.keyfile) if args.keyfile else None,
        ssl_protocol_min=SSLProtocols.tls12,  # Visual Studio and nuget.exe on .NET Framework, mono: TLS 1.2
        log_access=False,
        log_dictconfig=logging_config(settings.log_format),
    )
    print(
        f"nugat serving http{'s' if args.certfile else ''}://{settings.host}:{settings.port}/v3/index.json",
        flush=True,
    )
    try:
        server.serve()
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)
        core.storage.settle()  # a clean stop leaves no document to rebuild after a reboot
    return 0


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    _core(args).close()
    print("database is up to date")
    return 0


def _few_collections() -> None:
    """A rebuild allocates millions of short-lived objects and few cycles: the cyclic collector, at its
    default thresholds, spent 7% of its CPU finding none (a process that ends when the rebuild does)."""
    gc.freeze()
    gc.set_threshold(100_000, 50, 100)


def _build_stale(settings: Settings) -> None:
    """One of ``nugat rebuild``'s other processes."""
    _few_collections()
    core = Core(settings)
    try:
        core.materializer.build_stale()
    finally:
        core.close()


def cmd_rebuild(args: argparse.Namespace) -> int:
    _few_collections()
    core = _core(args, storage=True)
    # PostgreSQL: one process a core (batches lock their rows, so processes share the ids). SQLite has
    # one writer at a time, and each batch writes (its search entries): more processes would only wait.
    processes = args.processes or (1 if core.db.url.startswith("sqlite") else os.cpu_count() or 1)
    with concurrent.futures.ProcessPoolExecutor(
        max(processes - 1, 1), mp_context=multiprocessing.get_context("spawn")
    ) as pool:
        for _ in range(processes - 1):  # started now: they import nugat while this one marks the ids stale
            pool.submit(_few_collections)
        others: list[concurrent.futures.Future[None]] = []

        def start_others() -> None:
            others.extend(pool.submit(_build_stale, core.settings) for _ in range(processes - 1))

        count = core.materializer.rebuild_all(alongside=start_others)
        for other in others:
            other.result()
    core.storage.settle()
    print(f"rebuilt the documents of {count} package ids")
    return 0


def cmd_user_create(args: argparse.Namespace) -> int:
    password = None
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    elif args.no_password:
        pass
    elif sys.stdin.isatty():
        password = getpass.getpass("Password: ")
    user = _core(args).accounts.create_user(args.name, args.email, password, admin=args.admin)
    print(f"created user {user.name}{' (site admin)' if user.is_admin else ''}")
    if password is None and not args.no_password:  # a script's user: said, so that it is never a surprise
        print(
            f"nugat: no terminal to ask a password: {user.name} has none, and cannot sign in to the pages "
            f"until one is set (nugat user reset-password {user.name}, or --password-stdin when creating); "
            "API keys made with `nugat key create` work. --no-password says this is meant.",
            file=sys.stderr,
        )
    return 0


def _read_password(args: argparse.Namespace) -> str | None:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\n")
    if sys.stdin.isatty():
        return getpass.getpass("New password: ")
    return None


def cmd_user_confirm(args: argparse.Namespace) -> int:
    user = _core(args).account_mail.set_confirmed(args.name)
    print(f"confirmed the email address of {user.name} ({user.email})")
    return 0


def cmd_user_reset_password(args: argparse.Namespace) -> int:
    password = _read_password(args)
    if not password:
        print("nugat: give the new password (--password-stdin, or type it at the prompt)", file=sys.stderr)
        return 2
    user = _core(args).account_mail.admin_reset(args.name, password)
    print(f"set a new password for {user.name}; every session of it was signed out")
    return 0


def cmd_user_disable_2fa(args: argparse.Namespace) -> int:
    user = _core(args).twofactor.admin_disable(args.name)
    print(f"turned two-factor sign-in off for {user.name}; the password alone signs in now")
    return 0


def cmd_mail_status(args: argparse.Namespace) -> int:
    core = _core(args)
    status = core.outbox.status(args.limit)
    if args.json:
        print(json.dumps({"enabled": core.outbox.enabled, **status.as_json()}))
        return 0
    if not core.outbox.enabled:
        print("mail is off (NUGAT_SMTP_URL is not set): nothing is queued or sent")
    oldest = f", oldest since {status.oldest_queued:%Y-%m-%d %H:%M:%S} UTC" if status.oldest_queued else ""
    print(
        f"queued {status.queued} (retrying {status.retrying}){oldest}; sent {status.sent}; "
        f"refused for good {status.failed}"
    )
    for row in status.as_json()["recent"]:  # type: ignore[attr-defined]
        error = f"  last error: {row['last_error']}" if row["last_error"] else ""
        print(f"{row['id']:>6}  {row['state']:<8}  {row['kind']:<22}  to {row['to']}  "
              f"attempts {row['attempts']}{error}")  # fmt: skip
    return 0


def cmd_user_list(args: argparse.Namespace) -> int:
    users = _core(args).accounts.users(args.search or "")
    if args.json:
        print(
            json.dumps(
                [
                    {
                        "name": u.name,
                        "email": u.email,
                        "admin": u.is_admin,
                        "disabled": u.disabled_at is not None,
                    }
                    for u in users
                ]
            )
        )
    for u in users if not args.json else []:
        print(f"{u.name}  {u.email}{'  admin' if u.is_admin else ''}{'  DISABLED' if u.disabled_at else ''}")
    return 0


def cmd_user_disable(args: argparse.Namespace) -> int:
    account, changed = _core(args).accounts.disable_account(args.name)
    if not changed:  # a no-op, as the CLI's others (exit 0), said as such
        print(f"{account.name} is already disabled")
        return 0
    what = "its keys refused" if account.kind == "org" else "its sessions ended and its API keys revoked"
    print(f"disabled {account.name}: {what}")
    return 0


def cmd_user_enable(args: argparse.Namespace) -> int:
    account, changed = _core(args).accounts.enable_account(args.name)
    if not changed:
        print(f"{account.name} is not disabled")
        return 0
    print(f"enabled {account.name} (API keys revoked when it was disabled stay revoked)")
    return 0


def cmd_user_delete(args: argparse.Namespace) -> int:
    moved = _core(args).accounts.delete_user(
        args.name, transfer_to=args.transfer_to, new_admin=args.new_admin
    )
    print(
        f"deleted user {args.name}" + (f"; {args.transfer_to} now owns {', '.join(moved)}" if moved else "")
    )
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


def cmd_key_revoke(args: argparse.Namespace) -> int:
    core = _core(args)
    with core.db.reading() as s:
        owner = core.accounts.find_account(s, args.owner)
    if owner.kind == "org":
        view = core.orgs.revoke_key(owner.name, args.key_id, by=args.by or OPERATOR)
    else:
        reason = f"revoked by {args.by}" if args.by else "revoked by a site administrator"
        view = core.accounts.revoke_key(args.key_id, reason, owner=owner.name, by=args.by or OPERATOR)
    print(f"revoked API key {view.id} ({view.name!r}) of {view.owner}: {view.revoked_reason}")
    return 0


def cmd_key_delete(args: argparse.Namespace) -> int:
    _core(args).accounts.delete_key(args.user, args.key_id)
    print(f"deleted API key {args.key_id}")
    return 0


def cmd_org_create(args: argparse.Namespace) -> int:
    org = _core(args).orgs.create(args.name, args.admin)
    print(f"created organization {org.name}, administered by {args.admin}")
    return 0


def cmd_org_add_member(args: argparse.Namespace) -> int:
    _core(args).orgs.add_member(args.org, args.user, args.role)
    print(f"added {args.user} to {args.org} as {args.role}")
    return 0


def cmd_org_set_role(args: argparse.Namespace) -> int:
    _core(args).orgs.change_role(args.org, args.user, args.role)
    print(f"{args.user} is now {args.role} of {args.org}")
    return 0


def cmd_org_remove_member(args: argparse.Namespace) -> int:
    _core(args).orgs.remove_member(args.org, args.user)
    print(f"removed {args.user} from {args.org}; its keys for {args.org} no longer work")
    return 0


def cmd_org_private(args: argparse.Namespace) -> int:
    on = args.state == "on"
    _core(args).orgs.set_private(args.org, on)
    now = "private to its members" if on else "readable as the site allows"
    print(f"the packages of {args.org} are now {now}")
    return 0


def cmd_org_list(args: argparse.Namespace) -> int:
    orgs = _core(args).orgs.all()
    if args.json:
        print(json.dumps([asdict(o) for o in orgs]))
    for org in orgs if not args.json else []:
        private = " (private packages)" if org.private else ""
        print(f"{org.name}{private}  " + ", ".join(f"{m.name} ({m.role})" for m in org.members))
    return 0


def cmd_prefix_reserve(args: argparse.Namespace) -> int:
    prefix = _core(args, storage=True).prefixes.reserve(args.prefix, args.owner)
    print(f"reserved {prefix} for {', '.join(args.owner)}")
    return 0


def cmd_prefix_release(args: argparse.Namespace) -> int:
    _core(args, storage=True).prefixes.release(args.prefix, args.owner)
    print(f"released {args.prefix}{f' for {args.owner}' if args.owner else ''}")
    return 0


def cmd_prefix_list(args: argparse.Namespace) -> int:
    prefixes = _core(args).prefixes.all()
    if args.json:
        print(json.dumps([asdict(p) for p in prefixes]))
    for view in prefixes if not args.json else []:
        print(f"{view.prefix}  {', '.join(view.owners)}")
    return 0


def cmd_owner_add(args: argparse.Namespace) -> int:
    _core(args, storage=True).owners.add(args.package, args.owner)
    print(f"{args.owner} now owns {args.package}")
    return 0


def cmd_owner_remove(args: argparse.Namespace) -> int:
    _core(args, storage=True).owners.remove(args.package, args.owner)
    print(f"{args.owner} no longer owns {args.package}")
    return 0


def cmd_owner_list(args: argparse.Namespace) -> int:
    owners = _core(args).owners.of_package(args.package)
    if args.json:
        print(json.dumps([asdict(o) for o in owners]))
    for owner in owners if not args.json else []:
        print(f"{owner.name}  {'organization' if owner.kind == 'org' else 'user'}")
    return 0


def cmd_audit(args: argparse.Namespace) -> int:
    events = _core(args).audit.events(user=args.user, package=args.package, limit=args.limit)
    if args.json:
        print(json.dumps([e.as_json() for e in events]))
    for e in events if not args.json else []:
        data = e.as_json()
        where = f"  {e.package_id} {e.version or ''}".rstrip() if e.package_id else ""
        print(
            f"{data['at']}  {e.action}  by={e.actor or '(command line)'}  account={e.account or '-'}{where}"
            f"  key={e.key_id or '-'}  from={e.address or '-'}  {json.dumps(e.detail) if e.detail else ''}"
        )
    return 0


def _print_policy(view: PolicyView, as_json: bool) -> None:
    if as_json:
        print(json.dumps(view.as_json()))
        return
    state = "bound" if view.bound else ("EXPIRED (unused)" if view.expired else "not used yet")
    criteria = "  ".join(f"{k}={v}" for k, v in view.criteria.as_json().items())
    print(
        f"{view.id}  {view.name!r}  owner={view.owner}  by={view.creator}  {view.kind} {view.issuer}  "
        f"{criteria}  scopes={','.join(view.scopes)}  packages={', '.join(view.globs + view.packages)}  "
        f"keys live {view.key_minutes} min  {state}  live keys={len(view.live_keys)}"
    )


def _policy_settings(args: argparse.Namespace) -> PolicySettings:
    from nugat.services.trusted import PolicySettings

    values = {
        "owner": args.repository_owner or "",
        "repository": args.repository or "",
        "workflow": args.workflow or "",
        "environment": args.environment or "",
        "ref": args.ref or "",
        "subject": args.subject or "",
    }
    policy = PolicySettings(
        criteria=values,
        scopes=args.scope or [],
        globs=args.glob or [],
        packages=args.package or [],
        name=args.name or "",
    )
    return policy if args.key_minutes is None else replace(policy, key_minutes=args.key_minutes)


def cmd_policy_create(args: argparse.Namespace) -> int:
    view = _core(args).trusted.create_policy(
        args.user, args.owner or args.user, args.kind, args.issuer, _policy_settings(args)
    )
    _print_policy(view, args.json)
    return 0


def cmd_policy_edit(args: argparse.Namespace) -> int:
    view = _core(args).trusted.edit_policy(OPERATOR, args.policy_id, _policy_settings(args))
    _print_policy(view, args.json)
    return 0


def cmd_policy_delete(args: argparse.Namespace) -> int:
    _core(args).trusted.delete_policy(OPERATOR, args.policy_id)
    print(f"deleted trusted publishing policy {args.policy_id} and the keys it minted")
    return 0


def cmd_policy_list(args: argparse.Namespace) -> int:
    views = _core(args).trusted.policies(args.user or OPERATOR)
    if args.json:
        print(json.dumps([v.as_json() for v in views]))
    for view in views if not args.json else []:
        _print_policy(view, False)
    return 0


def cmd_package_trusted_only(args: argparse.Namespace) -> int:
    _core(args).trusted.set_trusted_only(OPERATOR, args.package, args.state == "on")
    state = "only keys minted by trusted publishing" if args.state == "on" else "any key allowed"
    print(f"{args.package}: {state}")
    return 0


SCOPES = [scope.value for scope in Scope]  # --scope's choices, for keys and policies


def _policy_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--repository-owner", help="GitHub: the repository's owner; GitLab: the namespace path")
    p.add_argument("--repository", help="GitHub: owner/repo or repo; GitLab: the project (path or name)")
    p.add_argument("--workflow", help="GitHub: the workflow file in .github/workflows, such as release.yml")
    p.add_argument("--environment", help="the CI environment the job must run in (optional)")
    p.add_argument("--ref", help="GitLab: the branch or tag the job must run for (optional)")
    p.add_argument("--subject", help="other OIDC issuers: the sub claim the token must carry")
    p.add_argument("--scope", action="append", choices=SCOPES, required=True, help=scope_help())
    p.add_argument("--glob", action="append", help="package id glob, such as Contoso.*")
    p.add_argument("--package", action="append", help="a package id")
    p.add_argument("--key-minutes", type=int, help="how long minted keys live (1-60, default 15)")
    p.add_argument("--name", help="a name for the policy (default: from the repository and workflow)")
    p.add_argument("--json", action="store_true")


def _positive(text: str) -> int:
    """An argparse type: a whole number above zero."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not a positive number (1 or more)")
    return value


def _port(text: str) -> int:
    """An argparse type: a TCP port (0: the kernel picks a free one)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{value} is not a port (0 to 65535)")
    return value


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
    serve.add_argument("--port", type=_port)
    serve.add_argument("--workers", type=_positive, default=1, help="server processes")
    serve.add_argument("--certfile", help="TLS certificate (PEM)")
    serve.add_argument("--keyfile", help="TLS private key (PEM)")
    serve.add_argument("--log-format", choices=FORMATS, help="text (default) or json: one object per line")

    db = sub.add_parser("db", help="database").add_subparsers(dest="db_command", required=True)
    add(db, "upgrade", cmd_db_upgrade, "apply migrations")
    rebuild = add(sub, "rebuild", cmd_rebuild, "regenerate every stored V3 document from the database")
    rebuild.add_argument(
        "--processes",
        type=int,
        default=0,
        help="processes sharing the work (default: one a core on PostgreSQL, one on SQLite)",
    )

    user = sub.add_parser("user", help="users").add_subparsers(dest="user_command", required=True)
    p = add(user, "create", cmd_user_create, "create a user")
    p.add_argument("name")
    p.add_argument("--email", required=True)
    given = p.add_mutually_exclusive_group()
    given.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    given.add_argument(
        "--no-password",
        action="store_true",
        help="no password: the user cannot sign in to the pages until one is set (user reset-password, or a "
        "mailed reset link); without a terminal and without this flag, the same, with a notice",
    )
    p.add_argument("--admin", action="store_true", help="make the user a site admin")
    p = add(user, "list", cmd_user_list, "list users")
    p.add_argument("--search", help="only users whose name or email contains this")
    p.add_argument("--json", action="store_true")
    p = add(user, "disable", cmd_user_disable, "disable a user (or organization): sessions end, keys revoked")
    p.add_argument("name")
    p = add(user, "enable", cmd_user_enable, "enable a disabled user (or organization) again")
    p.add_argument("name")
    p = add(user, "delete", cmd_user_delete, "delete a user; its packages and the audit log stay")
    p.add_argument("name")
    p.add_argument("--transfer-to", help="the user or organization that then owns packages it alone owns")
    p.add_argument("--new-admin", help="the user that then administers organizations it alone administers")
    p = add(user, "confirm", cmd_user_confirm, "confirm a user's email address (without its mailed link)")
    p.add_argument("name")
    p = add(user, "reset-password", cmd_user_reset_password, "set a user's password; its sessions end")
    p.add_argument("name")
    p.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    p = add(user, "disable-2fa", cmd_user_disable_2fa, "turn a user's two-factor sign-in off (lost phone)")
    p.add_argument("name")

    mail = sub.add_parser("mail", help="outgoing mail").add_subparsers(dest="mail_command", required=True)
    p = add(mail, "status", cmd_mail_status, "show the outbox: queued, retrying, sent, refused")
    p.add_argument("--limit", type=_positive, default=20, help="how many of the newest mails to list")
    p.add_argument("--json", action="store_true")

    key = sub.add_parser("key", help="API keys").add_subparsers(dest="key_command", required=True)
    p = add(key, "create", cmd_key_create, "create an API key (the secret is printed once)")
    p.add_argument("--user", required=True)
    p.add_argument("--name", required=True)
    p.add_argument(
        "--owner", help="the package owner the key acts for: the user (default) or one of its orgs"
    )
    p.add_argument("--scope", action="append", choices=SCOPES, required=True, help=scope_help())
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
    p = add(key, "edit", cmd_key_edit, "change a key's name or packages (never its scopes)")
    p.add_argument("--user", required=True)
    p.add_argument("key_id")
    p.add_argument("--name")
    p.add_argument(
        "--scope",
        action="append",
        choices=SCOPES,
        help=f"only the key's own, which never change: {scope_help()}",
    )
    p.add_argument("--glob", action="append")
    p.add_argument("--package", action="append")
    p.add_argument("--clear-globs", action="store_true")
    p.add_argument("--clear-packages", action="store_true")
    p.add_argument("--json", action="store_true")
    p = add(key, "revoke", cmd_key_revoke, "revoke a key for good (it stays listed as revoked)")
    p.add_argument("--owner", required=True, help="the user or organization the key acts for")
    p.add_argument("--by", help="the administrator revoking it, audited (default: the command line)")
    p.add_argument("key_id")
    p = add(key, "delete", cmd_key_delete, "delete a key")
    p.add_argument("--user", required=True)
    p.add_argument("key_id")

    org = sub.add_parser("org", help="organizations").add_subparsers(dest="org_command", required=True)
    p = add(org, "create", cmd_org_create, "create an organization")
    p.add_argument("name")
    p.add_argument("--admin", required=True, help="its first administrator (a user)")
    roles = ["admin", "collaborator"]
    p = add(org, "add-member", cmd_org_add_member, "add a user to an organization")
    p.add_argument("org")
    p.add_argument("user")
    p.add_argument("--role", choices=roles, required=True)
    p = add(org, "set-role", cmd_org_set_role, "change a member's role")
    p.add_argument("org")
    p.add_argument("user")
    p.add_argument("--role", choices=roles, required=True)
    p = add(org, "remove-member", cmd_org_remove_member, "remove a member (its keys for the org stop)")
    p.add_argument("org")
    p.add_argument("user")
    p = add(org, "private", cmd_org_private, "make an organization's packages private to its members, or not")
    p.add_argument("org")
    p.add_argument("state", choices=["on", "off"])
    p = add(org, "list", cmd_org_list, "list organizations and their members")
    p.add_argument("--json", action="store_true")

    prefix = sub.add_parser("prefix", help="reserved package id prefixes").add_subparsers(
        dest="prefix_command", required=True
    )
    p = add(prefix, "reserve", cmd_prefix_reserve, "reserve an id prefix (Contoso.*) or an exact id")
    p.add_argument("prefix")
    p.add_argument("--owner", action="append", required=True, help="a user or organization (repeatable)")
    p = add(prefix, "release", cmd_prefix_release, "remove a reservation")
    p.add_argument("prefix")
    p.add_argument("--owner", help="only this owner's reservation (default: every owner's)")
    p = add(prefix, "list", cmd_prefix_list, "list reserved prefixes and their owners")
    p.add_argument("--json", action="store_true")

    owner = sub.add_parser("owner", help="package owners").add_subparsers(dest="owner_command", required=True)
    p = add(owner, "add", cmd_owner_add, "make a user or organization a co-owner (no invitation)")
    p.add_argument("package")
    p.add_argument("owner")
    p = add(owner, "remove", cmd_owner_remove, "remove an owner (never the last one)")
    p.add_argument("package")
    p.add_argument("owner")
    p = add(owner, "list", cmd_owner_list, "list a package's owners")
    p.add_argument("package")
    p.add_argument("--json", action="store_true")

    policy = sub.add_parser("policy", help="trusted publishing policies").add_subparsers(
        dest="policy_command", required=True
    )
    p = add(policy, "create", cmd_policy_create, "let a CI workflow mint short-lived keys")
    p.add_argument("--user", required=True, help="the policy's creator: keys are minted in its name")
    p.add_argument(
        "--owner", help="the package owner the keys act for: the user (default) or an org it administers"
    )
    p.add_argument("--kind", choices=oidc.KINDS, default=oidc.GITHUB, help="the CI system (default github)")
    p.add_argument("--issuer", help="the issuer URL (default: the configured one of that kind)")
    _policy_arguments(p)
    p = add(policy, "edit", cmd_policy_edit, "change a policy (its live keys are deleted)")
    p.add_argument("policy_id", type=int)
    _policy_arguments(p)
    p = add(policy, "delete", cmd_policy_delete, "delete a policy and the keys it minted")
    p.add_argument("policy_id", type=int)
    p = add(policy, "list", cmd_policy_list, "list policies")
    p.add_argument("--user", help="only those this user made or administers")
    p.add_argument("--json", action="store_true")

    package = sub.add_parser("package", help="package settings").add_subparsers(
        dest="package_command", required=True
    )
    p = add(package, "trusted-only", cmd_package_trusted_only, "accept only trusted publishing for a package")
    p.add_argument("package")
    p.add_argument("state", choices=["on", "off"])

    p = add(sub, "audit", cmd_audit, "show the audit log, newest first")
    p.add_argument("--user", help="events made by or filed under this user or organization")
    p.add_argument("--package", help="events of this package id")
    p.add_argument("--limit", type=_positive, default=200, help="how many of the newest events (default 200)")
    p.add_argument("--json", action="store_true")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:  # every NUGAT_* value is read, and checked, here: a wrong one stops any command, naming it
        settings = _settings(args)
    except InvalidSetting as exc:
        print(f"nugat: {exc}", file=sys.stderr)
        return 2
    logging.config.dictConfig(logging_config(settings.log_format))
    try:
        return int(args.func(args))
    except ServiceError as exc:
        print(f"nugat: {exc.message}", file=sys.stderr)
        return 1
    except (InvalidProxySetting, StartProblem) as exc:
        print(f"nugat: {exc}", file=sys.stderr)
        return 2
    except StorageError as exc:  # the storage failed while the command used it
        print(f"nugat: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
