"""The HTTP service: FastAPI app with per-model micro-batching, API keys, limits and Prometheus metrics."""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import time
from collections.abc import Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from kiln.errors import KilnError
from kiln.serve.auth import AuthError, KeyStore
from kiln.serve.batcher import BatcherClosed, MicroBatcher
from kiln.serve.generation import LM_INPUTS, LM_OUTPUTS, GenerateRequest, check_prompt, generate_text, parse_request, stream_events
from kiln.serve.metrics import ServeMetrics
from kiln.serve.registry import ModelRegistry, check_name, metrics_of, model_dir_of
from kiln.serve.schema import RequestError, input_schema, output_schema, validate_rows

log = logging.getLogger("kiln.serve")


@dataclass
class ServeSettings:
    max_batch_size: int = 32  # rows per model.predict call; 1 turns batching off
    max_wait_ms: float = 5.0  # how long the batcher waits for more rows
    timeout_s: float = 10.0  # per request, from body read to prediction (504 past it)
    max_body_bytes: int = 1 << 20  # 413 past it
    max_rows: int | None = 10_000  # rows per request (422 past it)
    api_keys: Path | None = None  # key file; None = no access control
    poll_s: float = 1.0  # registry poll interval
    sample_rate: float = 0.0  # fraction of predicted rows stored for monitoring
    sample_db: Path | None = None  # SQLite sample store (default: <registry>/monitoring.sqlite)
    drift_interval_s: float = 60.0  # how often drift gauges are recomputed (0 = never)
    runs_dir: Path | None = None  # training runs shown on the dashboard (GET /v1/runs)


@dataclass
class ServedModel:
    name: str
    version: str
    path: Path | None
    model: Any
    batcher: MicroBatcher | None  # None for language models (generate, no batching)
    metrics: dict[str, Any] = field(default_factory=dict)
    inputs: list[dict[str, str]] = field(default_factory=list)  # the input schema, computed once
    example: dict[str, Any] = field(default_factory=dict)  # a typical input row (from stats.json)
    drift: dict[str, Any] | None = None  # the latest drift summary (sampling on)
    task: str = "prediction"  # or "generation" (a language model: POST .../generate)

    def describe(self, monitored: bool = False) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "inputs": self.inputs,
            "task": self.task,
            "outputs": LM_OUTPUTS if self.task == "generation" else output_schema(self.model.config),
            "metrics": self.metrics,
            "example": self.example,
            "drift": self.drift_status(monitored),
        }

    def drift_status(self, monitored: bool) -> dict[str, Any]:
        """`status`: not monitored | no training statistics | waiting for samples | too few samples | ok | drift."""
        if not monitored:
            return {"status": "not monitored"}
        if self.path is None or not (self.path / "stats.json").is_file():
            return {"status": "no training statistics"}
        if self.drift is None:
            return {"status": "waiting for samples"}
        return self.drift


def _drift_summary(report: dict[str, Any]) -> dict[str, Any]:
    status = "drift" if report["drift"] else ("ok" if report.get("enough_data", True) else "too few samples")
    return {"status": status, "rows": report["rows"], "features": report.get("drifted_features", []),
            "predictions": report.get("drifted_predictions", []), "checked_at": time.time()}


def _example_row(path: Path | None, model: Any) -> dict[str, Any]:
    """A plausible input row for the dashboard's try-it form: training means and most frequent values."""
    from kiln.io import read_json

    stats: dict[str, Any] = {}
    if path is not None and (path / "stats.json").is_file():
        try:
            stats = read_json(path / "stats.json").get("features", {})
        except Exception:  # noqa: BLE001 - the example is a convenience
            stats = {}
    row: dict[str, Any] = {}
    for feature in input_schema(model.config):
        ref = stats.get(feature["name"], {})
        value: Any = None
        if feature["type"] == "numeric" and isinstance(ref.get("mean"), (int, float)):
            value = round(float(ref["mean"]), 3)
        elif ref.get("kind") == "categorical" and ref.get("frequencies"):
            value = next(iter(ref["frequencies"]))
        elif feature["type"] == "text":
            value = ""
        row[feature["name"]] = value
    return row


