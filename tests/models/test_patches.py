import pytest
import torch

from domainclip.models.patches import patchify, random_masking, unpatchify


@pytest.mark.parametrize(
    "shape, patch",
    [((2, 1, 8, 16, 4), (4, 8, 2)), ((3, 3, 8, 12), (4, 4))],
    ids=["3d-anisotropic", "2d-rgb"],
)
def test_unpatchify_inverts_patchify(shape, patch):
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(0))
    grid = [s // p for s, p in zip(shape[2:], patch)]
    patches = patchify(x, patch)
    assert patches.shape == (
        shape[0],
        torch.tensor(grid).prod().item(),
        torch.tensor(patch).prod().item() * shape[1],
    )
    assert torch.equal(unpatchify(patches, patch, grid, shape[1]), x)


def test_patch_holds_its_own_pixels():
    # patch (i, j) of a 2x3 grid of 2x2 patches must contain exactly the pixels of that block
    x = torch.arange(4 * 6, dtype=torch.float32).reshape(1, 1, 4, 6)
    patches = patchify(x, (2, 2))
    assert patches.shape == (1, 6, 4)
    assert patches[0, 4].tolist() == x[0, 0, 2:4, 2:4].flatten().tolist()  # row 1, column 1 -> index 1*3+1


def test_patchify_rejects_indivisible_size():
    with pytest.raises(ValueError, match="not divisible"):
        patchify(torch.zeros(1, 1, 10, 8), (4, 4))


def test_random_masking_counts_and_reproducibility():
    ids, mask = random_masking(4, 20, 0.75, generator=torch.Generator().manual_seed(3))
    assert ids.shape == (4, 5)
    assert mask.sum(dim=1).tolist() == [15.0] * 4
    assert (mask.gather(1, ids) == 0).all()  # visible patches are never in the loss mask
    assert (ids.diff(dim=1) > 0).all()
    again, _ = random_masking(4, 20, 0.75, generator=torch.Generator().manual_seed(3))
    assert torch.equal(ids, again)
    assert len({tuple(row.tolist()) for row in ids}) > 1  # each sample gets its own mask


def test_random_masking_keeps_one_visible_and_one_hidden():
    ids, mask = random_masking(2, 4, 0.99)
    assert ids.shape == (2, 1) and mask.sum().item() == 6
    with pytest.raises(ValueError, match="mask_ratio"):
        random_masking(2, 4, 1.0)
