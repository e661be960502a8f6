"""bench/fuzz.py in the suite: a short budget of every target, and the atheris engine once."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

FUZZ = Path(__file__).resolve().parent.parent / "bench" / "fuzz.py"


def _fuzz() -> ModuleType:
    spec = importlib.util.spec_from_file_location("reputable_bench_fuzz", FUZZ)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


FUZZ_MODULE = _fuzz()


@pytest.mark.parametrize("target", list(FUZZ_MODULE.TARGETS))
def test_short_fuzz_budget(target: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each fuzz target takes its seeds and 400 mutated inputs without a crash."""
    monkeypatch.chdir(tmp_path)  # a crash leaves its reproducer here
    count, _seconds = FUZZ_MODULE.run_mutate(target, 400, 7)
    assert count == 400
    assert not list(tmp_path.glob("fuzz-crash-*"))


def test_a_crash_is_saved_with_its_reproducer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A target that raises has its input saved and printed, and the error goes on up."""
    monkeypatch.chdir(tmp_path)

    def broken(data: bytes) -> None:
        if b"boom" in data:
            raise KeyError("boom")

    run = FUZZ_MODULE.guarded("demo", broken)
    run(b"fine")
    with pytest.raises(KeyError):
        run(b"a boom here")
    [saved] = tmp_path.glob("fuzz-crash-demo-*.bin")
    assert saved.read_bytes() == b"a boom here"
    assert "CRASH in demo" in capsys.readouterr().out


@pytest.mark.slow
def test_atheris_engine_runs_the_dns_target(tmp_path: Path) -> None:
    """The coverage-guided engine runs 3,000 differential DNS inputs without a crash."""
    pytest.importorskip("atheris", reason="atheris is not installed (pip install atheris)")
    result = subprocess.run(
        [sys.executable, str(FUZZ), "dns", "--engine", "atheris", "--runs", "3000"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "Done 3000 runs" in result.stderr
