"""OpenID Connect tokens of CI jobs, for trusted publishing: the issuers an operator trusts, their signing
keys, what a token must carry, and whether it matches a policy's criteria.

PyJWT does every JWT operation (header and claim parsing, signature, ``exp``/``nbf``/``iat``, ``iss``,
``aud``); this module only chooses what to ask of it. Signing keys come from the issuer's discovery
document (``/.well-known/openid-configuration`` → ``jwks_uri``), cached, and fetched again when a token
names a key id the cache does not hold (the issuer rotated its keys). An issuer that cannot be reached is
``IssuerUnavailable`` (503): a token is never accepted without its signature checked.

PyJWT (and the cryptography it loads) is imported by the functions that check tokens: every ``nugat``
command reads this module's constants, and most never see a token.
"""

from __future__ import annotations

import ipaddress
import json
import re
import threading
import time
import tomllib
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import jwt

GITHUB, GITLAB, GENERIC = "github", "gitlab", "oidc"
KINDS = (GITHUB, GITLAB, GENERIC)
KIND_LABELS = {GITHUB: "GitHub Actions", GITLAB: "GitLab CI/CD", GENERIC: "OpenID Connect"}
ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512")
LEEWAY = 60
"""Seconds of clock difference allowed on ``exp``, ``nbf`` and ``iat``."""
MAX_TOKEN_CHARS = 16_384
# Claims a token must carry, besides exp, iat, iss, aud and jti.
REQUIRED = {
    GITHUB: (
        "repository",
        "repository_owner",
        "repository_owner_id",
        "repository_id",
        "event_name",
        "job_workflow_ref",
    ),
    GITLAB: ("namespace_path", "namespace_id", "project_path", "project_id"),
    GENERIC: ("sub",),
}
REFUSED_EVENTS = frozenset({"pull_request_target", "workflow_run"})
"""GitHub events whose jobs run code or artifacts an outside contributor controls, with the target
repository's identity: a token from them is refused, whatever the policy says."""

FETCH_TIMEOUT = 5.0
FETCH_LIMIT = 1 << 20
KEYS_LIFESPAN = 3600.0
REFRESH_INTERVAL = 5.0
"""An unknown key id makes the cache fetch the issuer's keys again, at most this often (a stream of
forged key ids must not become a stream of requests to the issuer)."""


class InvalidIssuers(ValueError):
    """The operator's issuer configuration is wrong; the message says where."""


class BadToken(Exception):
    """The bearer token is refused (401); the message is the reason the client reads."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class IssuerUnavailable(Exception):
    """The issuer's discovery document or keys could not be fetched (503)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class Issuer:
    kind: str
    url: str

    @property
    def label(self) -> str:
        return f"{KIND_LABELS[self.kind]} ({self.url})"


# ------------------------------------------------------------------------------------------- configuration


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_issuer_url(url: str) -> str:
    """The issuer URL as tokens carry it (no trailing slash); https, or http on a loopback address."""
    url = url.strip().rstrip("/")
    parts = urllib.parse.urlsplit(url)
    if parts.query or parts.fragment or not parts.hostname:
        raise InvalidIssuers(f"issuer URL {url!r}: give https://host[/path], without query or fragment")
    if parts.scheme != "https" and not (parts.scheme == "http" and _is_loopback(parts.hostname)):
        raise InvalidIssuers(f"issuer URL {url!r} must be https (http only on a loopback address)")
    return url


def _issuer(kind: str, url: str) -> Issuer:
    kind = kind.strip().lower()
    if kind not in KINDS:
        raise InvalidIssuers(f"unknown issuer kind {kind!r}: use {', '.join(KINDS)}")
    return Issuer(kind, check_issuer_url(url))


def parse_issuers(spec: str) -> list[Issuer]:
    """``NUGAT_OIDC_ISSUERS``: ``kind=url`` entries separated by commas or spaces."""
    issuers = []
    for entry in re.split(r"[\s,]+", spec.strip()):
        if not entry:
            continue
        kind, sep, url = entry.partition("=")
        if not sep:
            raise InvalidIssuers(f"issuer {entry!r}: write kind=url, such as github={GITHUB_URL}")
        issuers.append(_issuer(kind, url))
    return _unique(issuers)


