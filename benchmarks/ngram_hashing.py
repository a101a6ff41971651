"""Character n-gram hashing on SST-2's 67,349 training sentences: scikit-learn's HashingVectorizer
(`analyzer="char_wb"`, 2-5) over every text vs kiln's n-gram feature, which hashes each distinct word once
and sums through a text × word count matrix. Prints seconds per repeat and checks the matrices are equal.

    OMP_NUM_THREADS=1 KILN_DATA=/work/shared/data .venv/bin/python benchmarks/ngram_hashing.py [--repeats 2]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.feature_extraction.text import HashingVectorizer

from kiln.features import build_feature, words
from kiln.features.text import TextConfig
from kiln.supervised.config import PreprocessingConfig


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    path = Path(os.environ.get("KILN_DATA", "../shared/data")) / "sst2" / "train.tsv"
    texts = pd.read_csv(path, sep="\t", lineterminator="\n")["sentence"].str.rstrip("\r")  # the file has CRLF line ends
    feature = build_feature(TextConfig(name="s", type="text", encoder="ngram", ngram={"word": [], "char": [2, 3, 4, 5]}),
                            PreprocessingConfig())
    sklearn = HashingVectorizer(analyzer="char_wb", ngram_range=(2, 5), n_features=262_143, alternate_sign=False, norm=None,
                                dtype=np.float32)
    print(f"{len(texts)} sentences")
    for _ in range(args.repeats):
        t = time.perf_counter()
        reference = sklearn.transform(texts.tolist())
        every_text = time.perf_counter() - t
        words.clear_kept()  # each repeat splits the texts afresh (kiln keeps the last splits for other features)
        t = time.perf_counter()
        ours = feature.counts(texts)
        per_word = time.perf_counter() - t
        print(f"scikit-learn over every text {every_text:.2f} s, kiln per distinct word {per_word:.2f} s, "
              f"{every_text / per_word:.1f}x, equal: {(ours != reference).nnz == 0}")


if __name__ == "__main__":
    main()
