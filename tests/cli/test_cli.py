"""The one CLI: command table, shared options spelt once, and `--help` without torch."""

from __future__ import annotations

import subprocess
import sys

import pytest

from physiosync.cli import COMMANDS, build_parser
from physiosync.cli.common import cli_overrides

# every command's --help, in one interpreter; then: which heavy modules did that import?
_HELP_PROBE = """
import contextlib, io, sys
from physiosync.cli import COMMANDS, main
for argv in [["--help"], *([c, "--help"] for c in COMMANDS)]:
    with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):
        main(argv)
print(",".join(m for m in ("torch", "sklearn", "scipy", "matplotlib") if m in sys.modules))
"""


def test_help_of_every_command_imports_no_torch() -> None:
    # `physiosync --help` and `physiosync <command> --help` must stay fast: argument parsing imports no
    # model, training or plotting code (torch alone takes seconds to import on a cold CI disk).
    out = subprocess.run([sys.executable, "-c", _HELP_PROBE], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"--help imported {out.stdout.strip()}"


def test_import_physiosync_is_light_and_exposes_the_pipeline_api() -> None:
    probe = ("import sys, physiosync\n"
             "light = 'torch' not in sys.modules and 'physiosync.experiments.pipeline' not in sys.modules\n"
             "from physiosync.experiments import pipeline\n"
             "print(light, physiosync.run_pipeline is pipeline.run_pipeline, physiosync.prepare is pipeline.prepare)")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True", "True", "True"]
    import physiosync

    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        physiosync.nope  # noqa: B018
    assert {"run_pipeline", "prepare", "make_run_folds", "start_run", "run_compare"} <= set(dir(physiosync))


def test_command_modules_live_in_the_cli_package() -> None:
    assert all(module.startswith("physiosync.cli.") for module, _ in COMMANDS.values())


SHARED = ["--set", "seed=3", "--set", "finetune.epochs=1", "--device", "cpu", "--precision", "fp32", "--quiet"]


@pytest.mark.parametrize("argv", [["run"], ["fit"], ["demo"], ["compare"], ["pretrain", "runs/x"], ["finetune", "runs/x"],
                                  ["evaluate", "runs/x"], ["report", "runs/x"]])
def test_pipeline_commands_take_the_same_shared_options(argv: list[str]) -> None:
    args = build_parser(argv[0]).parse_args([*argv, *SHARED])
    assert cli_overrides(args) == ["seed=3", "finetune.epochs=1", "device=cpu", "precision=fp32"] and args.quiet


def test_prepare_and_describe_take_the_shared_overrides_without_a_device() -> None:
    for flag in ("--quiet", "--no-progress"):  # prepare keeps its old spelling of --quiet
        args = build_parser("prepare").parse_args(["prepare", "--set", "seed=2", flag])
        assert cli_overrides(args) == ["seed=2"] and args.quiet
    args = build_parser("describe-model").parse_args(["describe-model", "--set", "model.depth=2"])
    assert cli_overrides(args) == ["model.depth=2"]
    for command in ("prepare", "describe-model"):
        with pytest.raises(SystemExit):  # no device to choose: preprocessing and counting run on the CPU
            build_parser(command).parse_args([command, "--device", "cpu"])


def test_describe_model_reads_an_own_recordings_dataset_file(tmp_path, capsys) -> None:
    """describe-model on own recordings: the contract comes from the folder's dataset file, not a shipped one."""
    from physiosync.cli import main
    from physiosync.synth.recordings import write_synthetic_recordings

    write_synthetic_recordings(tmp_path / "rec", format="fif", n_subjects=1, n_trials=2, trial_seconds=5.0,
                               montage="epoc14", seed=0)
    rc = main(["describe-model", "--set", "dataset.name=recordings", "--set", f"dataset.data_dir={tmp_path / 'rec'}"])
    out = capsys.readouterr().out
    assert rc == 0 and out.startswith("recordings: resolutions")
    assert "encoder eeg@1s" in out and "encoder gsr@1s" in out
