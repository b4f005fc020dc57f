"""Shared fixtures for formiga's end-to-end tests (they drive the real binary)."""
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MODELS = Path(os.environ.get("FORMIGA_MODELS_DIR", ROOT / ".cache" / "models"))


@pytest.fixture(scope="session")
def formiga_bin() -> Path:
    path = Path(os.environ.get("FORMIGA_BIN", ROOT / "build" / "release" / "formiga"))
    if not path.exists():
        pytest.fail(f"formiga binary not found at {path}: run scripts/build (or set FORMIGA_BIN)")
    return path


def _model(name: str) -> Path:
    path = MODELS / name
    if not path.exists():
        msg = f"test model missing: {path} (run scripts/setup)"
        if os.environ.get("FORMIGA_REQUIRE_MODELS") == "1":
            pytest.fail(msg)
        pytest.skip(msg)
    return path


@pytest.fixture(scope="session")
def smollm2() -> Path:
    return _model("SmolLM2-135M-Instruct.Q4_1.gguf")


@pytest.fixture(scope="session")
def gemma3() -> Path:
    return _model("gemma-3-270m-q4_k_m.gguf")


@pytest.fixture
def run_formiga(formiga_bin):
    """Runs formiga with arguments; returns CompletedProcess (text mode)."""
    def run(*args, check=True, timeout=300, input=None):
        proc = subprocess.run([str(formiga_bin), *map(str, args)], capture_output=True,
                              text=True, timeout=timeout, input=input)
        if check and proc.returncode != 0:
            raise AssertionError(f"formiga {' '.join(map(str, args))} exited {proc.returncode}\n"
                                 f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
        return proc
    return run
