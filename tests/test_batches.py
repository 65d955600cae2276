"""The batch path: same numbers as torchvision's transforms, crops and flips where they belong."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torchvision.transforms as T
import torchvision.transforms.functional as TF
from PIL import Image

from core.data.images import MEAN, STD, denormalize, normalize
from core.train.batches import BatchIterator, augment, crop_flip, to_device
from reference import CIFAR_MEAN, CIFAR_STD


def _images(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, 32, 32, 3), dtype=np.uint8)


def _reference(images_nhwc: np.ndarray) -> torch.Tensor:
    """The tutorial's pipeline, image by image: PIL -> ToTensor -> Normalize."""
    tf = T.Compose([T.ToTensor(), T.Normalize(MEAN, STD)])
    return torch.stack([tf(Image.fromarray(img)) for img in images_nhwc])


def test_constants_are_cifar10s_own():
    assert (MEAN, STD) == (CIFAR_MEAN, CIFAR_STD)


def test_to_device_turns_nhwc_numpy_into_nchw_uint8():
    imgs = _images(3)
    x, y = to_device(imgs, np.array([1, 2, 3]))
    assert x.dtype == torch.uint8 and x.shape == (3, 3, 32, 32) and y.dtype == torch.int64
    assert torch.equal(x[1, 2], torch.from_numpy(imgs[1, :, :, 2]))


def test_normalize_matches_torchvision_totensor_normalize():
    imgs = _images(64)
    ours = normalize(to_device(imgs, np.zeros(64))[0])
    assert ours.dtype == torch.float32
    torch.testing.assert_close(ours, _reference(imgs), rtol=0, atol=1e-6)


def test_iterator_batches_match_reference_transforms_in_order_and_shuffled():
    n = 200
    imgs = _images(n, seed=1)
    imgs[:, 0, 0, 0] = np.arange(n)              # each image carries its index in one pixel
    labels = np.arange(n) % 10
    x, y = to_device(imgs, labels)
    ref = _reference(imgs)

    ordered = BatchIterator(x, y, 64, shuffle=False)
    got = torch.cat([b for b, _ in ordered.epoch()])
    torch.testing.assert_close(got, ref, rtol=0, atol=1e-6)
    assert len(ordered) == 4                      # 64 + 64 + 64 + 8

    shuffled = BatchIterator(x, y, 64, shuffle=True, drop_last=True, generator=torch.Generator().manual_seed(3))
    assert len(shuffled) == 3
    seen = []
    for xb, yb in shuffled.epoch():
        index = torch.round(denormalize(xb)[:, 0, 0, 0] * 255).long()
        torch.testing.assert_close(xb, ref[index], rtol=0, atol=1e-6)
        assert torch.equal(yb, torch.from_numpy(labels)[index])
        seen.append(index)
    seen = torch.cat(seen)
    assert len(seen) == 192 and len(set(seen.tolist())) == 192      # a permutation, last 8 dropped
    assert not torch.equal(seen, torch.arange(192))


def test_denormalize_inverts_normalize_exactly():
    x = to_device(_images(16, seed=2), np.zeros(16))[0]
    back = denormalize(normalize(x))
    torch.testing.assert_close(back, x.float() / 255, rtol=0, atol=1e-6)
    assert torch.equal(torch.round(back * 255).to(torch.uint8), x)


def test_crop_and_flip_move_a_marked_pixel_where_expected():
    img = torch.zeros(1, 3, 32, 32, dtype=torch.uint8)
    img[0, 0, 5, 7] = 255                                           # red dot at row 5, column 7
    pad = 4
    dy, dx = torch.tensor([1]), torch.tensor([6])
    # Crop offset (1, 6) of the 4-padded image: output (i, j) shows input (i + 1 - 4, j + 6 - 4).
    out = crop_flip(img, dy, dx, torch.tensor([False]), padding=pad)
    assert out.shape == img.shape and out.dtype == torch.uint8
    assert out[0, 0].nonzero().tolist() == [[5 - 1 + pad, 7 - 6 + pad]]        # [[8, 5]]
    flipped = crop_flip(img, dy, dx, torch.tensor([True]), padding=pad)
    assert flipped[0, 0].nonzero().tolist() == [[8, 31 - 5]]
    # The centre offset is the identity; other channels stay empty.
    same = crop_flip(img, torch.tensor([pad]), torch.tensor([pad]), torch.tensor([False]), padding=pad)
    assert torch.equal(same, img)


