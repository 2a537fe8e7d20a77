"""Leader election against the real control plane: one leader, failover, release, no stealing."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from tether.controller.leader import LeaderElector, format_micro_time, parse_micro_time
from tether.kube import KubeClient
from tether.model import Obj

LEASE = "tether-controller"
# Short timings so failover happens in seconds; renew_deadline sits between the two.
FAST: dict[str, float] = {"lease_duration": 3, "renew_deadline": 2, "retry_period": 0.5}
WAIT = 30.0  # bounds every wait; never a performance threshold


async def get_lease(kube: KubeClient, namespace: str) -> Obj:
    lease = await kube.get("coordination.k8s.io/v1", "Lease", LEASE, namespace)
    assert lease is not None, "the Lease does not exist"
    return lease


async def eventually(
    check: Callable[[], Awaitable[bool]], what: str, timeout: float = WAIT
) -> None:
    try:
        async with asyncio.timeout(timeout):
            while True:  # polling the API: there is nothing to wait on locally
                if await check():
                    return
                await asyncio.sleep(0.1)
    except TimeoutError:
        raise AssertionError(f"{what} (waited {timeout:g}s)") from None


async def wait_leading(electors: list[LeaderElector], timeout: float = WAIT) -> LeaderElector:
    """The first of ``electors`` to lead."""
    waits = {asyncio.create_task(e.leading.wait()): e for e in electors}
    try:
        done, _ = await asyncio.wait(waits, timeout=timeout, return_when="FIRST_COMPLETED")
    finally:
        for t in waits:
            t.cancel()
    assert done, f"nobody became leader within {timeout:g}s"
    return waits[next(iter(done))]


async def forever() -> None:
    await asyncio.Event().wait()


class Campaigns:
    """Runs electors as tasks and cancels whatever is still running at the end."""

    def __init__(self) -> None:
        self.tasks: dict[str, asyncio.Task[None]] = {}

    def start(
        self,
        elector: LeaderElector,
        on_started: Callable[[], Awaitable[None]] = forever,
        on_stopped: Callable[[], Awaitable[None]] | None = None,
    ) -> asyncio.Task[None]:
        task = asyncio.create_task(elector.run(on_started, on_stopped))
        self.tasks[elector.identity] = task
        return task

    async def stop(self, elector: LeaderElector) -> None:
        """Cancels one campaign, as SIGTERM would (or a crash, with release_on_stop=False)."""
        task = self.tasks.pop(elector.identity)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@pytest.fixture
async def campaigns() -> AsyncIterator[Campaigns]:
    c = Campaigns()
    yield c
    for task in c.tasks.values():
        task.cancel()
    for task in c.tasks.values():
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def lease_holders(kube: KubeClient, namespace: str, writes: int) -> list[str]:
    """The holder named by each of the next ``writes`` writes to the Lease."""
    rv = (await get_lease(kube, namespace))["metadata"]["resourceVersion"]
    holders: list[str] = []
    async with asyncio.timeout(WAIT):
        async for ev in kube.watch(
            "coordination.k8s.io/v1", "Lease", namespace=namespace, resource_version=rv
        ):
            if ev.object["metadata"]["name"] == LEASE:
                holders.append(str(spec(ev.object).get("holderIdentity")))
                if len(holders) == writes:
                    break
    return holders


def spec(lease: Obj) -> dict[str, Any]:
    out: dict[str, Any] = lease["spec"]
    return out


async def test_one_leader_and_takeover_after_a_crash(
    kube: KubeClient, namespace: str, campaigns: Campaigns
) -> None:
    a, b = (
        LeaderElector(kube, namespace=namespace, identity=i, release_on_stop=False, **FAST)
        for i in ("a", "b")
    )
    campaigns.start(a)
    campaigns.start(b)
    leader = await wait_leading([a, b])
    follower = b if leader is a else a

    # Every write to the Lease over several renewals, seen by a watch (no sampling gaps):
    # the follower, trying every retry period, never once took it.
    assert await lease_holders(kube, namespace, writes=4) == [leader.identity] * 4
    assert not follower.is_leader
    before = spec(await get_lease(kube, namespace))
    assert before["holderIdentity"] == leader.identity
    assert before["leaseDurationSeconds"] == 3

    # A crash: the leader's task dies without touching the Lease.
    await campaigns.stop(leader)
    assert not leader.is_leader
    assert spec(await get_lease(kube, namespace))["holderIdentity"] == leader.identity

    assert await wait_leading([follower]) is follower
    after = spec(await get_lease(kube, namespace))
    assert after["holderIdentity"] == follower.identity
    assert after["leaseTransitions"] == before["leaseTransitions"] + 1
    # The follower waited for the crashed leader's lease to run out before taking it.
    last_renewal = parse_micro_time(before["renewTime"])
    taken = parse_micro_time(after["acquireTime"])
    assert last_renewal is not None and taken is not None
    assert taken >= last_renewal + timedelta(seconds=before["leaseDurationSeconds"])


async def test_graceful_stop_releases_the_lease(
    kube: KubeClient, namespace: str, campaigns: Campaigns
) -> None:
    # A long lease: a takeover well within it can only come from the release.
    slow = {"lease_duration": 60.0, "renew_deadline": 40.0, "retry_period": 0.5}
    a = LeaderElector(kube, namespace=namespace, identity="a", **slow)
    b = LeaderElector(kube, namespace=namespace, identity="b", **slow)
    seen: list[str] = []

    async def work() -> None:
        seen.append("started")
        try:
            await forever()
        finally:
            seen.append("work cancelled")

    async def stopped() -> None:
        seen.append("stopped leading")

    campaigns.start(a, work, stopped)
    assert await wait_leading([a]) is a
    campaigns.start(b)
    before = spec(await get_lease(kube, namespace))

    await campaigns.stop(a)
    assert seen == ["started", "work cancelled", "stopped leading"]
    assert await wait_leading([b]) is b
    after = spec(await get_lease(kube, namespace))
    assert after["holderIdentity"] == "b"
    assert after["leaseTransitions"] == before["leaseTransitions"] + 1
    taken = parse_micro_time(after["acquireTime"])
    renewed = parse_micro_time(before["renewTime"])
    assert taken is not None and renewed is not None
    assert taken < renewed + timedelta(seconds=before["leaseDurationSeconds"])


async def test_a_late_candidate_does_not_steal_a_live_lease(
    kube: KubeClient, kubeconfig: str, namespace: str, campaigns: Campaigns
) -> None:
    a = LeaderElector(kube, namespace=namespace, identity="a", **FAST)
    campaigns.start(a)
    assert await wait_leading([a]) is a
    before = spec(await get_lease(kube, namespace))
    assert before["leaseTransitions"] == 0  # created, not taken over

    # The latecomer has its own client, so its requests can be counted.
    async with await KubeClient.connect(kubeconfig) as c_kube:
        c = LeaderElector(c_kube, namespace=namespace, identity="c", **FAST)
        campaigns.start(c)

        async def tried_often() -> bool:
            return c_kube.requests[("GET", 200)] >= 5

        await eventually(tried_often, "the late candidate never read the Lease")
        assert not c.is_leader
        assert c_kube.write_requests == 0
        assert a.is_leader
        after = spec(await get_lease(kube, namespace))
        assert after["holderIdentity"] == "a"
        assert after["leaseTransitions"] == before["leaseTransitions"]
        assert after["acquireTime"] == before["acquireTime"]
        assert after["renewTime"] > before["renewTime"]  # the leader kept renewing
        await campaigns.stop(c)


def test_timings_must_let_the_leader_stop_before_its_lease_expires(kube: KubeClient) -> None:
    with pytest.raises(ValueError, match="lease_duration"):
        LeaderElector(
            kube, namespace="x", identity="a", lease_duration=5, renew_deadline=5, retry_period=1
        )
    with pytest.raises(ValueError, match="renew_deadline"):
        LeaderElector(
            kube, namespace="x", identity="a", lease_duration=5, renew_deadline=2, retry_period=2
        )


CANDIDATE = """
import asyncio, sys
from tether.controller.leader import LeaderElector
from tether.kube import KubeClient

