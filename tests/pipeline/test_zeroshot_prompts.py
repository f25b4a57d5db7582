"""Zero-shot prompts: which phrases fill the templates (the vocabulary's prompt terms, default the name)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from domainclip.config import validate
from domainclip.pipeline.tasks.multilabel import zeroshot_probabilities
from domainclip.registry import get_domain


class RecordingModel:
    """Stands in for a loaded model: embeds a text by whether it says 'no', records what it was asked."""

    logit_scale = torch.tensor(10.0)

    def __init__(self) -> None:
        self.texts: list[str] = []

    def encode_text(self, texts: list[str]) -> torch.Tensor:
        self.texts += texts
        return F.normalize(torch.tensor([[0.0, 1.0] if t.startswith("no ") else [1.0, 0.0] for t in texts]), dim=1)


def test_prompts_are_the_given_terms_in_every_template() -> None:
    model = RecordingModel()
    images = F.normalize(torch.tensor([[1.0, 0.1], [0.1, 1.0]]), dim=1)
    probs = zeroshot_probabilities(
        model,
        images,
        ["pleural effusion", "ascites"],
        {"pleural effusion": ["pleural effusion", "pleural fluid"]},
        [("{finding}.", "no {finding}.")],
    )
    assert sorted(model.texts) == sorted(
        ["pleural effusion.", "pleural fluid.", "no pleural effusion.", "no pleural fluid.", "ascites.", "no ascites."]
    )
    assert probs.shape == (2, 2) and probs[0, 0] > 0.5 > probs[1, 0]  # image 0 is on the positive side


def test_recipe_prompts_default_to_the_finding_names_not_the_synonyms() -> None:
    recipe = validate({"domain": "ct", "data": {"layout": "demo", "findings": ["ascites", "cardiomegaly"]}})
    findings = get_domain("ct").findings(recipe, [])
    assert findings.prompts == {"ascites": ["ascites"], "cardiomegaly": ["cardiomegaly"]}
