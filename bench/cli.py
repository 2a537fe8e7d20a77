"""Benchmark: the `tether` command's wall time beside the matching `kubectl` read.

One Application of 10 objects (6 ConfigMaps, 2 Services, 2 ServiceAccounts) from the local git
server, synced once with `tether app sync` (no controller runs: the command syncs itself).
Then each pair below runs alternately (the first of a pair swaps every round), RUNS times
(default 7), after one untimed warm-up each (kubectl's discovery cache, tether's Git cache);
the medians and their ratio are printed, target <= 1.5x:

  app list   `tether app list -n NS`         vs `kubectl get applications.tether.dev -n NS`
  app get    `tether app get NAME -n NS`     vs `kubectl get applications.tether.dev NAME
                                                 -n NS -o yaml`
  app diff   `tether app diff NAME -n NS`    vs `kubectl get -f DIR -n DEST`, DIR holding the
             (reads Git, renders, reads the     same 10 manifests as Git: kubectl reads the
             10 live objects; exit 0: synced)   same live objects, without Git; printed beside
                                                it, `kubectl diff --server-side -f DIR -n DEST`
                                                (a server dry-run of each object), no target

`tether --help` and `kubectl --help` are printed too (no target), and the peak RSS of each
command.

Then the same three commands through tether's API, as an Argo CD user's `argocd app ...`
always goes through argocd-server: a `tether controller` is started for the app's namespace
(its HTTP API on a free port), and `tether --server URL --token T app list|get|diff` (no
kubeconfig at all; T is the kubeconfig's bearer token, checked by the API with a
TokenReview) runs alternately with the same kubectl commands, same target. The server
compares the app afresh for each diff (the desired state rendered at the resolved commit,
the live objects read), as the direct command does. `--no-server` skips this part.

Exits 1 when a ratio is past its target.

`--profile DIR` also writes, for each of list, get and diff, the import times
(`-X importtime`, NAME.importtime.txt, and its 25 heaviest entries in NAME.imports.txt) and a
cProfile (NAME.prof, its top entries in NAME.cprofile.txt). `--src DIR` runs tether from
another source tree (e.g. an older commit unpacked with `git archive`), to compare.

    flock /tmp/tether-bench.lock .venv/bin/python bench/cli.py [--runs 7] [--target 1.5]
        [--profile DIR] [--src DIR] [--no-server]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import pstats
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from _common import (
    BIN,
    KUBECTL,
    TETHER,
    Env,
    application,
    bench_env,
    configmap,
    dump_all,
    say,
    wait_for,
)

OBJECTS = 10
PYTHON = BIN / "python"


def tether_argv(src: Path | None, *python_flags: str) -> tuple[list[str], dict[str, str]]:
    """How to start tether: the venv's entry point (from the source tree ``src`` when given:
    PYTHONPATH comes before the installed package); ``python_flags`` (``-X importtime``) run
    it through the interpreter. Bytecode is written and read, as for an installed package
    (``pip install`` compiles it): a $PYTHONDONTWRITEBYTECODE in the environment would make
    every run compile each changed module from source again."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    if src is not None:
        env["PYTHONPATH"] = str(src)
    if python_flags:
        return [str(PYTHON), *python_flags, str(TETHER)], env
    return [str(TETHER)], env


@dataclass
class Command:
    """One command line, its wall times and peak RSS (per run)."""

    label: str
    argv: list[str]
    ok_codes: tuple[int, ...] = (0,)
    env: dict[str, str] | None = None
    seconds: list[float] = field(default_factory=list)
    rss_mib: list[float] = field(default_factory=list)

    def run(self, *, keep: bool = True) -> str:
        """Runs it once; returns its output. Fails on an unexpected exit code."""
        started = time.perf_counter()
        proc = subprocess.Popen(
            self.argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=self.env
        )
        out = proc.stdout.read() if proc.stdout else b""
        _, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.stdout:
            proc.stdout.close()
        text = out.decode(errors="replace")
        if proc.returncode not in self.ok_codes:
            raise SystemExit(f"{' '.join(self.argv)} exited {proc.returncode}:\n{text}")
        if keep:
            self.seconds.append(elapsed)
            self.rss_mib.append(usage.ru_maxrss / 1024)  # KiB on Linux
        return text

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)


@dataclass
class Pair:
    what: str
    tether: Command
    kubectl: Command
    also: list[Command] = field(default_factory=list)
    """Printed beside, with their ratio, but no target."""
    target: float | None = 1.5


