"""OpenTelemetry set-up in one call per process.

The exporter is chosen by settings (`OTEL_EXPORTER`: none, console or otlp). The global
propagator is W3C trace context, which the gRPC instrumentation writes into call metadata,
so one trace spans gateway -> auth.
"""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SpanExporter,
)

from services.common.settings import BaseServiceSettings

_provider: TracerProvider | None = None


def _exporter(settings: BaseServiceSettings) -> SpanExporter | None:
    if settings.otel_exporter == "console":
        return ConsoleSpanExporter()
    if settings.otel_exporter == "otlp":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter(
            endpoint=settings.otel_exporter_otlp_endpoint.rstrip("/") + "/v1/traces"
        )
    return None


def setup_telemetry(service_name: str, settings: BaseServiceSettings) -> None:
    """Install the tracer provider; a no-op when `OTEL_EXPORTER=none`."""
    global _provider
    exporter = _exporter(settings)
    if exporter is None or _provider is not None:
        return
    _provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    _provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(_provider)


def shutdown_telemetry() -> None:
    """Flush spans still in the batch queue before the process exits."""
    if _provider is not None:
        _provider.shutdown()
