"""The PyTorch tutorial's own training pipeline, as the baseline the benchmarks divide by.

"Training a Classifier" (pytorch.org/tutorials/beginner/blitz/cifar10_tutorial.html) with the
project's tutorial recipe: a torchvision-style CIFAR-10 Dataset (PIL image per item) with
ToTensor + Normalize transforms, a DataLoader (shuffle, num_workers=2 as in the tutorial),
the 3072-1000-500-10 MLP, CrossEntropyLoss, Adam(lr=1e-4) with PyTorch's default settings,
batch 16, and `running_loss += loss.item()` every step as the tutorial does.

torchvision.datasets.CIFAR10 itself refuses the development split (its checksums differ from
the official archive), so `CifarBatches` reads the same python batches the same way it does.
"""
from __future__ import annotations

import pickle
import time
from pathlib import Path

import numpy as np
import torch
import torchvision.transforms as transforms
from PIL import Image

from core.data.images import MEAN, STD
from core.train.models import build_model


class CifarBatches(torch.utils.data.Dataset):
    """torchvision.datasets.CIFAR10's reading and __getitem__, without the checksum check."""

    def __init__(self, root, train: bool = True, transform=None):
        folder = Path(root) / "cifar-10-batches-py"
        names = sorted(p.name for p in folder.glob("data_batch_*")) if train else ["test_batch"]
        data, targets = [], []
        for name in names:
            with open(folder / name, "rb") as fh:
                entry = pickle.load(fh, encoding="latin1")
            data.append(np.asarray(entry["data"], dtype=np.uint8))
            targets.extend(entry["labels"] if "labels" in entry else entry["fine_labels"])
        self.data = np.vstack(data).reshape(-1, 3, 32, 32).transpose((0, 2, 3, 1))  # HWC
        self.targets = targets
        self.transform = transform

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int):
        img, target = self.data[index], self.targets[index]
        img = Image.fromarray(img)
        if self.transform is not None:
            img = self.transform(img)
        return img, target


def tutorial_transform():
    return transforms.Compose([transforms.ToTensor(), transforms.Normalize(MEAN, STD)])


def run_tutorial_steps(root, steps: int, *, batch_size: int = 16, lr: float = 1e-4, num_workers: int = 2,
                       seed: int = 0) -> dict[str, float]:
    """Train the tutorial MLP for `steps` optimiser steps the tutorial's way; time the loop.

    The clock covers the loop as a learner runs it: iterator creation (worker start-up) and
    every step, stopping right after the last step (worker shutdown is not counted).
    """
    trainset = CifarBatches(root, train=True, transform=tutorial_transform())
    torch.manual_seed(seed)
    net = build_model("tutorial_mlp")
    criterion = torch.nn.CrossEntropyLoss()
    optimizer = torch.optim.Adam(net.parameters(), lr=lr)
    done, running_loss, losses = 0, 0.0, []
    start = time.perf_counter()
    while done < steps:                       # as many epochs as `steps` needs
        trainloader = torch.utils.data.DataLoader(trainset, batch_size=batch_size, shuffle=True,
                                                  num_workers=num_workers)
        for inputs, labels in trainloader:
            # zero the parameter gradients
            optimizer.zero_grad()
            # forward + backward + optimize
            outputs = net(inputs)
            loss = criterion(outputs, labels)
            loss.backward()
            optimizer.step()
            running_loss += loss.item()
            losses.append(loss.item())
            done += 1
            if done == steps:
                break
    seconds = time.perf_counter() - start
    tail = losses[-min(len(losses), 200):]
    return {"steps": done, "seconds": seconds, "images_per_sec": done * batch_size / seconds,
            "final_loss": float(np.mean(tail))}
