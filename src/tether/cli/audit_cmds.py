"""The audit commands, ``tether audit`` and ``tether app history``, and where they read from.

Records come from one of four sources, the first one given:

1. ``--db PATH``: the controller's SQLite file, opened read-only;
2. ``--url postgresql://…`` (or ``$TETHER_AUDIT_URL``): the PostgreSQL store, read-only;
3. ``--server URL``: the controller's HTTP API, ``GET {URL}/api/v1/audit``;
4. otherwise the same API reached through the Kubernetes API server's service proxy, so
   nothing but a kubeconfig is needed; when that finds no controller and
   ``--controller-namespace`` was not given, the database a ``tether controller`` run on
   this machine writes by default (``LOCAL_AUDIT_DB``), saying so on stderr.

``register`` adds the commands to the ``tether`` group. The names it needs from
``tether.cli.main`` are imported when it runs, not when this module is imported, so main.py
may import this module at any point without a circular import.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from tether.api.names import FORWARDED_AUTH, HISTORY_LIMIT
from tether.audit import (
    DEFAULT_LIMIT,
    KINDS,
    MAX_LIMIT,
    AuditRecord,
    AuditStore,
    open_store,
    parse_since,
)
from tether.audit.open import is_postgres
from tether.cli.audit_export import register_export, register_migrate
from tether.cli.common import connect_kube, with_token
from tether.cli.output import Cell, escape, print_table, styled
from tether.client.http import ApiClient, ApiRefused, ServerOptions
from tether.errors import KubeError, TetherError
from tether.service.history import HISTORY_KINDS, history_from_records, history_from_status

if TYPE_CHECKING:
    from tether.cli.main import Ctx
    from tether.engine import Engine

CONTROLLER_NAMESPACE = "tether-system"
LOCAL_AUDIT_DB = Path.home() / ".local" / "share" / "tether" / "audit.db"
"""Where ``tether controller`` writes the audit trail unless given --audit-db."""
CONTROLLER_SERVICE = "tether-controller"
CONTROLLER_PORT = "http"
AUDIT_PATH = "/api/v1/audit"
CLI_LIMIT = 100
"""Records ``tether audit`` shows by default: a screenful, not the store's 1000."""
SERVER_TIMEOUT = 30.0
OBJECTS_SHOWN = 3


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
        tls = ctx.server  # the global --server's token and TLS options apply
        options = ServerOptions(
            source.server,
            tls.token if tls else None,
            insecure=bool(tls and tls.insecure),
            ca_file=tls.ca_file if tls else None,
        )
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


# ---- what is shown -----------------------------------------------------------------------


def object_text(o: dict[str, Any]) -> str:
    """``Deployment shop/web configured spec.replicas by kubectl-edit``."""
    ns, name = str(o.get("namespace") or ""), str(o.get("name") or "")
    text = f"{o.get('kind') or '?'} {ns}/{name}" if ns else f"{o.get('kind') or '?'} {name}"
    if o.get("action"):
        text += f" {o['action']}"
    fields = [str(f) for f in (o.get("fields") or [])]
    if fields:
        more = f",+{len(fields) - OBJECTS_SHOWN}" if len(fields) > OBJECTS_SHOWN else ""
        text += " " + ",".join(fields[:OBJECTS_SHOWN]) + more
    if o.get("manager"):
        text += f" by {o['manager']}"
    return text


def record_summary(rec: AuditRecord) -> str:
    """The message, then the first objects: what one table row can say."""
    parts = [object_text(o) for o in rec.objects[:OBJECTS_SHOWN]]
    if len(rec.objects) > OBJECTS_SHOWN:
        parts.append(f"+{len(rec.objects) - OBJECTS_SHOWN} more")
    objects = "; ".join(parts)
    if rec.message and objects:
        return f"{rec.message} — {objects}"
    return rec.message or objects


_RESULT_COLOURS = {"Succeeded": "green", "Failed": "red", "Error": "red"}
_KIND_COLOURS = {
    "drift": "yellow",
    "correction": "magenta",
    "prune": "yellow",
    "fighting": "red",
    "health": "cyan",
}


AUDIT_HEADERS = ("TIME", "APP", "KIND", "REVISION", "TRIGGER", "RESULT", "AUTHOR", "MESSAGE")
HISTORY_HEADERS = ("ID", "DEPLOYED AT", "REVISION", "RESULT", "TRIGGER", "AUTHOR", "MESSAGE")
# Times, kinds and revisions are read whole or not at all: only the text columns are cut.
HISTORY_WHOLE = ("TIME", "KIND", "REVISION", "TRIGGER", "RESULT", "ID", "DEPLOYED AT")


def records_rows(records: Sequence[AuditRecord]) -> list[list[Cell]]:
    """The rows of ``tether audit``'s table, under ``AUDIT_HEADERS``."""
    return [
        [
            r.time,
            r.app,
            styled(r.kind, _KIND_COLOURS.get(r.kind)),
            r.revision[:10],
            r.trigger,
            styled(r.result, _RESULT_COLOURS.get(r.result)),
            r.author,
            record_summary(r),
        ]
        for r in records
    ]


def _revision_cell(h: dict[str, Any]) -> str:
    """The first 10 characters of the commit; with several sources, of each source's
    revision (a chart version whole), in spec order."""
    several = h.get("revisions") or []
    if not several:
        return str(h["revision"])[:10]
    return ",".join(r[:10] if len(r) == 40 else r for r in several)


def history_rows(rows: Sequence[dict[str, Any]]) -> list[list[Cell]]:
    """The rows of ``tether app history``'s table, under ``HISTORY_HEADERS``."""
    return [
        [
            "" if h["id"] is None else str(h["id"]),
            h["deployedAt"],
            _revision_cell(h),
            styled(h["result"], _RESULT_COLOURS.get(h["result"])),
            h["trigger"],
            h["author"],
            h["message"],
        ]
        for h in rows
    ]


