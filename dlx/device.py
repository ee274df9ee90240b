"""device=auto resolution and seeding."""

from __future__ import annotations

from dlx.errors import DlxError


def resolve_device(name: str = "auto") -> str:
    import torch

    name = str(name or "auto")
    if name == "auto":
        if torch.cuda.is_available():
            return "cuda"
        mps = getattr(torch.backends, "mps", None)
        return "mps" if mps is not None and mps.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise DlxError(f"device '{name}' asked for but CUDA is not available here (use device=auto or cpu)")
    if name not in ("cpu", "mps") and not name.startswith("cuda"):
        raise DlxError(f"unknown device '{name}' (choose auto, cpu, cuda, cuda:N, mps)")
    return name


def seed_everything(seed: int, deterministic: bool = False) -> None:
    """Seed torch (CPU and CUDA). numpy's global RNG is not used by dlx, so it is left alone."""
    import torch

    torch.manual_seed(int(seed))
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
