"""The batch path: the whole split in memory on the training device, batches made there.

No DataLoader, no per-image Python. A split is converted once from the loader's NHWC numpy
array into a uint8 NCHW tensor on the device (`to_device`); each batch is gathered with one
indexing operation, augmented on the device as a whole (`augment`: random crop with reflect
padding + horizontal flip, both folded into the same gather), and normalised there
(`normalize`, the same arithmetic as torchvision's ToTensor + Normalize).

    images, labels = to_device(split.images, split.labels, device)
    batches = BatchIterator(images, labels, 256, shuffle=True, drop_last=True, augment=True,
                            generator=torch.Generator().manual_seed(0))
    for x, y in batches.epoch():            # x: normalised float32 (B, 3, 32, 32), y: int64 (B,)
        ...
    # exact mid-epoch resume: restore the state the epoch started from and skip k batches
    batches.set_state(saved_state); batches.epoch(start_batch=k)

Randomness: an epoch draws its permutation and one augmentation seed from `generator` (a CPU
torch.Generator, so runs are reproducible on any device); batch b of the epoch is augmented with
a generator seeded from (augmentation seed + b). So an epoch is fully determined by the
generator's state at its start, which `epoch_state` keeps for checkpoints.
"""
from __future__ import annotations

from typing import Iterator

import numpy as np
import torch

from core.data.images import normalize, to_nchw


