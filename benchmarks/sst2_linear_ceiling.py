"""How far a converged linear model gets on SST-2 with n-gram features like kiln's `encoder: ngram`.

scikit-learn ``TfidfVectorizer`` (optionally ``sublinear_tf``) + ``LogisticRegression(max_iter=1000)`` at two C
values, trained on all 67,349 rows of ``$KILN_DATA/sst2/train.tsv``, accuracy on ``sst2/dev.tsv``: word n-grams
with kiln's token pattern, with and without ``char_wb`` 2-5 n-grams. Deterministic (one fit per cell). Prints a
table and writes ``benchmarks/results/sst2_linear_ceiling.json``.

Usage::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/sst2_linear_ceiling.py
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from scipy.sparse import hstack
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("KILN_DATA") or ROOT.parent / "shared" / "data")
TOKEN = r"(?u)\b\w+\b|[^\w\s]"  # kiln.features.ngrams' token pattern
CHAR = {"analyzer": "char_wb", "ngram_range": (2, 5)}
FEATURES = {
    "words 1-2": [{"token_pattern": TOKEN, "ngram_range": (1, 2)}],
    "words 1-2, sublinear tf": [{"token_pattern": TOKEN, "ngram_range": (1, 2), "sublinear_tf": True}],
    "words 1 + char 2-5, sublinear tf": [{"token_pattern": TOKEN, "sublinear_tf": True}, {**CHAR, "sublinear_tf": True}],
    "words 1-2 + char 2-5, sublinear tf": [{"token_pattern": TOKEN, "ngram_range": (1, 2), "sublinear_tf": True},
                                           {**CHAR, "sublinear_tf": True}],
}


def main() -> int:
    from kiln.data import read_table

    train, dev = read_table(DATA / "sst2" / "train.tsv"), read_table(DATA / "sst2" / "dev.tsv")
    texts, dev_texts = train["sentence"].fillna("").astype(str), dev["sentence"].fillna("").astype(str)
    rows = []
    for name, specs in FEATURES.items():
        vectorizers = [TfidfVectorizer(**spec) for spec in specs]
        x = hstack([v.fit_transform(texts) for v in vectorizers]).tocsr()
        x_dev = hstack([v.transform(dev_texts) for v in vectorizers]).tocsr()
        for c in (1.0, 4.0):
            start = time.perf_counter()
            model = LogisticRegression(max_iter=1000, C=c).fit(x, train["label"])
            accuracy = float((model.predict(x_dev) == dev["label"]).mean())
            rows.append({"features": name, "C": c, "dev_accuracy": round(accuracy, 4), "fit_s": round(time.perf_counter() - start, 1)})
            print(f"{name:<38} C={c:<4} dev accuracy {accuracy:.4f}  {rows[-1]['fit_s']:6.1f} s", flush=True)
    out = ROOT / "benchmarks" / "results" / "sst2_linear_ceiling.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps({"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "load": os.getloadavg()[0],
                               "rows": rows}, indent=1))
    tmp.replace(out)
    print(f"load average {os.getloadavg()[0]:.2f}; JSON: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
