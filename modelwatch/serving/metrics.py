"""The service's Prometheus metrics, in a registry of its own (GET /metrics)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

PREFIX = "modelwatch_serving"
# seconds; scoring one row takes ~1-5 ms, 10,000 rows up to a second or so
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class ServingMetrics:
    """Request latency, requests and errors by status, rows, model version, shadow, reloads."""

    def __init__(self) -> None:
        self.registry = r = CollectorRegistry()
        self.latency = Histogram(
            f"{PREFIX}_request_latency_seconds",
            "Scoring request latency, receipt to response (server side)",
            ["endpoint"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.requests = Counter(
            f"{PREFIX}_requests", "Scoring requests by HTTP status", ["status"], registry=r
        )
        self.errors = Counter(
            f"{PREFIX}_errors",
            "Scoring requests answered 4xx or 5xx, by status",
            ["status"],
            registry=r,
        )
        self.rows = Counter(f"{PREFIX}_rows_scored", "Rows scored by the champion", registry=r)
        self.model_version = Gauge(
            f"{PREFIX}_model_version_info",
            "1 for the version that serves now",
            ["alias", "version"],
            registry=r,
        )
        self.shadow_rows = Counter(
            f"{PREFIX}_shadow_rows_scored", "Rows scored in shadow by the challenger", registry=r
        )
        self.shadow_errors = Counter(
            f"{PREFIX}_shadow_errors", "Requests the challenger failed to score", registry=r
        )
        self.shadow_skipped = Counter(
            f"{PREFIX}_shadow_skipped",
            "Requests drawn for shadow scoring but not scored (the shadow queue was full)",
            registry=r,
        )
        self.reloads = Counter(
            f"{PREFIX}_reloads", "Models loaded after an alias moved", ["alias"], registry=r
        )
        self.reload_failures = Counter(
            f"{PREFIX}_reload_failures",
            "Alias checks or model loads that failed",
            ["alias"],
            registry=r,
        )
        self.log_failures = Counter(
            f"{PREFIX}_prediction_log_write_failures",
            "Prediction log flushes that failed (their records are kept for the next flush)",
            registry=r,
        )

    def observe(self, endpoint: str, status: int, seconds: float, rows: int) -> None:
        """Counts one scoring request."""
        self.latency.labels(endpoint).observe(seconds)
        self.requests.labels(str(status)).inc()
        if status >= 400:
            self.errors.labels(str(status)).inc()
        elif rows:
            self.rows.inc(rows)

    def serving(self, versions: dict[str, str | None]) -> None:
        """Sets the versions that serve now, by alias (None: no model behind it)."""
        self.model_version.clear()
        for alias, version in versions.items():
            if version is not None:
                self.model_version.labels(alias, version).set(1)

    def render(self) -> bytes:
        return generate_latest(self.registry)
