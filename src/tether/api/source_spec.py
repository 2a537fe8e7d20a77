"""Reading an Application's ``spec.source`` or ``spec.sources[]`` into checked Source values.

The shape is Argo CD's, so a manifest ports by changing its apiVersion. Everything that can
be judged without the repository is judged here, when the Application is read: paths that
leave the repository, ``$ref`` value files naming no source, a chart without a version, two
render blocks on one source. Each mistake names the field to fix.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from tether.api.source import (
    TYPE_DIRECTORY,
    TYPE_HELM,
    TYPE_KUSTOMIZE,
    DirectorySource,
    HelmParameter,
    HelmSource,
    JsonnetOptions,
    JsonnetVar,
    KustomizeReplica,
    KustomizeSource,
    Source,
    VerifySource,
)
from tether.errors import InvalidSpec

_REF_NAME = re.compile(r"^[A-Za-z0-9_-]+$")
_BLOCKS = {"helm": TYPE_HELM, "kustomize": TYPE_KUSTOMIZE, "directory": TYPE_DIRECTORY}
VERIFY_MODES = ("gpg", "ssh")


def parse_sources(spec: dict[str, Any], where: str) -> list[Source]:
    """The app's sources in spec order: ``spec.source`` alone, or every ``spec.sources[]``."""
    single, many = spec.get("source"), spec.get("sources")
    if single and many:
        raise InvalidSpec(
            f"{where}: spec.source and spec.sources are both set",
            hint="keep one: spec.source for one source, spec.sources for several",
        )
    if many:
        if not isinstance(many, list):
            raise InvalidSpec(f"{where}: spec.sources must be a list of sources")
        sources = [parse_source(s, where, f"spec.sources[{i}]") for i, s in enumerate(many)]
    else:
        if not isinstance(single, dict) or not single.get("repoURL"):
            raise InvalidSpec(f"{where}: spec.source.repoURL is required")
        sources = [parse_source(single, where, "spec.source")]
    check_refs(sources, where, "spec.sources" if many else "spec.source")
    return sources


def parse_source(src: Any, where: str, field: str) -> Source:
    """One source; ``field`` (``spec.sources[1]``) prefixes every message."""
    if not isinstance(src, dict) or not src.get("repoURL"):
        raise InvalidSpec(f"{where}: {field}.repoURL is required")
    repo_url = _str(src, "repoURL", where, field)
    check_repo_url(repo_url, where, field)
    chart = _str(src, "chart", where, field)
    ref = _str(src, "ref", where, field)
    if ref and not _REF_NAME.match(ref):
        raise InvalidSpec(
            f"{where}: {field}.ref {ref!r} is not a valid name",
            hint="use letters, digits, '-' and '_' (other sources read it as $<ref>/path)",
        )
    blocks = [k for k in _BLOCKS if src.get(k) is not None]
    if len(blocks) > 1:
        raise InvalidSpec(
            f"{where}: {field} sets {' and '.join(blocks)} at once",
            hint="a source renders one way: keep one of the blocks",
        )
    path = _source_path(src, where, field, chart=chart, ref=ref)
    if chart:
        _check_chart(src, blocks, where, field)
    source = Source(
        repo_url=repo_url,
        target_revision=_str(src, "targetRevision", where, field) or "HEAD",
        path=path,
        chart=chart,
        ref=ref,
        name=_str(src, "name", where, field),
        explicit_type=_BLOCKS[blocks[0]] if blocks else (TYPE_HELM if chart else ""),
    )
    if src.get("directory") is not None:
        source.directory = _directory(src["directory"], where, f"{field}.directory")
    if src.get("kustomize") is not None:
        source.kustomize = _kustomize(src["kustomize"], where, f"{field}.kustomize")
    if src.get("helm") is not None:
        source.helm = _helm(src["helm"], where, f"{field}.helm")
    if src.get("verify") is not None:
        source.verify = _verify(src["verify"], where, f"{field}.verify")
    return source


def _source_path(src: dict[str, Any], where: str, field: str, *, chart: str, ref: str) -> str:
    raw = src.get("path")
    if chart:
        if raw not in (None, ""):
            raise InvalidSpec(
                f"{where}: {field} sets both chart and path",
                hint="chart names a chart in a Helm repository; path a directory in Git",
            )
        return ""
    if raw in (None, ""):
        # A ref source without a path only lends its files to the other sources.
        return "" if ref else "."
    path = _str(src, "path", where, field)
    check_source_path(path, where, f"{field}.path")
    return path


def _check_chart(src: dict[str, Any], blocks: list[str], where: str, field: str) -> None:
    if not str(src.get("targetRevision") or "").strip() or src["targetRevision"] == "HEAD":
        raise InvalidSpec(
            f"{where}: {field}.chart needs targetRevision: the chart version",
            hint="give a version (1.4.2) or a constraint (^1.4, >=1.2 <2)",
        )
    if blocks and blocks[0] != "helm":
        raise InvalidSpec(
            f"{where}: {field} names a chart and sets {blocks[0]}",
            hint="a chart from a Helm repository renders with Helm: use a helm block",
        )
    if src.get("verify") is not None:
        raise InvalidSpec(
            f"{where}: {field} names a chart and sets verify",
            hint="verify checks Git commit signatures; a chart from a Helm repository has none",
        )
    if str(src.get("ref") or ""):
        raise InvalidSpec(
            f"{where}: {field} names a chart and sets ref",
            hint="ref lends a Git repository's files to other sources; a chart has none",
        )