class _KilnApp(FastAPI):
    """FastAPI with one shortcut: `POST /v1/models/{name}/predict` goes straight to its handler, past
    routing, dependency solving and the middleware stack, which otherwise cost about as much CPU per
    request as the handler itself. Every other request, and this route's OpenAPI entry, are FastAPI's."""

    predict_handler: Any = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and self.predict_handler is not None:
            path, root = scope["path"], scope.get("root_path") or ""
            if root and path.startswith(root):
                path = path[len(root):]
            if path.startswith("/v1/models/") and path.endswith("/predict") and "/" not in path[11:-8] and len(path) > 19:
                await self._predict(path[11:-8], scope, receive, send)
                return
        await super().__call__(scope, receive, send)

    async def _predict(self, name: str, scope: Any, receive: Any, send: Any) -> None:
        from starlette.requests import ClientDisconnect

        try:
            response = await self.predict_handler(name, Request(scope, receive))
        except ClientDisconnect:
            return
        except Exception:  # noqa: BLE001 - what FastAPI's error middleware would do
            log.exception("predict request for %s failed", name)
            response = _error(500, "internal server error")
        await response(scope, receive, send)


def _name_for(path: Path) -> str:
    path = path.resolve()
    return path.parent.name if path.name == "model" and (path.parent / "config.yaml").is_file() else path.name


class _Call:
    """One request's bookkeeping: when it started and its metric labels (model, version)."""

    def __init__(self, metrics: ServeMetrics, name: str, served: ServedModel | None) -> None:
        self.metrics, self.start = metrics, time.perf_counter()
        self.label = (name, served.version) if served is not None else ("_unknown", "")

    def fail(self, status: int, message: str, field_: str | None = None) -> JSONResponse:
        self.metrics.observe(*self.label, status, time.perf_counter() - self.start)
        return _error(status, message, field_)

    def ok(self, rows: int = 0) -> None:
        self.metrics.observe(*self.label, 200, time.perf_counter() - self.start, rows=rows)


def _error(status: int, message: str, field_: str | None = None, **headers: str) -> JSONResponse:
    body: dict[str, Any] = {"detail": message}
    if field_ is not None:
        body["field"] = field_
    return JSONResponse(body, status_code=status, headers=headers or None)


