"""Soft targets from findings and the SoftLabelClipLoss built on them."""

from __future__ import annotations

import pytest
import torch
from loss_helpers import loss_and_grads, random_findings, unit_features
from loss_references import soft_infonce

from domainclip.losses import ClipLoss, SoftLabelClipLoss, soft_targets
from domainclip.losses.finding_similarity import FindingSimilarity

NAN = float("nan")


def test_rows_sum_to_one_and_everything_is_finite():
    findings = random_findings(12, 7, seed=0)
    findings[3] = NAN  # nothing known about sample 3
    findings[4] = 0.5  # everything uncertain
    targets = soft_targets(findings, temperature=0.1, soft_weight=0.7)
    assert torch.isfinite(targets).all() and (targets >= 0).all()
    torch.testing.assert_close(targets.sum(dim=1), torch.ones(12))


def test_two_normal_studies_are_positives_of_each_other():
    findings = torch.tensor([[0.0, 0, 0], [0, 0, 0], [1, 0, 1], [0, 1, 1]])
    targets = soft_targets(findings, temperature=0.1, soft_weight=1)
    assert torch.isfinite(targets).all()
    assert targets[0, 1] == pytest.approx(targets[0, 0])  # as much a positive as itself
    assert targets[0, 1] > 10 * targets[0, 2]


def test_all_zero_batch_gives_uniform_targets_without_nan():
    targets = soft_targets(torch.zeros(5, 4), temperature=0.1, soft_weight=1)
    torch.testing.assert_close(targets, torch.full((5, 5), 0.2))


def test_distinct_findings_keep_most_of_their_own_row():
    """Regression for the near-uniform targets of a temperature-free softmax (0.28 at batch 8)."""
    findings = torch.eye(8, 18)  # eight studies, each with its own single finding
    targets = soft_targets(findings, temperature=0.1, soft_weight=1)
    assert (targets.diagonal() > 0.5).all()


def test_unknown_entries_are_ignored_pairwise():
    findings = torch.tensor([[1.0, 0, NAN], [1, 0, 1], [1, 0, 0], [0, 1, 1]])
    targets = soft_targets(findings, temperature=0.1, soft_weight=1)
    # Sample 0 agrees with 1 and 2 on everything both know, so they weigh as much as itself.
    assert targets[0, 1] == pytest.approx(targets[0, 0]) and targets[0, 2] == pytest.approx(targets[0, 0])
    assert targets[0, 3] < 1e-3 * targets[0, 0]


def test_uncertain_sits_halfway_between_present_and_absent():
    findings = torch.tensor([[1.0], [0.5], [0.0]])
    targets = soft_targets(findings, temperature=1.0, soft_weight=1)
    half = 2**-0.5  # cos((0.5, 0.5), (1, 0)) = cos((0.5, 0.5), (0, 1))
    torch.testing.assert_close(targets[0], torch.softmax(torch.tensor([1.0, half, 0.0]), dim=0))
    torch.testing.assert_close(targets[1], torch.softmax(torch.tensor([half, 1.0, half]), dim=0))


def test_similarity_is_cosine_with_no_abnormality_as_one_more_finding():
    findings = torch.tensor([[1.0, 1, 0], [1, 0, 0], [0, 0, 0], [0, 0, 0], [0, 0, 1]])
    similarity = FindingSimilarity(findings)(slice(0, 5), slice(0, 5)) + 1  # S - 1 at temperature 1
    assert similarity[0, 1] == pytest.approx(2**-0.5)  # {A, B} vs {A}
    assert similarity[2, 3] == pytest.approx(1.0)  # normal vs normal
    assert similarity[1, 2] == 0 and similarity[1, 4] == 0  # {A} vs normal, {A} vs {C}


def _pair_cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    """Cosine over the findings known in both, each restricted vector extended by its "normal"."""
    both = ~torch.isnan(a) & ~torch.isnan(b)
    if not both.any():
        return 0.0
    x, y = a[both], b[both]
    x = torch.cat([x, torch.prod(1 - x).reshape(1)])
    y = torch.cat([y, torch.prod(1 - y).reshape(1)])
    return float(x @ y / (x.norm() * y.norm()))


