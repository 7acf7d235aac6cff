"""JSON logs to stdout, one line an event, with secrets scrubbed before they are written.

Redaction works twice: by key (anything named like a password, token or key) and by value
(strings shaped like our JWTs, API keys, refresh tokens or bearer headers), so a secret that
slips into a message or a third-party log line is still not written.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

REDACTED = "[REDACTED]"

_SECRET_KEY_PATTERN = re.compile(
    r"pass(word)?|secret|token|api[_-]?key|authorization|cookie|credential|code_verifier|"
    r"private[_-]?key",
    re.IGNORECASE,
)
# JWTs, Forgeline API keys and refresh tokens, Bearer values, and OAuth `code=` parameters.
_SECRET_VALUE_PATTERN = re.compile(
    r"eyJ[\w-]+\.[\w-]+\.[\w-]*"
    r"|fl(?:k|r)_[\w-]+"
    r"|(?i:bearer)\s+[\w.~+/=-]+"
    r"|(?<=[?&]code=)[^&\s\"']+"
    r"|(?<=[?&]state=)[^&\s\"']+"
)


def scrub(value: Any) -> Any:
    if isinstance(value, str):
        return _SECRET_VALUE_PATTERN.sub(REDACTED, value)
    if isinstance(value, dict):
        return {
            k: REDACTED if _SECRET_KEY_PATTERN.search(str(k)) else scrub(v)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return type(value)(scrub(v) for v in value)
    return value


def _redact_processor(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> dict[str, Any]:
    return scrub(dict(event_dict))  # type: ignore[no-any-return]


def setup_logging(service: str, level: str = "INFO") -> None:
    """Route structlog and the standard library (uvicorn, grpc, celery) into one JSON stream."""
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
    ]
    structlog.configure(
        processors=[
            *shared,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*shared, structlog.stdlib.ExtraAdder()],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            # uvicorn adds an ANSI-coloured copy of each message; JSON readers want one.
            lambda _, __, ev: {
                "service": service,
                **{k: v for k, v in ev.items() if k != "color_message"},
            },
            _redact_processor,
            structlog.processors.JSONRenderer(),
        ],
    )
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # uvicorn's access log prints query strings (OAuth codes); the gateway logs requests itself.
    logging.getLogger("uvicorn.access").disabled = True
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    return structlog.stdlib.get_logger(name)
