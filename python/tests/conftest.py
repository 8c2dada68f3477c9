"""Shared fixtures: the repository, the `meta-train` CLI, and a blob it trained."""

import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def cli():
    """Runs the `meta-train` CLI (TINYADAPT_META_TRAIN, or the workspace's debug build)."""
    path = os.environ.get("TINYADAPT_META_TRAIN")
    if path is None:
        subprocess.run(
            ["cargo", "build", "-q", "-p", "tinyadapt-meta-train"], cwd=REPO, check=True
        )
        path = str(REPO / "target" / "debug" / "meta-train")

    def run(*args, check=True):
        done = subprocess.run(
            [path, *map(str, args)], cwd=REPO, capture_output=True, text=True
        )
        if check and done.returncode != 0:
            raise AssertionError(
                f"meta-train {' '.join(map(str, args))} failed:\n{done.stdout}\n{done.stderr}"
            )
        return done

    return run


@pytest.fixture(scope="session")
def trained(cli, tmp_path_factory):
    """A sinusoid w* meta-trained by `meta-train train` (short, but a real run)."""
    run = tmp_path_factory.mktemp("run")
    cli("train", "--iterations", "300", "--eval-tasks", "20", "--run", run)
    return run / "wstar.bin"
