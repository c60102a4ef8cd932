"""worker/benchmark.py on CPU with the tiny pipeline: it prints the figures a GPU host reports."""
from __future__ import annotations

import re

import pytest

pytestmark = pytest.mark.slow


def test_benchmark_prints_throughput_and_peak_memory(capsys):
    from worker import benchmark

    assert benchmark.main(["--tiny", "--steps", "2", "--images", "2"]) == 0  # --tiny: 64x64 unless told
    out = capsys.readouterr().out
    per_second = float(re.search(r"^images/s:\s+([\d.]+)$", out, re.M).group(1))
    per_image = float(re.search(r"^s/image:\s+([\d.]+)$", out, re.M).group(1))
    assert per_second > 0 and per_image > 0 and abs(per_second * per_image - 1) < 0.05
    assert re.search(r"^size, steps:\s+64x64, 2 steps", out, re.M)
    assert re.search(r"^peak GPU memory:\s+n/a \(no CUDA device\)$", out, re.M)  # this machine has no GPU


def test_benchmark_without_a_model_says_which_variable(monkeypatch, capsys):
    from worker import benchmark

    monkeypatch.delenv("WORKER_MODEL", raising=False)
    assert benchmark.main(["--size", "64"]) == 2
    assert "WORKER_MODEL is not set" in capsys.readouterr().err
