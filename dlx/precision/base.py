"""fp32, bf16 and fp16 policies built on torch.autocast and GradScaler."""

from __future__ import annotations

from contextlib import nullcontext

import torch


class Precision:
    """Full precision; the interface every policy implements."""

    name = "fp32"

    def __init__(self, device: str):
        self.device = device
        self.device_type = device.split(":")[0]
        self.note = "fp32 weights, activations and updates"

    def prepare(self, model: torch.nn.Module) -> torch.nn.Module:
        return model

    def autocast(self):
        return nullcontext()

    def backward(self, loss: torch.Tensor) -> None:
        loss.backward()

    def unscale(self, optimizer) -> None:
        """Make gradients true-scale before clipping (no-op without loss scaling)."""

    def step(self, optimizer) -> None:
        optimizer.step()

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


class Autocast(Precision):
    """Autocast the forward to a 16-bit dtype; weights and updates stay fp32."""

    def __init__(self, device: str, dtype: str):
        super().__init__(device)
        self.name = {"bfloat16": "bf16", "float16": "fp16"}[dtype]
        self.dtype = getattr(torch, dtype)
        self.note = f"autocast {dtype} forward on {self.device_type}; fp32 master weights and updates"

    def autocast(self):
        return torch.autocast(device_type=self.device_type, dtype=self.dtype)


class Fp16(Autocast):
    """float16 autocast plus dynamic loss scaling.

    On CUDA this is the usual mixed-precision recipe. On CPU, autocast runs the float16 kernels
    CPU has (slow, no tensor cores) and GradScaler("cpu") does the loss scaling; it is there for
    numerical studies, not speed, and the summary says so.
    """

    def __init__(self, device: str):
        super().__init__(device, "float16")
        self.scaler = torch.amp.GradScaler(self.device_type)
        if self.device_type == "cpu":
            self.note = "fp16 on CPU: autocast float16 CPU kernels (slow) with dynamic loss scaling"
        else:
            self.note = f"autocast float16 on {self.device_type} with dynamic loss scaling"

    def backward(self, loss):
        self.scaler.scale(loss).backward()

    def unscale(self, optimizer):
        self.scaler.unscale_(optimizer)

    def step(self, optimizer):
        self.scaler.step(optimizer)
        self.scaler.update()

    def state_dict(self):
        return {"scaler": self.scaler.state_dict()}

    def load_state_dict(self, state):
        if "scaler" in state:
            self.scaler.load_state_dict(state["scaler"])
