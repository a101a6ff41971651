"""Image inputs arrive as content (base64 in JSON, or a multipart file part), never as a server path."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import pandas as pd
from _helpers import client_for, run

import kiln
from kiln.serve.app import create_app
from kiln.serve.auth import add_key
from kiln.serve.settings import ServeSettings


def _expected(image_dir: Path, names: list[str], sizes: list[float]) -> list[float]:
    frame = pd.DataFrame({"img": [str(image_dir / "images" / n) for n in names], "size": sizes})
    return kiln.load(image_dir / "run").predict(frame)["y_probability_1"].tolist()


def test_base64_and_multipart_predict_like_the_model(image_dir: Path) -> None:
    png = [(image_dir / "images" / n).read_bytes() for n in ("3.png", "4.png")]
    b64 = base64.b64encode(png[0]).decode()

    async def go():
        async with client_for(create_app({"img": image_dir / "run"})) as c:
            return (await c.post("/v1/models/img/predict", json={"rows": [{"img": b64, "size": 1.5}]}),
                    await c.post("/v1/models/img/predict", json={"rows": [{"img": "data:image/png;base64," + b64, "size": 1.5}]}),
                    await c.post("/v1/models/img/predict", files=[("img", ("a.png", png[0])), ("img", ("b.png", png[1]))],
                                 data={"size": ["1.5", "2"]}))

    plain, data_url, upload = run(go())
    assert plain.status_code == 200 and data_url.status_code == 200 and upload.status_code == 200, upload.text
    want = _expected(image_dir, ["3.png", "4.png"], [1.5, 2.0])
    for answer, expect in ((plain, want[:1]), (data_url, want[:1]), (upload, want)):
        got = [p["y_probability_1"] for p in answer.json()["predictions"]]
        assert max(abs(a - b) for a, b in zip(got, expect)) < 1e-6 and len(got) == len(expect)


def test_paths_are_never_opened_and_errors_do_not_tell_whether_they_exist(image_dir: Path, tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)  # reading it would block the model's worker forever
    real = str(image_dir / "images" / "3.png")
    fake = real[:-5] + "x.png"  # the same length, no such file
    assert not Path(fake).exists()
    pairs = [(real, fake), ("/etc/passwd", "/etc/passwx"), (str(fifo), str(fifo)[:-1] + "x")]
    app = create_app({"img": image_dir / "run"}, settings=ServeSettings(timeout_s=5))

    async def go():
        async with client_for(app) as c:
            out = []
            for there, missing in pairs:
                a = await c.post("/v1/models/img/predict", json={"rows": [{"img": there, "size": 1.0}]})
                b = await c.post("/v1/models/img/predict", json={"rows": [{"img": missing, "size": 1.0}]})
                form = await c.post("/v1/models/img/predict", files={"img": ("x", b"")}, data={"size": "1"})
                field = await c.post("/v1/models/img/predict", data={"img": there, "size": "1"}, files={"other": ("x", b"1")})
                out.append((there, a, b, form, field))
            ok = await c.post("/v1/models/img/predict", json={"rows": [{"img": base64.b64encode(Path(real).read_bytes()).decode(), "size": 1.0}]})
            return out, ok

    out, ok = run(go())
    for there, a, b, form, field in out:
        assert a.status_code == 422 and b.status_code == 422, (a.text, b.text)
        assert a.json() == b.json()  # the same answer whether or not the path exists
        assert there not in a.text and a.json()["field"] == "rows[0].img"
        assert form.status_code == 422 and "empty image content" in form.json()["detail"]
        assert field.status_code == 422 and there not in field.text
    assert ok.status_code == 200  # the FIFO wedged nothing


def test_multipart_limits_keys_and_form_errors(image_dir: Path, tmp_path: Path) -> None:
    keys = tmp_path / "keys.json"
    key = add_key(keys, "team", ["img"])
    png = (image_dir / "images" / "3.png").read_bytes()
    settings = ServeSettings(api_keys=keys, max_body_bytes=4000, sample_rate=1.0, sample_db=tmp_path / "s.sqlite", drift_interval_s=0)
    app = create_app({"img": image_dir / "run"}, settings=settings)
    auth = {"X-API-Key": key}

    async def go():
        async with client_for(app) as c:
            post = lambda **kw: c.post("/v1/models/img/predict", **kw)  # noqa: E731
            return {
                "no key": await post(files={"img": ("a.png", png)}, data={"size": "1"}),
                "ok": await post(files={"img": ("a.png", png)}, data={"size": "1"}, headers=auth),
                "big": await post(files={"img": ("a.png", png + b"\0" * 5000)}, data={"size": "1"}, headers=auth),
                "no file": await post(files={"other": ("a.png", png)}, data={"size": "1"}, headers=auth),
                "file for numeric": await post(files={"img": ("a.png", png), "size": ("s", b"1")}, headers=auth),
                "not a number": await post(files={"img": ("a.png", png)}, data={"size": "abc"}, headers=auth),
                "uneven": await post(files={"img": ("a.png", png)}, data={"size": ["1", "2"]}, headers=auth),
                "not an image": await post(files={"img": ("a.png", b"GIF? no")}, data={"size": "1"}, headers=auth),
            }

    r = run(go())
    assert r["no key"].status_code == 401
    assert r["ok"].status_code == 200, r["ok"].text
    assert r["big"].status_code == 413
    assert r["no file"].status_code == 422 and r["no file"].json()["field"] == "rows[0].img"
    assert r["file for numeric"].status_code == 422 and "not a file" in r["file for numeric"].json()["detail"]
    assert r["not a number"].status_code == 422 and r["not a number"].json()["field"] == "rows[0].size"
    assert r["uneven"].status_code == 422 and "once per row" in r["uneven"].json()["detail"]
    assert r["not an image"].status_code == 422 and "cannot read image content" in r["not an image"].json()["detail"]
    import sqlite3

    stored = [json.loads(row[0]) for row in sqlite3.connect(tmp_path / "s.sqlite").execute("SELECT inputs FROM samples")]
    assert stored == [{"size": 1.0}]  # the sampled row, without the image content