def load_config(path: Path) -> tuple[list[Issuer], str | None]:
    """``NUGAT_OIDC_CONFIG``: a TOML file of ``audience = "…"`` and ``[[issuers]]`` tables (kind, url)."""
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise InvalidIssuers(f"cannot read {path}: {exc}") from None
    entries = data.get("issuers", [])
    audience = data.get("audience")
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise InvalidIssuers(f"{path}: issuers must be [[issuers]] tables with kind and url")
    if audience is not None and not isinstance(audience, str):
        raise InvalidIssuers(f"{path}: audience must be a string")
    issuers = [_issuer(str(e.get("kind", "")), str(e.get("url", ""))) for e in entries]
    return _unique(issuers), audience


def merge(first: list[Issuer], second: list[Issuer]) -> list[Issuer]:
    return _unique(first + second)


def _unique(issuers: list[Issuer]) -> list[Issuer]:
    seen: dict[str, Issuer] = {}
    for issuer in issuers:
        if issuer.url in seen and seen[issuer.url].kind != issuer.kind:
            raise InvalidIssuers(f"issuer {issuer.url} is configured as two kinds")
        seen[issuer.url] = issuer
    return list(seen.values())


GITHUB_URL = "https://token.actions.githubusercontent.com"


# ------------------------------------------------------------------------------------------- signing keys


def fetch_json(url: str) -> dict[str, Any]:
    """GET a JSON object from an issuer, bounded in time and size; ``IssuerUnavailable`` on any failure."""
    if not url.startswith(("https://", "http://")):
        raise IssuerUnavailable(f"{url} is not an http(s) URL")
    request = urllib.request.Request(  # noqa: S310 (http and https only, checked above)
        url, headers={"Accept": "application/json", "User-Agent": "nugat"}
    )
    try:
        with urllib.request.urlopen(request, timeout=FETCH_TIMEOUT) as response:  # noqa: S310
            body = response.read(FETCH_LIMIT + 1)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise IssuerUnavailable(f"{url} could not be fetched: {exc}") from None
    if len(body) > FETCH_LIMIT:
        raise IssuerUnavailable(f"{url} sent more than {FETCH_LIMIT} bytes")
    try:
        data = json.loads(body)
    except ValueError:
        raise IssuerUnavailable(f"{url} did not send JSON") from None
    if not isinstance(data, dict):
        raise IssuerUnavailable(f"{url} did not send a JSON object")
    return data


@dataclass
class KeyCache:
    """One issuer's signing keys: discovery, then ``jwks_uri``, kept ``lifespan`` seconds."""

    issuer: Issuer
    fetch: Callable[[str], dict[str, Any]] = fetch_json
    lifespan: float = KEYS_LIFESPAN
    refresh_interval: float | None = None  # None: REFRESH_INTERVAL
    clock: Callable[[], float] = time.monotonic
    _keys: dict[str, jwt.PyJWK] = field(default_factory=dict)
    _fetched: float | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def signing_key(self, kid: str | None) -> jwt.PyJWK:
        """The key a token names; fetched again if unknown (rate-limited) or older than ``lifespan``."""
        with self._lock:
            now = self.clock()
            stale = self._fetched is None or now - self._fetched >= self.lifespan
            missing = self._find(kid) is None
            interval = REFRESH_INTERVAL if self.refresh_interval is None else self.refresh_interval
            if stale or (missing and now - (self._fetched or 0.0) >= interval):
                self._keys = self._load()
                self._fetched = now
            key = self._find(kid)
        if key is None:
            raise BadToken(f"The token is signed with a key {self.issuer.url} does not publish (kid {kid!r})")
        return key

    def _find(self, kid: str | None) -> jwt.PyJWK | None:
        if kid is None:  # a token without a key id: the issuer's only key, if it has one
            return next(iter(self._keys.values())) if len(self._keys) == 1 else None
        return self._keys.get(kid)

    def _load(self) -> dict[str, jwt.PyJWK]:
        import jwt

        discovery = self.fetch(f"{self.issuer.url}/.well-known/openid-configuration")
        if str(discovery.get("issuer", "")).rstrip("/") != self.issuer.url:
            raise IssuerUnavailable(f"{self.issuer.url}'s discovery document names another issuer")
        jwks_uri = discovery.get("jwks_uri")
        if not isinstance(jwks_uri, str) or not jwks_uri.startswith(("https://", "http://")):
            raise IssuerUnavailable(f"{self.issuer.url}'s discovery document has no usable jwks_uri")
        try:
            keyset = jwt.PyJWKSet.from_dict(self.fetch(jwks_uri))
        except jwt.PyJWKSetError as exc:
            raise IssuerUnavailable(f"{jwks_uri} has no usable signing key: {exc}") from None
        return {str(k.key_id): k for k in keyset.keys if k.public_key_use in (None, "sig")}


