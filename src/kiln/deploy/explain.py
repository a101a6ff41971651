"""`kiln explain MODEL_DIR DATA --rows 0:10 -o DIR`: per-row integrated-gradients attributions
(kiln.deploy.attributions), permutation importance on labelled data (kiln.deploy.importance),
written as explanations.json, explain.html (bars, highlighted tokens) and PNGs."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from kiln.data import as_frame
from kiln.deploy.attention_maps import attention_maps
from kiln.deploy.attributions import integrated_gradients
from kiln.deploy.common import load_supervised, split_frames
from kiln.deploy.importance import permutation_importance
from kiln.errors import KilnError
from kiln.io import write_json, write_text

REFERENCE_ROWS = 2000


def parse_rows(rows: str, total: int) -> list[int]:
    """'0:10', '5', '3,7,9' → row positions (checked against the data's length)."""
    try:
        if ":" in rows:
            start, _, stop = rows.partition(":")
            picked = list(range(int(start or 0), min(int(stop) if stop else total, total)))
        else:
            picked = [int(part) for part in rows.split(",")]
    except ValueError:
        raise KilnError(f"--rows: expected START:STOP, N or N,M,... (got '{rows}')") from None
    bad = [r for r in picked if not 0 <= r < total]
    if not picked or bad:
        raise KilnError(f"--rows {rows}: the data has {total} rows (positions 0 to {total - 1})")
    return picked


def reference_data(model: Any, fallback: pd.DataFrame) -> Any:
    """Rows whose means and modes make the baselines: the training split when it can be re-made."""
    try:
        frame = split_frames(model)["train"]
    except KilnError:
        frame = fallback
    return model.preprocessor.transform(frame.head(REFERENCE_ROWS), targets=False, where="reference data")


def explain_rows(model: Any, frame: pd.DataFrame, reference: Any = None, steps: int = 50) -> list[dict[str, Any]]:
    """Attributions of each row of `frame` (for the first output), as JSON-ready dicts."""
    pre = model.preprocessor
    if reference is None:
        reference = reference_data(model, frame)
    data = pre.transform(frame, targets=False, where="data to explain")
    output = pre.outputs[0]
    model.net.cpu().eval()
    result = integrated_gradients(model.net, pre.inputs, output, data, reference, steps)
    attention = attention_maps(model.net, pre.inputs, data)
    predictions = model.predict(frame)
    explained = []
    for row in range(len(data)):
        entry: dict[str, Any] = {
            "row": int(frame.index[row]) if isinstance(frame.index[row], (int,)) else str(frame.index[row]),
            "prediction": predictions.iloc[row].to_dict(),
            "explained_class": _class_name(output, int(result["target"][row])),
            "score": float(result["score"][row]), "baseline_score": float(result["start"][row]),
            "completeness_error": float(result["completeness_error"][row]),
            "features": {}, "tokens": {}, "saliency": {},
            "attention": {name: maps[row] for name, maps in attention.items()},  # per layer, head-averaged
        }
        for feature in pre.inputs:
            attr = result["attributions"][feature.name][row]
            entry["features"][feature.name] = float(attr.sum())
            if feature.type == "text":
                entry["tokens"][feature.name] = _token_scores(feature, data.inputs[feature.name][row], attr.sum(-1),
                                                              frame[feature.config.source_column].iloc[row])
            elif feature.type == "image":
                entry["saliency"][feature.name] = attr.abs().sum(0).tolist()
            elif feature.type == "audio":  # (bins, frames): the spectrogram rows below the frame mask, low bins at the bottom
                entry["saliency"][feature.name] = attr.abs().sum(0)[1:].flip(0).tolist()
        explained.append(entry)
    return explained


def _token_scores(feature: Any, ids: torch.Tensor, scores: torch.Tensor, text: Any) -> list[list[Any]]:
    """[token, score] per token of a row (an n-gram bag: per n-gram slot, named by the n-grams hashed there)."""
    if hasattr(feature, "slot_names"):  # in the text's order (ids are in bucket order); a slot cut by max_ngrams is left out
        by_slot = {int(i): float(s) for i, s in zip(ids[0], scores) if int(i) != 0}
        return [[name, by_slot[slot]] for slot, name in feature.slot_names(text).items() if slot in by_slot]
    pad = getattr(feature.tokenizer, "pad_id", 0)
    return [[feature.vocab[int(i)], float(s)] for i, s in zip(ids, scores) if int(i) != pad]


def _class_name(output: Any, index: int) -> str | None:
    classes = getattr(output, "vocab", None) or getattr(output, "classes", None)
    if output.output_dim == 1:
        return None if output.type == "numeric" else str(classes[-1]) if classes else None
    return str(classes[index]) if classes and index < len(classes) else str(index)


def explain(source: str | Path, data: str | Path | pd.DataFrame, rows: str = "0:10", output: str | Path | None = None,
            steps: int = 50, repeats: int = 5) -> dict[str, Any]:
    """Explain rows of DATA; permutation importance on DATA when it has the labels, else on the test split."""
    model = load_supervised(source)
    frame = as_frame(data)
    picked = parse_rows(rows, len(frame))
    report: dict[str, Any] = {"model": str(source), "steps": steps, "rows": explain_rows(model, frame.iloc[picked], steps=steps)}
    errors = torch.tensor([r["completeness_error"] for r in report["rows"]])
    report["completeness_error_p90"] = float(torch.quantile(errors, 0.9)) if len(errors) else None
    labelled = all(f.name in frame.columns for f in model.preprocessor.outputs)
    try:
        importance_frame = split_frames(model, frame if labelled else None)["test"]
        report["importance"] = permutation_importance(model, model.preprocessor.transform(importance_frame), repeats)
        report["importance"]["data"] = "DATA" if labelled else "the model's test split"
    except KilnError as exc:
        report["importance"] = {"skipped": str(exc)}
    if output is not None:
        write_report(report, model, Path(output))
    return report


# -- rendering --------------------------------------------------------------------------------
def _colour(value: float, scale: float) -> str:
    alpha = min(abs(value) / scale, 1.0) if scale > 0 else 0.0
    return f"rgba(0,140,60,{alpha:.2f})" if value >= 0 else f"rgba(210,40,40,{alpha:.2f})"


def _bars(values: dict[str, float]) -> str:
    scale = max((abs(v) for v in values.values()), default=0.0) or 1.0
    lines = []
    for name, value in sorted(values.items(), key=lambda kv: -abs(kv[1])):
        width = 100 * abs(value) / scale
        lines.append(f"<tr><td>{html.escape(name)}</td><td class=num>{value:+.4f}</td><td><div class=bar "
                     f"style='width:{width:.0f}%;background:{_colour(value, scale)}'></div></td></tr>")
    return "<table class=bars>" + "".join(lines) + "</table>"


def _tokens(tokens: list[list[Any]]) -> str:
    scale = max((abs(s) for _, s in tokens), default=0.0)
    return " ".join(f"<span title='{s:+.4f}' style='background:{_colour(s, scale)}'>{html.escape(str(t))}</span>" for t, s in tokens)


def write_report(report: dict[str, Any], model: Any, folder: Path) -> Path:
    """explanations.json, explain.html, importance.png and one saliency PNG per image input and row."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    parts = [f"<h1>Explanations: {html.escape(report['model'])}</h1>",
             f"<p>Integrated gradients, {report['steps']} steps; completeness error (90th percentile): "
             f"{report['completeness_error_p90']:.4f}</p>"]
    importance = report.get("importance", {})
    if "features" in importance:
        names = list(importance["features"])
        means = [importance["features"][n]["mean"] for n in names]
        stds = [importance["features"][n]["std"] for n in names]
        fig, ax = plt.subplots(figsize=(6, 0.4 * len(names) + 1.2))
        ax.barh(names, means, xerr=stds, color="#4477aa")
        ax.set_xlabel(f"drop in {importance['metric']} when shuffled (mean ± std, {importance['repeats']} repeats)")
        fig.tight_layout()
        fig.savefig(folder / "importance.png", dpi=100)
        plt.close(fig)
        rows = "".join(f"<tr><td>{html.escape(n)}</td><td class=num>{m:+.4f} ± {s:.4f}</td></tr>" for n, m, s in zip(names, means, stds))
        parts.append(f"<h2>Permutation importance ({html.escape(importance['data'])}, {importance['rows']} rows, "
                     f"{importance['metric']} {importance['baseline']:.4f})</h2><table>{rows}</table><img src='importance.png'>")
    for entry in report["rows"]:
        parts.append(f"<h2>Row {entry['row']}</h2><p>prediction: {html.escape(str(entry['prediction']))}; explained: "
                     f"{html.escape(str(entry['explained_class']))} (score {entry['score']:.4f}, baseline {entry['baseline_score']:.4f}, "
                     f"completeness error {entry['completeness_error']:.4f})</p>")
        if len(entry["features"]) > 1:
            parts.append(_bars(entry["features"]))
        for name, tokens in entry["tokens"].items():
            parts.append(f"<p><b>{html.escape(name)}</b>: {_tokens(tokens)}</p>")
        for name, layers in entry.get("attention", {}).items():
            tokens = [t for t, _ in entry["tokens"].get(name, [])]
            image = folder / f"attention_row{entry['row']}_{name}.png"
            fig, axes = plt.subplots(1, len(layers), figsize=(3.2 * len(layers), 3.2), squeeze=False)
            for i, (ax, weights) in enumerate(zip(axes[0], layers)):
                ax.imshow(weights, cmap="viridis", vmin=0.0)
                ax.set_title(f"layer {i + 1} (mean over heads)", fontsize=8)
                if len(tokens) == len(weights) <= 40:
                    ax.set_xticks(range(len(tokens)), tokens, rotation=90, fontsize=6)
                    ax.set_yticks(range(len(tokens)), tokens, fontsize=6)
            fig.tight_layout()
            fig.savefig(image, dpi=90)
            plt.close(fig)
            parts.append(f"<p><b>{html.escape(name)}</b> attention (rows: queries, columns: keys)</p><img src='{image.name}'>")
        for name, saliency in entry["saliency"].items():
            image = folder / f"saliency_row{entry['row']}_{name}.png"
            fig, ax = plt.subplots(figsize=(3, 3))
            ax.imshow(saliency, cmap="hot")
            ax.axis("off")
            fig.savefig(image, dpi=80, bbox_inches="tight")
            plt.close(fig)
            parts.append(f"<p><b>{html.escape(name)}</b> saliency</p><img src='{image.name}'>")
    style = ("<style>body{font-family:sans-serif;max-width:60em;margin:auto} td.num{text-align:right;font-family:monospace}"
             " table.bars{width:40em} div.bar{height:0.9em} span{padding:1px 2px;border-radius:3px}</style>")
    write_text(folder / "explain.html", "<!doctype html><meta charset=utf-8>" + style + "\n".join(parts))
    write_json(folder / "explanations.json", report)
    return folder / "explain.html"
