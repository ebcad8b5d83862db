"""The prepared GPU check (benchmarks/gpu.py, docs/gpu.md) on the CPU with --tiny, so that it
cannot rot before a GPU runs it: every section with values, the markdown's tables, the CUDA
tests recorded as skipped here, MFU null with its reason, FLOPs against an analytic count,
the projection's arithmetic on given numbers, and a tiny --budget skipping instead of overrunning."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # benchmarks/ is a folder of the repository, not of the installed package
    sys.path.insert(0, str(ROOT))

from benchmarks import gpu  # noqa: E402


@pytest.fixture(scope="module")
def tiny_check(tmp_path_factory):
    out = tmp_path_factory.mktemp("gpu_check")
    t = time.perf_counter()
    data = gpu.run_check(out, tiny=True, budget=150, device="cpu")
    return out, data, time.perf_counter() - t


def test_every_section_has_values(tiny_check):
    out, data, seconds = tiny_check
    assert json.loads((out / "gpu_check.json").read_text()) == json.loads(json.dumps(data))
    sec = data["sections"]
    assert list(sec) == list(gpu.SECTIONS)
    assert all(v["status"] == "ok" for v in sec.values()), {k: v["status"] for k, v in sec.items()}
    assert data["elapsed_s"] <= data["budget_s"] and seconds < data["budget_s"]

    env = sec["environment"]
    assert env["torch"] == torch.__version__ and env["device"] == "cpu"
    assert env["packages"]["safetensors"]  # a core dependency: found, with its version
    assert env["bf16_peak_tflops"] is None and "MFU is null on the CPU" in env["mfu_note"]

    th = sec["throughput"]
    for name in ("vae_stage1", "vae_stage2", "dit", "dit_encode"):
        r = th[name]
        assert r["status"] == "ok" and r["batch"] in (2, 4), r
        assert r["samples_per_s"] > 0 and r["tokens_per_s"] == pytest.approx(
            r["samples_per_s"] * r["tokens_per_sample"], rel=1e-3
        )
        assert r["flops_per_step"] > 0 and r["tflops_per_s"] > 0
        assert r["mfu"] is None and r["peak_memory_gib"] is None  # CPU: no peak, no CUDA memory
        assert [t["batch"] for t in r["trials"]][0] == 2
    assert th["dit"]["tokens_per_sample"] == 48  # the tiny DiT's max_len: a 25 s clip is cropped to it
    assert th["dit"]["transformer_tokens_per_s"] > th["dit"]["tokens_per_s"]

    la = sec["latency"]
    ok = {k: v for k, v in la["variants"].items() if v["status"] == "ok"}
    assert set(ok) == {"eager fp32", "eager bf16 autocast"}
    for v in ok.values():
        assert v["finite"] and v["total_s"] == pytest.approx(
            v["sampling_s"] + v["decode_s"] + v["vocoder_s"], rel=1e-3
        )
        assert v["dit_tflops_per_s"] > 0 and v["utilisation"] is None
    # 3 steps, cross-guidance from step 2: 2 unconditional passes (batch 1) and one guided pass
    # (condition and null condition batched: batch 2) per step and model, one window
    assert la["length_s"] == 1.5 and la["latent_frames"] == 47 and la["windows"] == "one"
    assert la["dit_forward_passes"] == {"batch 1": 4, "batch 2": 2} and la["guidance_batched"] is True
    assert la["dit_flops"] > 0
    assert all(v["status"].startswith("skipped: --tiny") for k, v in la["variants"].items() if k not in ok)

    pr = sec["projection"]
    assert set(pr["parts"]) == {"vae_stage1", "vae_stage2", "dit"} and pr["total_s"] > 0


def test_cuda_tests_are_recorded_as_skipped_on_the_cpu(tiny_check):
    out, data, _ = tiny_check
    t = data["sections"]["cuda_tests"]
    assert t["skipped"] >= 7 and t["passed"] == t["failed"] == t["errors"] == 0
    assert t["skip_reasons"] == ["needs a CUDA GPU"]
    assert (out / t["junit"]).exists() and (out / t["log"]).exists()


def test_markdown_has_a_table_per_section(tiny_check):
    out, data, _ = tiny_check
    md = (out / "gpu_check.md").read_text()
    assert md.startswith("# GPU check\n\nMachine: ")
    for title in ("## 1. Environment", "## 2. CUDA tests", "## 3. Training throughput", "## 4. Joint generation"):
        assert title in md
    assert "## 5. Projection" in md
    assert "| vae_stage1 | 2 |" in md or "| vae_stage1 | 4 |" in md
    assert "| eager fp32 |" in md and "| DiT, both tasks |" in md
    assert "| tests.cuda.test_cuda::test_ddp_over_nccl_one_process | skipped |" in md
    assert md.count("|---|") >= 5


def test_flops_match_an_analytic_count():
    """A Linear layer's forward (2 B I O) and backward (grad input and grad weight: 2 x 2 B I O)."""
    lin = torch.nn.Linear(8, 4, bias=False)
    x = torch.randn(3, 8, requires_grad=True)
    flops, _ = gpu.count_flops(lambda: lin(x).sum().backward())
    assert flops == 3 * (2 * 3 * 8 * 4)
    assert gpu.mfu(400e12, gpu.H200_BF16_PEAK) == pytest.approx(400 / 790)
    assert gpu.mfu(400e12, None) is None