def test_crop_uses_reflect_padding_like_torchvision():
    imgs = to_device(_images(4, seed=3), np.zeros(4))[0]
    pad = 4
    for dy in range(0, 2 * pad + 1, 2):
        for dx in range(0, 2 * pad + 1, 3):
            for mirror in (False, True):
                ref = TF.pad(imgs, [pad], padding_mode="reflect")[:, :, dy:dy + 32, dx:dx + 32]
                if mirror:
                    ref = TF.hflip(ref)
                out = crop_flip(imgs, torch.full((4,), dy), torch.full((4,), dx),
                                torch.full((4,), mirror), padding=pad)
                assert torch.equal(out, ref), (dy, dx, mirror)


def test_augment_is_deterministic_given_a_seed_and_varies_with_it():
    x = to_device(_images(32, seed=4), np.zeros(32))[0]
    a = augment(x, torch.Generator().manual_seed(7))
    b = augment(x, torch.Generator().manual_seed(7))
    c = augment(x, torch.Generator().manual_seed(8))
    assert a.dtype == torch.uint8 and a.shape == x.shape
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_flip_only_augmentation_gives_each_image_or_its_mirror():
    x = to_device(_images(64, seed=5), np.zeros(64))[0]
    out = augment(x, torch.Generator().manual_seed(0), padding=0)
    same = (out == x).flatten(1).all(1)
    mirrored = (out == x.flip(-1)).flatten(1).all(1)
    assert bool((same | mirrored).all())
    assert 10 < int(mirrored.sum()) < 54                         # about half are mirrored


def _epoch(it: BatchIterator, start: int = 0):
    return [(xb.clone(), yb.clone()) for xb, yb in it.epoch(start_batch=start)]


def test_iterator_is_deterministic_for_a_seed():
    x, y = to_device(_images(100, seed=6), np.arange(100) % 10)
    runs = [_epoch(BatchIterator(x, y, 16, augment=True, generator=torch.Generator().manual_seed(1)))
            for _ in range(2)]
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(*runs))


def test_iterator_resumes_mid_epoch_with_identical_batches():
    x, y = to_device(_images(100, seed=7), np.arange(100) % 10)
    it = BatchIterator(x, y, 16, augment=True, drop_last=True, generator=torch.Generator().manual_seed(2))
    _epoch(it)                                        # epoch 1
    state = it.get_state().clone()                    # what a checkpoint at epoch 1's end holds
    full = _epoch(it)                                 # epoch 2, uninterrupted
    assert torch.equal(it.epoch_state, state)
    after = _epoch(it)                                # epoch 3

    resumed = BatchIterator(x, y, 16, augment=True, drop_last=True, generator=torch.Generator().manual_seed(99))
    resumed.set_state(state)
    tail = _epoch(resumed, start=4)                   # epoch 2 from its 5th batch
    assert len(tail) == len(full) - 4
    for (xa, ya), (xb, yb) in zip(full[4:], tail):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
    following = _epoch(resumed)                        # and epoch 3 carries on identically
    assert all(torch.equal(a[0], b[0]) for a, b in zip(after, following))


def test_iterator_rejects_bad_inputs():
    x, y = to_device(_images(10), np.zeros(10))
    with pytest.raises(ValueError):
        BatchIterator(x.float(), y, 4)
    with pytest.raises(ValueError):
        BatchIterator(x, y[:5], 4)
    with pytest.raises(ValueError):
        BatchIterator(x, y, 4).epoch(start_batch=9)
    with pytest.raises(TypeError):
        normalize(x.float())


def test_alternate_flip_mirrors_each_image_the_other_way_every_other_epoch():
    n = 64
    imgs = _images(n, seed=8)
    imgs[:, 0, 0, 0] = np.arange(n)             # the index sits in the first and the last column,
    imgs[:, 0, -1, 0] = np.arange(n)            # so it reads the same whether the image is mirrored
    x, y = to_device(imgs, np.zeros(n))
    it = BatchIterator(x, y, 16, augment=True, crop_padding=0, alternate_flip=True, flip_seed=5,
                       generator=torch.Generator().manual_seed(0))

    def mirrored_by_index(epoch_index):
        out = {}
        for xb, _ in it.epoch(epoch_index=epoch_index):
            raw = torch.round(denormalize(xb) * 255).to(torch.uint8)
            for img in raw:
                k = int(img[0, 0, 0])
                out[k] = bool(torch.equal(img, x[k].flip(-1)))
                assert out[k] or torch.equal(img, x[k])
        return out

    e0, e1, e2 = mirrored_by_index(0), mirrored_by_index(1), mirrored_by_index(2)
    assert len(e0) == n
    assert all(e0[k] != e1[k] for k in range(n)) and e0 == e2
    assert 10 < sum(e0.values()) < 54