# ------------------------------------------------------------------------------------------- verification


def unverified_issuer(token: str) -> str:
    """The ``iss`` a token claims, to pick the issuer whose keys check it (nothing is trusted yet)."""
    import jwt

    if len(token) > MAX_TOKEN_CHARS:
        raise BadToken(f"The bearer token is longer than {MAX_TOKEN_CHARS} characters")
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.InvalidTokenError:
        raise BadToken("The bearer token is not a JSON web token") from None
    iss = claims.get("iss")
    if not isinstance(iss, str) or not iss:
        raise BadToken("The JSON web token has no iss claim")
    return iss.rstrip("/")


def verify(token: str, keys: KeyCache, audience: str) -> dict[str, Any]:
    """The token's claims once PyJWT has checked its signature, issuer, audience and times."""
    import jwt

    try:
        header = jwt.get_unverified_header(token)
    except jwt.InvalidTokenError:
        raise BadToken("The bearer token is not a JSON web token") from None
    alg = header.get("alg")
    if alg not in ALGORITHMS:
        raise BadToken(f"The token's algorithm {alg!r} is not accepted: use one of {', '.join(ALGORITHMS)}")
    key = keys.signing_key(header.get("kid"))  # PyJWT refuses a kid that is not a string
    if key.algorithm_name != alg:
        raise BadToken(f"The token's algorithm {alg} is not its key's ({key.algorithm_name})")
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key.key,
            algorithms=[alg],
            audience=audience,
            issuer=keys.issuer.url,
            leeway=LEEWAY,
            options={"require": ["exp", "iat", "iss", "aud", "jti"]},
        )
    except jwt.ExpiredSignatureError:
        raise BadToken("The JSON web token has expired") from None
    except jwt.ImmatureSignatureError:
        raise BadToken("The JSON web token is not valid yet") from None
    except jwt.InvalidAudienceError:
        raise BadToken(f"The JSON web token's audience is not {audience}") from None
    except jwt.InvalidIssuerError:
        raise BadToken("The JSON web token's issuer does not match") from None
    except jwt.InvalidSignatureError:
        raise BadToken("The JSON web token's signature is invalid") from None
    except jwt.MissingRequiredClaimError as exc:
        raise BadToken(f"The JSON web token has no {exc.claim} claim") from None
    except jwt.InvalidTokenError as exc:
        raise BadToken(f"The JSON web token is invalid: {exc}") from None
    _check_times(claims)
    return claims


def _check_times(claims: Mapping[str, Any]) -> None:
    aud = claims.get("aud")
    if isinstance(aud, list) and len(aud) != 1:
        raise BadToken("The JSON web token must have exactly one audience")
    iat = claims.get("iat")
    if not isinstance(iat, int | float) or iat > time.time() + LEEWAY:
        raise BadToken("The JSON web token was issued in the future")
    jti = claims.get("jti")
    if not isinstance(jti, str) or not 1 <= len(jti) <= 255:
        raise BadToken("The JSON web token's jti claim must be a string of 1 to 255 characters")


# ------------------------------------------------------------------------------------------- identity


@dataclass(frozen=True)
class Identity:
    """Who a verified token says the CI job is, in the terms policies use."""

    kind: str
    issuer: str
    jti: str
    expires: int
    owner: str = ""  # GitHub repository_owner, GitLab namespace_path
    repository: str = ""  # GitHub owner/repo, GitLab namespace/project
    owner_id: str = ""
    repository_id: str = ""
    workflow: str = ""  # GitHub: the workflow file's path from job_workflow_ref, with its ref
    environment: str = ""
    ref: str = ""
    event: str = ""
    run: str = ""  # GitHub run_id (and attempt), GitLab pipeline and job
    subject: str = ""

    def summary(self) -> dict[str, str]:
        """The facts an audit event records (never the token)."""
        facts = {
            "issuer": self.issuer,
            "repository": self.repository or self.subject,
            "workflow": self.workflow,
            "environment": self.environment,
            "ref": self.ref,
            "event": self.event,
            "run": self.run,
        }
        return {k: v for k, v in facts.items() if v}

    def describe(self) -> str:
        """One line naming the CI run, as the Activity page and ``nugat audit`` show a push's credential."""
        where = self.repository or self.subject
        text = f"trusted publishing: {KIND_LABELS[self.kind]} {where}"
        if self.workflow:
            text += f" {self.workflow.split('@')[0]}"
        if self.run:
            text += f" run {self.run}"
        return text


