"""The MLP experiment: batched populations, and the subliminal transfer itself on digits."""

from __future__ import annotations

import json

import torch
from torch.overrides import TorchFunctionMode
from typer.testing import CliRunner

from sublearn.eval.mlp_data import load_digit_images
from sublearn.eval.mlp_experiment import MlpConfig, run_mlp_experiment
from sublearn.eval.mlp_population import init_population


class CountCalls(TorchFunctionMode):
    def __init__(self):
        super().__init__()
        self.calls: list[str] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        self.calls.append(getattr(func, "__name__", str(func)))
        return func(*args, **(kwargs or {}))


def test_one_batched_forward_runs_every_model():
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(32, 64)
    counts = {}
    for k in (1, 50):
        pop = init_population(k, [64, 256, 256, 13], gen)
        with CountCalls() as mode:
            out = pop.forward(x)
        counts[k] = mode.calls.count("baddbmm")
        assert out.shape == (k, 32, 13)
    assert counts == {1: 3, 50: 3}  # three layers, one matmul each, whatever K is
    # and the batched result is each model's own forward
    for i in (0, 17, 49):
        h = x
        for j, (w, b) in enumerate(zip(pop.weights, pop.biases, strict=True)):
            h = h @ w[i] + b[i, 0]
            h = torch.relu(h) if j < 2 else h
        torch.testing.assert_close(out[i], h)


def test_models_train_independently():
    """Each model's gradient depends only on its own loss: batching does not couple them."""
    gen = torch.Generator().manual_seed(1)
    pop = init_population(3, [8, 16, 4], gen)
    pop.forward(torch.rand(5, 8))[1].sum().backward()
    grads = [w.grad for w in pop.weights]
    assert all(g[0].abs().sum() == 0 and g[2].abs().sum() == 0 for g in grads)
    assert all(g[1].abs().sum() > 0 for g in grads)


def test_same_init_students_learn_through_aux_logits_and_others_do_not():
    data = load_digit_images("digits", seed=0)
    cfg = MlpConfig(models=8, aux=3, seed=0, teacher_epochs=5, distill_steps=600)
    result = run_mlp_experiment(cfg, data)
    s = {name: v["summary"] for name, v in result["variants"].items()}
    assert len(result["variants"]["teacher"]["accuracies"]) == 8
    assert s["teacher"]["mean"] > 0.8
    same, other = s["same init, aux logits"], s["different init, aux logits"]
    assert same["low"] > other["high"]  # intervals do not overlap
    assert same["mean"] > 2 * result["chance"]
    assert other["mean"] < 0.2 and s["untrained"]["mean"] < 0.2
    assert s["same init, all logits"]["mean"] >= same["mean"]


def test_cli_prints_variants_and_saves_plot(run_cli, tmp_path):
    out = tmp_path / "mlp"
    args = ["mlp", "--models", "4", "--distill-steps", "50", "--aux", "1", "--aux", "3"]
    proc = run_cli([*args, "--out", str(out)])
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "different init, aux logits" in proc.stdout
    saved = json.loads((out / "mlp.json").read_text())
    assert [r["config"]["aux"] for r in saved["results"]] == [1, 3]
    assert len(saved["summary"]) == 10
    assert (out / "mlp.png").stat().st_size > 10_000
    assert (out / "mlp.png").read_bytes()[:4] == b"\x89PNG"


def test_cli_rejects_bad_options():
    from sublearn.flows.cli import app

    result = CliRunner().invoke(app, ["mlp", "--models", "0"])
    assert result.exit_code == 2 and "--models: must be at least 1" in result.output
    result = CliRunner().invoke(app, ["mlp", "--dataset", "cifar"])
    assert result.exit_code == 2 and "dataset" in result.output


def test_mnist_loads_from_local_idx_files(tmp_path):
    """The IDX reader on files written here in MNIST's own format (gzip and plain)."""
    import gzip

    import numpy as np

    from sublearn.eval.mlp_data import load_digit_images

    rng = np.random.default_rng(0)

    def write(name, array, gz):
        header = bytes([0, 0, 8, array.ndim]) + np.array(array.shape, dtype=">i4").tobytes()
        data = header + array.astype(np.uint8).tobytes()
        path = tmp_path / (name + (".gz" if gz else ""))
        path.write_bytes(gzip.compress(data) if gz else data)

    train, test = rng.integers(0, 256, (30, 28, 28)), rng.integers(0, 256, (10, 28, 28))
    write("train-images-idx3-ubyte", train, gz=True)
    write("train-labels-idx1-ubyte", rng.integers(0, 10, 30), gz=True)
    write("t10k-images-idx3-ubyte", test, gz=False)
    write("t10k-labels-idx1-ubyte", rng.integers(0, 10, 10), gz=False)
    data = load_digit_images("mnist", folder=tmp_path)
    assert data.x_train.shape == (30, 784) and data.x_test.shape == (10, 784)
    assert data.n_inputs == 784
    assert float(data.x_train.min()) >= -1 and float(data.x_train.max()) <= 1
    expected = train[3].reshape(-1) / 255 * 2 - 1
    assert np.allclose(data.x_train[3].numpy(), expected, atol=1e-6)