async def main():
    kubeconfig, namespace, identity = sys.argv[1:4]
    kube = await KubeClient.connect(kubeconfig)
    elector = LeaderElector(kube, namespace=namespace, identity=identity,
                            lease_duration=15, renew_deadline=10, retry_period=2)
    async def lead():
        print("leading", flush=True)
        await asyncio.Event().wait()
    print("campaigning", flush=True)
    await elector.run(lead)

asyncio.run(main())
"""


async def test_another_process_takes_over_within_20s_of_a_sigkill(
    kube: KubeClient, kubeconfig: str, namespace: str, tmp_path: Path
) -> None:
    """The HA requirement: the standby leads within 20 s of the leader being killed."""
    procs: dict[str, asyncio.subprocess.Process] = {}

    async def spawn(identity: str) -> asyncio.subprocess.Process:
        with (tmp_path / f"{identity}.log").open("wb") as log:
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-c",
                CANDIDATE,
                kubeconfig,
                namespace,
                identity,
                stdout=asyncio.subprocess.PIPE,
                stderr=log,
            )
        procs[identity] = proc
        assert proc.stdout is not None
        async with asyncio.timeout(WAIT):
            assert (await proc.stdout.readline()).strip() == b"campaigning", logs()
        return proc

    def logs() -> str:
        return "\n".join(f"{p.name}:\n{p.read_text()}" for p in tmp_path.glob("*.log"))

    async def holder() -> str:
        lease = await kube.get("coordination.k8s.io/v1", "Lease", LEASE, namespace)
        return str(((lease or {}).get("spec") or {}).get("holderIdentity") or "")

    try:
        first = await spawn("proc-a")

        async def a_holds() -> bool:
            return await holder() == "proc-a"

        await eventually(a_holds, "the first process never became leader")
        await spawn("proc-b")
        assert await holder() == "proc-a"

        first.send_signal(signal.SIGKILL)
        await first.wait()
        last = spec(await get_lease(kube, namespace))  # proc-a's last renewal

        async def b_holds() -> bool:
            return await holder() == "proc-b"

        await eventually(b_holds, f"proc-b never took over from the killed proc-a\n{logs()}")
        # A new term, begun once proc-a's lease had run out and not before.
        taken = spec(await get_lease(kube, namespace))
        renewed = parse_micro_time(last["renewTime"])
        acquired = parse_micro_time(taken["acquireTime"])
        assert renewed is not None and acquired is not None
        assert acquired >= renewed + timedelta(seconds=int(last["leaseDurationSeconds"]))
        assert taken["leaseTransitions"] == int(last.get("leaseTransitions") or 0) + 1
    finally:
        for proc in procs.values():
            if proc.returncode is None:
                proc.kill()
            await proc.wait()


async def test_the_leader_steps_down_when_another_holder_appears(
    kube: KubeClient, namespace: str, campaigns: Campaigns
) -> None:
    a = LeaderElector(kube, namespace=namespace, identity="a", **FAST)
    campaigns.start(a)
    assert await wait_leading([a]) is a
    # Someone else writes a live lease over a's (as after a network partition healed).
    lease = await get_lease(kube, namespace)
    now = format_micro_time(datetime.now(UTC))
    await kube.merge_patch(
        lease,
        {"spec": {"holderIdentity": "intruder", "renewTime": now, "leaseDurationSeconds": 60}},
    )

    async def stepped_down() -> bool:
        return not a.is_leader

    await eventually(stepped_down, "the leader kept leading after losing its lease")
    assert spec(await get_lease(kube, namespace))["holderIdentity"] == "intruder"


async def test_the_leader_steps_down_when_it_cannot_renew(
    kube: KubeClient, kubeconfig: str, namespace: str, campaigns: Campaigns, tmp_path: Path
) -> None:
    """A real renewal failure: the elector's own ServiceAccount loses its RBAC grant."""
    meta = {"name": "elector", "namespace": namespace}
    await kube.create({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta})
    await kube.create(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": meta,
            "rules": [
                {
                    "apiGroups": ["coordination.k8s.io"],
                    "resources": ["leases"],
                    "verbs": ["get", "create", "update"],
                }
            ],
        }
    )
    await kube.create(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": meta,
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "elector"},
            "subjects": [{"kind": "ServiceAccount", "name": "elector", "namespace": namespace}],
        }
    )
    token = ""

    async def has_token() -> bool:
        nonlocal token
        secrets, _ = await kube.list("v1", "Secret", namespace)
        for s in secrets:
            if (s["metadata"].get("annotations") or {}).get(
                "kubernetes.io/service-account.name"
            ) == "elector" and (s.get("data") or {}).get("token"):
                token = base64.b64decode(s["data"]["token"]).decode()
        return bool(token)

    await eventually(has_token, "no token Secret for the ServiceAccount")
    admin = yaml.safe_load(Path(kubeconfig).read_text())
    config = tmp_path / "elector.kubeconfig"
    config.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": admin["clusters"][:1],
                "users": [{"name": "elector", "user": {"token": token}}],
                "contexts": [
                    {
                        "name": "elector",
                        "context": {"cluster": admin["clusters"][0]["name"], "user": "elector"},
                    }
                ],
                "current-context": "elector",
            }
        )
    )
    seen: list[str] = []

    async def work() -> None:
        try:
            await forever()
        finally:
            seen.append("work cancelled")

    async def stopped() -> None:
        seen.append("stopped leading")

    async with await KubeClient.connect(str(config)) as own:
        a = LeaderElector(own, namespace=namespace, identity="a", **FAST)
        campaigns.start(a, work, stopped)
        assert await wait_leading([a]) is a

        # Revoke its grant: from now on every renewal is refused with 403.
        await kube.delete("rbac.authorization.k8s.io/v1", "RoleBinding", "elector", namespace)

        async def stepped_down() -> bool:
            return not a.is_leader and len(seen) == 2

        await eventually(stepped_down, "the leader kept leading without renewing")
        assert seen == ["work cancelled", "stopped leading"]
        # Nobody took over: it gave up on its own, having failed to renew.
        assert spec(await get_lease(kube, namespace))["holderIdentity"] == "a"
        assert own.requests[("PUT", 403)] > 0
        await campaigns.stop(a)