def test_similarity_with_unknown_entries_matches_a_per_pair_computation():
    findings = random_findings(9, 6, seed=11)
    findings[4] = NAN  # nothing known: no evidence
    findings[5, :3] = NAN
    findings[6, 3:] = NAN  # knows only what 5 does not: nothing in common
    findings[7, ::2] = NAN
    general = FindingSimilarity(findings)(slice(0, 9), slice(0, 9)) + 1
    for i in range(9):
        for j in range(9):
            assert general[i, j] == pytest.approx(_pair_cosine(findings[i], findings[j]), abs=1e-6), (i, j)
    assert (general[4] == 0).all() and general[5, 6] == 0


@pytest.mark.parametrize(("row_unknown", "col_unknown"), [(0.0, 0.6), (0.6, 0.0), (0.1, 0.1), (0.7, 0.7)])
def test_cross_similarity_matches_a_per_pair_computation(row_unknown, col_unknown):
    """Every path: one side fully known (either one), both partly known with and without
    pairs that know nothing in common."""
    generator = torch.Generator().manual_seed(int(10 * (row_unknown + 2 * col_unknown)))

    def vectors(n, unknown):
        values = torch.randint(0, 3, (n, 6), generator=generator).float() / 2  # 0, 0.5, 1
        values[torch.rand(n, 6, generator=generator) < 0.6] = 0.0  # mostly absent, like reports
        return values.masked_fill(torch.rand(n, 6, generator=generator) < unknown, NAN)

    rows, cols = vectors(7, row_unknown), vectors(5, col_unknown)
    similarity = FindingSimilarity(rows, columns=cols)(slice(0, 7), slice(0, 5)) + 1
    for i in range(7):
        for j in range(5):
            want = _pair_cosine(rows[i], cols[j])
            assert similarity[i, j] == pytest.approx(want, abs=1e-6), (i, j)


def test_a_sentence_is_compared_with_what_it_states_only():
    """Rows: studies (whole reports); columns: single sentences that state one finding."""
    studies = torch.tensor([[1.0, 0, 0], [0, 1, 0], [0, 0, 0]])  # cardiomegaly; effusion; normal
    sentences = torch.tensor([[NAN, 0, NAN], [NAN, 1, NAN], [NAN, NAN, 0]])
    # "No pleural effusion." / "Pleural effusion." / "No ascites."
    s = FindingSimilarity(studies, columns=sentences)(slice(0, 3), slice(0, 3)) + 1
    torch.testing.assert_close(s, torch.tensor([[1.0, 0, 1], [0, 1, 1], [1, 0, 1]]))
    among_sentences = FindingSimilarity(sentences)(slice(0, 3), slice(0, 3)) + 1
    assert among_sentences[0, 2] == 0  # "No pleural effusion." vs "No ascites.": nothing in common
    transposed = FindingSimilarity(studies, columns=sentences).transposed()(slice(0, 3), slice(0, 3))
    torch.testing.assert_close(transposed + 1, s.T)


