"""Generation metrics for language models: BLEU / ROUGE (sacrebleu, rouge-score), the loss of targets
given prompts, and `kiln evaluate` on prompt/target tables."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest
import sacrebleu
import torch
from rouge_score import rouge_scorer

import kiln
from cli_helpers import one_line_error, run_cli
from kiln.lm import LanguageModel
from kiln.lm.metrics import bleu, generation_metrics, rouge, target_nll

REFERENCES = ["the cat sat on the mat and looked at the door", "a dog ran to the park in the morning sun"]
UNRELATED = ["purple elephants compute quietly beyond xylophones", "seventeen ravens negotiate tax law"]
PAIRS = [  # every character occurs in the tiny training text (tests/lm/conftest.py)
    {"prompt": "ROMEO: what light ", "target": "through yonder window breaks?"},
    {"prompt": "the cat sat ", "target": "on the mat."},
    {"prompt": "JULIET: o romeo, ", "target": "romeo, wherefore art thou?"},
]
KEYS = {"bleu", "rouge1", "rouge2", "rougeL", "loss", "perplexity"}


def library_rouge(hypotheses: list[str], references: list[str], kind: str) -> float:
    scorer = rouge_scorer.RougeScorer([kind])
    return sum(scorer.score(r, h)[kind].fmeasure for h, r in zip(hypotheses, references)) / len(references)


# -- the metrics ---------------------------------------------------------------------------------
def test_identical_texts_score_100_and_1() -> None:
    metrics = generation_metrics(REFERENCES, REFERENCES)
    assert metrics["bleu"] == pytest.approx(sacrebleu.corpus_bleu(REFERENCES, [REFERENCES]).score)
    assert metrics["bleu"] == pytest.approx(100.0)
    for kind in ("rouge1", "rouge2", "rougeL"):
        assert metrics[kind] == pytest.approx(library_rouge(REFERENCES, REFERENCES, kind)) == pytest.approx(1.0)


def test_unrelated_texts_score_near_0() -> None:
    assert bleu(UNRELATED, REFERENCES) == pytest.approx(sacrebleu.corpus_bleu(UNRELATED, [REFERENCES]).score)
    assert bleu(UNRELATED, REFERENCES) < 1.0
    scores = rouge(UNRELATED, REFERENCES)
    for kind, value in scores.items():
        assert value == pytest.approx(library_rouge(UNRELATED, REFERENCES, kind))
        assert value < 0.05


def test_partial_overlap_is_between() -> None:
    half = ["the cat sat on the mat and ran to the park", "a dog looked at the door in the morning sun"]
    metrics = generation_metrics(half, REFERENCES)
    assert 0 < metrics["bleu"] < 100 and 0 < metrics["rouge1"] < 1
    assert metrics["bleu"] == pytest.approx(sacrebleu.corpus_bleu(half, [REFERENCES]).score)
    assert metrics["rougeL"] == pytest.approx(library_rouge(half, REFERENCES, "rougeL"))
    with pytest.raises(kiln.KilnError, match="2 generated texts but 1 references"):
        generation_metrics(half, REFERENCES[:1])


def test_target_loss_matches_one_forward_pass(trained: LanguageModel) -> None:
    prompt, target = trained.tokenizer.encode("the cat "), trained.tokenizer.encode("sat on")  # 14 tokens <= block 16
    ids = torch.tensor(prompt + target)
    with torch.no_grad():
        logp = torch.log_softmax(trained.net(ids[None, :-1])[0][0], dim=-1)
    expected = -sum(float(logp[j - 1, ids[j]]) for j in range(len(prompt), len(ids)))
    assert target_nll(trained.net, prompt, target) == pytest.approx(expected, rel=1e-5)
    long_target = trained.tokenizer.encode("a dog ran to the park!\nthe cat sat on the mat.\n")  # 3 blocks
    nll = target_nll(trained.net, prompt, long_target)
    assert math.isfinite(nll) and 0 < nll / len(long_target) < math.log(trained.tokenizer.vocab_size)


def test_python_evaluate_pairs_and_text(trained: LanguageModel) -> None:
    metrics = trained.evaluate(pd.DataFrame(PAIRS))
    assert KEYS <= set(metrics) and metrics["examples"] == 3
    assert metrics["perplexity"] == pytest.approx(math.exp(metrics["loss"]))
    hypotheses = [trained.generate(p["prompt"], len(p["target"]), temperature=0) for p in PAIRS]
    assert metrics["bleu"] == pytest.approx(bleu(hypotheses, [p["target"] for p in PAIRS]))
    assert trained.evaluate(PAIRS) == metrics  # a list of rows works too; greedy is deterministic
    sampled = trained.evaluate(PAIRS, temperature=0.8, seed=3, max_new_tokens=12)
    assert sampled == trained.evaluate(PAIRS, temperature=0.8, seed=3, max_new_tokens=12)
    assert sampled["generation"]["max_new_tokens"] == 12
    assert set(trained.evaluate("the cat sat on the mat.\n")) == {"loss", "perplexity", "tokens"}
    with pytest.raises(kiln.KilnError, match="apply to prompt/target tables only"):
        trained.evaluate("the cat sat on the mat.\n", temperature=0.5)


# -- the command line ------------------------------------------------------------------------------
def test_kiln_evaluate_pairs_end_to_end(trained: LanguageModel, tmp_path: Path, capsys, monkeypatch) -> None:
    data = tmp_path / "pairs.csv"
    pd.DataFrame(PAIRS).to_csv(data, index=False)
    out = tmp_path / "metrics.json"
    code, stdout, err = run_cli(capsys, monkeypatch, "evaluate", trained.run_dir, data, "--output", out)
    assert code == 0, err
    metrics = json.loads(out.read_text())
    assert KEYS <= set(metrics) and "rougeL" in stdout and "metrics written to" in stdout
    assert 0 <= metrics["bleu"] <= 100 and all(0 <= metrics[k] <= 1 for k in ("rouge1", "rouge2", "rougeL"))
    assert metrics == trained.evaluate(data)  # the command line is the Python API
    assert not list(tmp_path.glob(".metrics.json.*"))  # the atomic write left no temp file

    renamed = tmp_path / "pairs.jsonl"
    pd.DataFrame(PAIRS).rename(columns={"prompt": "question", "target": "answer"}).to_json(renamed, orient="records", lines=True)
    code, _, err = run_cli(capsys, monkeypatch, "evaluate", trained.run_dir, renamed, "-o", out, "--prompt-column", "question",
                           "--target-column", "answer", "--temperature", "0.8", "--seed", "1", "--max-new-tokens", "10")
    assert code == 0, err
    sampled = json.loads(out.read_text())
    assert KEYS <= set(sampled) and sampled["generation"] == {"max_new_tokens": 10, "temperature": 0.8, "top_k": None,
                                                              "top_p": None, "seed": 1}

    text = tmp_path / "held_out.txt"
    text.write_text("the cat sat on the mat.\na dog ran to the park!\n", encoding="utf-8")
    code, _, err = run_cli(capsys, monkeypatch, "evaluate", trained.run_dir, text, "-o", out)
    assert code == 0, err
    assert set(json.loads(out.read_text())) == {"loss", "perplexity", "tokens"}


def test_kiln_evaluate_errors(trained: LanguageModel, tmp_path: Path, capsys, monkeypatch) -> None:
    run = lambda *a: run_cli(capsys, monkeypatch, "evaluate", trained.run_dir, *a)  # noqa: E731
    wrong = tmp_path / "wrong.csv"
    pd.DataFrame({"question": ["the "], "target": ["cat"]}).to_csv(wrong, index=False)
    one_line_error(run(wrong), "no 'prompt' column", "question, target", "--prompt-column")
    one_line_error(run(wrong, "--prompt-column", "question", "--target-column", "answr"), "no 'answr' column", "--target-column")
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    one_line_error(run(empty), "is empty")
    header_only = tmp_path / "header.csv"
    header_only.write_text("prompt,target\n")
    one_line_error(run(header_only), "evaluation data is empty")
    blank = tmp_path / "blank.csv"
    pd.DataFrame({"prompt": ["the ", None], "target": ["cat", "dog"]}).to_csv(blank, index=False)
    one_line_error(run(blank), "row 2", "prompt ('prompt') is empty")
    unseen = tmp_path / "unseen.csv"
    pd.DataFrame({"prompt": ["the \u20ac"], "target": ["cat"]}).to_csv(unseen, index=False)
    one_line_error(run(unseen), "row 1", "never saw in training")
    empty_text = tmp_path / "empty.txt"
    empty_text.write_text("")
    one_line_error(run(empty_text), "is empty")
    one_line_error(run(tmp_path / "absent.txt"), "not found")
    one_line_error(run(tmp_path / "absent.csv"), "not found")
    one_line_error(run(empty_text, "--temperature", "0.5"), "prompt/target tables only")
    one_line_error(run(wrong, "--prompt-column", "question", "--max-new-tokens", "0"), "max_new_tokens must be at least 1")


def test_generation_options_refused_for_other_models(tmp_path: Path, capsys, monkeypatch) -> None:
    class Tabular:  # stands in for a kiln.Model: the options must be refused before evaluating
        def evaluate(self, data: object) -> dict:
            raise AssertionError("not reached")

    monkeypatch.setattr(kiln, "load", lambda path, **_: Tabular())
    one_line_error(run_cli(capsys, monkeypatch, "evaluate", tmp_path, tmp_path / "d.csv", "--prompt-column", "q"),
                   "for language models only")