def _text(claims: Mapping[str, Any], name: str) -> str:
    value = claims.get(name)
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value if isinstance(value, str) else ""


def identity(kind: str, claims: Mapping[str, Any]) -> Identity:
    """The job's identity from verified claims; ``BadToken`` when a required claim is missing or the
    job's event is refused."""
    for name in REQUIRED[kind]:
        if not _text(claims, name):
            raise BadToken(f"The JSON web token has no {name} claim, which {KIND_LABELS[kind]} tokens carry")
    common = {
        "kind": kind,
        "issuer": str(claims["iss"]).rstrip("/"),
        "jti": str(claims["jti"]),
        "expires": int(claims["exp"]),
        "environment": _text(claims, "environment"),
        "ref": _text(claims, "ref"),
        "subject": _text(claims, "sub"),
    }
    if kind == GITHUB:
        event = _text(claims, "event_name")
        if event in REFUSED_EVENTS:
            raise BadToken(
                f"Tokens of {event} workflows are refused: they run with the repository's identity on "
                "behalf of code from outside it"
            )
        repository = _text(claims, "repository")
        run = _text(claims, "run_id")
        attempt = _text(claims, "run_attempt")
        return Identity(
            owner=_text(claims, "repository_owner"),
            repository=repository,
            owner_id=_text(claims, "repository_owner_id"),
            repository_id=_text(claims, "repository_id"),
            workflow=_workflow_path(repository, _text(claims, "job_workflow_ref")),
            event=event,
            run=f"{run} (attempt {attempt})" if run and attempt and attempt != "1" else run,
            **common,  # type: ignore[arg-type]
        )
    if kind == GITLAB:
        pipeline, job = _text(claims, "pipeline_id"), _text(claims, "job_id")
        return Identity(
            owner=_text(claims, "namespace_path"),
            repository=_text(claims, "project_path"),
            owner_id=_text(claims, "namespace_id"),
            repository_id=_text(claims, "project_id"),
            event=_text(claims, "pipeline_source"),
            run=f"pipeline {pipeline} job {job}" if pipeline and job else pipeline or job,
            **common,  # type: ignore[arg-type]
        )
    return Identity(**common)  # type: ignore[arg-type]


def _workflow_path(repository: str, job_workflow_ref: str) -> str:
    """``.github/workflows/release.yml@refs/heads/main`` from ``owner/repo/.github/workflows/…@ref``;
    empty when the workflow lives in another repository (a reusable workflow of someone else's)."""
    prefix = f"{repository}/".lower()
    if not job_workflow_ref.lower().startswith(prefix):
        return ""
    return job_workflow_ref[len(prefix) :]


# ------------------------------------------------------------------------------------------- policies


@dataclass(frozen=True)
class Criteria:
    """What a policy asks of a token. GitHub: owner, repository (name), workflow (file name), environment;
    GitLab: owner (namespace path), repository (project name), ref, environment; OIDC: subject."""

    kind: str
    owner: str = ""
    repository: str = ""
    workflow: str = ""
    environment: str = ""
    ref: str = ""
    subject: str = ""

    def as_json(self) -> dict[str, str]:
        return {k: v for k, v in vars(self).items() if v and k != "kind"}

    @property
    def full_repository(self) -> str:
        return f"{self.owner}/{self.repository}" if self.owner else self.repository


class InvalidCriteria(ValueError):
    """A policy's criteria are incomplete or malformed; the message says which field."""


