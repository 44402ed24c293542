"""Fault injection: make matching ARM requests fail, stall, drop or return garbage.

A fault spec (POST /_emulator/faults, or ``Emulator(faults=[...])``)::

    {"match": "/virtualMachines",   # substring of the request path (case-insensitive); "" = any
     "method": "GET",               # GET / PUT / PATCH / POST / DELETE / HEAD / "*"
     "status": 429,                 # null = no status override (only delay/reset/malformed/lro_result)
     "retry_after_s": 1,            # adds Retry-After to the error response
     "delay_s": 0,                  # sleep before answering
     "reset_connection": false,     # close the TCP connection without a response
     "malformed_json": false,       # answer normally but with a truncated JSON body
     "lro_result": null,            # "Failed" / "Canceled": the LRO this request starts ends that way
     "lro_error": null,             # {"code", "message"} for a Failed/Canceled LRO
     "code": null, "message": null, # override the ARM error code / message of ``status``
     "count": 1}                    # how many requests it applies to; -1 = until cleared
"""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass, field

from .ids import ArmError

_ids = itertools.count(1)

METHODS = {"GET", "PUT", "PATCH", "POST", "DELETE", "HEAD", "*"}


@dataclass
class Fault:
    match: str = ""
    method: str = "*"
    status: int | None = None
    retry_after_s: float | None = None
    delay_s: float = 0.0
    reset_connection: bool = False
    malformed_json: bool = False
    lro_result: str | None = None
    lro_error: dict | None = None
    code: str | None = None
    message: str | None = None
    count: int = 1
    id: int = field(default_factory=lambda: next(_ids))
    hits: int = 0

    @classmethod
    def from_spec(cls, spec: dict) -> Fault:
        if not isinstance(spec, dict):
            raise ValueError("a fault is a JSON object")
        known = {f for f in cls.__dataclass_fields__ if f not in ("id", "hits")}
        unknown = set(spec) - known
        if unknown:
            raise ValueError(f"unknown fault field(s): {', '.join(sorted(unknown))}")
        f = cls(**{k: v for k, v in spec.items() if v is not None or k in ("status", "lro_result")})
        f.method = (f.method or "*").upper()
        if f.method not in METHODS:
            raise ValueError(f"bad method {f.method!r}")
        if f.status is not None:
            f.status = int(f.status)
            if not 100 <= f.status <= 599:
                raise ValueError(f"bad status {f.status}")
        if f.lro_result is not None:
            norm = {"failed": "Failed", "canceled": "Canceled", "cancelled": "Canceled", "succeeded": None}
            if str(f.lro_result).lower() not in norm:
                raise ValueError(f"bad lro_result {f.lro_result!r}")
            f.lro_result = norm[str(f.lro_result).lower()]
        f.count = int(f.count)
        f.delay_s = float(f.delay_s or 0)
        f.match = str(f.match or "")
        return f

    def matches(self, method: str, path: str) -> bool:
        if self.count == 0:
            return False
        if self.method != "*" and self.method != method.upper():
            return False
        return self.match.lower() in path.lower()

    def to_json(self) -> dict:
        return asdict(self)


class FaultSet:
    def __init__(self) -> None:
        self._faults: list[Fault] = []

    def add(self, spec: dict) -> Fault:
        f = Fault.from_spec(spec)
        self._faults.append(f)
        return f

    def clear(self) -> None:
        self._faults.clear()

    def list(self) -> list[dict]:
        return [f.to_json() for f in self._faults]

    def __bool__(self) -> bool:
        return bool(self._faults)

    def take(self, method: str, path: str) -> Fault | None:
        """The first fault matching this request; uses up one of its count."""
        for f in self._faults:
            if f.matches(method, path):
                f.hits += 1
                if f.count > 0:
                    f.count -= 1
                    if f.count == 0:
                        self._faults.remove(f)
                return f
        return None


_MESSAGES: dict[int, tuple[str, str]] = {
    400: ("BadRequest", "The request is invalid."),
    401: ("InvalidAuthenticationToken", "The access token is invalid."),
    404: ("ResourceNotFound", "The resource was not found."),
    408: ("RequestTimeout", "The request timed out."),
    409: ("Conflict", "The request conflicts with the current state of the resource."),
    412: ("PreconditionFailed", "The condition specified using HTTP conditional header(s) is not met."),
    500: ("InternalServerError", "Encountered internal server error. Diagnostic information: timestamp '{t}', subscription id '{s}'."),
    502: ("BadGateway", "The gateway received an invalid response from the upstream server."),
    503: ("ServiceUnavailable", "The service is currently unavailable. Please try again later."),
}


def fault_error(fault: Fault, method: str, path: str, sub: str | None, namespace: str | None, action: str, now_iso: str) -> ArmError:
    """The ARM error a fault with a status answers with."""
    status = int(fault.status or 500)
    s = sub or "00000000-0000-0000-0000-000000000000"
    if status == 429:
        kind = "Read" if method.upper() in ("GET", "HEAD") else "Write"
        code, msg = (
            "TooManyRequests",
            f"The request is being throttled as the limit has been reached for operation type - "
            f"{kind}_ObservationWindow_00:05:00. For more information, see - https://aka.ms/srpthrottlinglimits",
        )
    elif status == 403:
        code, msg = (
            "AuthorizationFailed",
            f"The client 'operator@contoso.com' with object id '00000000-0000-0000-0000-000000000001' does not have "
            f"authorization to perform action '{action}' over scope '/subscriptions/{s}' or the scope is invalid. "
            "If access was recently granted, please refresh your credentials.",
        )
    elif status == 504:
        code, msg = (
            "GatewayTimeout",
            f"The gateway did not receive a response from '{namespace or 'Microsoft.Resources'}' within the specified time period.",
        )
    else:
        code, msg = _MESSAGES.get(status, (f"HttpStatus{status}", f"The request failed with status {status}."))
        msg = msg.format(t=now_iso, s=s)
    headers: dict[str, str] = {}
    if fault.retry_after_s is not None:
        ra = float(fault.retry_after_s)
        headers["Retry-After"] = str(int(ra)) if ra.is_integer() else str(ra)
    return ArmError(status, fault.code or code, fault.message or msg, headers)


def rbac_action(method: str, rtype: str | None, last: str | None = None) -> str:
    """The RBAC action a request needs, e.g. Microsoft.Compute/virtualMachines/read."""
    t = rtype or "Microsoft.Resources/subscriptions"
    m = method.upper()
    if m == "POST" and last:
        return f"{t}/{last}/action"
    return f"{t}/" + {"GET": "read", "HEAD": "read", "PUT": "write", "PATCH": "write", "DELETE": "delete"}.get(m, "action")


def corrupt(body: bytes) -> bytes:
    """Truncated JSON: the first half of the body (or an unterminated object for empty bodies)."""
    if len(body) < 4:
        return b'{"value": [{"id": '
    return body[: len(body) // 2]
