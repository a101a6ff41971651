"""kiln: `kiln.train(config)` on the task's config (the harness passes it with the seed and size set).

The ready mark is kiln's `on_train_begin`: imported, data loaded, split and preprocessed, network
built. The run directory (model, plots, metrics) is written as `kiln train -o` does, inside the
timed span."""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import mark_ready, parse_args, report  # noqa: E402

import kiln  # noqa: E402

train = kiln.train  # the API imported as a user's first `kiln.train(...)` imports it (kiln/__init__.py: _import)
from kiln.training import Callback  # noqa: E402


class Ready(Callback):
    def on_train_begin(self, trainer) -> None:  # noqa: ANN001
        mark_ready()


def _generation_speed(model, prompt_len: int, new_tokens: int) -> float:
    """Tokens/s of sampling `new_tokens` after a prompt of `prompt_len` characters (KV cache on)."""
    prompt = ("ROMEO:\n" * 100)[:prompt_len]
    start = time.perf_counter()
    n = sum(1 for _ in model.generate_ids(prompt, max_new_tokens=new_tokens, temperature=0.8, top_k=50, seed=1))
    return n / (time.perf_counter() - start)


def main() -> None:
    args = parse_args()
    config = args.params["kiln_config"]
    output = args.work / "runs" / f"kiln-seed{args.seed}"
    model = train(config, output=output, progress=False, callbacks=[Ready()])
    if config.get("task") == "language_modeling":
        history = model.history
        val = [r["validation_loss"] for r in history if r.get("validation_loss") is not None]
        block = int(config["model"]["block_size"])
        report({"validation_loss": val[-1]}, iterations=int(config["trainer"]["iterations"]),
               gen_tokens_per_s_inside_block=_generation_speed(model, 8, block // 2),
               gen_tokens_per_s_past_block=_generation_speed(model, 8, block * 4))
        return
    test = model.metrics["test"]
    report({k: test[k] for k in ("accuracy", "f1", "precision", "recall", "roc_auc") if isinstance(test.get(k), (int, float))},
           epochs_run=len(model.history), epoch_time_sum_s=sum(r.get("epoch_time") or 0.0 for r in model.history))


if __name__ == "__main__":
    main()
