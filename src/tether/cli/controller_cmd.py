"""The ``tether controller`` command: its options, checked and turned into the runtime's
options, and the message when it cannot listen on its address."""

from __future__ import annotations

import errno
import os
import re
import sys
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

from tether.cli.audit_sources import LOCAL_AUDIT_DB
from tether.cli.common import EXIT_ERROR, EXIT_OK, Ctx, err, run
from tether.cli.output import escape
from tether.errors import TetherError


def metrics_listener(addr: str) -> dict[str, Any]:
    """``--metrics-addr HOST:PORT`` as RuntimeOptions fields; ValueError when malformed."""
    if not addr:
        return {}
    host, sep, port = addr.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"--metrics-addr {addr!r} must look like HOST:PORT, e.g. 127.0.0.1:9090")
    return {"metrics_host": host.strip("[]") or "0.0.0.0", "metrics_port": int(port)}


@click.command("controller")
@click.option(
    "--kubeconfig",
    default=None,
    help="kubeconfig (default: the one given before 'controller', $KUBECONFIG, "
    "~/.kube/config, or the in-cluster service account when in a Pod).",
)
@click.option("--context", default=None, help="kubeconfig context to use.")
@click.option(
    "--namespaces",
    default=None,
    help="Comma-separated namespaces whose Applications to manage ('' = all) "
    "[default: $POD_NAMESPACE, else tether-system].",
)
@click.option(
    "--http-port",
    type=click.IntRange(0, 65535),
    default=8080,
    show_default=True,
    help="Port for webhooks, /metrics, /healthz and /readyz.",
)
@click.option("--http-host", default="0.0.0.0", show_default=True)
@click.option(
    "--metrics-addr",
    default="",
    metavar="HOST:PORT",
    help="Serve /metrics on this address only, not on --http-port (e.g. 127.0.0.1:9090).",
)
@click.option(
    "--metrics-public",
    is_flag=True,
    help="Serve /metrics on --http-port without a token (by default a scrape needs a token "
    "allowed to get the non-resource URL /metrics).",
)
@click.option(
    "--tls-cert-file",
    default="",
    metavar="PEM",
    help="Serve HTTPS on --http-port with this certificate (chain); needs --tls-key-file.",
)
@click.option("--tls-key-file", default="", metavar="PEM", help="The key of --tls-cert-file.")
@click.option(
    "--session-ttl",
    default="8h",
    show_default=True,
    help="How long a UI session (a login with a token) lasts.",
)
@click.option(
    "--secure-cookies",
    is_flag=True,
    help="Mark the session cookie Secure on plain HTTP too (TLS ends at an ingress).",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=32,
    show_default=True,
    help="Applications reconciled at once.",
)
@click.option(
    "--audit-db",
    default=str(LOCAL_AUDIT_DB),
    show_default=True,
    help="SQLite file of the audit trail (one controller; not used with --audit-url).",
)
@click.option(
    "--audit-url",
    envvar="TETHER_AUDIT_URL",
    default="",
    metavar="URL",
    help="PostgreSQL audit store, postgresql://USER:PASSWORD@HOST:PORT/DB, shared by several "
    "replicas. Also read from $TETHER_AUDIT_URL: give the password that way (from a Secret), "
    "not as an argument.",
)
@click.option(
    "--audit-retention",
    default="",
    metavar="DURATION",
    help="Remove audit records older than this (e.g. 90d, at least 1d): the leader checks "
    "at start and hourly. Default: keep every record.",
)
@click.option(
    "--cache-dir",
    default=str(Path.home() / ".cache/tether/git"),
    show_default=True,
    help="Where git repositories are cached.",
)
@click.option(
    "--refresh-interval",
    default="3m",
    show_default=True,
    help="Default Git polling interval (per app: annotation tether.dev/refresh-interval).",
)
@click.option(
    "--git-timeout",
    default="60s",
    show_default=True,
    help="How long one git command (ls-remote, fetch) may run before it is stopped.",
)
@click.option(
    "--render-timeout",
    default="90s",
    show_default=True,
    help="How long one render tool (kustomize, helm) may run before it is stopped.",
)
@click.option(
    "--render-memory",
    default="2Gi",
    show_default=True,
    help="Most memory one render tool may use (a Kubernetes quantity: 512Mi, 2Gi).",
)
@click.option(
    "--render-output-limit",
    default="256Mi",
    show_default=True,
    help="Most output one render tool may print; more stops it.",
)
@click.option(
    "--max-parallel-renders",
    type=click.IntRange(min=1),
    default=4,
    show_default=True,
    help="Render tools running at once, across all Applications.",
)
@click.option(
    "--allow-remote-sources",
    is_flag=True,
    help="Let remote kustomize bases and Helm dependencies be fetched from the network "
    "(refused by default).",
)
@click.option(
    "--render-cache-size",
    type=click.IntRange(min=0),
    default=8192,
    show_default=True,
    help="Render results kept, keyed by their inputs' content; 0 turns the cache off.",
)
@click.option(
    "--leader-elect",
    is_flag=True,
    help="Run several replicas; one works at a time (a Lease in the first namespace).",
)
@click.option(
    "--identity", default="", help="Leader-election identity (default: $POD_NAME, else host-pid)."
)
@click.option(
    "--self-heal-limit",
    default="5/10m",
    show_default=True,
    help="Stop correcting an object after N corrections within a window.",
)
@click.option(
    "--log-format", type=click.Choice(["text", "json"]), default="text", show_default=True
)
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error", "critical"], case_sensitive=False),
    default="info",
    show_default=True,
)
def controller_cmd(
    kubeconfig: str | None,
    context: str | None,
    namespaces: str | None,
    http_port: int,
    http_host: str,
    metrics_addr: str,
    metrics_public: bool,
    tls_cert_file: str,
    tls_key_file: str,
    session_ttl: str,
    secure_cookies: bool,
    workers: int,
    audit_db: str,
    audit_url: str,
    audit_retention: str,
    cache_dir: str,
    refresh_interval: str,
    git_timeout: str,
    render_timeout: str,
    render_memory: str,
    render_output_limit: str,
    max_parallel_renders: int,
    allow_remote_sources: bool,
    render_cache_size: int,
    leader_elect: bool,
    identity: str,
    self_heal_limit: str,
    log_format: str,
    log_level: str,
) -> None:
    """Run the continuous engine: watch, poll, take webhooks, sync, self-heal, audit."""
    from tether.api.application import parse_duration
    from tether.audit import parse_retention
    from tether.audit.open import is_postgres
    from tether.controller.render_settings import RenderSettings, parse_quantity
    from tether.controller.runtime import RuntimeOptions, run_forever, setup_logging
    from tether.server.auth.settings import AuthSettings

    click_ctx = click.get_current_context()
    group = click_ctx.find_object(Ctx)
    if group is not None:
        # Options given before 'controller' count as if given after it; its own win.
        kubeconfig = kubeconfig or group.kubeconfig
        context = context or group.context
        if group.namespace_given and (
            click_ctx.get_parameter_source("namespaces") == ParameterSource.DEFAULT
        ):
            namespaces = group.namespace
    # In a Pod, its own namespace holds the Applications and the Lease unless told otherwise.
    pod_namespace = os.environ.get("POD_NAMESPACE", "").strip()
    if namespaces is None:
        namespaces = pod_namespace or "tether-system"
    setup_logging(log_format, log_level)
    limit, _, window = self_heal_limit.partition("/")
    if not limit.isdigit():
        err.print("[red]error:[/red] --self-heal-limit must look like 5/10m (corrections/window)")
        sys.exit(EXIT_ERROR)
    try:
        opts = RuntimeOptions(
            kubeconfig=kubeconfig,
            context=context,
            namespaces=[n.strip() for n in namespaces.split(",")] if namespaces else [""],
            http_host=http_host,
            http_port=http_port,
            **metrics_listener(metrics_addr),
            workers=workers,
            audit_db=Path(audit_db),
            audit_url=audit_url.strip(),
            audit_retention=parse_retention(audit_retention) if audit_retention else None,
            cache_dir=Path(cache_dir),
            leader_elect=leader_elect,
            identity=identity or os.environ.get("POD_NAME", ""),
            default_refresh_interval=parse_duration(refresh_interval),
            fight_limit=int(limit),
            fight_window=parse_duration(window or "10m"),
            git_timeout=parse_duration(git_timeout),
            pod_namespace=pod_namespace,
            render=RenderSettings(
                timeout=parse_duration(render_timeout),
                memory_bytes=parse_quantity(render_memory, "--render-memory"),
                output_bytes=parse_quantity(render_output_limit, "--render-output-limit"),
                max_parallel=max_parallel_renders,
                allow_remote=allow_remote_sources,
                cache_size=render_cache_size,
            ),
            auth=AuthSettings(
                session_ttl=parse_duration(session_ttl),
                secure_cookies=secure_cookies,
                metrics_public=metrics_public,
            ),
            tls_cert_file=tls_cert_file,
            tls_key_file=tls_key_file,
        )
        if bool(tls_cert_file) != bool(tls_key_file):
            raise ValueError("--tls-cert-file and --tls-key-file go together: give both")
        if opts.auth.session_ttl <= 0:
            raise ValueError(f"--session-ttl must be more than 0, not {session_ttl!r}")
        if opts.audit_url and not is_postgres(opts.audit_url):
            raise ValueError("--audit-url must be a postgresql:// URL (a SQLite file: --audit-db)")
        if opts.git_timeout <= 0:
            raise ValueError(f"--git-timeout must be more than 0, not {git_timeout!r}")
        opts.render.check()
    except (ValueError, TetherError) as e:
        err.print("[red]error:[/red] " + escape(str(e)))
        sys.exit(EXIT_ERROR)

    async def go() -> int:
        try:
            await run_forever(opts)
        except OSError as e:
            if e.errno not in (errno.EADDRINUSE, errno.EADDRNOTAVAIL, errno.EACCES):
                raise
            # asyncio names the address in the message: --http-port's or --metrics-addr's.
            bound = re.search(r"address \('([^']*)', (\d+)\)", str(e))
            where = f"{bound[1]}:{bound[2]}" if bound else f"{http_host}:{http_port}"
            raise TetherError(
                f"cannot listen on {where}: {os.strerror(e.errno).lower()}",
                hint="another process holds the port, or the address is not this host's: "
                "choose another --http-port / --http-host (or --metrics-addr)",
            ) from e
        return EXIT_OK

    run(go())
