"""The test bed's PostgreSQL server: a private cluster (initdb) under ``.dev/postgres``,
listening on 127.0.0.1 on a free port with a password, for the audit store's tests and demo.

``python -m devcluster.postgres up|down|url|status``. ``up`` is idempotent and quick when the
server already runs; the URL (``postgresql://tether:PASSWORD@127.0.0.1:PORT/tether``) is
written to ``.dev/postgres/url`` (to ``/var/tmp/tether-postgres-<checkout hash>/url`` when
the checkout lies where the ``postgres`` user cannot reach, e.g. under ``/root``).
PostgreSQL refuses to run as root: when root, every server
command runs as the ``postgres`` user (``runuser``), and the data directory belongs to it.
The distribution's own service (port 5432) is never used or started.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import stat
import subprocess
import sys
import time
from pathlib import Path

from devcluster.procs import free_port

REPO = Path(__file__).resolve().parent.parent


def _others_can_reach(path: Path) -> bool:
    """True when a user other than the owner (the ``postgres`` user) can traverse every
    directory down to ``path``: a checkout under a mode-0700 directory (``/root``, a
    ``mktemp -d``) is out of its reach."""
    for d in [*reversed(path.parents), path]:
        if d.exists() and not d.stat().st_mode & stat.S_IXOTH:
            return False
    return True


def _default_dir() -> Path:
    local = REPO / ".dev" / "postgres"
    if os.getuid() != 0 or _others_can_reach(REPO / ".dev"):
        return local
    # One directory per checkout, so two checkouts on a machine never share a server.
    digest = hashlib.sha256(str(REPO).encode()).hexdigest()[:12]
    return Path("/var/tmp") / f"tether-postgres-{digest}"


DIR = Path(os.environ.get("TETHER_PG_DIR") or _default_dir())
DATA = DIR / "data"
URL_FILE = DIR / "url"
STATE = DIR / "state.json"
LOG = DIR / "server.log"
DATABASE = "tether"
ROLE = "tether"


class PostgresError(RuntimeError):
    pass


def log(msg: str) -> None:
    print(f"[postgres] {msg}", file=sys.stderr, flush=True)


def bin_dir() -> Path:
    """The newest ``/usr/lib/postgresql/<major>/bin`` (Debian 12 ships 15, Debian 13 17)."""
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    if not found:
        raise PostgresError(
            "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb): run "
            "'make deps' (or apt-get install postgresql as root)"
        )
    return found[-1].parent


def _as_server_user(cmd: list[str]) -> list[str]:
    if os.getuid() != 0:
        return cmd
    return ["runuser", "-u", "postgres", "--", *cmd]


def _run(cmd: list[str], what: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    r = subprocess.run(_as_server_user(cmd), capture_output=True, text=True, check=False)
    if check and r.returncode != 0:
        raise PostgresError(f"{what} failed ({r.returncode}): {(r.stderr or r.stdout).strip()}")
    return r


def _state() -> dict[str, object]:
    try:
        loaded = json.loads(STATE.read_text())
    except (OSError, ValueError):
        return {}
    return loaded if isinstance(loaded, dict) else {}


def running() -> bool:
    if not DATA.is_dir():
        return False
    r = _run([str(bin_dir() / "pg_ctl"), "status", "-D", str(DATA)], "pg_ctl status", check=False)
    return r.returncode == 0


def url() -> str:
    """The server's URL (with its password); PostgresError when it was never started."""
    try:
        return URL_FILE.read_text().strip()
    except OSError:
        raise PostgresError(
            f"no PostgreSQL URL at {URL_FILE}: run 'make cluster' "
            "(or python -m devcluster.postgres up)"
        ) from None


def _init() -> None:
    """initdb a new cluster owned by the server user, with a superuser password."""
    DIR.mkdir(parents=True, exist_ok=True)
    password = secrets.token_urlsafe(18)
    pwfile = DIR / "pwfile"
    pwfile.write_text(password + "\n")
    if os.getuid() == 0:
        shutil.chown(DIR, "postgres", "postgres")
        shutil.chown(pwfile, "postgres", "postgres")
    pwfile.chmod(0o600)
    _run(
        [
            str(bin_dir() / "initdb"),
            "-D",
            str(DATA),
            "-U",
            ROLE,
            # Over TCP a password; on the private socket (which only the server user and
            # root reach) the server user itself, for createdb and tests' admin steps.
            "--auth-host=scram-sha-256",
            "--auth-local=trust",
            f"--pwfile={pwfile}",
            "-E",
            "UTF8",
            "--locale=C",
        ],
        "initdb",
    )
    pwfile.unlink()
    port = free_port()
    STATE.write_text(json.dumps({"port": port}))
    URL_FILE.write_text(f"postgresql://{ROLE}:{password}@127.0.0.1:{port}/{DATABASE}\n")
    URL_FILE.chmod(0o600)


def start() -> None:
    """Starts the server of an initialised cluster (waits until it accepts connections)."""
    port = int(str(_state().get("port")))
    opts = f"-p {port} -h 127.0.0.1 -k {DIR} -c fsync=off -c max_connections=200"
    _run(
        [
            str(bin_dir() / "pg_ctl"),
            "start",
            "-w",
            "-t",
            "60",
            "-D",
            str(DATA),
            "-l",
            str(LOG),
            "-o",
            opts,
        ],
        f"starting PostgreSQL (log: {LOG})",
    )


def stop() -> None:
    """Stops the server (fast shutdown: open sessions are disconnected); keeps the data."""
    if running():
        _run([str(bin_dir() / "pg_ctl"), "stop", "-w", "-m", "fast", "-D", str(DATA)], "stop")


def up() -> str:
    t0 = time.monotonic()
    if running():
        return url()
    fresh = not (DATA / "PG_VERSION").exists()
    if fresh:
        if DIR.exists():
            shutil.rmtree(DIR)
        log(f"initialising a cluster in {DATA} with {bin_dir().parent.name}")
        _init()
    elif os.getuid() == 0:
        shutil.chown(LOG, "postgres", "postgres") if LOG.exists() else None
    start()
    if fresh:
        _run(
            [
                str(bin_dir() / "createdb"),
                "-h",
                str(DIR),
                "-p",
                str(_state()["port"]),
                "-U",
                ROLE,
                DATABASE,
            ],
            "createdb",
        )
    log(f"ready in {time.monotonic() - t0:.1f}s on 127.0.0.1:{_state()['port']} (url: {URL_FILE})")
    return url()


def down() -> None:
    if DATA.is_dir():
        stop()
        log("stopped; data deleted")
    if DIR.exists():
        shutil.rmtree(DIR)


def main(argv: list[str] | None = None) -> int:
    args = argv if argv is not None else sys.argv[1:]
    cmd = args[0] if args else "status"
    try:
        if cmd == "up":
            up()
        elif cmd == "down":
            down()
        elif cmd == "stop":
            stop()
        elif cmd == "start":
            start()
        elif cmd == "url":
            print(url())
        elif cmd == "status":
            print(json.dumps({"running": running(), "dir": str(DIR)}))
        else:
            print(
                "usage: python -m devcluster.postgres up|down|start|stop|url|status",
                file=sys.stderr,
            )
            return 2
    except PostgresError as e:
        log(f"ERROR: {e}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