def check_refs(sources: list[Source], where: str, field: str) -> None:
    """Every ``$<ref>/file`` value file names a ``ref`` source, refs are unique, and at least
    one source renders something."""
    refs: dict[str, int] = {}
    for i, s in enumerate(sources):
        if s.ref:
            if s.ref in refs:
                raise InvalidSpec(
                    f"{where}: {field}[{i}].ref {s.ref!r} is already the ref of "
                    f"{field}[{refs[s.ref]}]",
                    hint="give each ref source its own name",
                )
            refs[s.ref] = i
    for i, s in enumerate(sources):
        for j, value_file in enumerate(s.helm.value_files if s.helm else []):
            _check_ref_file(value_file, refs, where, f"{field}[{i}].helm.valueFiles[{j}]")
    if not any(s.renders for s in sources):
        raise InvalidSpec(
            f"{where}: no source renders anything: each one only sets ref",
            hint="give one source a path (a directory in Git) or a chart",
        )


def _check_ref_file(value_file: str, refs: dict[str, int], where: str, field: str) -> None:
    if not value_file.startswith("$"):
        return
    name, _, rest = value_file[1:].partition("/")
    if name not in refs:
        known = ", ".join(f"${r}" for r in refs) or "none"
        raise InvalidSpec(
            f"{where}: {field} {value_file!r} names no ref source (known: {known})",
            hint=f"add a source with ref: {name} to spec.sources, or fix the name",
        )
    if not rest:
        raise InvalidSpec(f"{where}: {field} {value_file!r} names no file after ${name}/")
    check_source_path(rest, where, field)


def _directory(d: Any, where: str, field: str) -> DirectorySource:
    d = _dict(d, where, field)
    j = _dict(d.get("jsonnet") or {}, where, f"{field}.jsonnet")
    libs = _str_list(j, "libs", where, f"{field}.jsonnet")
    for i, lib in enumerate(libs):
        check_source_path(lib, where, f"{field}.jsonnet.libs[{i}]")
    return DirectorySource(
        recurse=_bool(d, "recurse", where, field),
        include=_str(d, "include", where, field),
        exclude=_str(d, "exclude", where, field),
        jsonnet=JsonnetOptions(
            ext_vars=_jsonnet_vars(j.get("extVars"), where, f"{field}.jsonnet.extVars"),
            tlas=_jsonnet_vars(j.get("tlas"), where, f"{field}.jsonnet.tlas"),
            libs=libs,
        ),
    )


def _jsonnet_vars(items: Any, where: str, field: str) -> list[JsonnetVar]:
    out: list[JsonnetVar] = []
    for i, item in enumerate(_list(items, where, field)):
        here = f"{field}[{i}]"
        item = _dict(item, where, here)
        name = _str(item, "name", where, here)
        if not name:
            raise InvalidSpec(f"{where}: {here}.name is required")
        value = item.get("value", "")
        out.append(
            JsonnetVar(
                name=name,
                value=value if isinstance(value, str) else _scalar(value, where, f"{here}.value"),
                code=_bool(item, "code", where, here),
            )
        )
    return out


def _kustomize(k: Any, where: str, field: str) -> KustomizeSource:
    k = _dict(k, where, field)
    replicas: list[KustomizeReplica] = []
    for i, r in enumerate(_list(k.get("replicas"), where, f"{field}.replicas")):
        here = f"{field}.replicas[{i}]"
        r = _dict(r, where, here)
        try:
            count = int(str(r.get("count")))
        except ValueError:
            raise InvalidSpec(f"{where}: {here}.count {r.get('count')!r} is not a number") from None
        if not _str(r, "name", where, here) or count < 0:
            raise InvalidSpec(f"{where}: {here} needs a name and a count of 0 or more")
        replicas.append(KustomizeReplica(name=str(r["name"]), count=count))
    patches = _list(k.get("patches"), where, f"{field}.patches")
    for i, p in enumerate(patches):
        _dict(p, where, f"{field}.patches[{i}]")
    return KustomizeSource(
        images=_str_list(k, "images", where, field),
        name_prefix=_str(k, "namePrefix", where, field),
        name_suffix=_str(k, "nameSuffix", where, field),
        common_labels=_str_dict(k, "commonLabels", where, field),
        common_annotations=_str_dict(k, "commonAnnotations", where, field),
        namespace=_str(k, "namespace", where, field),
        replicas=replicas,
        patches=list(patches),
        components=_str_list(k, "components", where, field),
        enable_helm=_bool(k, "enableHelm", where, field),
    )