def test_text_findings_equal_to_the_image_findings_change_nothing():
    image, text = unit_features(12, 8, seed=5)
    scale = torch.tensor(10.0, requires_grad=True)
    findings = random_findings(12, 5, seed=5)
    groups = torch.tensor([i // 2 for i in range(12)])
    loss = SoftLabelClipLoss(temperature=0.2, soft_weight=0.7)
    want = loss_and_grads(lambda *x: loss(*x, findings=findings, groups=groups), image, text, scale)
    got = loss_and_grads(
        lambda *x: loss(*x, findings=findings, groups=groups, text_findings=findings.clone()),
        image,
        text,
        scale,
    )
    for w, g in zip(want, got):
        torch.testing.assert_close(g, w, atol=1e-6, rtol=1e-6)


def test_text_findings_need_image_findings_of_the_same_width():
    image, text = unit_features(4, 8, seed=7)
    loss = SoftLabelClipLoss()
    with pytest.raises(ValueError, match="text_findings given without findings"):
        loss(image, text, 5.0, text_findings=torch.zeros(4, 3))
    with pytest.raises(ValueError, match=r"findings must have shape \(4, 3\)"):
        loss(image, text, 5.0, findings=torch.zeros(4, 3), text_findings=torch.zeros(4, 2))


def test_groups_are_positives_even_without_shared_findings():
    findings = torch.tensor([[1.0, 0], [0, 1], [0, 0], [1, 1]])
    groups = torch.tensor([7, 7, 8, 9])
    targets = soft_targets(findings, groups, temperature=0.1, soft_weight=0.5)
    assert targets[0, 1] == pytest.approx(targets[0, 0]) and targets[1, 0] == pytest.approx(targets[1, 1])
    assert targets[2, 2] > 0.5 > targets[0, 0]  # a group of two splits its identity mass


def test_soft_weight_zero_is_exactly_clip_loss():
    image, text = unit_features(16, 8, seed=2)
    scale = torch.tensor(14.0, requires_grad=True)
    findings = random_findings(16, 5, seed=2)
    soft = SoftLabelClipLoss(soft_weight=0)
    want = loss_and_grads(ClipLoss(), image, text, scale)
    got = loss_and_grads(lambda *x: soft(*x, findings=findings), image, text, scale)
    for w, g in zip(want, got):
        torch.testing.assert_close(g, w, atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("soft_weight", [1.0, 0.5])
@pytest.mark.parametrize("memory_bounded", [False, True])
def test_distinct_one_hot_findings_at_zero_temperature_is_clip_loss(soft_weight, memory_bounded):
    image, text = unit_features(10, 8, seed=3)
    scale = torch.tensor(20.0, requires_grad=True)
    findings = torch.eye(10, 12)[torch.randperm(10, generator=torch.Generator().manual_seed(0))]
    soft = SoftLabelClipLoss(
        temperature=1e-4,
        soft_weight=soft_weight,
        memory_bounded=memory_bounded,
        chunk_size=3,
    )
    want = loss_and_grads(ClipLoss(), image, text, scale)
    got = loss_and_grads(lambda *x: soft(*x, findings=findings), image, text, scale)
    for w, g in zip(want, got):
        torch.testing.assert_close(g, w, atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("memory_bounded", [False, True])
@pytest.mark.parametrize("texts_state_less", [False, True])
def test_matches_naive_soft_cross_entropy(memory_bounded, texts_state_less):
    """``texts_state_less``: images carry whole-report vectors, texts what a few sentences of
    the report state (most entries unknown), so the two directions have different targets."""
    batch = 20
    image, text = unit_features(batch, 16, seed=4, dtype=torch.float64)
    scale = torch.tensor(12.0, dtype=torch.float64, requires_grad=True)
    findings = random_findings(batch, 6, seed=4)
    groups = torch.tensor([i // 3 for i in range(batch)])
    text_findings = None
    if texts_state_less:
        findings[torch.isnan(findings)] = 0.0
        stated = torch.rand(batch, 6, generator=torch.Generator().manual_seed(6)) < 0.4
        text_findings = torch.where(stated, findings, NAN)
    options = {"temperature": 0.2, "soft_weight": 0.6}
    targets_options = {**options, "text_findings": text_findings}
    if text_findings is not None:
        targets_options["text_findings"] = text_findings.double()
    image_rows = soft_targets(findings.double(), groups, **targets_options)
    text_rows = soft_targets(findings.double(), groups, texts_as_rows=True, **targets_options)
    assert torch.allclose(image_rows, text_rows) != texts_state_less
    want = loss_and_grads(lambda x, y, s: soft_infonce(x, y, y, x, s, image_rows, text_rows), image, text, scale)
    loss = SoftLabelClipLoss(**options, memory_bounded=memory_bounded, chunk_size=6)
    got = loss_and_grads(
        lambda *x: loss(*x, findings=findings, groups=groups, text_findings=text_findings),
        image,
        text,
        scale,
    )
    for w, g in zip(want, got):
        torch.testing.assert_close(g, w, atol=1e-10, rtol=1e-10)


def test_duplicates_sharing_a_report_are_pulled_together_not_apart():
    """Images 0 and 5 are two reconstructions of one scan with the same report. With one-hot
    image features, d loss / d text[j][i] = scale * d loss / d logit(image i, text j), so the
    text gradient shows how the loss treats the pair (image 5, text 0)."""
    images = torch.eye(6)
    texts = torch.eye(6)
    texts[5] = texts[0]  # the shared report
    texts.requires_grad_()
    groups = torch.tensor([0, 1, 2, 3, 4, 0])
    SoftLabelClipLoss()(images, texts, 5.0).backward()
    plain = texts.grad[0, 5].item()
    texts.grad = None
    SoftLabelClipLoss()(images, texts, 5.0, groups=groups).backward()
    grouped = texts.grad[0, 5].item()
    assert plain > 0  # a negative: gradient descent lowers its logit
    assert grouped < 0  # a positive: gradient descent raises it
