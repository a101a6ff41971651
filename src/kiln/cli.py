"""`kiln` command line: a thin layer over the Python API. Input errors print one line and exit 2."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape

from kiln.console import console
from kiln.errors import KilnError

app = typer.Typer(add_completion=False, no_args_is_help=True, help="kiln: declarative deep learning from one config.")
out = console()
err = console(stderr=True)


@app.command("train")
def train_cmd(
    config: Annotated[Path, typer.Argument(help="YAML run config")],
    data: Annotated[Optional[str], typer.Option("--data", help="training data (overrides data.train)")] = None,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="run directory (default runs/<label>-<time>)")] = None,
    resume: Annotated[Optional[Path], typer.Option("--resume", help="continue a killed run in this directory")] = None,
    from_model: Annotated[Optional[Path], typer.Option("--from", help="continue training this saved model")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress bar")] = False,
    set_: Annotated[Optional[list[str]], typer.Option("--set", help="override a config value: KEY=VALUE, e.g. data.sample=0.1")] = None,
) -> None:
    """Train a model from CONFIG and write a run directory (model, metrics, history, plots, report)."""
    import kiln

    model = kiln.train(_with_overrides(config, set_), data=data, output=output, resume=resume, from_model=from_model,
                       progress=not quiet)
    _print_run(model)


def _with_overrides(config: Path, assignments: list[str] | None) -> Path | dict:
    from kiln.config import apply_overrides, read_yaml

    return apply_overrides(read_yaml(config), assignments) if assignments else config


@app.command("pretrain")
def pretrain_cmd(
    config: Annotated[Path, typer.Argument(help="YAML config: `task: pretraining` (masked LM) or `task: language_modeling` (GPT)")],
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="run directory (default runs/pretrain-<time>)")] = None,
    resume: Annotated[Optional[Path], typer.Option("--resume", help="continue a killed run in this directory")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress bar")] = False,
    set_: Annotated[Optional[list[str]], typer.Option("--set", help="override a config value: KEY=VALUE")] = None,
) -> None:
    """Self-supervised pre-training on unlabelled text; a classification config reuses the result
    with `model.pretrained: RUN_DIR`."""
    import kiln

    _print_run(kiln.pretrain(_with_overrides(config, set_), output=output, resume=resume, progress=not quiet))


def _print_run(model: "kiln.Model") -> None:  # noqa: F821
    from kiln.evaluate import format_metrics_table

    out.print(format_metrics_table(model.metrics))
    compression = getattr(model, "compression", None)  # a `compress:` section in the config
    if compression:
        out.print("\n".join(compression["table"]), markup=False, highlight=False)
        out.print(f"compressed model: {compression['output']}", highlight=False)
    out.print(f"run directory: {model.run_dir}  (report: {model.run_dir / 'report.html'})")


@app.command("evaluate")
def evaluate_cmd(
    model_dir: Annotated[Path, typer.Argument(help="saved model or run directory")],
    data: Annotated[str, typer.Argument(help="labelled data file; for a language model a text file or a prompt/target table")],
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="write metrics JSON here")] = None,
    prompt_column: Annotated[Optional[str], typer.Option("--prompt-column", help="language models: prompt column (default prompt)")] = None,
    target_column: Annotated[Optional[str], typer.Option("--target-column", help="language models: target column (default target)")] = None,
    max_new_tokens: Annotated[Optional[int], typer.Option("--max-new-tokens", "-n", help="language models: tokens to generate (default: the target's length)")] = None,
    temperature: Annotated[Optional[float], typer.Option("--temperature", "-t", help="language models: sampling temperature (default 0: greedy)")] = None,
    top_k: Annotated[Optional[int], typer.Option("--top-k", help="language models: sample among the k most likely tokens")] = None,
    top_p: Annotated[Optional[float], typer.Option("--top-p", help="language models: sample within this probability mass")] = None,
    seed: Annotated[Optional[int], typer.Option("--seed", help="language models: random seed for sampling")] = None,
    runtime: Annotated[str, typer.Option("--runtime", help="torch (a model directory) or onnx (a file from `kiln export`)")] = "torch",
) -> None:
    """Score a saved model on labelled data; a language model on a text file (loss, perplexity) or on
    prompt/target pairs (BLEU, ROUGE-1/2/L, loss and perplexity of the targets)."""
    import kiln
    from kiln.evaluate import format_metrics_table
    from kiln.io import write_json

    model = kiln.load(model_dir, runtime=runtime)
    lm_options = {"prompt_column": prompt_column, "target_column": target_column, "max_new_tokens": max_new_tokens,
                  "temperature": temperature, "top_k": top_k, "top_p": top_p, "seed": seed}
    if getattr(model, "kind", None) == "language_model":
        metrics = model.evaluate(Path(data), **lm_options)
    elif any(value is not None for value in lm_options.values()):
        raise KilnError("--prompt-column, --target-column, --max-new-tokens, --temperature, --top-k, --top-p and --seed are for language models only")
    else:
        metrics = model.evaluate(data)
    out.print(format_metrics_table({"evaluation": metrics}))
    if output:
        write_json(output, metrics)
        out.print(f"metrics written to {output}")


@app.command("predict")
def predict_cmd(
    model_dir: Annotated[Path, typer.Argument(help="saved model or run directory")],
    data: Annotated[str, typer.Argument(help="data file with the input columns, or a folder of audio files")],
    output: Annotated[Path, typer.Option("--output", "-o", help="predictions CSV")] = Path("predictions.csv"),
    runtime: Annotated[str, typer.Option("--runtime", help="torch (a model directory) or onnx (a file from `kiln export`)")] = "torch",
) -> None:
    """Predict with a saved model, using exactly its training preprocessing."""
    import kiln
    from kiln.io import write_text

    preds = kiln.load(model_dir, runtime=runtime).predict(data)
    write_text(output, preds.to_csv(index=False))
    out.print(f"{len(preds)} predictions written to {output}")


@app.command("generate")
def generate_cmd(
    model_dir: Annotated[Path, typer.Argument(help="saved language model or its run directory")],
    prompt: Annotated[str, typer.Option("--prompt", "-p", help="text to continue")],
    max_new_tokens: Annotated[int, typer.Option("--max-new-tokens", "-n", help="tokens to generate")] = 200,
    temperature: Annotated[float, typer.Option("--temperature", "-t", help="0 = always the most likely token")] = 1.0,
    top_k: Annotated[Optional[int], typer.Option("--top-k", help="sample among the k most likely tokens")] = None,
    top_p: Annotated[Optional[float], typer.Option("--top-p", help="sample within this probability mass")] = None,
    seed: Annotated[Optional[int], typer.Option("--seed", help="random seed (same seed, same text)")] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="recompute the context every step (no KV cache)")] = False,
) -> None:
    """Generate text with a trained language model, streaming it to stdout (kiln.lm)."""
    from kiln.lm import LanguageModel

    if not model_dir.exists():
        raise KilnError(f"model directory not found: {model_dir}")
    model = LanguageModel.load(model_dir)
    pieces = model.stream(prompt, max_new_tokens, temperature, top_k, top_p, seed, use_cache=not no_cache)
    first = next(pieces, "")  # argument and prompt errors surface before anything is printed
    sys.stdout.write(prompt + first)
    sys.stdout.flush()
    for piece in pieces:
        sys.stdout.write(piece)
        sys.stdout.flush()
    sys.stdout.write("\n")


@app.command("cv")
def cv_cmd(
    config: Annotated[Path, typer.Argument(help="YAML run config")],
    folds: Annotated[int, typer.Option("--folds", "-k", help="number of folds")] = 5,
    data: Annotated[Optional[str], typer.Option("--data", help="data (overrides data.train)")] = None,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="write results JSON here")] = None,
) -> None:
    """k-fold cross-validation: mean ± std of every metric."""
    from rich.table import Table

    import kiln
    from kiln.io import write_json

    result = kiln.cross_validate(config, folds=folds, data=data)
    table = Table(title=f"{folds}-fold cross-validation")
    table.add_column("metric")
    table.add_column("mean ± std", justify="right")
    for name, stats in result["metrics"].items():
        table.add_row(name, f"{stats['mean']:.4f} ± {stats['std']:.4f}")
    out.print(table)
    if output:
        write_json(output, result)


@app.command("tune")
def tune_cmd(
    config: Annotated[Path, typer.Argument(help="YAML config with a tune: section (docs/tuning.md)")],
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="search directory (default runs/tune-<time>)")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="continue the killed search in --output")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no line per trial")] = False,
    set_: Annotated[Optional[list[str]], typer.Option("--set", help="override a config value: KEY=VALUE, e.g. tune.trials=10")] = None,
) -> None:
    """Search hyperparameters: trials table, best.yaml, the best trial's model (best/) and report.html in --output."""
    import kiln

    result = kiln.tune(_with_overrides(config, set_), output=output, resume=resume, progress=not quiet)
    if quiet:
        s = result.summary
        out.print(f"best: trial {s['best_trial']}, {s['metric']} {s['best_value']:.4g}; {result.directory}", highlight=False)