class ServerState:
    def __init__(self, models: Mapping[str, Any], registry: str | Path | None, settings: ServeSettings) -> None:
        self.settings = settings
        self.initial = dict(models)
        self.registry = ModelRegistry(registry, create=False) if registry is not None else None
        self.keys = KeyStore(settings.api_keys) if settings.api_keys else None
        self.metrics = ServeMetrics()
        self.models: dict[str, ServedModel] = {}
        self.ready = False
        self.tasks: list[asyncio.Task] = []
        self.sampler = None
        sample_db = settings.sample_db or (self.registry.root / "monitoring.sqlite" if self.registry and settings.sample_rate > 0 else None)
        if settings.sample_rate > 0:
            if sample_db is None:
                raise KilnError("--sample-rate needs --sample-db (or --registry, which keeps samples in it)")
            from kiln.monitor.sampling import SampleStore

            self.sampler = SampleStore(sample_db, rate=settings.sample_rate)

    # -- model lifecycle ---------------------------------------------------------------------------
    def _make(self, name: str, version: str, model: Any, path: Path | None, metrics: dict[str, Any]) -> ServedModel:
        s = self.settings
        if getattr(model, "kind", None) == "language_model":
            return ServedModel(name, version, path, model, None, metrics, LM_INPUTS, {"prompt": ""}, task="generation")
        hist = self.metrics.batch_size.labels(name, version)
        on_batch = None
        if self.sampler is not None:
            sampler = self.sampler

            def on_batch(inputs: Any, outputs: Any) -> None:
                sampler.record(name, version, inputs, outputs)

        inputs = input_schema(model.config)
        batcher = MicroBatcher(model.predict, inputs, s.max_batch_size, s.max_wait_ms, on_batch=on_batch, observe_batch=hist.observe)
        return ServedModel(name, version, path, model, batcher, metrics, inputs, _example_row(path, model))

    async def _load(self, name: str, version: str, source: Any) -> ServedModel:
        import kiln

        if isinstance(source, (str, Path)):
            path = model_dir_of(source)
            model = await asyncio.to_thread(kiln.load, path)
            metrics = metrics_of(path)
        else:  # an already loaded Model (tests, notebooks)
            path, model, metrics = None, source, dict(getattr(source, "metrics", {}) or {})
        return self._make(name, version, model, path, metrics)

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
            log.info("model %s: version %s replaced by %s", served.name, old.version, served.version)

    async def startup(self) -> None:
        for name, source in self.initial.items():
            await self.install(await self._load(check_name(name), "1", source))
        if self.registry is not None:
            await self.sync_registry()
            self.tasks.append(asyncio.create_task(self._poll(), name="kiln-registry-poll"))
        if self.sampler is not None and self.settings.drift_interval_s > 0:
            self.tasks.append(asyncio.create_task(self._drift_loop(), name="kiln-drift"))
        _freeze_heap()
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
        if self.sampler is not None:
            self.sampler.close()

    async def sync_registry(self) -> list[str]:
        """Load every promoted version that differs from the one served; returns what changed."""
        assert self.registry is not None
        promoted = await asyncio.to_thread(self.registry.promoted)
        changed = []
        for name, version in promoted.items():
            current = self.models.get(name)
            if current is not None and current.version == str(version):
                continue
            try:
                entry = await asyncio.to_thread(self.registry.get, name, version)
                await self.install(await self._load(name, str(version), entry.path))
                changed.append(f"{name}:{version}")
            except Exception:  # noqa: BLE001 - keep serving the old version
                log.exception("could not load %s version %s from the registry", name, version)
        if changed:
            _freeze_heap()
        return changed

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self.settings.poll_s)
            try:
                await self.sync_registry()
            except Exception:  # noqa: BLE001
                log.exception("registry poll failed")

    async def _drift_loop(self) -> None:
        while True:  # first right away: samples stored before a restart count at once
            await self.update_drift()
            await asyncio.sleep(self.settings.drift_interval_s)

    async def update_drift(self) -> None:
        from kiln.monitor.drift import drift_for_served

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
                served.drift = _drift_summary(report)


def _freeze_heap() -> None:
    """Move everything loaded so far (torch, pandas, models: a few hundred thousand objects) out of the
    cyclic garbage collector's reach. Otherwise each full collection walks them all, a pause of 100 ms
    or more under request load, which shows up directly in tail latency."""
    gc.collect()
    gc.freeze()


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


_GENERATE_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": GenerateRequest.model_json_schema(),
                                         "example": {"prompt": "ROMEO:", "max_new_tokens": 50, "temperature": 0.8, "top_k": 50}}},
    }
}

_PREDICT_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": {
            "type": "object", "required": ["rows"],
            "properties": {"rows": {"type": "array", "items": {"type": "object"},
                                    "description": "one object per row: input column → value (see GET /v1/models)"}},
        }, "example": {"rows": [{"age": 22, "sex": "male"}]}}},
    }
}