def manifests() -> list[dict[str, Any]]:
    objs: list[dict[str, Any]] = [
        configmap(f"cm-{i}", {"key": f"value-{i}", "index": str(i)}) for i in range(6)
    ]
    for i in range(2):
        objs.append(
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": f"svc-{i}", "labels": {"app": f"web-{i}"}},
                "spec": {
                    "selector": {"app": f"web-{i}"},
                    "ports": [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}],
                },
            }
        )
        objs.append({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": f"sa-{i}"}})
    assert len(objs) == OBJECTS
    return objs


@dataclass
class Where:
    """The app the commands look at, and which tether runs."""

    kubeconfig: str
    home: str
    dest: str
    name: str
    files: Path
    src: Path | None

    api: tuple[str, str] | None = None
    """The controller's HTTP API (URL, token): set, ``tether`` runs with ``--server``."""

    def tether(self, label: str, *args: str, flags: Sequence[str] = ()) -> Command:
        prefix, env = tether_argv(self.src, *flags)
        if self.api is None:
            return Command(label, [*prefix, "--kubeconfig", self.kubeconfig, *args], env=env)
        url, token = self.api
        # No kubeconfig at all: a command through the API must not need one.
        env = {**env, "KUBECONFIG": "/nonexistent"}
        return Command(label, [*prefix, "--server", url, "--token", token, *args], env=env)

    def commands(self) -> dict[str, list[str]]:
        """tether's arguments for list, get and diff."""
        return {
            "list": ["app", "list", "-n", self.home],
            "get": ["app", "get", self.name, "-n", self.home],
            "diff": ["app", "diff", self.name, "-n", self.home],
        }


def pairs(w: Where, target: float) -> list[Pair]:
    """Each tether command beside its kubectl yardstick; through the API (``w.api``), the
    three app commands only, named ``... --server``."""
    k = [str(KUBECTL), "--kubeconfig", w.kubeconfig]
    apps = "applications.tether.dev"
    args = w.commands()
    help_prefix, help_env = tether_argv(w.src)
    at = "" if w.api is None else " --server"
    found = [
        Pair(
            f"app list{at}",
            w.tether(f"tether{at} app list", *args["list"]),
            Command("kubectl get applications", [*k, "get", apps, "-n", w.home]),
            target=target,
        ),
        Pair(
            f"app get{at}",
            w.tether(f"tether{at} app get", *args["get"]),
            Command(
                "kubectl get application -o yaml",
                [*k, "get", apps, w.name, "-n", w.home, "-o", "yaml"],
            ),
            target=target,
        ),
        Pair(
            f"app diff{at}",
            w.tether(f"tether{at} app diff", *args["diff"]),
            Command("kubectl get -f DIR", [*k, "get", "-f", str(w.files), "-n", w.dest]),
            also=[
                Command(
                    "kubectl diff --server-side -f DIR",
                    [*k, "diff", "--server-side", "-f", str(w.files), "-n", w.dest],
                    ok_codes=(0, 1),  # 1: a difference (none here, after the sync)
                )
            ],
            target=target,
        ),
    ]
    if w.api is not None:
        return found
    return [
        *found,
        Pair(
            "--help",
            Command("tether --help", [*help_prefix, "--help"], env=help_env),
            Command("kubectl --help", [str(KUBECTL), "--help"]),
            target=None,
        ),
    ]


def profile(w: Where, out: Path) -> None:
    """Import times and a cProfile of list, get and diff, into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    for what, args in w.commands().items():
        w.tether(what, *args).run(keep=False)  # bytecode written, Git cached: as measured
        imports = w.tether(what, *args, flags=["-X", "importtime"])
        lines = [ln for ln in imports.run(keep=False).splitlines() if ln.startswith("import time:")]
        (out / f"{what}.importtime.txt").write_text("\n".join(lines) + "\n")
        heaviest = sorted(lines[1:], key=lambda ln: -int(ln.split("|")[1]))[:25]
        (out / f"{what}.imports.txt").write_text("\n".join([lines[0], *heaviest]) + "\n")
        prof = out / f"{what}.prof"
        w.tether(what, *args, flags=["-m", "cProfile", "-o", str(prof)]).run(keep=False)
        text = io.StringIO()
        pstats.Stats(str(prof), stream=text).sort_stats("cumulative").print_stats(40)
        (out / f"{what}.cprofile.txt").write_text(text.getvalue())
    say(f"profiles written to {out}")


async def setup(env: Env, objects: Sequence[dict[str, Any]]) -> tuple[str, str, str]:
    home = await env.home(f"bcli-{env.run_id}")
    dest = await env.namespace(f"bcli-{env.run_id}-dst")
    repo = env.git.create_repo("cli")
    repo.commit({"app/objects.yaml": dump_all(objects)}, message="cli bench objects")
    name = "cli"
    app = application(name, home, repo_url=repo.http_url, path="app", dest_namespace=dest)
    app["spec"].pop("syncPolicy")  # synced here, once, by the command below
    await env.create_apps([app])
    return home, dest, name


def measure(pairs_: list[Pair], runs: int) -> None:
    for p in pairs_:
        for c in (p.tether, p.kubectl, *p.also):
            c.run(keep=False)  # warm-up: kubectl's discovery cache, tether's Git cache
    for r in range(runs):
        for p in pairs_:
            order = [p.tether, p.kubectl] if r % 2 == 0 else [p.kubectl, p.tether]
            for c in (*order, *p.also):
                c.run()


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def report(pairs_: list[Pair], runs: int, how: str) -> bool:
    ok = True
    print(f"\n{how}: medians of {runs} alternated runs (wall time, peak RSS):")
    for p in pairs_:
        t, k = p.tether, p.kubectl
        ratio = t.median / k.median
        met = p.target is None or ratio <= p.target
        ok = ok and met
        verdict = "" if p.target is None else f" (target <= {p.target}x: "
        verdict += "" if p.target is None else ("met)" if met else "MISSED)")
        print(f"  {p.what}: {ms(t.median)} vs {ms(k.median)}: {ratio:.2f}x{verdict}")
        for c in (t, k, *p.also):
            rss = statistics.median(c.rss_mib)
            spread = f"min {ms(min(c.seconds))}, max {ms(max(c.seconds))}"
            print(f"      {c.label:<36} {ms(c.median):>8} ({spread}), {rss:.0f} MiB")
        for c in p.also:
            print(f"      {t.label} / {c.label}: {t.median / c.median:.2f}x (no target)")
    return ok


async def run(args: argparse.Namespace) -> int:
    async with bench_env("cli") as env:
        dest_objects = manifests()
        home, dest, name = await setup(env, dest_objects)
        files = env.tmp / "rendered"
        files.mkdir()
        (files / "objects.yaml").write_text(dump_all(dest_objects))
        say(f"run {env.run_id}: Application {home}/{name}, {OBJECTS} objects in {dest}")
        w = Where(env.kubeconfig, home, dest, name, files, args.src)
        w.tether("tether app sync", "app", "sync", name, "-n", home).run(keep=False)
        if args.profile:
            profile(w, args.profile)
        direct = pairs(w, args.target)
        say(f"synced; timing each pair {args.runs} times")
        measure(direct, args.runs)
        ok = report(direct, args.runs, "with a kubeconfig, talking to the Kubernetes API")
        if not args.no_server:
            w.api = await serve_api(env, home, name)
            through_api = pairs(w, args.target)
            say(f"controller serving at {w.api[0]}; timing each pair {args.runs} times")
            measure(through_api, args.runs)
            ok = report(through_api, args.runs, "with --server, through the controller's API")
    return 0 if ok else 1


async def serve_api(env: Env, home: str, name: str) -> tuple[str, str]:
    """Starts a controller for ``home`` (its HTTP API on a free port) and waits until it
    serves and has looked at the app; returns the API's URL and the kubeconfig's token
    (the API checks it with a TokenReview, as for any user)."""
    ctl = env.controller([home])
    ctl.start()
    async with aiohttp.ClientSession() as http:
        await ctl.wait_ready(http)
    token = await env.kube.bearer_token()
    if not token:
        raise SystemExit("the kubeconfig has no bearer token: --no-server to skip the API rows")
    await wait_for(
        lambda: env.app_synced(home, name),
        timeout=60,
        interval=0.2,
        what=f"{home}/{name} Synced by the controller",
    )
    return f"http://127.0.0.1:{ctl.port}", token


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--runs", type=int, default=7, help="Timed runs of each command.")
    ap.add_argument("--target", type=float, default=1.5, help="Ratio to kubectl to meet.")
    ap.add_argument("--profile", type=Path, default=None, help="Write profiles into DIR.")
    ap.add_argument("--src", type=Path, default=None, help="Run tether from this source tree.")
    ap.add_argument(
        "--no-server", action="store_true", help="Skip the commands through the API (--server)."
    )
    args = ap.parse_args()
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
