"""The on-disk model store behind `kiln registry` / `kiln serve --registry`: versioned copies of model
directories plus a SQLite index (not a name → class lookup like `kiln.registry`).

Layout of a store folder:
    index.sqlite               versions, the promotion stack per name (WAL mode)
    models/<name>/<version>/   an immutable copy of a model directory (model.json, weights, stats.json, metrics.json)

Versions are integers per name, allocated inside an IMMEDIATE transaction, so concurrent pushes get
distinct versions. A copy is written to a temp folder and renamed into place before it is indexed.
`promote` pushes a version onto the name's promotion stack; `rollback` pops it (the previous one serves).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kiln.artifact import META, model_dir
from kiln.errors import KilnError, did_you_mean

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
DEFAULT_REGISTRY = Path(os.environ.get("KILN_REGISTRY", "registry"))

_SCHEMA = """
CREATE TABLE IF NOT EXISTS versions (
    name TEXT NOT NULL, version INTEGER NOT NULL, path TEXT NOT NULL, source TEXT, created_at REAL NOT NULL,
    metrics TEXT, PRIMARY KEY (name, version));
CREATE TABLE IF NOT EXISTS promotions (
    id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL, version INTEGER NOT NULL,
    promoted_at REAL NOT NULL, rolled_back_at REAL);
CREATE INDEX IF NOT EXISTS promotions_name ON promotions (name, rolled_back_at, id);
CREATE TABLE IF NOT EXISTS load_errors (
    name TEXT NOT NULL, version INTEGER NOT NULL, reason TEXT NOT NULL, at REAL NOT NULL, PRIMARY KEY (name, version));
