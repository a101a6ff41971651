"""scikit-learn: LogisticRegression or HistGradientBoosting on the table's features (workers/data.py),
or TF-IDF (word 1-2-grams, sublinear tf) + LogisticRegression on a text column, with C picked on the
validation split from {0.25, 1, 4, 16}. params: {"model": "lr" | "hgb" | "tfidf_lr"}."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import mark_ready, parse_args, read_meta, report  # noqa: E402

import numpy as np  # noqa: E402

import data  # noqa: E402


def main() -> None:
    args = parse_args()
    meta = read_meta(args.work)
    parts = data.frames(args.work)
    y, classes = data.labels(meta, parts)
    binary = len(classes) == 2
    kind = args.params["model"]
    if kind == "tfidf_lr":
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression

        col = data.text_column(meta)
        text = {s: parts[s][col].fillna("").astype(str) for s in data.SPLITS}
        mark_ready()
        vec = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1)
        xs = {"train": vec.fit_transform(text["train"])}
        xs.update({s: vec.transform(text[s]) for s in ("validation", "test")})
        fits = [LogisticRegression(C=c, max_iter=2000, random_state=args.seed).fit(xs["train"], y["train"])
                for c in (0.25, 1.0, 4.0, 16.0)]
        model = max(fits, key=lambda m: m.score(xs["validation"], y["validation"]))
        report(data.score(y["test"], model.predict(xs["test"]), binary), C=model.C)
        return
    feats = data.tabular(meta, parts)
    mark_ready()
    if kind == "lr":
        from sklearn.linear_model import LogisticRegression

        model = LogisticRegression(max_iter=2000, random_state=args.seed)
    else:
        from sklearn.ensemble import HistGradientBoostingClassifier

        model = HistGradientBoostingClassifier(random_state=args.seed)
    model.fit(feats["train"], y["train"])
    report(data.score(y["test"], model.predict(feats["test"]), binary))


if __name__ == "__main__":
    main()