def qualified_app(name: str, namespace: str) -> str:
    """``web`` → ``<namespace>/web``; ``ns/web`` stays as it is."""
    return name if "/" in name else f"{namespace}/{name}"


# ---- the commands ------------------------------------------------------------------------


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


def audit_command() -> click.Command:
    """``tether audit`` (with ``export`` and ``migrate``), for the root group's table."""
    return _registered()[0].commands["audit"]


def history_command() -> click.Command:
    """``tether app history``, for the ``app`` group's table."""
    return _registered()[1].commands["history"]


@functools.cache
def _registered() -> tuple[click.Group, click.Group]:
    root, app_group = click.Group("tether"), click.Group("app")
    register(root, app_group)
    return root, app_group


def register(cli: click.Group, app_group: click.Group) -> None:
    """Adds ``audit`` to ``cli`` and ``history`` to ``app_group`` (the ``tether app`` group)."""
    from tether.cli.main import EXIT_OK, common, err, out, print_obj, run, with_engine

    @cli.group("audit", invoke_without_command=True)
    @click.option(
        "--app",
        "app_name",
        default=None,
        metavar="NAME",
        help="Only this Application: NAME (in -n's namespace) or NAMESPACE/NAME.",
    )
    @click.option(
        "--since",
        default=None,
        metavar="T",
        help="Only records at or after T: RFC 3339, or a duration back from now (30m, 1h, 2d).",
    )
    @click.option(
        "--kind",
        "kinds",
        multiple=True,
        type=click.Choice(KINDS),
        help="Only records of this kind (repeatable).",
    )
    @click.option(
        "--limit",
        default=CLI_LIMIT,
        show_default=True,
        type=click.IntRange(1, MAX_LIMIT),
        help="At most this many records, the newest.",
    )
    @source_options
    @common
    def audit(
        ctx: Ctx,
        app_name: str | None,
        since: str | None,
        kinds: tuple[str, ...],
        limit: int,
        source: AuditSource,
    ) -> None:
        """Show the audit trail: syncs, drift, corrections, prunes, rollbacks, pins and
        deletions, newest first. 'tether audit export' writes it all as JSON lines."""
        if click.get_current_context().invoked_subcommand:
            return
        q = AuditQuery(
            app=qualified_app(app_name, ctx.namespace) if app_name else None,
            since=since,
            kinds=kinds,
            limit=limit,
        )

        async def go() -> int:
            records = await fetch_records(ctx, source, q)
            if ctx.output in ("json", "yaml"):
                print_obj([r.to_dict() for r in records], ctx.output)
                return EXIT_OK
            if not records:
                err.print("no audit records match")
                return EXIT_OK
            print_table(out, AUDIT_HEADERS, records_rows(records), whole=HISTORY_WHOLE)
            if len(records) >= limit:
                err.print(
                    f"[dim]showing the newest {limit} records; use --limit or --since for "
                    "more[/dim]"
                )
            return EXIT_OK

        run(go())

    register_export(audit)
    register_migrate(audit)

    @app_group.command("history")
    @click.argument("name")
    @click.option(
        "--full",
        is_flag=True,
        help="Fail rather than fall back to the status's last "
        f"{HISTORY_LIMIT} syncs when the audit trail cannot be read.",
    )
    @source_options
    @common
    def app_history(ctx: Ctx, name: str, full: bool, source: AuditSource) -> None:
        """Show an Application's syncs: revision, result, trigger, commit author and message.

        Every sync, from the audit trail (through the controller, or --db/--url/--server);
        IDs are then audit record ids. When the trail cannot be read, the last syncs kept in
        the Application's status, saying so."""
        app_key = qualified_app(name, ctx.namespace)
        chosen = full or source.db is not None or bool(source.server) or bool(source.url)
        from_audit = True

        rows: list[dict[str, Any]] = []

        async def from_status(engine: Engine) -> int:
            a = await engine.get_app(name, ctx.namespace)
            rows.extend(history_from_status(a.obj))
            return EXIT_OK

        async def go() -> int:
            nonlocal from_audit
            q = AuditQuery(app=app_key, kinds=HISTORY_KINDS, limit=MAX_LIMIT)
            try:
                rows.extend(history_from_records(await fetch_records(ctx, source, q)))
            except TetherError as e:
                if chosen:
                    raise
                from_audit = False
                # A table says where its rows come from; -o json/yaml stay machine-clean
                # (the entries' keys say it: status entries have "source").
                if ctx.output not in ("json", "yaml"):
                    err.print(
                        f"[dim]the audit trail cannot be read ({escape(e.message)}); showing "
                        f"the last {HISTORY_LIMIT} syncs kept in the status[/dim]"
                    )
                await with_engine(ctx, from_status)
            if ctx.output in ("json", "yaml"):
                print_obj(rows, ctx.output)
                return EXIT_OK
            if not rows:
                err.print(f"no syncs recorded for {escape(app_key)}")
                return EXIT_OK
            print_table(out, HISTORY_HEADERS, history_rows(rows), whole=HISTORY_WHOLE)
            if from_audit and len(rows) >= MAX_LIMIT:
                err.print(f"[dim]showing the newest {MAX_LIMIT} syncs[/dim]")
            elif not from_audit and len(rows) >= HISTORY_LIMIT:
                err.print(
                    f"[dim]the status keeps the last {HISTORY_LIMIT} syncs; the audit trail "
                    "has every one when the controller is reachable[/dim]"
                )
            return EXIT_OK

        run(go())