"""


def check_name(name: str) -> str:
    if not NAME_RE.match(name or ""):
        raise KilnError(f"invalid model name {name!r}: use letters, digits, '.', '_' or '-' (up to 100 characters)")
    return name


def model_dir_of(path: str | Path) -> Path:
    """The model directory inside a run directory, or the path itself if it is one."""
    folder = model_dir(path)
    if (folder / META).is_file():
        return folder
    raise KilnError(f"not a kiln model or run directory: {path} (expected model.json or model/model.json)")


def metrics_of(path: str | Path) -> dict[str, Any]:
    """metrics.json beside or inside a model directory (a run directory keeps it beside `model/`)."""
    folder = model_dir_of(path)
    for candidate in (folder / "metrics.json", folder.parent / "metrics.json"):
        if candidate.is_file():
            try:
                return json.loads(candidate.read_text(encoding="utf-8"))
            except ValueError:
                return {}
    return {}


@dataclass(frozen=True)
class Version:
    name: str
    version: int
    path: Path
    created_at: float
    source: str | None
    metrics: dict[str, Any]
    promoted: bool = False
    load_error: str | None = None  # why a server could not load this version (it kept serving the previous one)


class ModelStore:
    """Versions of named models in one folder: push, promote, rollback, and what a server polls."""

    def __init__(self, root: str | Path, create: bool = True) -> None:
        self.root = Path(root)
        if not create and not (self.root / "index.sqlite").is_file():
            raise KilnError(f"no model registry at {self.root} (push a model first: kiln registry push RUN_DIR --name NAME --registry {self.root})")
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "models").mkdir(exist_ok=True)
        with self._connect() as db:
            db.executescript(_SCHEMA)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.root / "index.sqlite", timeout=30.0, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA busy_timeout=30000")
            yield db
        finally:
            db.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    # -- writes -----------------------------------------------------------------------------------
    def push(self, run_dir: str | Path, name: str, promote: bool | None = None) -> Version:
        """Copy a model (or run) directory in as the next version of NAME. The first version of a
        name is promoted automatically unless `promote=False`."""
        check_name(name)
        source = model_dir_of(run_dir)
        metrics = metrics_of(run_dir)
        parent = self.root / "models" / name
        try:
            parent.mkdir(parents=True, exist_ok=True)
            return self._push(source, run_dir, metrics, parent, name, promote)
        except (OSError, sqlite3.Error) as exc:  # disk full, permissions: the index is untouched, the staged copy removed
            raise KilnError(f"cannot push {source} into {self.root}: {getattr(exc, 'strerror', None) or exc}") from None

    def _push(self, source: Path, run_dir: str | Path, metrics: dict[str, Any], parent: Path, name: str,
              promote: bool | None) -> Version:
        tmp = Path(tempfile.mkdtemp(prefix=".push-", dir=parent))
        try:
            staged = tmp / "model"
            shutil.copytree(source, staged)
            if metrics and not (staged / "metrics.json").is_file():
                (staged / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
            for path in staged.rglob("*"):
                if path.is_file():
                    with open(path, "rb") as handle:
                        os.fsync(handle.fileno())
            with self._write() as db:
                (latest,) = db.execute("SELECT COALESCE(MAX(version), 0) FROM versions WHERE name = ?", (name,)).fetchone()
                version = int(latest) + 1
                final = parent / str(version)
                if final.exists():  # a leftover from a crash between rename and commit
                    shutil.rmtree(final)
                os.rename(staged, final)
                now = time.time()
                db.execute("INSERT INTO versions (name, version, path, source, created_at, metrics) VALUES (?, ?, ?, ?, ?, ?)",
                           (name, version, str(final.relative_to(self.root)), str(Path(run_dir).resolve()), now, json.dumps(metrics)))
                current = self._current(db, name)
                if promote or (promote is None and current is None):
                    db.execute("INSERT INTO promotions (name, version, promoted_at) VALUES (?, ?, ?)", (name, version, now))
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return self.get(name, version)

    def promote(self, name: str, version: int) -> Version:
        with self._write() as db:
            if db.execute("SELECT 1 FROM versions WHERE name = ? AND version = ?", (name, int(version))).fetchone() is None:
                raise KilnError(f"no version {version} of model '{name}' in {self.root}{self._known(db, name)}")
            db.execute("INSERT INTO promotions (name, version, promoted_at) VALUES (?, ?, ?)", (name, int(version), time.time()))
        return self.get(name, int(version))

    def rollback(self, name: str) -> Version:
        """Undo the latest promotion of NAME: the version promoted before it serves again."""
        with self._write() as db:
            rows = db.execute("SELECT id, version FROM promotions WHERE name = ? AND rolled_back_at IS NULL ORDER BY id DESC LIMIT 2",
                              (name,)).fetchall()
            if not rows:
                raise KilnError(f"model '{name}' has no promoted version in {self.root}{self._known(db, name)}")
            if len(rows) < 2:
                raise KilnError(f"cannot roll back '{name}': version {rows[0][1]} is the only version ever promoted")
            db.execute("UPDATE promotions SET rolled_back_at = ? WHERE id = ?", (time.time(), rows[0][0]))
            version = rows[1][1]
        return self.get(name, version)

    def record_load_error(self, name: str, version: int, reason: str) -> None:
        """A server could not load this version: `kiln registry list` shows why, instead of 'served'."""
        with self._write() as db:
            db.execute("INSERT OR REPLACE INTO load_errors (name, version, reason, at) VALUES (?, ?, ?, ?)",
                       (name, int(version), reason, time.time()))

    # -- reads ------------------------------------------------------------------------------------
    @staticmethod
    def _current(db: sqlite3.Connection, name: str) -> int | None:
        row = db.execute("SELECT version FROM promotions WHERE name = ? AND rolled_back_at IS NULL ORDER BY id DESC LIMIT 1",
                         (name,)).fetchone()
        return None if row is None else int(row[0])

    def _known(self, db: sqlite3.Connection, name: str) -> str:
        names = [r[0] for r in db.execute("SELECT DISTINCT name FROM versions ORDER BY name")]
        if name not in names:
            return f"{did_you_mean(name, names)}; models: {', '.join(names) or 'none'}"
        versions = [str(r[0]) for r in db.execute("SELECT version FROM versions WHERE name = ? ORDER BY version", (name,))]
        return f"; versions: {', '.join(versions)}"

    def promoted(self) -> dict[str, int]:
        """NAME → promoted version, for every name that has one (what a server polls)."""
        with self._connect() as db:
            rows = db.execute(
                "SELECT p.name, p.version FROM promotions p JOIN (SELECT name, MAX(id) AS id FROM promotions "
                "WHERE rolled_back_at IS NULL GROUP BY name) last ON p.id = last.id ORDER BY p.name").fetchall()
        return {name: int(version) for name, version in rows}

    def get(self, name: str, version: int | None = None) -> Version:
        with self._connect() as db:
            current = self._current(db, name)
            if version is None:
                if current is None:
                    raise KilnError(f"model '{name}' has no promoted version in {self.root}{self._known(db, name)}")
                version = current
            row = db.execute("SELECT name, version, path, created_at, source, metrics FROM versions WHERE name = ? AND version = ?",
                             (name, int(version))).fetchone()
            if row is None:
                raise KilnError(f"no version {version} of model '{name}' in {self.root}{self._known(db, name)}")
        return self._version(row, current)

    def versions(self, name: str | None = None) -> list[Version]:
        with self._connect() as db:
            query = "SELECT name, version, path, created_at, source, metrics FROM versions"
            rows = db.execute(query + (" WHERE name = ?" if name else "") + " ORDER BY name, version", (name,) if name else ()).fetchall()
            errors = {(n, int(v)): reason for n, v, reason in db.execute("SELECT name, version, reason FROM load_errors")}
        current = self.promoted()
        return [self._version(r, current.get(r[0]), errors.get((r[0], int(r[1])))) for r in rows]

    def _version(self, row: tuple, current: int | None, load_error: str | None = None) -> Version:
        name, version, path, created, source, metrics = row
        return Version(name, int(version), self.root / path, float(created), source, json.loads(metrics or "{}"), current == int(version),
                       load_error)
