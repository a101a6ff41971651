"""The server's state: the served models, hot swap, model-store polling and the drift loop."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from kiln.errors import KilnError
from kiln.monitor.drift import drift_for_served
from kiln.monitor.sampling import SampleStore
from kiln.runtime import freeze_heap
from kiln.serve.auth import KeyStore
from kiln.serve.batcher import MicroBatcher
from kiln.serve.generation import LM_INPUTS
from kiln.serve.loading import load_model
from kiln.serve.metrics import ServeMetrics
from kiln.serve.schema import CONTENT_TYPES, input_schema
from kiln.serve.served import ServedModel, drift_summary, example_row
from kiln.serve.settings import ServeSettings
from kiln.serve.versions import ModelStore, check_name, metrics_of, model_dir_of
from kiln.serve.workers import ModelWorker

log = logging.getLogger("kiln.serve")


class ServerState:
    """Everything the routes share: settings, keys, metrics, the sample store and `models` (name → ServedModel)."""

    def __init__(self, models: Mapping[str, Any], registry: str | Path | None, settings: ServeSettings) -> None:
        self.settings = settings
        self.initial = dict(models)
        self.store = ModelStore(registry, create=False) if registry is not None else None
        self.keys = KeyStore(settings.api_keys) if settings.api_keys else None
        self.metrics = ServeMetrics()
        self.models: dict[str, ServedModel] = {}
        self.ready = False
        self.tasks: list[asyncio.Task] = []
        self.sampler = None
        self.preloaded: dict[str, ServedModel] = {}
        self.load_failures: dict[tuple[str, str], str] = {}  # (name, version) → why it cannot load; not retried
        sample_db = settings.sample_db or (self.store.root / "monitoring.sqlite" if self.store and settings.sample_rate > 0 else None)
        if settings.sample_rate > 0:
            if sample_db is None:
                raise KilnError("--sample-rate needs --sample-db (or --registry, which keeps samples in it)")

            self.sampler = SampleStore(sample_db, rate=settings.sample_rate)

    def not_ready(self) -> dict[str, str]:
        """Model name → why it is not ready: its batcher stopped, or a worker busy past its deadline."""
        out = {}
        for name, served in self.models.items():
            if served.batcher is not None and not served.batcher.running:
                out[name] = "batcher not running"
            elif served.threads.wedged():
                out[name] = f"a worker has been busy {served.threads.overdue_s():.1f} s past its deadline"
        return out

    @property
    def monitored(self) -> bool:
        return self.sampler is not None and self.settings.drift_interval_s > 0

    # -- model lifecycle ---------------------------------------------------------------------------
    def _make(self, name: str, version: str, model: Any, path: Path | None, metrics: dict[str, Any]) -> ServedModel:
        s = self.settings
        if getattr(model, "kind", None) == "language_model":
            worker = ModelWorker(name, s.generate_workers, s.generate_queue_size, s.generate_nice)
            return ServedModel(name, version, path, model, None, metrics, LM_INPUTS, {"prompt": ""}, task="generation", worker=worker)
        hist = self.metrics.batch_size.labels(name, version)
        on_batch = None
        inputs = input_schema(model.config)
        if self.sampler is not None:
            sampler, content = self.sampler, [f["name"] for f in inputs if f["type"] in CONTENT_TYPES]

            def on_batch(frame: Any, outputs: Any) -> None:  # file content is not stored (nor compared for drift)
                sampler.record(name, version, frame.drop(columns=content) if content else frame, outputs)

        batcher = MicroBatcher(model.predict, inputs, s.max_batch_size, s.max_wait_ms, on_batch=on_batch, observe_batch=hist.observe,
                               worker=ModelWorker(name, 1, 1), queue_size=s.queue_size)
        return ServedModel(name, version, path, model, batcher, metrics, inputs, example_row(path, model))

    def _load_now(self, name: str, version: str, source: Any) -> ServedModel:
        if isinstance(source, (str, Path)):
            if self.settings.runtime == "onnx":
                path = Path(source)
                model = load_model(path, "onnx")
                metrics = dict(getattr(model, "metrics", {}) or {})
            else:
                path = model_dir_of(source)
                model, metrics = load_model(path), metrics_of(path)
        else:  # an already loaded Model (tests, notebooks)
            path, model, metrics = None, source, dict(getattr(source, "metrics", {}) or {})
        return self._make(name, version, model, path, metrics)

    async def _load(self, name: str, version: str, source: Any) -> ServedModel:
        return await asyncio.to_thread(self._load_now, name, version, source)

    def preload(self) -> None:
        """Load every model now, before the server starts: a broken one is a one-line KilnError and the
        server refuses to start. What is loaded here is installed at startup without loading it again."""
        self.preloaded = {name: self._load_now(check_name(name), "1", source) for name, source in self.initial.items()}
        if self.store is not None:
            for name, version in self.store.promoted().items():
                entry = self.store.get(name, version)
                self.preloaded[name] = self._load_now(name, str(version), entry.path)

    async def install(self, served: ServedModel) -> None:
        """Swap in a model: new requests go to it at once; the old batcher finishes its queue."""
        if served.batcher is not None:
            served.batcher.start()
        old = self.models.get(served.name)
        self.models[served.name] = served
        self.metrics.loaded.labels(served.name, served.version).set(1)
        if old is not None:
            if old.version != served.version:
                self.metrics.loaded.labels(old.name, old.version).set(0)
            if old.batcher is not None:
                await old.batcher.close()
            if old.worker is not None:
                old.worker.close()
            log.info("model %s: version %s replaced by %s", served.name, old.version, served.version)

    async def startup(self) -> None:
        preloaded, self.preloaded = self.preloaded, {}
        for served in preloaded.values():
            await self.install(served)
        for name, source in self.initial.items():
            if name not in preloaded:
                await self.install(await self._load(check_name(name), "1", source))
        if self.store is not None:
            await self.sync_store()
            self.tasks.append(asyncio.create_task(self._poll(), name="kiln-store-poll"))
        if self.sampler is not None and self.settings.drift_interval_s > 0:
            self.tasks.append(asyncio.create_task(self._drift_loop(), name="kiln-drift"))
        freeze_heap(collect=True)
        self.ready = True

    async def shutdown(self) -> None:
        self.ready = False
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            try:
                await task
            except (asyncio.CancelledError, Exception):  # noqa: BLE001
                pass
        await asyncio.gather(*(m.batcher.close() for m in list(self.models.values()) if m.batcher is not None))
        for served in self.models.values():
            if served.worker is not None:
                served.worker.close()
        if self.sampler is not None:
            self.sampler.close()

    # -- model store polling -----------------------------------------------------------------------
    async def sync_store(self) -> list[str]:
        """Load every promoted version that differs from the one served; returns what changed."""
        assert self.store is not None
        promoted = await asyncio.to_thread(self.store.promoted)
        changed = []
        for name, version in promoted.items():
            current = self.models.get(name)
            if current is not None and current.version == str(version) or (name, str(version)) in self.load_failures:
                continue
            try:
                entry = await asyncio.to_thread(self.store.get, name, version)
                await self.install(await self._load(name, str(version), entry.path))
                changed.append(f"{name}:{version}")
            except Exception as exc:  # noqa: BLE001 - keep serving the old version; versions are immutable: never retried
                await self._load_failed(name, str(version), exc, current)
        if changed:
            freeze_heap(collect=True)
        return changed

    async def _load_failed(self, name: str, version: str, exc: Exception, current: ServedModel | None) -> None:
        """Log why once, remember it (not retried every poll) and record it in the registry."""
        reason = str(exc) if isinstance(exc, KilnError) else f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
        self.load_failures[(name, version)] = reason
        still = f"still serving version {current.version}" if current is not None else "not serving it"
        log.error("model %s: promoted version %s cannot be loaded (%s); %s. Promote another version to replace it", name, version, reason, still)
        try:
            await asyncio.to_thread(self.store.record_load_error, name, int(version), reason)
        except Exception as err:  # noqa: BLE001 - a read-only registry: the log line above is the record
            log.warning("could not record the load error in the registry: %s", err)

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self.settings.poll_s)
            try:
                await self.sync_store()
            except Exception:  # noqa: BLE001
                log.exception("model store poll failed")

    # -- drift -------------------------------------------------------------------------------------
    async def _drift_loop(self) -> None:
        while True:  # first right away: samples stored before a restart count at once
            await self.update_drift()
            await asyncio.sleep(self.settings.drift_interval_s)

    async def update_drift(self) -> None:

        for served in list(self.models.values()):
            if served.path is None or self.sampler is None:
                continue
            try:
                report = await asyncio.to_thread(drift_for_served, served.path, self.sampler, served.name, served.version)
            except Exception:  # noqa: BLE001
                log.exception("drift for %s failed", served.name)
                continue
            if report is not None:
                set_drift_gauges(self.metrics, served.name, served.version, report)
                served.drift = drift_summary(report)


def set_drift_gauges(metrics: ServeMetrics, name: str, version: str, report: dict[str, Any]) -> None:
    for feature, row in report["features"].items():
        if row.get("psi") is not None:
            metrics.drift_psi.labels(name, version, feature).set(row["psi"])
        if row.get("ks_pvalue") is not None:
            metrics.drift_ks_pvalue.labels(name, version, feature).set(row["ks_pvalue"])
    for output, row in report["predictions"].items():
        if row.get("psi") is not None:
            metrics.drift_prediction_psi.labels(name, version, output).set(row["psi"])
    metrics.drift_flag.labels(name, version).set(1 if report["drift"] else 0)
    metrics.drift_samples.labels(name, version).set(report["rows"])
