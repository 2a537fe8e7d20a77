"""The controller's render settings: limits for every render tool, how many run at once,
whether sources may reach the network, the render cache's size; and the quantities
(``2Gi``, ``256Mi``) the flags that set them are written in."""

from __future__ import annotations

import re
from dataclasses import dataclass

from tether.sandbox import Limits, Runner

_QUANTITY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGTPE]i?|k|m)?\s*$")
_FACTORS = {
    "": 1,
    "k": 10**3,
    "K": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "P": 10**15,
    "E": 10**18,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "Pi": 2**50,
    "Ei": 2**60,
}


def parse_quantity(text: str, what: str = "quantity") -> int:
    """Bytes in a Kubernetes-style quantity: ``2Gi`` → 2147483648, ``500M`` → 500000000,
    ``1048576`` → 1048576. Raises ValueError naming ``what`` when it is not one (``m``,
    Kubernetes' milli, is refused: a thousandth of a byte means nothing here)."""
    m = _QUANTITY.match(text)
    if not m or m.group(2) == "m":
        raise ValueError(
            f"{what} {text!r} is not a size: use a number of bytes or one with a suffix "
            "such as 512Mi, 2Gi or 500M"
        )
    value = float(m.group(1)) * _FACTORS[m.group(2) or ""]
    if value < 1:
        raise ValueError(f"{what} {text!r} must be at least one byte")
    return int(value)


@dataclass(frozen=True)
class RenderSettings:
    """What ``tether controller`` is told about rendering (flags ``--render-*``,
    ``--max-parallel-renders``, ``--allow-remote-sources``)."""

    timeout: float = 90.0
    """Seconds one render tool (kustomize, helm) may run."""
    memory_bytes: int = 2 * 2**30
    output_bytes: int = 256 * 2**20
    max_parallel: int = 4
    """Renders (tool processes) at once, across all apps."""
    allow_remote: bool = False
    """Remote kustomize bases and Helm dependencies fetched from the network."""
    cache_size: int = 8192
    """Render results kept (entries); 0 turns the render cache off."""

    def limits(self) -> Limits:
        """The default limits: no network. A render that needs it (a chart repository the
        source names, or a remote base when ``allow_remote``) asks for it per call."""
        return Limits(
            timeout=self.timeout,
            output_bytes=self.output_bytes,
            memory_bytes=self.memory_bytes,
            network=False,
        )

    def runner(self) -> Runner:
        """The one runner every render tool of this controller goes through."""
        return Runner(concurrency=self.max_parallel, limits=self.limits())

    def check(self) -> None:
        """Raises ValueError naming the flag of the first setting out of range."""
        if self.timeout <= 0:
            raise ValueError("--render-timeout must be more than 0")
        if self.max_parallel < 1:
            raise ValueError("--max-parallel-renders must be at least 1")
        if self.cache_size < 0:
            raise ValueError("--render-cache-size must be 0 (off) or more")