@app.command("quickstart")
def quickstart_cmd(
    output: Annotated[Path, typer.Option("--output", "-o", help="run directory")] = Path("runs/quickstart"),
) -> None:
    """Train the source material's digit MLP on scikit-learn digits (about half a minute on 2 cores)."""
    from kiln.quickstart import run

    _print_run(run(output))


@app.command("merge-adapter")
def merge_adapter_cmd(
    model_dir: Annotated[Path, typer.Argument(help="saved hf model (or run directory) with a LoRA adapter")],
    output: Annotated[Path, typer.Option("--output", "-o", help="directory for the merged model")],
) -> None:
    """Merge a LoRA adapter into its base weights: a plain hf model that needs neither peft nor the base."""
    from kiln.supervised.merge import merge_adapter

    out.print(f"merged model written to {merge_adapter(model_dir, output)}")


def _add_serving_commands() -> None:
    """`kiln serve`, `kiln keys`, `kiln registry`, `kiln monitor` live in kiln.serve.cli (imports stay lazy)."""
    from kiln.serve.cli import register

    register(app)


def _add_deploy_commands() -> None:
    """`kiln export`, `kiln compress`, `kiln explain` live in kiln.deploy.cli."""
    from kiln.deploy.cli import register

    register(app)


_add_serving_commands()
_add_deploy_commands()