_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")
_PATH = re.compile(r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$")
_WORKFLOW = re.compile(r"^[A-Za-z0-9_.-]{1,200}\.ya?ml$")
_FREE = re.compile(r"^[^\x00-\x1f\x7f]{1,255}$")


def criteria(kind: str, values: Mapping[str, str]) -> Criteria:
    """Checked criteria from a form or the command line (surrounding spaces and URL prefixes removed)."""
    get = {k: str(v).strip() for k, v in values.items() if v is not None}
    if kind == GITHUB:
        owner, repo = get.get("owner", ""), get.get("repository", "")
        if "/" in repo and not owner:
            owner, repo = repo.split("/", 1)
        workflow = get.get("workflow", "").removeprefix(".github/workflows/")
        _need(owner, _NAME, "repository owner", "a GitHub user or organization name")
        _need(repo, _NAME, "repository", "a repository name")
        _need(workflow, _WORKFLOW, "workflow", "a file name in .github/workflows, such as release.yml")
        env = get.get("environment", "")
        if env:
            _need(env, _FREE, "environment", "an environment name")
        return Criteria(GITHUB, owner=owner, repository=repo, workflow=workflow, environment=env)
    if kind == GITLAB:
        owner = get.get("owner", "").removeprefix("https://gitlab.com/").strip("/")
        repo = get.get("repository", "").strip("/")
        if owner and repo.lower().startswith(owner.lower() + "/"):
            repo = repo[len(owner) + 1 :]
        _need(owner, _PATH, "namespace", "a group or user path, such as contoso or contoso/libs")
        _need(repo, _NAME, "project", "a project name")
        ref, env = get.get("ref", ""), get.get("environment", "")
        if ref:
            _need(ref, _FREE, "ref", "a branch or tag name")
        if env:
            _need(env, _FREE, "environment", "an environment name")
        return Criteria(GITLAB, owner=owner, repository=repo, ref=ref, environment=env)
    if kind == GENERIC:
        subject = get.get("subject", "")
        _need(subject, _FREE, "subject", "the sub claim of the issuer's tokens")
        return Criteria(GENERIC, subject=subject)
    raise InvalidCriteria(f"unknown issuer kind {kind!r}")


def _need(value: str, pattern: re.Pattern[str], field_name: str, what: str) -> None:
    if not pattern.match(value):
        raise InvalidCriteria(f"{field_name}: give {what}")


def binds(kind: str) -> bool:
    """Whether policies of this kind are bound on first use to the ids of the repository and its owner."""
    return kind in (GITHUB, GITLAB)


def mismatch(wanted: Criteria, job: Identity) -> str | None:
    """Why a token does not match a policy's criteria, or None when it does. Names and paths of owners,
    repositories and workflows compare without case, as GitHub and GitLab treat them, and so do GitHub's
    environment names (GitHub's are case-insensitive); a GitLab ref and environment compare exactly: Git
    refs and GitLab's environments are case-sensitive, so a branch ``Main`` anyone may push to is not the
    protected ``main`` a policy names."""
    if wanted.kind != job.kind:
        return "the policy is for another CI system"
    if wanted.kind == GENERIC:
        return None if wanted.subject == job.subject else f"subject {job.subject!r} is not the policy's"
    if job.owner.lower() != wanted.owner.lower() or job.repository.lower() != wanted.full_repository.lower():
        return f"repository {job.repository} is not the policy's {wanted.full_repository}"
    if wanted.kind == GITHUB:
        path = job.workflow.split("@")[0].lower()
        if path != f".github/workflows/{wanted.workflow}".lower():
            shown = job.workflow.split("@")[0] or "a workflow of another repository"
            return f"workflow {shown} is not the policy's .github/workflows/{wanted.workflow}"
    if wanted.ref and job.ref != wanted.ref:
        return f"ref {job.ref or '(none)'} is not the policy's {wanted.ref}"
    environment, expected = job.environment, wanted.environment
    if wanted.kind != GITLAB:
        environment, expected = environment.lower(), expected.lower()
    if wanted.environment and environment != expected:
        return f"environment {job.environment or '(none)'} is not the policy's {wanted.environment}"
    return None


def binding_mismatch(owner_id: str | None, repository_id: str | None, job: Identity) -> str | None:
    """Why a bound policy refuses this job's repository (compared by id, exactly), or None."""
    if owner_id is None or repository_id is None:
        return None
    if job.owner_id != owner_id or job.repository_id != repository_id:
        return (
            f"repository {job.repository} is not the one this policy was first used by (ids "
            f"{owner_id}/{repository_id}, now {job.owner_id}/{job.repository_id}): it was deleted and "
            "made again, or renamed; edit the policy to bind it anew"
        )
    return None
