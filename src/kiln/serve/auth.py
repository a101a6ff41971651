"""API keys: only sha256 hashes are stored, each with the models it may call.

Key file (JSON, or YAML by suffix):
    {"keys": [{"name": "team-a", "sha256": "<hex>", "models": ["titanic"]}]}
`"models": ["*"]` allows every model.
"""

from __future__ import annotations

import fcntl
import hashlib
import hmac
import json
import logging
import os
import secrets
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from kiln.errors import KilnError
from kiln.io import write_text

log = logging.getLogger("kiln.serve")


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def _is_yaml(path: Path) -> bool:
    return path.suffix.lower() in (".yaml", ".yml")


def read_key_file(path: str | Path) -> list[dict[str, Any]]:
    path = Path(path)
    if not path.is_file():
        raise KilnError(f"API key file not found: {path}")
    text = path.read_text(encoding="utf-8")
    try:
        data = yaml.safe_load(text) if _is_yaml(path) else json.loads(text or "{}")
    except (ValueError, yaml.YAMLError) as exc:
        raise KilnError(f"API key file {path} is not valid {'YAML' if _is_yaml(path) else 'JSON'}: {str(exc).splitlines()[0]}") from None
    keys = (data or {}).get("keys", []) if isinstance(data, dict) else None
    if not isinstance(keys, list):
        raise KilnError(f"API key file {path}: expected {{'keys': [...]}}")
    for i, entry in enumerate(keys):
        digest = entry.get("sha256") if isinstance(entry, dict) else None
        if not isinstance(digest, str) or len(digest) != 64:
            raise KilnError(f"API key file {path}: keys[{i}] needs a 64-character 'sha256'")
        models = entry.get("models", [])
        if not isinstance(models, list) or not all(isinstance(m, str) for m in models):
            raise KilnError(f"API key file {path}: keys[{i}].models must be a list of model names")
    return keys


@contextmanager
def _locked(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def add_key(path: str | Path, name: str, models: list[str]) -> str:
    """Create a random key for NAME allowed to call MODELS; store only its hash (atomically). Returns the key."""
    path = Path(path)
    models = [m.strip() for m in models if m.strip()]
    if not name.strip():
        raise KilnError("key name must not be empty")
    if not models:
        raise KilnError("--models needs at least one model name (or '*')")
    with _locked(path):
        keys = read_key_file(path) if path.exists() else []
        if any(k.get("name") == name for k in keys):
            raise KilnError(f"a key named '{name}' already exists in {path}")
        key = "kiln_" + secrets.token_urlsafe(32)
        keys.append({"name": name, "sha256": hash_key(key), "models": models})
        data = {"keys": keys}
        text = yaml.safe_dump(data, sort_keys=False) if _is_yaml(path) else json.dumps(data, indent=2) + "\n"
        write_text(path, text)
        os.chmod(path, 0o600)
    return key


class AuthError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class Principal:
    name: str
    models: list[str]

    def allows(self, model: str) -> bool:
        return "*" in self.models or model in self.models


class KeyStore:
    """Checks `Authorization: Bearer KEY` or `X-API-Key: KEY`; re-reads the file when it changes.

    Deleting the key file revokes every key once it has been gone for `MISSING_GRACE_S` (an editor
    that deletes before writing is ridden over); a broken edit keeps the last good keys. Both are
    logged once."""

    MISSING_GRACE_S = 2.0

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._mtime: float | None = None
        self._keys: dict[str, Principal] = {}
        self._missing_since: float | None = None
        self._broken: float | None = None
        self._reload()

    def _reload(self) -> None:
        try:
            mtime = self.path.stat().st_mtime_ns
        except FileNotFoundError:
            if self._mtime is None:
                raise KilnError(f"API key file not found: {self.path}") from None
            now = time.monotonic()
            if self._missing_since is None:
                self._missing_since = now
                log.warning("API key file %s was deleted: every key is refused from %g s on, until the file is back",
                            self.path, self.MISSING_GRACE_S)
            if now - self._missing_since >= self.MISSING_GRACE_S and self._keys:
                self._keys = {}
                self._mtime = -1  # re-read whatever file appears next
            return
        if self._missing_since is not None:
            log.warning("API key file %s is back: keys are read from it again", self.path)
            self._missing_since = None
        if mtime == self._mtime:
            return
        try:
            keys = read_key_file(self.path)
        except KilnError as exc:
            if self._broken != mtime:
                self._broken = mtime
                log.warning("%s; keeping the previous keys", exc)
            raise
        self._broken = None
        self._keys = {k["sha256"].lower(): Principal(str(k.get("name", "?")), list(k.get("models", []))) for k in keys}
        self._mtime = mtime

    @staticmethod
    def key_from(headers: Any) -> str | None:
        auth = headers.get("authorization")
        if auth:
            scheme, _, value = auth.partition(" ")
            if scheme.lower() == "bearer" and value.strip():
                return value.strip()
        key = headers.get("x-api-key")
        return key.strip() if key and key.strip() else None

    def authenticate(self, headers: Any) -> Principal:
        try:
            self._reload()
        except KilnError:
            pass  # a broken edit keeps the previous keys
        key = self.key_from(headers)
        if key is None:
            raise AuthError(401, "missing API key (send 'Authorization: Bearer KEY' or 'X-API-Key: KEY')")
        digest = hash_key(key)
        for stored, principal in self._keys.items():
            if hmac.compare_digest(stored, digest):
                return principal
        raise AuthError(401, "invalid API key")

    def authorize(self, headers: Any, model: str) -> Principal:
        principal = self.authenticate(headers)
        if not principal.allows(model):
            raise AuthError(403, f"API key '{principal.name}' may not call model '{model}'")
        return principal
