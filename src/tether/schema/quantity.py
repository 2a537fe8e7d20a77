"""Resource quantities (``500m``, ``1Gi``, ``1e3``) read by the grammar of
``k8s.io/apimachinery/pkg/api/resource``, to exact values so requests compare with limits.

``<sign>?<digits>[.<digits>]<suffix>``: a binary suffix (``Ki`` .. ``Ei``), a decimal one
(``n u m "" k M G T P E``) or an exponent (``e3``, ``E-2``). What the grammar refuses the
server refuses at decoding; values so large or so fine that the server rounds them, and
quantities written as JSON numbers, are left to the server (:class:`Unsure`).
"""

from __future__ import annotations

import re
from decimal import Decimal

_QUANTITY = re.compile(
    r"^(?P<number>[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))"
    r"(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]|[eE][+-]?[0-9]+|)$",
    re.ASCII,
)
_BINARY = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
_DECIMAL = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_NANO = Decimal("1e-9")
_LARGEST = Decimal(2**62)


class Unsure(Exception):
    """A value the server may read otherwise than this module (rounded, or a float)."""


def parse_quantity(value: object) -> Decimal:
    """The exact value of a quantity. Raises ValueError (the server refuses it) or
    :class:`Unsure` (the server must judge it)."""
    if isinstance(value, bool):
        raise ValueError("expected a quantity (string or number), got a boolean")
    if not isinstance(value, str):
        # A number: some servers' apply refuses it (1.20: "expected string"), others take it.
        raise Unsure(f"{value!r}: a quantity written as a number is judged by the server")
    found = _QUANTITY.match(value)
    if not found:
        raise ValueError(f"{value!r} is not a quantity (e.g. 500m, 128Mi, 1.5, 2e3)")
    number, suffix = found["number"], found["suffix"]
    if len(number) > 30 or len(suffix) > 4:
        raise Unsure(f"{value!r} is larger or finer than this check reads")
    amount = Decimal(number)
    if suffix in _BINARY:
        amount *= 2 ** _BINARY[suffix]
    elif suffix in _DECIMAL:
        amount = amount.scaleb(_DECIMAL[suffix])
    else:
        amount = amount.scaleb(int(suffix[1:]))
    if abs(amount) >= _LARGEST or amount % _NANO != 0:
        raise Unsure(f"{value!r} is rounded by the server")
    return amount