def test_projection_arithmetic():
    rates = {
        "vae_stage1": {"batch": 64, "step_s": 0.5},
        "vae_stage2": {"batch": 100, "step_s": 0.25},
        "dit": {"batch": 128, "step_s": 0.75, "encode_s": 0.25},
    }
    p = gpu.project_schedule(rates, clips=1881, train_fraction=0.9, vae_epochs=300, dit_epochs=200, dit_tasks=2)
    assert p["train_clips"] == 1693
    s1, s2, dit = (p["parts"][k] for k in ("vae_stage1", "vae_stage2", "dit"))
    assert s1["steps"] == 300 * (1693 // 64) == 7800 and s1["seconds"] == pytest.approx(7800 * 0.5)
    assert s2["steps"] == 300 * 16 and s2["seconds"] == pytest.approx(4800 * 0.25)
    assert dit["steps"] == 200 * 13 and dit["seconds"] == pytest.approx(2600 * (0.75 + 0.25) * 2)
    assert p["total_s"] == pytest.approx(3900 + 1200 + 5200) and p["total_h"] == pytest.approx(10300 / 3600, rel=1e-3)
    assert dit["arithmetic"] == (
        "200 epochs x (1693 // 128 = 13 steps) = 2600 steps x 0.75 s + 0.25 s VAE encoding x 2 tasks = 5200 s"
    )
    # the check's own wiring: rates from throughput results, encoding scaled per sample to the DiT's batch
    res = {
        "status": "ok",
        "vae_stage1": {"status": "ok", "batch": 64, "step_ms": 500.0},
        "vae_stage2": {"status": "skipped: budget"},
        "dit": {"status": "ok", "batch": 128, "step_ms": 750.0},
        "dit_encode": {"status": "ok", "batch": 64, "step_ms": 125.0},
    }
    pr = gpu.projection(res)
    assert pr["status"] == "partial: no rate for vae_stage2"
    assert pr["parts"]["dit"]["seconds"] == pytest.approx(2600 * (0.75 + 0.25) * 2)
    assert "warm-up" in pr["warmup_note"]


def test_a_tiny_budget_skips_instead_of_overrunning(tmp_path):
    """Through the command line: `python -m benchmarks gpu --tiny --budget 1`."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    t = time.perf_counter()
    r = subprocess.run(
        [sys.executable, "-m", "benchmarks", "gpu", "--tiny", "--budget", "1", "--device", "cpu", "--out", tmp_path],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    data = json.loads((tmp_path / "gpu_check.json").read_text())
    sec = data["sections"]
    assert sec["environment"]["status"] == "ok"
    for name in ("cuda_tests", "throughput", "latency"):
        assert sec[name]["status"].startswith("skipped: budget"), sec[name]
    assert sec["projection"]["status"].startswith("skipped: no measured rates")
    assert data["elapsed_s"] < 1.0 and time.perf_counter() - t < 60
    assert "skipped: budget" in (tmp_path / "gpu_check.md").read_text()
    assert "wrote" in r.stdout


def test_junit_summary_reports_failures_in_one_line(tmp_path):
    (tmp_path / "j.xml").write_text(
        '<?xml version="1.0"?><testsuites><testsuite name="pytest">'
        '<testcase classname="tests.cuda.test_cuda" name="test_a"/>'
        '<testcase classname="tests.cuda.test_cuda" name="test_b"><failure message="AssertionError: 0.93 &gt; 0.9'
        '&#10;second line">trace</failure></testcase>'
        '<testcase classname="tests.cuda.test_cuda" name="test_c"><error message="fixture broke">trace</error>'
        "</testcase>"
        '<testcase classname="tests.cuda.test_cuda" name="test_d"><skipped message="needs a CUDA GPU"/></testcase>'
        "</testsuite></testsuites>"
    )
    s = gpu.junit_summary(tmp_path / "j.xml")
    assert (s["passed"], s["failed"], s["errors"], s["skipped"]) == (1, 1, 1, 1)
    assert s["failures"] == [
        "tests.cuda.test_cuda::test_b: AssertionError: 0.93 > 0.9",
        "tests.cuda.test_cuda::test_c: fixture broke",
    ]
    assert [t["outcome"] for t in s["tests"]] == ["passed", "failed", "error", "skipped"]
    assert s["skip_reasons"] == ["needs a CUDA GPU"]
