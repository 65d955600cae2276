"""The compute device: the choices a config may name, and what they mean on this machine.

A config names a device choice (DEVICE_CHOICES); whether that device exists is a question about
the machine, asked when a run starts (`resolve_device`), never when a config is read, so a run
recorded on a GPU machine stays readable on a laptop.
"""
from __future__ import annotations

import torch

DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")   # auto: cuda, then mps, then cpu


class DeviceError(ValueError):
    """A device choice this machine cannot honour; the message says what to choose instead."""


def available_devices() -> list[str]:
    """The devices this machine has, best first (always ends with 'cpu')."""
    found = ["cpu"]
    if torch.cuda.is_available():
        found.insert(0, "cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        found.insert(0, "mps")
    return found


def usable_devices() -> list[str]:
    """The device choices that work here: 'auto' and every device found."""
    return ["auto", *available_devices()]


def resolve_device(name: str = "auto") -> torch.device:
    """Turn a device choice into a torch.device; a device that is not here raises DeviceError."""
    if name not in DEVICE_CHOICES:
        raise DeviceError(f"device must be one of {', '.join(DEVICE_CHOICES)}, got {name!r}")
    found = available_devices()
    if name == "auto":
        return torch.device(next(d for d in ("cuda", "mps", "cpu") if d in found))
    if name not in found:
        instead = " or ".join(f'"{d}"' for d in ("auto", *found))
        raise DeviceError(f"device {name!r} is not available on this machine (it has: {', '.join(found)}); "
                          f"choose {instead} instead (\"auto\" picks the best device here)")
    return torch.device(name)


def describe_device(name: str = "auto") -> str:
    """Human-readable name, e.g. 'cuda (NVIDIA H200)' or 'cpu (2 threads)'; DeviceError as above."""
    dev = resolve_device(name)
    if dev.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(dev)})"
    if dev.type == "cpu":
        return f"cpu ({torch.get_num_threads()} threads)"
    return dev.type
