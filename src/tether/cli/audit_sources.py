"""Where ``tether audit``, ``tether app history`` and ``tether app drift`` read records from:
one of four sources, the first one given:

1. ``--db PATH``: the controller's SQLite file, opened read-only;
2. ``--url postgresql://…`` (or ``$TETHER_AUDIT_URL``): the PostgreSQL store, read-only;
3. ``--server URL``: the controller's HTTP API, ``GET {URL}/api/v1/audit``, through the
   client every ``--server`` command uses;
4. otherwise the same API reached through the Kubernetes API server's service proxy, so
   nothing but a kubeconfig is needed; when that finds no controller and
   ``--controller-namespace`` was not given, the database a ``tether controller`` run on
   this machine writes by default (``LOCAL_AUDIT_DB``), saying so on stderr.

``source_options`` adds the options that choose one to a command.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from tether.api.names import FORWARDED_AUTH
from tether.audit import DEFAULT_LIMIT, AuditRecord, AuditStore, open_store, parse_since
from tether.audit.open import is_postgres
from tether.cli.common import connect_kube, with_token
from tether.client.http import ApiClient, ApiRefused, ServerOptions
from tether.errors import KubeError, TetherError

if TYPE_CHECKING:
    from tether.cli.common import Ctx

CONTROLLER_NAMESPACE = "tether-system"
LOCAL_AUDIT_DB = Path.home() / ".local" / "share" / "tether" / "audit.db"
"""Where ``tether controller`` writes the audit trail unless given --audit-db."""
CONTROLLER_SERVICE = "tether-controller"
CONTROLLER_PORT = "http"
AUDIT_PATH = "/api/v1/audit"
SERVER_TIMEOUT = 30.0


# ---- where records come from -------------------------------------------------------------


@dataclass(frozen=True)
class AuditQuery:
    """The filters of one request; ``app`` is ``<namespace>/<name>``."""

    app: str | None = None
    since: str | None = None
    kinds: tuple[str, ...] = ()
    limit: int = DEFAULT_LIMIT

    def params(self) -> dict[str, str]:
        """Query parameters for the HTTP API. ``since`` goes as typed, so a duration is counted
        back from the controller's clock, the one that stamped the records."""
        p: dict[str, str] = {"limit": str(self.limit)}
        if self.app:
            p["app"] = self.app
        if self.since:
            p["since"] = self.since
        if self.kinds:
            # One value per key: the Kubernetes client's query is a plain dict.
            p["kind"] = ",".join(self.kinds)
        return p


@dataclass(frozen=True)
class AuditSource:
    """Which source the user chose (see the module docstring for the order)."""

    db: Path | None = None
    server: str | None = None
    url: str | None = None
    """A PostgreSQL store's URL (from --url or $TETHER_AUDIT_URL)."""
    controller_namespace: str | None = None
    """None: not given, so tether-system, and the local database when nothing answers there."""


_OTHER_SOURCES = "--db PATH reads the controller's database file, --server URL its HTTP API"


async def fetch_records(ctx: Ctx, source: AuditSource, q: AuditQuery) -> list[AuditRecord]:
    """The records ``q`` selects from ``source``, newest first. Raises TetherError naming the
    source that failed and how to point at another."""
    if q.since:
        parse_since(q.since, datetime.now(UTC))  # a typo fails here, before any request
    if source.db is not None or source.url:
        return await read_store(source, q)
    if source.server:
        # The global --server's token and TLS options apply to the audit's own --server.
        given = ctx.server or ServerOptions(source.server)
        options = dataclasses.replace(given, url=source.server)
        return await read_server(with_token(ctx, options), q)
    namespace = source.controller_namespace or CONTROLLER_NAMESPACE
    try:
        return await read_through_kube(ctx, namespace, q)
    except TetherError as e:
        # A controller started from the command line has no Service; its records are in the
        # local file it writes by default.
        cause = e.__cause__
        no_controller = isinstance(cause, KubeError) and cause.status in (0, 404, 503)
        if not no_controller or source.controller_namespace is not None:
            raise
        if not LOCAL_AUDIT_DB.is_file():
            raise TetherError(
                e.message,
                hint=f"{e.hint}; a controller run on this machine with its default "
                f"--audit-db writes {LOCAL_AUDIT_DB}, which does not exist",
            ) from e
        click.echo(
            f"note: {e.message}\nnote: reading the local audit database {LOCAL_AUDIT_DB} "
            "instead (the default of a 'tether controller' run on this machine)",
            err=True,
        )
        return await read_store(AuditSource(db=LOCAL_AUDIT_DB), q)


async def open_source(source: AuditSource) -> AuditStore:
    """The store ``--db`` or ``--url`` names, opened read-only."""
    if source.db is not None:
        check_db(source.db)
        return await open_store(source.db, readonly=True)
    assert source.url
    if not is_postgres(source.url):
        raise TetherError(
            "--url must be a postgresql:// URL",
            hint="for the SQLite file use --db PATH",
        )
    return await open_store(source.url, readonly=True)


