"""The rules Deployments, StatefulSets, DaemonSets and Jobs are held to beyond their schema
(``pkg/apis/apps/validation`` and ``pkg/apis/batch/validation`` of the API server), for the
fields written here; their pod templates are judged by :mod:`tether.schema.pods`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tether.schema.check import show
from tether.schema.names import DNS1123_LABEL
from tether.schema.pods import judge_template
from tether.schema.rules import Judge, int_or_percent

_ALWAYS = ("Always",)
_DEFAULT_PROGRESS_DEADLINE = 600
_STATEFUL_NAME_MAX = 52
"""A StatefulSet's pods are named ``<name>-<ordinal>`` and labelled with a revision hash: names
longer than this (or not DNS-1123 labels) are left to the server."""
_JOB_LABELS = ("controller-uid", "job-name", "batch.kubernetes.io/")


def judge_deployment(obj: dict[str, Any], j: Judge) -> None:
    spec = _spec(obj, j)
    if spec is None:
        return
    j.only(
        spec,
        frozenset(
            {
                "replicas",
                "selector",
                "template",
                "strategy",
                "minReadySeconds",
                "revisionHistoryLimit",
                "progressDeadlineSeconds",
                "paused",
            }
        ),
        "spec",
    )
    _common(spec, j)
    ready = j.non_negative(spec.get("minReadySeconds"), "spec.minReadySeconds") or 0
    deadline = j.non_negative(spec.get("progressDeadlineSeconds"), "spec.progressDeadlineSeconds")
    if deadline is not None and deadline <= ready:
        j.problem("spec.progressDeadlineSeconds", "must be greater than minReadySeconds")
    elif deadline is None and ready >= _DEFAULT_PROGRESS_DEADLINE:
        j.defer("spec.minReadySeconds", "not below the defaulted progressDeadlineSeconds")
    _strategy(spec.get("strategy"), j)


def judge_stateful_set(obj: dict[str, Any], j: Judge) -> None:
    spec = _spec(obj, j)
    if spec is None:
        return
    j.only(
        spec,
        frozenset(
            {
                "replicas",
                "selector",
                "template",
                "serviceName",
                "podManagementPolicy",
                "updateStrategy",
                "revisionHistoryLimit",
            }
        ),
        "spec",
    )
    name = _name(obj)
    if not isinstance(name, str) or len(name) > _STATEFUL_NAME_MAX or not DNS1123_LABEL.match(name):
        j.defer("metadata.name", "a StatefulSet name longer or looser than its pods' names allow")
    service = spec.get("serviceName")
    if not isinstance(service, str) or not DNS1123_LABEL.match(service) or len(service) > 63:
        j.defer("spec.serviceName", "an empty or unusual serviceName is judged by the server")
    _common(spec, j)
    j.one_of(
        spec.get("podManagementPolicy"), ("OrderedReady", "Parallel"), "spec.podManagementPolicy"
    )
    update = _update_strategy(spec.get("updateStrategy"), ("RollingUpdate", "OnDelete"), j)
    if update is None:
        return
    rolling = j.mapping(update.get("rollingUpdate"), "spec.updateStrategy.rollingUpdate")
    if rolling:
        if update.get("type") == "OnDelete":
            j.problem("spec.updateStrategy.rollingUpdate", "only allowed with type RollingUpdate")
        j.only(rolling, frozenset({"partition"}), "spec.updateStrategy.rollingUpdate")
        j.non_negative(rolling.get("partition"), "spec.updateStrategy.rollingUpdate.partition")


def judge_daemon_set(obj: dict[str, Any], j: Judge) -> None:
    spec = _spec(obj, j)
    if spec is None:
        return
    j.only(
        spec,
        frozenset(
            {"selector", "template", "updateStrategy", "minReadySeconds", "revisionHistoryLimit"}
        ),
        "spec",
    )
    _common(spec, j)
    j.non_negative(spec.get("minReadySeconds"), "spec.minReadySeconds")
    update = _update_strategy(spec.get("updateStrategy"), ("RollingUpdate", "OnDelete"), j)
    if update is None:
        return
    rolling = j.mapping(update.get("rollingUpdate"), "spec.updateStrategy.rollingUpdate")
    if rolling and update.get("type") == "OnDelete":
        j.defer("spec.updateStrategy.rollingUpdate", "set with type OnDelete")
    elif rolling:
        path = "spec.updateStrategy.rollingUpdate"
        j.only(rolling, frozenset({"maxUnavailable"}), path)
        value = rolling.get("maxUnavailable")
        unavailable = int_or_percent(value, f"{path}.maxUnavailable", j)
        if unavailable == 0:
            j.defer(f"{path}.maxUnavailable", "0: allowed only with a maxSurge on newer servers")
        elif isinstance(value, str) and unavailable is not None and unavailable > 100:
            j.problem(f"{path}.maxUnavailable", f"{show(value)} must not be more than 100%")


def judge_job(obj: dict[str, Any], j: Judge) -> None:
    spec = _spec(obj, j)
    if spec is None:
        return
    j.only(
        spec,
        frozenset({"template", "parallelism", "completions", "backoffLimit"}),
        "spec",
    )
    for field in ("parallelism", "completions", "backoffLimit"):
        j.non_negative(spec.get(field), f"spec.{field}")
    name = _name(obj)
    if not isinstance(name, str) or len(name) > 63 or not DNS1123_LABEL.match(name):
        j.defer("metadata.name", "a Job name that is no label value (its pods' job-name label)")
    template = spec.get("template")
    meta = template.get("metadata") if isinstance(template, dict) else None
    labels = meta.get("labels") if isinstance(meta, dict) else None
    for key in labels if isinstance(labels, dict) else ():
        if str(key).startswith(_JOB_LABELS):
            j.defer(f"spec.template.metadata.labels[{key}]", "a label the Job controller sets")
    judge_template(template, j, ("OnFailure", "Never"))


def _name(obj: dict[str, Any]) -> Any:
    meta = obj.get("metadata")
    return meta.get("name") if isinstance(meta, dict) else None


def _spec(obj: dict[str, Any], j: Judge) -> dict[str, Any] | None:
    status = obj.get("status")
    if status not in (None, {}):
        j.defer("status", "a status is judged (and dropped) by the server")
    return j.mapping(obj.get("spec"), "spec")


def _common(spec: dict[str, Any], j: Judge) -> None:
    """replicas, selector (its match with the template is checked in kinds.py), template."""
    j.non_negative(spec.get("replicas"), "spec.replicas")
    j.non_negative(spec.get("revisionHistoryLimit"), "spec.revisionHistoryLimit")
    selector = j.mapping(spec.get("selector"), "spec.selector")
    if selector is not None:
        j.only(selector, frozenset({"matchLabels"}), "spec.selector")
    judge_template(spec.get("template"), j, _ALWAYS)


def _strategy(value: Any, j: Judge) -> None:
    strategy = j.mapping(value, "spec.strategy")
    if not strategy:
        return  # unset: RollingUpdate by 25% and 25%
    j.only(strategy, frozenset({"type", "rollingUpdate"}), "spec.strategy")
    kind = j.one_of(strategy.get("type"), ("RollingUpdate", "Recreate"), "spec.strategy.type")
    rolling = j.mapping(strategy.get("rollingUpdate"), "spec.strategy.rollingUpdate")
    if rolling is None:
        return
    if kind == "Recreate":
        if strategy.get("rollingUpdate") is not None:
            j.problem("spec.strategy.rollingUpdate", "may not be set when type is Recreate")
        return
    path = "spec.strategy.rollingUpdate"
    j.only(rolling, frozenset({"maxSurge", "maxUnavailable"}), path)
    values = {k: rolling.get(k, "25%") for k in ("maxSurge", "maxUnavailable")}
    numbers = {k: int_or_percent(v, f"{path}.{k}", j) for k, v in values.items()}
    if numbers["maxSurge"] == 0 and numbers["maxUnavailable"] == 0:
        j.problem(f"{path}.maxUnavailable", "may not be 0 when maxSurge is 0")
    unavailable = values["maxUnavailable"]
    if isinstance(unavailable, str) and (numbers["maxUnavailable"] or 0) > 100:
        j.problem(f"{path}.maxUnavailable", f"{show(unavailable)} must not be more than 100%")


def _update_strategy(value: Any, types: tuple[str, ...], j: Judge) -> dict[str, Any] | None:
    update = j.mapping(value, "spec.updateStrategy")
    if update is not None:
        j.only(update, frozenset({"type", "rollingUpdate"}), "spec.updateStrategy")
        j.one_of(update.get("type"), types, "spec.updateStrategy.type")
    return update


JUDGES: dict[tuple[str, str], Callable[[dict[str, Any], Judge], None]] = {
    ("apps", "Deployment"): judge_deployment,
    ("apps", "StatefulSet"): judge_stateful_set,
    ("apps", "DaemonSet"): judge_daemon_set,
    ("batch", "Job"): judge_job,
}
"""The per-kind rules of workloads, by (group, kind)."""
