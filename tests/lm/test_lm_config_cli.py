"""LMConfig error messages and the `kiln generate` / `kiln train` command line."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from cli_helpers import run_cli
from kiln.cli import app
from kiln.api import load_task_config
from kiln.supervised.config import load_supervised_config
from kiln.errors import KilnError
from kiln.lm.config import LMConfig

from .conftest import lm_config

ROOT = Path(__file__).resolve().parents[2]


def error_of(raw: dict) -> str:
    with pytest.raises(KilnError) as info:
        load_task_config(raw)
    return str(info.value)


def test_example_config_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KILN_DATA", "/data")
    config = load_task_config(ROOT / "examples" / "shakespeare_gpt.yaml")
    assert isinstance(config, LMConfig)
    assert config.data.train == "/data/tinyshakespeare/input.txt"
    assert (config.model.layers, config.model.d_model, config.trainer.iterations, config.trainer.batch_size) == (4, 128, 2000, 12)


@pytest.mark.parametrize(
    ("section", "change", "expected"),
    [
        ("trainer", {"iteration": 5}, "config error at trainer.iteration: unknown key 'iteration' (did you mean 'iterations'?)"),
        ("model", {"d_modle": 8}, "model.d_modle: unknown key 'd_modle' (did you mean 'd_model'?)"),
        ("tokenizer", {"type": "chars"}, "tokenizer.type: 'chars' is not allowed (did you mean 'char'?)"),
        ("trainer", {"precision": "bf61"}, "trainer.precision: 'bf61' is not allowed (did you mean 'bf16'?); valid: fp32, bf16"),
        ("model", {"heads": 3}, "d_model (16) must be divisible by heads (3)"),
        ("trainer", {"device": "gpu"}, "trainer.device: 'gpu' is not a device"),
        ("trainer", {"iterations": 0}, "trainer.iterations: should be greater than or equal to 1 (got 0)"),
    ],
)
def test_config_errors_are_one_line_with_hints(text_file: Path, section: str, change: dict, expected: str) -> None:
    raw = lm_config(text_file)
    raw[section] = {**raw[section], **change}
    message = error_of(raw)
    assert expected in message and "\n" not in message


def test_unknown_top_level_key_and_task(text_file: Path) -> None:
    assert "unknown key 'trainr' (did you mean 'trainer'?)" in error_of({**lm_config(text_file), "trainr": {}})
    assert "task: 'language_modelling' is not allowed (did you mean 'language_modeling'?)" in error_of(
        {**lm_config(text_file), "task": "language_modelling"})
    with pytest.raises(KilnError, match="task: .language_modeling. is not allowed; valid: supervised"):
        load_supervised_config(lm_config(text_file))


def test_generate_end_to_end(trained) -> None:
    runner = CliRunner()
    args = ["generate", str(trained.run_dir), "--prompt", "ROMEO:", "--max-new-tokens", "30", "--temperature", "0.8",
            "--top-k", "10", "--seed", "1"]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    assert first.stdout.startswith("ROMEO:") and len(first.stdout.rstrip("\n")) >= len("ROMEO:") + 1
    assert first.stdout == "ROMEO:" + trained.generate("ROMEO:", 30, 0.8, 10, seed=1) + "\n"
    assert runner.invoke(app, args).stdout == first.stdout  # same seed, same text
    assert runner.invoke(app, [*args, "--no-cache"]).stdout == first.stdout
    assert runner.invoke(app, [*args[:-1], "2"]).stdout != first.stdout


def test_generate_errors(trained, tmp_path: Path, capsys, monkeypatch) -> None:
    def one_line(result: tuple[int, str, str], fact: str) -> None:
        code, _, err = result
        assert code == 2 and "Traceback" not in err
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and fact in lines[0], err

    run = lambda *a: run_cli(capsys, monkeypatch, "generate", *a)  # noqa: E731
    one_line(run(tmp_path / "missing", "--prompt", "a"), "model directory not found")
    one_line(run(trained.run_dir, "--prompt", "ROMEO\u00e9:"), "never saw in training: '\u00e9'")
    one_line(run(trained.run_dir, "--prompt", "a", "--max-new-tokens", "0"), "max_new_tokens must be at least 1")
    one_line(run(trained.run_dir, "--prompt", ""), "the prompt is empty")


def test_train_command_dispatches_on_task(text_file: Path, tmp_path: Path, capsys, monkeypatch) -> None:
    path = tmp_path / "lm.yaml"
    path.write_text(yaml.safe_dump(lm_config(text_file, iterations=2, eval_interval=2)))
    code, out, err = run_cli(capsys, monkeypatch, "train", path, "-q", "-o", tmp_path / "run")
    assert code == 0, err
    assert "perplexity" in out and (tmp_path / "run" / "model" / "model.json").is_file()