async def read_store(source: AuditSource, q: AuditQuery) -> list[AuditRecord]:
    store = await open_source(source)
    try:
        return await store.query(app=q.app, since=q.since, kinds=q.kinds or None, limit=q.limit)
    finally:
        await store.close()


def check_db(path: Path) -> None:
    if not path.exists():
        raise TetherError(
            f"audit database {path} does not exist",
            hint="give the path of the controller's audit database, or drop --db to ask the "
            "controller (--server URL, or through the Kubernetes API by default)",
        )
    if not path.is_file():
        raise TetherError(
            f"audit database {path} is not a file",
            hint="give the path of the controller's audit database file",
        )


async def read_server(options: ServerOptions, q: AuditQuery) -> list[AuditRecord]:
    """``GET {url}/api/v1/audit`` through the client every ``--server`` command uses."""
    try:
        async with ApiClient(options, timeout=SERVER_TIMEOUT) as api:
            body = await api.call("GET", AUDIT_PATH, query=q.params())
    except ApiRefused:
        raise  # the server's own message and hint
    except TetherError as e:  # not an http(s) URL, unreachable, no answer
        hint = f"{e.hint}; or {_OTHER_SOURCES}" if e.hint else _OTHER_SOURCES
        raise TetherError(e.message, hint=hint) from e
    return decode_records(body, options.where)


async def read_through_kube(ctx: Ctx, namespace: str, q: AuditQuery) -> list[AuditRecord]:
    where = f"service {namespace}/{CONTROLLER_SERVICE} through the Kubernetes API"
    hint = f"pass --controller-namespace if the controller runs elsewhere; {_OTHER_SOURCES}"
    try:
        kube = await connect_kube(ctx)
    except KubeError as e:
        raise TetherError(
            f"cannot read the audit trail from {where}: {e.message}",
            hint=f"{e.hint}; or {_OTHER_SOURCES}" if e.hint else hint,
        ) from e
    path = (
        f"/api/v1/namespaces/{namespace}/services/{CONTROLLER_SERVICE}:{CONTROLLER_PORT}"
        f"/proxy{AUDIT_PATH}"
    )
    try:
        # The API server consumes Authorization; the controller checks the same token.
        token = await kube.bearer_token()
        body = await kube.request(
            "GET",
            path,
            query=q.params(),
            headers={FORWARDED_AUTH: f"Bearer {token}"} if token else None,
        )
    except KubeError as e:
        why = {
            403: f"your identity needs 'get' on services/proxy in namespace {namespace}; ",
            404: f"no service {CONTROLLER_SERVICE} in namespace {namespace}; ",
            503: "the controller has no ready pod; ",
        }.get(e.status, "")
        raise TetherError(
            f"cannot read the audit trail from {where} at {kube.server}: {e.message}",
            hint=why + hint,
        ) from e
    finally:
        await kube.close()
    return decode_records(body, where)


def decode_records(body: Any, where: str) -> list[AuditRecord]:
    """The API's answer: a list of records (or, leniently, ``{"items": [...]}``)."""
    if isinstance(body, dict) and isinstance(body.get("items"), list):
        body = body["items"]
    if not isinstance(body, list):
        raise TetherError(f"{where} answered with something other than a list of records")
    try:
        return [AuditRecord.from_dict(d) for d in body if isinstance(d, dict)]
    except ValueError as e:
        raise TetherError(f"{where} answered with a malformed record: {e}") from e


def source_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Adds --db, --server and --controller-namespace, passed on as one ``source``."""
    opts = [
        click.option(
            "--db",
            type=click.Path(dir_okay=True, path_type=Path),
            default=None,
            help="Read this SQLite audit database (the controller's file) directly.",
        ),
        click.option(
            "--url",
            envvar="TETHER_AUDIT_URL",
            default=None,
            metavar="URL",
            help="Read the PostgreSQL audit store at URL (postgresql://…; default "
            "$TETHER_AUDIT_URL) directly, read-only.",
        ),
        click.option(
            "--server",
            default=None,
            metavar="URL",
            help="Ask the controller's HTTP API at URL (GET URL/api/v1/audit).",
        ),
        click.option(
            "--controller-namespace",
            default=None,
            help=f"Without --db or --server: namespace of the {CONTROLLER_SERVICE} service, "
            f"reached through the Kubernetes API server's proxy [default: {CONTROLLER_NAMESPACE}"
            f"; if no controller answers there, {LOCAL_AUDIT_DB} when it exists].",
        ),
    ]
    for opt in reversed(opts):
        fn = opt(fn)

    @functools.wraps(fn)
    def wrapper(
        *args: Any,
        db: Path | None,
        url: str | None,
        server: str | None,
        controller_namespace: str | None,
        **kw: Any,
    ) -> Any:
        return fn(*args, source=AuditSource(db, server, url or None, controller_namespace), **kw)

    return wrapper
