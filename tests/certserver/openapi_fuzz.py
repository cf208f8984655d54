"""An OpenAPI-driven fuzzer (schemathesis) for any of the service's published APIs.

`fuzz_openapi` reads the OpenAPI document a running server publishes, generates requests
for every operation from it (valid ones, and ones that break the document on purpose),
sends them over real HTTP, and checks every answer against the same document: no 5xx, and
every status, media type, header and body as the document declares it. It knows nothing of
the kiosk API: point it at another server (the centre's municipal interface, say) with that
server's URL and document path. A failure is collected, not raised, so one run reports all
of them, each with the curl command that repeats it.

Bounded: at most `max_examples` requests per operation and generation mode, and nothing new
starts after `budget_seconds`. Derandomized: the same document gives the same requests.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

# What the published document promises about every answer, and that bad input is refused.
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
]
# A request that breaks the document may be refused for its size (413, 414) before its
# shape, or find its transaction already gone (410): each is a refusal, as 422 is.
_REFUSALS = ["400", "401", "403", "404", "405", "406", "409", "410", "413", "414", "415", "422", "428", "429"]
_CONFIG = schemathesis.Config.from_dict({"checks": {"negative_data_rejection": {"expected-statuses": _REFUSALS}}})


@dataclass
class FuzzReport:
    """What a run did: requests sent, per operation, and each failure found."""

    cases: int = 0
    seconds: float = 0.0
    statuses: dict[str, dict[int, int]] = field(default_factory=dict)  # operation -> status -> count
    # One line per distinct failure (operation, mode, status, what broke), with how many
    # requests showed it and the curl command of the first.
    failures: list[str] = field(default_factory=list)
    _seen: dict[str, int] = field(default_factory=dict, repr=False)

    def fail(self, what: str, curl: str) -> None:
        if what not in self._seen:
            self._seen[what] = len(self.failures)
            self.failures.append(f"{what}\n    {curl}")

    def count(self, operation: str, status: int) -> None:
        self.cases += 1
        by_status = self.statuses.setdefault(operation, {})
        by_status[status] = by_status.get(status, 0) + 1


# A hook that may change a valid generated case before it is sent (give it a live id, say);
# it returns the headers to send instead of the run's own (another credential), or None.
CaseHook = Callable[[Any], "dict[str, str] | None"]


def fuzz_openapi(
    base_url: str,
    openapi_path: str,
    *,
    headers: dict[str, str] | None = None,
    max_examples: int = 40,
    budget_seconds: float = 50.0,
    modes: Iterable[GenerationMode] = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE),
    prepare: CaseHook | None = None,
    timeout: float = 10.0,
) -> FuzzReport:
    """Fuzz every operation of the OpenAPI document at `base_url + openapi_path` against
    that server, with `headers` (a credential) on every request. Returns the report; raises
    only when the document cannot be loaded."""
    schema = schemathesis.openapi.from_url(base_url + openapi_path, config=_CONFIG)
    _send_binary_bodies_as_bytes(schema.raw_schema)
    report = FuzzReport()
    started = time.monotonic()
    deadline = started + budget_seconds
    operations = [result.ok() for result in schema.get_all_operations()]
    for mode in modes:
        for operation in operations:
            if time.monotonic() > deadline:
                break
            _fuzz_operation(operation, mode, base_url, headers or {}, max_examples, deadline, prepare, timeout, report)
    report.seconds = time.monotonic() - started
    return report


def fuzz_app(app: Any, openapi_path: str, **options: Any) -> FuzzReport:
    """`fuzz_openapi` against an ASGI app served for the run by uvicorn on 127.0.0.1."""
    from api_support import LiveServer

    with LiveServer(app) as server:
        return fuzz_openapi(server.url, openapi_path, **options)


def _fuzz_operation(
    operation: Any,
    mode: GenerationMode,
    base_url: str,
    headers: dict[str, str],
    max_examples: int,
    deadline: float,
    prepare: CaseHook | None,
    timeout: float,
    report: FuzzReport,
) -> None:
    label = f"{operation.method.upper()} {operation.path}"

    @settings(
        max_examples=max_examples,
        derandomize=True,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],  # failures are collected, not shrunk
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: Any) -> None:
        if time.monotonic() > deadline:
            return
        sent = headers
        # Only a valid request may be given live ids: an invalid one must stay invalid.
        if prepare is not None and mode == GenerationMode.POSITIVE:
            sent = prepare(case) or headers
        response = case.call(base_url=base_url, headers=sent, timeout=timeout)
        report.count(label, response.status_code)
        try:
            case.validate_response(response, checks=CHECKS, headers=sent)
        except FailureGroup as exc:
            report.fail(f"{label} [{mode.value}] -> {response.status_code}: {' / '.join(_titles(exc))}", _curl(case))

    # Unsatisfiable: an operation with no parameters and no body has no invalid requests.
    with contextlib.suppress(Unsatisfiable):
        run()


def _send_binary_bodies_as_bytes(document: dict[str, Any]) -> None:
    """Teach schemathesis the document's binary request media types (a PDF, an OCSP
    request): their bodies are sent as the generated bytes, like application/octet-stream."""
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            content = operation.get("requestBody", {}).get("content", {}) if isinstance(operation, dict) else {}
            for media_type, spec in content.items():
                if spec.get("schema", {}).get("format") == "binary" and media_type != "application/octet-stream":
                    schemathesis.serializer.alias(media_type, "application/octet-stream")


def _titles(exc: BaseException) -> list[str]:
    inner = getattr(exc, "exceptions", None)
    if not inner:
        return [str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__]
    return [
        f"{getattr(f, 'title', type(f).__name__)}: {' '.join(str(getattr(f, 'message', '')).split())[:200]}"
        for f in inner
    ]


def _curl(case: Any) -> str:
    try:
        return str(case.as_curl_command())[:600]
    except Exception as exc:  # noqa: BLE001 - the report must not fail for a curl rendering
        return f"(no curl: {type(exc).__name__})"
