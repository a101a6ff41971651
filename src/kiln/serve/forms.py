"""`multipart/form-data` predict requests: one part per content input (an image file, named after the
feature), other inputs as form fields; an input given N times makes N rows. The result is the same
`{"rows": [...]}` body a JSON request has, so the same checks, limits and batching apply."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from starlette.datastructures import Headers, UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from kiln.serve.schema import CONTENT_TYPES, RequestError


def is_multipart(content_type: str | None) -> bool:
    return (content_type or "").split(";")[0].strip().lower() == "multipart/form-data"


def _field(kind: str, value: str) -> Any:
    """A form field's text as a JSON value would be: '' is null (except for text), numbers are parsed."""
    if value == "" and kind != "text":
        return None
    if kind == "numeric":
        try:
            return float(value)
        except ValueError:
            return value  # validate_rows reports it as a string where a number belongs
    return value


async def form_body(raw: bytes, headers: Headers, features: list[dict[str, str]], max_rows: int | None) -> dict[str, Any]:
    """Parse an already size-checked multipart body into `{"rows": [...]}`."""
    async def replay() -> AsyncIterator[bytes]:
        yield raw

    limit = (max_rows or 10_000) * max(len(features), 1)
    try:
        form = await MultiPartParser(headers, replay(), max_files=limit, max_fields=limit, max_part_size=len(raw) + 1).parse()
    except MultiPartException as exc:
        raise RequestError("body", f"body is not valid multipart/form-data: {exc.message}") from None
    try:
        columns: dict[str, list[Any]] = {}
        for feature in features:
            name, kind = feature["name"], feature["type"]
            values = form.getlist(name)
            if not values:
                raise RequestError(f"rows[0].{name}", f"missing input column '{name}' ({kind}): send it as a "
                                   + ("file part" if kind in CONTENT_TYPES else "form field"))
            column = []
            for value in values:
                if isinstance(value, UploadFile):
                    if kind not in CONTENT_TYPES:
                        raise RequestError(f"rows[{len(column)}].{name}", f"{kind} column '{name}' takes a form field, not a file")
                    column.append(await value.read())
                else:
                    column.append(_field(kind, value))
            columns[name] = column
    finally:
        await form.close()
    counts = {len(v) for v in columns.values()}
    if len(counts) > 1:
        shown = ", ".join(f"{n}: {len(v)}" for n, v in columns.items())
        raise RequestError("body", f"each input must be sent once per row; got {shown}")
    n = counts.pop() if counts else 0
    return {"rows": [{name: values[i] for name, values in columns.items()} for i in range(n)]}
