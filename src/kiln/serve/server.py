"""Run the app under uvicorn (one process, or N worker processes through an app factory)."""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

from kiln.errors import KilnError
from kiln.serve.app import create_app
from kiln.serve.protocol import uvicorn_options
from kiln.serve.settings import ServeSettings

_ENV = "KILN_SERVE_SPEC"


def _spec(models: list[str], registry: str | None, settings: ServeSettings) -> str:
    data = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(settings).items()}
    return json.dumps({"models": models, "registry": registry, "settings": data})


def app_from_env() -> Any:
    """uvicorn factory for worker processes: the spec travels in an environment variable."""
    spec = json.loads(os.environ[_ENV])
    raw = spec["settings"]
    for key in ("api_keys", "sample_db", "runs_dir"):
        if raw.get(key):
            raw[key] = Path(raw[key])
    settings = ServeSettings(**raw)
    uvicorn_options(settings.timeout_s)  # this worker process's header deadline
    return create_app(spec["models"] or None, spec["registry"], settings)


def serve(models: list[str | Path], registry: str | Path | None = None, settings: ServeSettings | None = None,
          host: str = "127.0.0.1", port: int = 8000, workers: int = 1, log_level: str = "info",
          access_log: bool = True) -> None:
    import uvicorn

    settings = settings or ServeSettings()
    if workers < 1:
        raise KilnError(f"--workers must be at least 1 (got {workers})")
    # Build once in this process: input errors (bad paths, key file, registry) surface as one line here.
    app = create_app([str(m) for m in models] or None, registry, settings)
    app.state.kiln.preload()  # every model loads before uvicorn starts: a broken one is one line, exit 2
    options = uvicorn_options(settings.timeout_s)
    if workers == 1:
        uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=access_log, **options)
        return
    os.environ[_ENV] = _spec([str(Path(m).resolve()) for m in models], str(Path(registry).resolve()) if registry else None, settings)
    uvicorn.run("kiln.serve.server:app_from_env", factory=True, host=host, port=port, workers=workers,
                log_level=log_level, access_log=access_log, **options)
