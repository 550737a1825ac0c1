"""The training precision per device: float32 on a CPU, bfloat16 on GPUs that have it, float16 with a gradient
scaler on those that have not (Colab's T4). No GPU here: the GPU's capability is simulated, and the float16
machinery (autocast, scaling, skipped steps) runs on the CPU, which autocasts to float16 too."""

import pytest
import torch

from rlhf_course.engine import precision
from rlhf_course.engine.precision import Precision, PrecisionError, training_precision
from rlhf_course.engine.training import backward_and_step


@pytest.fixture(autouse=True)
def no_override(monkeypatch):
    monkeypatch.delenv("RLHF_PRECISION", raising=False)


def fake_gpu(monkeypatch, native: bool, emulated: bool = True):
    """A CUDA device whose bfloat16 is native (A100, H100) or only emulated (T4, V100)."""
    def is_bf16_supported(including_emulation: bool = True) -> bool:
        return native or (including_emulation and emulated)

    monkeypatch.setattr(torch.cuda, "is_bf16_supported", is_bf16_supported)


def test_cpu_trains_in_float32_without_autocast_or_scaling():
    chosen = training_precision("cpu")
    assert chosen.dtype == torch.float32 and chosen.name == "float32"
    assert not chosen.grad_scaler().is_enabled()
    with chosen.autocast():
        assert not torch.is_autocast_enabled("cpu")


def test_gpu_with_native_bfloat16_autocasts_to_it(monkeypatch):
    fake_gpu(monkeypatch, native=True)
    chosen = training_precision("cuda")
    assert chosen.dtype == torch.bfloat16 and "native" in chosen.reason


def test_gpu_that_only_emulates_bfloat16_takes_float16_with_a_scaler(monkeypatch):
    """A T4 reports bfloat16 as supported when emulation counts: the course asks without emulation."""
    fake_gpu(monkeypatch, native=False, emulated=True)
    assert torch.cuda.is_bf16_supported()  # what a plain question would have answered
    chosen = training_precision("cuda")
    assert chosen.dtype == torch.float16 and "gradient scaler" in chosen.reason


def test_precision_can_be_forced_and_bad_values_are_refused(monkeypatch):
    fake_gpu(monkeypatch, native=True)
    monkeypatch.setenv("RLHF_PRECISION", "float16")
    assert training_precision("cuda").dtype == torch.float16
    monkeypatch.setenv("RLHF_PRECISION", "FLOAT32")
    assert training_precision("cuda").dtype == torch.float32
    monkeypatch.setenv("RLHF_PRECISION", "float16")
    with pytest.raises(PrecisionError, match="CUDA GPUs"):
        training_precision("cpu")
    monkeypatch.setenv("RLHF_PRECISION", "half")
    with pytest.raises(PrecisionError, match="bfloat16, float16, float32"):
        training_precision("cuda")


def _model_and_data(seed: int = 0):
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.Tanh(), torch.nn.Linear(16, 1))
    inputs, targets = torch.randn(64, 8), torch.randn(64, 1)
    return model, inputs, targets


def test_the_float32_step_is_exactly_the_plain_one():
    """On a CPU nothing changes: backward_and_step with a disabled scaler is backward, clip, step, bit for bit."""
    model_a, inputs, targets = _model_and_data()
    model_b, _, _ = _model_and_data()
    opt_a = torch.optim.AdamW(model_a.parameters(), lr=1e-2)
    opt_b = torch.optim.AdamW(model_b.parameters(), lr=1e-2)
    scaler = training_precision("cpu").grad_scaler()
    for _ in range(5):
        backward_and_step(torch.nn.functional.mse_loss(model_a(inputs), targets), opt_a, scaler, model_a.parameters())
        opt_b.zero_grad(set_to_none=True)
        torch.nn.functional.mse_loss(model_b(inputs), targets).backward()
        torch.nn.utils.clip_grad_norm_(model_b.parameters(), 1.0)
        opt_b.step()
    for a, b in zip(model_a.parameters(), model_b.parameters()):
        assert torch.equal(a, b)


def test_float16_training_scales_the_loss_and_learns():
    """The T4's path, on the CPU: float16 autocast, a live gradient scaler, and the loss goes down."""
    half = Precision("cpu", torch.float16, "simulated")
    scaler = half.grad_scaler()
    assert scaler.is_enabled() and scaler.get_scale() > 1
    model, inputs, targets = _model_and_data()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(40):
        with half.autocast():
            outputs = model(inputs)
        assert outputs.dtype == torch.float16
        loss = torch.nn.functional.mse_loss(outputs.float(), targets)
        backward_and_step(loss, optimizer, scaler, model.parameters())
        losses.append(loss.item())
    assert all(p.dtype == torch.float32 for p in model.parameters())  # the master weights stay float32
    assert losses[-1] < 0.8 * losses[0]


def test_float16_skips_a_step_whose_gradients_overflowed():
    half = Precision("cpu", torch.float16, "simulated")
    scaler = half.grad_scaler()
    model, inputs, targets = _model_and_data()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    before = [p.detach().clone() for p in model.parameters()]
    scale = scaler.get_scale()
    overflowing = model(inputs).sum() * float("inf")  # as a float16 overflow would leave it
    backward_and_step(overflowing, optimizer, scaler, model.parameters())
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))  # the step was skipped
    assert scaler.get_scale() < scale  # and the factor lowered for the next one


def test_has_native_bfloat16_on_an_old_torch(monkeypatch):
    """torch before 2.4 has no `including_emulation`: the course asks the plain question there."""
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: False)
    assert precision.has_native_bfloat16() is False