async def test_leadership_outlives_a_callback_that_returns(
    kube: KubeClient, namespace: str, campaigns: Campaigns
) -> None:
    """Like client-go: the callback may just start background work and return."""
    a = LeaderElector(kube, namespace=namespace, identity="a", **FAST)
    started: list[str] = []

    async def start_and_return() -> None:
        started.append("a")

    campaigns.start(a, start_and_return)
    assert await wait_leading([a]) is a
    first = spec(await get_lease(kube, namespace))["renewTime"]
    renewed: set[str] = set()

    async def renewed_twice() -> bool:
        renewed.add(spec(await get_lease(kube, namespace))["renewTime"])
        return len(renewed - {first}) >= 2

    await eventually(renewed_twice, "the leader stopped renewing after its callback returned")
    assert a.is_leader and started == ["a"]


async def test_a_failing_callback_gives_the_lease_up(
    kube: KubeClient, namespace: str, campaigns: Campaigns
) -> None:
    # A long lease: getting it back quickly is only possible because it was released.
    slow = {"lease_duration": 60.0, "renew_deadline": 40.0, "retry_period": 0.5}
    a = LeaderElector(kube, namespace=namespace, identity="a", **slow)
    terms: list[str] = []

    async def broken() -> None:
        terms.append("started")
        raise RuntimeError("cannot start")

    async def stopped() -> None:
        terms.append("stopped")

    campaigns.start(a, broken, stopped)

    async def led_twice() -> bool:
        return terms[:3] == ["started", "stopped", "started"]

    await eventually(led_twice, "the elector did not step down and campaign again")
    assert spec(await get_lease(kube, namespace))["leaseTransitions"] >= 1
