"""Prometheus metrics for one server (own CollectorRegistry, so several apps can live in one process)."""

from __future__ import annotations

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


class ServeMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._children: dict[tuple[str, str, int], tuple] = {}
        labels = ["model", "version"]
        self.requests = Counter("kiln_requests", "Prediction requests answered, by HTTP status code.",
                                [*labels, "code"], registry=self.registry)
        self.errors = Counter("kiln_request_errors", "Prediction requests answered with an error status (>= 400).",
                              [*labels, "code"], registry=self.registry)
        self.rows = Counter("kiln_predicted_rows", "Rows predicted.", labels, registry=self.registry)
        self.latency = Histogram("kiln_request_latency_seconds", "Prediction request latency (body read to response).",
                                 labels, buckets=LATENCY_BUCKETS, registry=self.registry)
        self.batch_size = Histogram("kiln_batch_size_rows", "Rows per model.predict call made by the micro-batcher.",
                                    labels, buckets=BATCH_BUCKETS, registry=self.registry)
        self.loaded = Gauge("kiln_model_loaded", "1 for the model version now being served.", labels, registry=self.registry)
        self.drift_psi = Gauge("kiln_drift_psi", "Population stability index of served inputs vs training, per feature.",
                               [*labels, "feature"], registry=self.registry)
        self.drift_ks_pvalue = Gauge("kiln_drift_ks_pvalue", "Two-sample KS test p-value (numeric features) vs training.",
                                     [*labels, "feature"], registry=self.registry)
        self.drift_prediction_psi = Gauge("kiln_drift_prediction_psi", "PSI of the prediction distribution vs training.",
                                          [*labels, "output"], registry=self.registry)
        self.drift_flag = Gauge("kiln_drift_detected", "1 when any feature or prediction drift check fails.",
                                labels, registry=self.registry)
        self.drift_samples = Gauge("kiln_drift_sample_rows", "Sampled rows the drift figures are based on.",
                                   labels, registry=self.registry)

    def observe(self, model: str, version: str, code: int, seconds: float | None = None, rows: int = 0) -> None:
        key = (model, version, code)
        children = self._children.get(key)
        if children is None:  # label lookups once per (model, version, code), not per request
            c = str(code)
            children = self._children[key] = (self.requests.labels(model, version, c),
                                              self.errors.labels(model, version, c) if code >= 400 else None,
                                              self.latency.labels(model, version), self.rows.labels(model, version))
        requests, errors, latency, predicted = children
        requests.inc()
        if errors is not None:
            errors.inc()
        if seconds is not None:
            latency.observe(seconds)
        if rows:
            predicted.inc(rows)

    def render(self) -> bytes:
        return generate_latest(self.registry)