def _helm(h: Any, where: str, field: str) -> HelmSource:
    h = _dict(h, where, field)
    params: list[HelmParameter] = []
    for i, p in enumerate(_list(h.get("parameters"), where, f"{field}.parameters")):
        here = f"{field}.parameters[{i}]"
        p = _dict(p, where, here)
        if not _str(p, "name", where, here):
            raise InvalidSpec(f"{where}: {here}.name is required")
        value = p.get("value", "")
        params.append(
            HelmParameter(
                name=str(p["name"]),
                value=value if isinstance(value, str) else _scalar(value, where, f"{here}.value"),
                force_string=_bool(p, "forceString", where, here),
            )
        )
    values_object = h.get("valuesObject")
    return HelmSource(
        value_files=_str_list(h, "valueFiles", where, field),
        values=_str(h, "values", where, field),
        values_object=_dict(values_object, where, f"{field}.valuesObject")
        if values_object is not None
        else {},
        parameters=params,
        release_name=_str(h, "releaseName", where, field),
        namespace=_str(h, "namespace", where, field),
        skip_crds=_bool(h, "skipCrds", where, field),
        pass_credentials=_bool(h, "passCredentials", where, field),
        ignore_missing_value_files=_bool(h, "ignoreMissingValueFiles", where, field),
    )


def _verify(v: Any, where: str, field: str) -> VerifySource:
    v = _dict(v, where, field)
    mode = _str(v, "mode", where, field)
    if mode not in VERIFY_MODES:
        raise InvalidSpec(
            f"{where}: {field}.mode {mode!r} is not one of {', '.join(VERIFY_MODES)}",
            hint="gpg checks OpenPGP signatures, ssh checks 'git commit -S' with an SSH key",
        )
    secret = _str(
        _dict(v.get("secretRef") or {}, where, f"{field}.secretRef"), "name", where, field
    )
    cm = _str(
        _dict(v.get("configMapRef") or {}, where, f"{field}.configMapRef"), "name", where, field
    )
    if not secret and not cm:
        raise InvalidSpec(
            f"{where}: {field} names no keys",
            hint="set secretRef.name or configMapRef.name: the Secret or ConfigMap holding "
            "the trusted public keys, in the Application's namespace",
        )
    return VerifySource(mode=mode, secret_name=secret, config_map_name=cm)


def check_repo_url(url: str, where: str, field: str = "spec.source") -> None:
    """Refuses a repository URL that cannot be parsed (``http://[oops/x.git``), so that it
    fails its own Application with a condition rather than whatever code reads it next.
    The URL itself is not quoted: it may carry a token."""
    try:
        parts = urlsplit(url.strip())
        _ = parts.port  # a port that is not a number fails only when read
    except ValueError as e:
        raise InvalidSpec(
            f"{where}: {field}.repoURL is not a valid URL ({e})",
            hint="use https://host/path, ssh://user@host/path, user@host:path, oci://host/path "
            "or file:///path",
        ) from None


def check_source_path(path: str, where: str, field: str = "spec.source.path") -> None:
    """Refuses a path that is not inside the repository: an absolute path or one with a
    ``..`` segment (Argo CD refuses both too). Checked when an Application is read, so the
    mistake shows when the Application is written (``app create``, ``app apply``) or, for
    one written by other means, as its own condition, not at a sync."""
    parts = path.strip().split("/")
    if path.strip().startswith("/") or ".." in parts:
        raise InvalidSpec(
            f"{where}: {field} {path!r} is not inside the repository",
            hint="give a path relative to the repository root, without '..' "
            "(for example 'apps/web', or '.' for the root)",
        )


# ---- typed reads: a wrong type names the field ------------------------------------------


def _dict(value: Any, where: str, field: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidSpec(f"{where}: {field} must be a mapping")
    return value


def _list(value: Any, where: str, field: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise InvalidSpec(f"{where}: {field} must be a list")
    return value


def _scalar(value: Any, where: str, field: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    raise InvalidSpec(f"{where}: {field} must be a string")


def _str(d: dict[str, Any], key: str, where: str, field: str) -> str:
    value = d.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidSpec(f"{where}: {field}.{key} must be a string")
    return value


def _bool(d: dict[str, Any], key: str, where: str, field: str) -> bool:
    value = d.get(key, False)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise InvalidSpec(f"{where}: {field}.{key} must be true or false")
    return value


def _str_list(d: dict[str, Any], key: str, where: str, field: str) -> list[str]:
    items = _list(d.get(key), where, f"{field}.{key}")
    if not all(isinstance(i, str) for i in items):
        raise InvalidSpec(f"{where}: {field}.{key} must be a list of strings")
    return [str(i) for i in items]


def _str_dict(d: dict[str, Any], key: str, where: str, field: str) -> dict[str, str]:
    value = d.get(key)
    if value is None:
        return {}
    items = _dict(value, where, f"{field}.{key}")
    return {
        str(k): v if isinstance(v, str) else _scalar(v, where, f"{field}.{key}.{k}")
        for k, v in items.items()
    }
