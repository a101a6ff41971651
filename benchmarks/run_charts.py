"""Cost of a training run's two charts: kiln's SVG writer against matplotlib drawing the same charts as PNG.

Each measurement is a fresh Python process (numpy, pandas, torch and kiln.io already imported, as they are
when a run ends) that times importing the plotting code, then drawing the loss curves (two panels, train and
validation, one point per epoch) and the confusion matrix. The matplotlib side is what `kiln train`
did before kiln drew its own charts: Agg, fixed margins, markers, legend, grid, a colour bar, a count
in every cell, PNG at zlib level 1. Runs alternate between the two sides. Usage::

    .venv/bin/python benchmarks/run_charts.py [--repeats 5] [--output benchmarks/results/run_charts.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SETUP = """
import json, sys, time
import numpy as np, pandas as pd, torch, kiln.io  # loaded when a run ends
epochs, classes, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
e = np.arange(1, epochs + 1)
history = pd.DataFrame({"epoch": e, "train_loss": 0.7 * 0.95 ** e, "validation_loss": 0.45 + 0.05 * np.sin(e),
                        "train_accuracy": 0.93 - 0.3 * 0.9 ** e, "validation_accuracy": 0.84 - 0.2 * 0.8 ** e})
cm = (np.eye(classes) * 90 + np.arange(classes * classes).reshape(classes, classes) % 7).astype(int)
names = [str(i) for i in range(classes)]
start = time.perf_counter()
"""

SVG = SETUP + """
from kiln.evaluate.plots import plot_confusion_matrix, plot_loss_curves
imported = time.perf_counter()
plot_loss_curves(history, out + "/loss_curves.svg")
plot_confusion_matrix(cm, names, out + "/confusion_matrix.svg")
done = time.perf_counter()
print(json.dumps({"import_s": imported - start, "draw_s": done - imported}))
"""

MATPLOTLIB = SETUP + """
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.ticker import ScalarFormatter
imported = time.perf_counter()
fig, axes = plt.subplots(1, 2, figsize=(11, 4), squeeze=False)
for ax, metric in zip(axes[0], ("loss", "accuracy")):
    for col in (f"train_{metric}", f"validation_{metric}"):
        ax.plot(history["epoch"], history[col], marker="o", markersize=3, label=col)
    short = ScalarFormatter()
    short.set_powerlimits((-3, 4))
    ax.yaxis.set_major_formatter(short)
    ax.set_xlabel("epoch"); ax.set_ylabel(metric); ax.grid(True, alpha=0.3); ax.legend(); ax.set_title(metric.capitalize())
fig.subplots_adjust(left=0.85 / 11, right=1 - 0.15 / 11, bottom=0.55 / 4, top=1 - 0.35 / 4, wspace=0.95 / 5)
fig.savefig(out + "/loss_curves.png", format="png", dpi=100, pil_kwargs={"compress_level": 1})
plt.close(fig)
size = min(max(4.0, 0.6 * classes + 2.5), 20.0)
fig, ax = plt.subplots(figsize=(size + 1, size))
fig.colorbar(ax.imshow(cm, cmap="Blues", vmin=0), ax=ax, fraction=0.046, pad=0.04)
ax.set_xticks(range(classes), labels=names); ax.set_yticks(range(classes), labels=names)
ax.set_xlabel("Predicted"); ax.set_ylabel("True"); ax.set_title("Confusion matrix (test)")
for (i, j), value in np.ndenumerate(cm):
    ax.text(j, i, str(int(value)), ha="center", va="center", color="white" if value > cm.max() / 2 else "black", fontsize=9)
w, h = fig.get_size_inches()
fig.subplots_adjust(left=0.8 / w, right=1 - 0.9 / w, bottom=0.7 / h, top=1 - 0.45 / h)
fig.savefig(out + "/confusion_matrix.png", format="png", dpi=100, pil_kwargs={"compress_level": 1})
plt.close(fig)
done = time.perf_counter()
print(json.dumps({"import_s": imported - start, "draw_s": done - imported}))
"""

CASES = {"titanic (29 epochs, 2 classes)": (29, 2), "digits (30 epochs, 10 classes)": (30, 10)}


def _once(code: str, epochs: int, classes: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as out:
        done = subprocess.run([sys.executable, "-c", code, str(epochs), str(classes), out], capture_output=True,
                              text=True, check=True, env={**os.environ, "PYTHONPATH": os.path.join(ROOT, "src")})
        sizes = {name: os.path.getsize(os.path.join(out, name)) for name in os.listdir(out)}
    return {**json.loads(done.stdout.strip().splitlines()[-1]), "bytes": sum(sizes.values())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--output", default=os.path.join(ROOT, "benchmarks", "results", "run_charts.json"))
    args = parser.parse_args()
    results = []
    for case, (epochs, classes) in CASES.items():
        runs: dict[str, list[dict[str, float]]] = {"kiln SVG": [], "matplotlib PNG": []}
        for k in range(args.repeats):
            order = [("kiln SVG", SVG), ("matplotlib PNG", MATPLOTLIB)][:: 1 if k % 2 == 0 else -1]
            for name, code in order:
                runs[name].append(_once(code, epochs, classes))
        for name, rows in runs.items():
            median = {key: statistics.median(r[key] for r in rows) for key in ("import_s", "draw_s", "bytes")}
            results.append({"case": case, "writer": name, "repeats": args.repeats, **median,
                            "total_s": statistics.median(r["import_s"] + r["draw_s"] for r in rows)})
    print("| charts | writer | import s | draw + write s | total s | bytes |")
    print("|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['case']} | {r['writer']} | {r['import_s']:.3f} | {r['draw_s']:.3f} | {r['total_s']:.3f} | {r['bytes']:.0f} |")
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    with open(args.output, "w", encoding="utf-8") as f:
        json.dump({"results": results, "load_average": os.getloadavg()}, f, indent=2)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
