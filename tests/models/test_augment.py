import torch

from kiln.models.augment import GaussianNoise, ImageAugment


def _image() -> torch.Tensor:
    x = torch.zeros(8, 2, 6, 6)
    x[..., :, :2] = 1.0  # left stripe: left-right asymmetric
    x[..., 0, :] += torch.arange(6.0)
    return x


def test_identity_in_eval() -> None:
    x = _image()
    assert torch.equal(GaussianNoise(0.5).eval()(x), x)
    assert torch.equal(ImageAugment(flip=True, rotate=30, crop=2).eval()(x), x)


def test_changes_input_in_training() -> None:
    torch.manual_seed(0)
    x = _image()
    assert not torch.equal(GaussianNoise(0.5).train()(x), x)
    for aug in (ImageAugment(flip=True), ImageAugment(rotate=30), ImageAugment(crop=2)):
        out = aug.train()(x)
        assert out.shape == x.shape and not torch.equal(out, x)


def test_flip_matches_torch_flip() -> None:
    torch.manual_seed(1)
    x = _image()
    out = ImageAugment(flip=True).train()(x)
    flipped = torch.tensor([torch.equal(o, xi.flip(-1)) for o, xi in zip(out, x)])
    kept = torch.tensor([torch.equal(o, xi) for o, xi in zip(out, x)])
    assert torch.all(flipped ^ kept) and flipped.any() and kept.any()


def test_crop_is_a_shifted_window() -> None:
    torch.manual_seed(2)
    x = torch.randn(4, 1, 5, 5)
    out = ImageAugment(crop=1).train()(x)
    padded = torch.nn.functional.pad(x, (1, 1, 1, 1))
    for o, p in zip(out, padded):
        assert any(torch.equal(o, p[:, i : i + 5, j : j + 5]) for i in range(3) for j in range(3))


def test_small_rotation_is_near_identity() -> None:
    x = torch.randn(2, 1, 16, 16)
    out = ImageAugment(rotate=1e-4).train()(x)
    torch.testing.assert_close(out, x, atol=1e-3, rtol=0)


def test_same_seed_same_output() -> None:
    x = _image()
    aug = ImageAugment(flip=True, rotate=20, crop=2).train()
    noise = GaussianNoise(0.3).train()
    torch.manual_seed(7)
    a, na = aug(x), noise(x)
    torch.manual_seed(7)
    b, nb = aug(x), noise(x)
    assert torch.equal(a, b) and torch.equal(na, nb)