def to_device(images: np.ndarray, labels: np.ndarray, device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 NHWC numpy images + int labels -> (uint8 NCHW tensor, int64 tensor) on `device`."""
    x = to_nchw(images, device)                                      # NHWC -> NCHW, once
    y = torch.from_numpy(np.asarray(labels, dtype=np.int64)).to(device)
    return x, y


def _reflect(index: torch.Tensor, size: int) -> torch.Tensor:
    """Map indices in [-size+1, 2*size-2] into [0, size) as reflect padding does (no edge repeat)."""
    index = index.abs()
    return torch.where(index >= size, 2 * (size - 1) - index, index)


def crop_flip(x: torch.Tensor, dy: torch.Tensor, dx: torch.Tensor, mirror: torch.Tensor, *,
              padding: int = 4) -> torch.Tensor:
    """Crop and mirror every image of a uint8 NCHW batch by the given per-image amounts.

    Image k is reflect-padded by `padding` pixels on each side, cropped back to its size at
    offset (dy[k], dx[k]) with 0 <= dy, dx <= 2 * padding (so offset (padding, padding) is the
    image itself), then mirrored left-right where mirror[k] is true. Same result as torchvision's
    pad(padding_mode="reflect") + crop + hflip, done as (at most) two gathers on x's device.
    Returns a new contiguous NCHW tensor.
    """
    n, c, h, w = x.shape
    dy, dx, mirror = (t.to(x.device, non_blocking=True) for t in (dy, dx, mirror))
    # Output pixel (i, j) of image k comes from input pixel (rows[k, i], cols[k, j]).
    cols = _reflect(dx[:, None] - padding + torch.arange(w, device=x.device), w)
    cols = torch.where(mirror[:, None], cols.flip(1), cols)
    if padding:
        rows = _reflect(dy[:, None] - padding + torch.arange(h, device=x.device), h)
        x = x.gather(2, rows[:, None, :, None].expand(n, c, h, w))
    return x.gather(3, cols[:, None, None, :].expand(n, c, h, w))


def augment(x: torch.Tensor, generator: torch.Generator, *, padding: int = 4, flip: bool = True,
            mirror: torch.Tensor | None = None) -> torch.Tensor:
    """Random crop (reflect padding `padding`) and random horizontal flip of a uint8 NCHW batch.

    Every image gets its own offsets and coin flip, drawn from `generator` (a CPU generator, so
    the draws are the same on every device); the work is one gather on x's device (crop_flip).
    `mirror` (bool per image) replaces the coin flips when given. Returns uint8 of the same shape.
    """
    n = len(x)
    offsets = torch.randint(0, 2 * padding + 1, (2, n), generator=generator)
    if mirror is None:
        mirror = torch.rand(n, generator=generator) < 0.5
        if not flip:
            mirror = torch.zeros_like(mirror)
    return crop_flip(x, offsets[0], offsets[1], mirror, padding=padding)


class BatchIterator:
    """Shuffled (or ordered) batches of a device-resident uint8 split, normalised on the device.

    len(it) is the number of batches in an epoch. epoch(start_batch=k) yields batches k, k+1, …
    of the epoch whose permutation is drawn from the generator's current state; `epoch_state`
    is that state (a uint8 tensor) as it was before the draw, for exact mid-epoch resume.

    alternate_flip=True (with augment) replaces coin-flip mirroring by airbench's derandomised
    flip: each image gets one coin flip for good (from `flip_seed`), and is mirrored that way in
    even epochs and the other way in odd ones (`epoch_index`), so every image is seen both ways
    in every two consecutive epochs.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, batch_size: int, *, shuffle: bool = True,
                 drop_last: bool = False, augment: bool = False, crop_padding: int = 4,
                 generator: torch.Generator | None = None, channels_last: bool = False,
                 alternate_flip: bool = False, flip_seed: int = 0):
        if images.dtype != torch.uint8 or images.ndim != 4:
            raise ValueError(f"images must be a uint8 NCHW tensor, got {images.dtype} {tuple(images.shape)}")
        if len(images) != len(labels):
            raise ValueError(f"{len(images)} images but {len(labels)} labels")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.images, self.labels = images, labels
        self.batch_size = batch_size
        self.shuffle, self.drop_last = shuffle, drop_last
        self.augment, self.crop_padding = augment, crop_padding
        self.generator = generator if generator is not None else torch.Generator()
        self.channels_last = channels_last
        self.epoch_state: torch.Tensor = self.generator.get_state()
        self.base_flip: torch.Tensor | None = None
        if alternate_flip:
            coin = torch.rand(len(images), generator=torch.Generator().manual_seed(flip_seed)) < 0.5
            self.base_flip = coin.to(images.device)

    def __len__(self) -> int:
        n = len(self.images)
        if self.drop_last:
            return n // self.batch_size
        return (n + self.batch_size - 1) // self.batch_size

    @property
    def num_images(self) -> int:
        return len(self.images)

    def get_state(self) -> torch.Tensor:
        return self.generator.get_state()

    def set_state(self, state: torch.Tensor) -> None:
        self.generator.set_state(state)

    def epoch(self, start_batch: int = 0, epoch_index: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Draw this epoch's order now, then yield its batches from `start_batch` on.

        `epoch_index` (0-based) only matters with alternate_flip: odd epochs mirror the other way.
        """
        n, device = len(self.images), self.images.device
        if not 0 <= start_batch <= len(self):
            raise ValueError(f"start_batch must be in [0, {len(self)}], got {start_batch}")
        self.epoch_state = self.generator.get_state()
        order = torch.randperm(n, generator=self.generator) if self.shuffle else torch.arange(n)
        aug_seed = int(torch.randint(0, 2**62, (1,), generator=self.generator))
        order = order.to(device)
        return self._batches(order, aug_seed, start_batch, epoch_index % 2 == 1)

    def _batches(self, order: torch.Tensor, aug_seed: int, start_batch: int, odd_epoch: bool):
        for b in range(start_batch, len(self)):
            x, idx = self._images(order[b * self.batch_size:(b + 1) * self.batch_size], aug_seed + b, odd_epoch)
            x = normalize(x)
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)   # cheaper on float than on uint8
            yield x, self.labels[idx]

    def _images(self, idx: torch.Tensor, seed: int, odd_epoch: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """One batch's uint8 images (augmented when asked) and the indices of the images it holds
        (core.train.distributed keeps one process's slice of them)."""
        x = self.images[idx]
        return (self._augmented(x, idx, seed, odd_epoch) if self.augment else x), idx

    def _augmented(self, x: torch.Tensor, idx: torch.Tensor, seed: int, odd_epoch: bool) -> torch.Tensor:
        mirror = self.base_flip[idx] ^ odd_epoch if self.base_flip is not None else None
        return augment(x, torch.Generator().manual_seed(seed), padding=self.crop_padding, mirror=mirror)