def create_app(models: Mapping[str, Any] | Sequence[str | Path] | None = None, registry: str | Path | None = None,
               settings: ServeSettings | None = None) -> FastAPI:
    """Build the service. `models`: model/run directories (name = directory name) or {name: dir or Model};
    `registry`: a registry folder whose promoted versions are served and polled for updates."""
    settings = settings or ServeSettings()
    if isinstance(models, Mapping):
        sources: dict[str, Any] = dict(models)
    else:
        sources = {}
        for item in models or []:
            name = _name_for(Path(item))
            if name in sources:
                raise KilnError(f"two models are named '{name}' (model name = directory name); rename one directory")
            sources[name] = item
    if not sources and registry is None:
        raise KilnError("nothing to serve: give model directories or --registry DIR")
    for name, source in sources.items():
        check_name(name)
        if isinstance(source, (str, Path)):
            model_dir_of(source)  # a wrong path is a one-line input error now, not a failed startup later
    state = ServerState(sources, registry, settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await state.startup()
        try:
            yield
        finally:
            await state.shutdown()

    app = _KilnApp(title="kiln model server", version="1", lifespan=lifespan,
                  description="Predictions from kiln models, with the exact preprocessing used in training.")
    app.state.kiln = state

    def auth_error(exc: AuthError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else {}
        return _error(exc.status, exc.message, **headers)

    @app.get("/", include_in_schema=False)
    async def dashboard() -> Response:
        """A small self-contained status page (no external assets)."""
        from importlib.resources import files

        from fastapi.responses import HTMLResponse

        return HTMLResponse(files("kiln.serve").joinpath("dashboard.html").read_text(encoding="utf-8"))

    @app.get("/health", tags=["ops"])
    async def health() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    @app.get("/ready", tags=["ops"])
    async def ready() -> Response:
        """Readiness: every model is loaded and its batcher runs (503 while starting or shutting down)."""
        ok = state.ready and bool(state.models) and all(m.batcher is None or m.batcher.running for m in state.models.values())
        body = {"status": "ready" if ok else "not ready", "models": {n: m.version for n, m in state.models.items()}}
        return JSONResponse(body, status_code=200 if ok else 503)

    @app.get("/metrics", tags=["ops"])
    async def metrics() -> Response:
        """Prometheus metrics."""
        from prometheus_client import CONTENT_TYPE_LATEST

        return Response(state.metrics.render(), media_type=CONTENT_TYPE_LATEST)

    @app.get("/v1/models", tags=["models"])
    async def list_models(request: Request) -> Response:
        """Served models (those the API key may call): name, version, input/output schema, metrics."""
        allowed = None
        if state.keys is not None:
            try:
                allowed = state.keys.authenticate(request.headers)
            except AuthError as exc:
                return auth_error(exc)
        monitored = state.sampler is not None and settings.drift_interval_s > 0
        items = [m.describe(monitored) for n, m in sorted(state.models.items()) if allowed is None or allowed.allows(n)]
        return JSONResponse({"models": items})

    def runs_access(request: Request) -> JSONResponse | None:
        if state.keys is not None:
            try:
                state.keys.authenticate(request.headers)  # any valid key may read training runs
            except AuthError as exc:
                return auth_error(exc)
        return None

    @app.get("/v1/runs", tags=["runs"])
    async def list_runs(request: Request) -> Response:
        """Training runs in the runs folder (`--runs`), newest first: model type, epochs, scalar metrics per split."""
        from kiln.serve.runs import list_runs as runs_in

        denied = runs_access(request)
        if denied is not None:
            return denied
        root = settings.runs_dir
        runs = await asyncio.to_thread(runs_in, root) if root is not None else []
        return JSONResponse({"folder": str(root) if root is not None else None, "runs": runs})

    @app.get("/v1/runs/{run}", tags=["runs"])
    async def get_run(run: str, request: Request) -> Response:
        """One run: its summary, training history (columns of history.csv) and confusion matrices."""
        from kiln.serve.runs import run_detail, run_path

        denied = runs_access(request)
        if denied is not None:
            return denied
        path = run_path(settings.runs_dir, run) if settings.runs_dir is not None else None
        if path is None:
            return _error(404, f"no run '{run}' in the runs folder" if settings.runs_dir is not None else "no runs folder (kiln serve --runs DIR)")
        return JSONResponse(await asyncio.to_thread(run_detail, path))

    @app.post("/v1/models/{name}/predict", tags=["models"], openapi_extra=_PREDICT_BODY)
    async def predict(name: str, request: Request) -> Response:
        """Predict rows: `{"rows": [{column: value}, ...]}` → one prediction object per row, in order."""
        return await predict_response(name, request)

    def admit(name: str, request: Request, task: str) -> tuple[_Call, ServedModel | None, Response | None]:
        """Key check, model lookup and task check shared by predict and generate; a response means refused."""
        served = state.models.get(name)
        call = _Call(state.metrics, name, served)
        if state.keys is not None:
            try:
                state.keys.authorize(request.headers, name)
            except AuthError as exc:
                state.metrics.observe(*call.label, exc.status)
                return call, None, auth_error(exc)
        if served is None:
            from kiln.errors import did_you_mean

            served_names = ", ".join(sorted(state.models)) or "none"
            return call, None, call.fail(404, f"unknown model '{name}'{did_you_mean(name, state.models)}; served: {served_names}")
        if served.task != task:
            kind, use = ("a language model", "generate with a prompt") if served.task == "generation" else ("not a language model", "predict with rows")
            return call, None, call.fail(422, f"model '{name}' is {kind}: POST /v1/models/{name}/{use}")
        return call, served, None

    async def predict_response(name: str, request: Request) -> Response:
        call, served, refused = admit(name, request, "prediction")
        if refused is not None:
            return refused
        fail = call.fail
        limit = settings.max_body_bytes
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            return fail(413, f"request body of {int(length)} bytes is over the limit of {limit} bytes")
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                return fail(413, f"request body is over the limit of {limit} bytes")
            chunks.append(chunk)
        try:
            body = json.loads(b"".join(chunks) or b"null")
        except ValueError as exc:
            return fail(422, f"body is not valid JSON: {exc}", "body")
        try:
            rows = validate_rows(body, served.inputs, settings.max_rows)
        except RequestError as exc:
            return fail(422, exc.message, exc.field)

        remaining = settings.timeout_s - (time.perf_counter() - call.start)
        try:
            checked = served.inputs
            for _ in range(5):  # a hot swap between lookup and submit: retry on the new model
                served = state.models[name]
                call.label = (name, served.version)
                if served.inputs != checked:  # the new version takes other inputs: check the rows again
                    try:
                        rows, checked = validate_rows(body, served.inputs, settings.max_rows), served.inputs
                    except RequestError as exc:
                        return fail(422, exc.message, exc.field)
                try:
                    future = served.batcher.submit(rows)
                    break
                except BatcherClosed:
                    await asyncio.sleep(0)
            else:
                return fail(503, f"model '{name}' is being replaced; retry")
            out = await asyncio.wait_for(future, max(remaining, 0.0))
        except TimeoutError:
            return fail(504, f"prediction took longer than the {settings.timeout_s:g} s limit")
        except KilnError as exc:
            return fail(422, str(exc))
        except Exception as exc:  # noqa: BLE001
            log.exception("prediction failed for model %s", name)
            return fail(500, f"prediction failed: {type(exc).__name__}")
        call.ok(rows=len(out))
        return JSONResponse({"model": name, "version": served.version, "predictions": out})

    @app.post("/v1/models/{name}/generate", tags=["models"], openapi_extra=_GENERATE_BODY)
    async def generate(name: str, request: Request) -> Response:
        """Continue a prompt with a language model: `{"prompt": ..., "max_new_tokens": 100, "temperature": 0.8,
        "top_k", "top_p", "seed", "stream": true}` → server-sent events (`data: {"token"}` ..., `event: done`),
        or one JSON object `{"text"}` with `"stream": false`."""
        call, served, refused = admit(name, request, "generation")
        if refused is not None:
            return refused
        fail = call.fail
        body = await request.body()
        if len(body) > settings.max_body_bytes:
            return fail(413, f"request body is over the limit of {settings.max_body_bytes} bytes")
        try:
            ask = parse_request(json.loads(body or b"null"))
            check_prompt(served.model, ask)
        except ValueError as exc:
            return fail(422, f"body is not valid JSON: {exc}", "body")
        except RequestError as exc:
            return fail(422, exc.message, exc.field)
        if ask.stream:
            call.ok()
            return StreamingResponse(stream_events(served.model, ask), media_type="text/event-stream",
                                     headers={"Cache-Control": "no-cache"})
        try:
            text = await asyncio.wait_for(generate_text(served.model, ask), settings.timeout_s)
        except TimeoutError:
            return fail(504, f"generation took longer than the {settings.timeout_s:g} s limit")
        call.ok()
        return JSONResponse({"model": name, "version": served.version, "text": text})

    app.predict_handler = predict_response
    return app