def _click_exception() -> type[Exception]:
    """click's base exception: recent typer vendors click, older typer uses the click package."""
    return next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")


def _error(message: str) -> None:
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)


class _WarningLine(logging.Handler):
    """kiln's warnings (e.g. values coerced while cleaning) as one `warning: ...` line on stderr."""

    def emit(self, record: logging.LogRecord) -> None:
        err.print(f"[yellow]warning:[/] {escape(record.getMessage())}", highlight=False, soft_wrap=True)


def _show_warnings() -> None:
    """The Python API is silent by default; the command line shows kiln's warnings."""
    logger = logging.getLogger("kiln")
    if not any(isinstance(h, _WarningLine) for h in logger.handlers):
        logger.addHandler(_WarningLine(logging.WARNING))


def main() -> None:
    """Entry point: turn kiln's input errors into one line on stderr and exit code 2."""
    _show_warnings()
    try:
        app(standalone_mode=False)
    except KilnError as exc:
        _error(str(exc))
        sys.exit(2)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        err.print("aborted")
        sys.exit(130)
    except _click_exception() as exc:  # usage errors: unknown option or command, missing argument
        if type(exc).__name__ == "NoArgsIsHelpError":
            sys.exit(2)  # the help text is already printed
        ctx = getattr(exc, "ctx", None)
        _error(exc.format_message() + (f" (see '{ctx.command_path} --help')" if ctx is not None else ""))
        sys.exit(getattr(exc, "exit_code", 2))


if __name__ == "__main__":
    main()
