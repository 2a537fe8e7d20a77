"""Node simulator: stands in for kubelet and scheduler so workloads reach their real states.

Registers Node objects, binds Pending pods to them, and reports pod status the way a
kubelet would. A pod's fate is chosen by the annotation ``sim.tether.dev/behavior`` (on the
pod, i.e. the pod template) or, failing that, by a word in a container image name:

    (default)      Running and Ready; restartPolicy Never/OnFailure pods end Succeeded
    never-ready    Running, containers running but never Ready (Progressing for ever)
    crashloop      Running, a container waiting in CrashLoopBackOff (Degraded)
    bad-image      Pending, a container waiting in ImagePullBackOff (Degraded)
    fail           run-to-completion pods end Failed (exit code 1); others crash-loop

Terminating pods are deleted at once (there is no kubelet to finish them), so scale-down,
rollouts and namespace deletion complete.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import logging
import ssl
import sys
import tempfile
from datetime import UTC, datetime
from typing import Any

import aiohttp
import yaml

BEHAVIOR_ANNOTATION = "sim.tether.dev/behavior"
BEHAVIORS = ("never-ready", "crashloop", "bad-image", "fail")
log = logging.getLogger("nodesim")


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def behavior_of(pod: dict[str, Any]) -> str:
    ann = (pod.get("metadata") or {}).get("annotations") or {}
    if ann.get(BEHAVIOR_ANNOTATION) in BEHAVIORS:
        return str(ann[BEHAVIOR_ANNOTATION])
    for c in (pod.get("spec") or {}).get("containers") or []:
        image = str(c.get("image", ""))
        for b in BEHAVIORS:
            if b in image:
                return b
    return "ok"


def pod_status(pod: dict[str, Any], node: str, pod_ip: str) -> dict[str, Any]:
    """The status a kubelet would report for this pod under its simulated behavior."""
    spec = pod.get("spec") or {}
    containers = spec.get("containers") or []
    behavior = behavior_of(pod)
    to_completion = spec.get("restartPolicy", "Always") in ("Never", "OnFailure")
    t = now()

    def cstatus(
        c: dict[str, Any], state: dict[str, Any], ready: bool, restarts: int = 0
    ) -> dict[str, Any]:
        return {
            "name": c["name"],
            "image": c.get("image", ""),
            "imageID": "",
            "ready": ready,
            "restartCount": restarts,
            "started": ready,
            "state": state,
        }

    running = {"running": {"startedAt": t}}
    phase = "Running"
    ready = True
    if behavior == "never-ready":
        statuses = [cstatus(c, running, False) for c in containers]
        ready = False
    elif behavior == "crashloop" or (behavior == "fail" and not to_completion):
        waiting = {
            "waiting": {
                "reason": "CrashLoopBackOff",
                "message": "back-off 5m0s restarting failed container",
            }
        }
        statuses = [cstatus(c, waiting, False, restarts=5) for c in containers]
        ready = False
    elif behavior == "bad-image":
        waiting = {
            "waiting": {
                "reason": "ImagePullBackOff",
                "message": f'Back-off pulling image "{containers[0].get("image", "")}"'
                if containers
                else "Back-off pulling image",
            }
        }
        statuses = [cstatus(c, waiting, False) for c in containers]
        phase, ready = "Pending", False
    elif to_completion:
        code = 1 if behavior == "fail" else 0
        term = {
            "terminated": {
                "exitCode": code,
                "reason": "Error" if code else "Completed",
                "startedAt": t,
                "finishedAt": t,
            }
        }
        statuses = [cstatus(c, term, False) for c in containers]
        phase, ready = ("Failed" if code else "Succeeded"), False
    else:
        statuses = [cstatus(c, running, True) for c in containers]

    def cond(type_: str, ok: bool) -> dict[str, Any]:
        return {
            "type": type_,
            "status": "True" if ok else "False",
            "lastProbeTime": None,
            "lastTransitionTime": t,
        }

    return {
        "phase": phase,
        "hostIP": "10.0.0.1",
        "podIP": pod_ip,
        "podIPs": [{"ip": pod_ip}],
        "startTime": t,
        "qosClass": "BestEffort",
        "conditions": [
            cond("PodScheduled", True),
            cond("Initialized", True),
            cond("ContainersReady", ready),
            cond("Ready", ready),
        ],
        "containerStatuses": statuses,
    }


class Simulator:
    def __init__(self, server: str, token: str, ca_file: str, nodes: int) -> None:
        self.server = server
        self.headers = {"Authorization": f"Bearer {token}"}
        self.ssl = ssl.create_default_context(cafile=ca_file)
        self.node_names = [f"sim-node-{i}" for i in range(nodes)]
        self.next_node = 0
        self.ip_counter = 0
        self.session: aiohttp.ClientSession | None = None
        self.handled: dict[str, str] = {}  # pod uid -> what we already did
        self.tasks: set[asyncio.Task[None]] = set()

    async def request(
        self, method: str, path: str, body: Any = None, content_type: str = "application/json"
    ) -> tuple[int, Any]:
        assert self.session is not None
        data = json.dumps(body) if body is not None else None
        headers = {**self.headers, "Content-Type": content_type}
        async with self.session.request(
            method, self.server + path, data=data, headers=headers, ssl=self.ssl
        ) as r:
            text = await r.text()
            try:
                return r.status, json.loads(text) if text else None
            except json.JSONDecodeError:
                return r.status, text

    async def register_nodes(self) -> None:
        for name in self.node_names:
            t = now()
            node = {
                "apiVersion": "v1",
                "kind": "Node",
                "metadata": {
                    "name": name,
                    "labels": {
                        "kubernetes.io/hostname": name,
                        "kubernetes.io/os": "linux",
                        "kubernetes.io/arch": "amd64",
                        "node.tether.dev/simulated": "true",
                    },
                },
                "status": {
                    "capacity": {"cpu": "16", "memory": "64Gi", "pods": "1000"},
                    "allocatable": {"cpu": "16", "memory": "64Gi", "pods": "1000"},
                    "conditions": [
                        {
                            "type": "Ready",
                            "status": "True",
                            "reason": "KubeletReady",
                            "message": "simulated node is ready",
                            "lastHeartbeatTime": t,
                            "lastTransitionTime": t,
                        }
                    ],
                    "addresses": [
                        {"type": "InternalIP", "address": "10.0.0.1"},
                        {"type": "Hostname", "address": name},
                    ],
                    "nodeInfo": {
                        "kubeletVersion": "v1.20.2-sim",
                        "architecture": "amd64",
                        "operatingSystem": "linux",
                        "containerRuntimeVersion": "sim://1",
                        "kernelVersion": "",
                        "kubeProxyVersion": "",
                        "machineID": "",
                        "systemUUID": "",
                        "bootID": "",
                        "osImage": "simulated",
                    },
                },
            }
            code, body = await self.request("POST", "/api/v1/nodes", node)
            if code not in (201, 409):
                raise RuntimeError(f"registering node {name} failed: {code} {body}")
            log.info("node %s registered", name)

    async def handle(self, pod: dict[str, Any]) -> None:
        meta = pod["metadata"]
        ns, name, uid = meta["namespace"], meta["name"], meta["uid"]
        base = f"/api/v1/namespaces/{ns}/pods/{name}"
        if meta.get("deletionTimestamp"):
            if self.handled.get(uid) != "deleted":
                self.handled[uid] = "deleted"
                await self.request(
                    "DELETE",
                    base,
                    {"kind": "DeleteOptions", "apiVersion": "v1", "gracePeriodSeconds": 0},
                )
            return
        node = (pod.get("spec") or {}).get("nodeName")
        if not node:
            if self.handled.get(uid) == "bound":
                return
            self.handled[uid] = "bound"
            node = self.node_names[self.next_node % len(self.node_names)]
            self.next_node += 1
            code, body = await self.request(
                "POST",
                base + "/binding",
                {
                    "apiVersion": "v1",
                    "kind": "Binding",
                    "metadata": {"name": name},
                    "target": {"apiVersion": "v1", "kind": "Node", "name": node},
                },
            )
            if code >= 300:
                self.handled.pop(uid, None)
                log.warning("binding %s/%s failed: %s %s", ns, name, code, body)
            return
        if self.handled.get(uid) == "status":
            return
        if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            self.handled[uid] = "status"
            return
        self.handled[uid] = "status"
        self.ip_counter += 1
        ip = f"10.244.{(self.ip_counter // 250) % 250}.{self.ip_counter % 250 + 2}"
        status = pod_status(pod, node, ip)
        code, body = await self.request(
            "PATCH", base + "/status", {"status": status}, "application/merge-patch+json"
        )
        if code >= 300:
            self.handled.pop(uid, None)
            log.warning("status of %s/%s failed: %s %s", ns, name, code, body)

    async def watch_pods(self) -> None:
        assert self.session is not None
        rv = ""
        while True:
            try:
                if not rv:
                    code, body = await self.request("GET", "/api/v1/pods")
                    if code != 200:
                        raise RuntimeError(f"listing pods failed: {code}")
                    rv = body["metadata"]["resourceVersion"]
                    for pod in body.get("items", []):
                        self.spawn(pod)
                url = (
                    f"{self.server}/api/v1/pods?watch=1&allowWatchBookmarks=true"
                    f"&resourceVersion={rv}&timeoutSeconds=300"
                )
                timeout = aiohttp.ClientTimeout(total=None, sock_read=330)
                async with self.session.get(
                    url, headers=self.headers, ssl=self.ssl, timeout=timeout
                ) as r:
                    if r.status != 200:
                        rv = ""
                        continue
                    async for line in r.content:
                        if not line.strip():
                            continue
                        ev = json.loads(line)
                        if ev["type"] == "ERROR":
                            rv = ""  # 410 Gone: relist
                            break
                        obj = ev["object"]
                        rv = obj["metadata"].get("resourceVersion", rv)
                        if ev["type"] in ("ADDED", "MODIFIED"):
                            self.spawn(obj)
                        elif ev["type"] == "DELETED":
                            self.handled.pop(obj["metadata"].get("uid", ""), None)
            except (aiohttp.ClientError, TimeoutError, RuntimeError) as e:
                log.warning("pod watch interrupted (%s); retrying", e)
                await asyncio.sleep(1)

    def spawn(self, pod: dict[str, Any]) -> None:
        task = asyncio.create_task(self.safe_handle(pod))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def safe_handle(self, pod: dict[str, Any]) -> None:
        try:
            await self.handle(pod)
        except Exception as e:  # keep simulating other pods whatever one pod does
            log.warning("handling pod %s failed: %s", pod.get("metadata", {}).get("name"), e)

    async def run(self) -> None:
        conn = aiohttp.TCPConnector(limit=50)
        async with aiohttp.ClientSession(connector=conn) as self.session:
            await self.register_nodes()
            await self.watch_pods()


def load_kubeconfig(path: str) -> tuple[str, str, str]:
    with open(path) as f:
        cfg = yaml.safe_load(f)
    cluster = cfg["clusters"][0]["cluster"]
    token = cfg["users"][0]["user"]["token"]
    with tempfile.NamedTemporaryFile("wb", delete=False, suffix=".crt") as ca:
        ca.write(base64.b64decode(cluster["certificate-authority-data"]))
    return cluster["server"], token, ca.name


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kubeconfig", required=True)
    ap.add_argument("--nodes", type=int, default=2)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s nodesim %(message)s")
    server, token, ca = load_kubeconfig(args.kubeconfig)
    asyncio.run(Simulator(server, token, ca, args.nodes).run())
    return 0


if __name__ == "__main__":
    sys.exit(main())
