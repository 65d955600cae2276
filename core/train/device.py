"""Pick the compute device once: cuda, then mps, then cpu."""
from __future__ import annotations

import torch

DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")


def available_devices() -> list[str]:
    found = ["cpu"]
    if torch.cuda.is_available():
        found.insert(0, "cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        found.insert(0, "mps")
    return found


def resolve_device(name: str = "auto") -> torch.device:
    """Turn a device choice into a torch.device; a device that is not there is a ValueError."""
    if name not in DEVICE_CHOICES:
        raise ValueError(f"device must be one of {', '.join(DEVICE_CHOICES)}, got {name!r}")
    if name == "auto":
        for cand in ("cuda", "mps"):
            if cand in available_devices():
                return torch.device(cand)
        return torch.device("cpu")
    if name not in available_devices():
        raise ValueError(f"device {name!r} is not available on this machine (found: {', '.join(available_devices())})")
    return torch.device(name)


def describe_device(name: str = "auto") -> str:
    """Human-readable name, e.g. 'cuda (NVIDIA H200)' or 'cpu (2 threads)'."""
    dev = resolve_device(name)
    if dev.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(dev)})"
    if dev.type == "cpu":
        return f"cpu ({torch.get_num_threads()} threads)"
    return dev.type
