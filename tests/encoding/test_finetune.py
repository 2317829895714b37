"""Fine-tuning the item encoder on co-consumed items: the method, the pipeline step, and
its weights in a save (which is untrusted input).

Most tests run a tiny BERT built from a config (with the embedded model's tokenizer); the
test that fine-tuning learns runs the real all-MiniLM-L6-v2 for a handful of steps.
"""

from __future__ import annotations

import json
import logging
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import build_pipeline, make_events, make_items

from llmrec import Event, Item, ItemEncoder, Pipeline
from llmrec.encoding import ContrastiveFinetuner, co_consumed_pairs
from llmrec.encoding.finetune import MIN_PAIRS, WEIGHTS_NAME
from llmrec.errors import ConfigError, InvalidInputError, PersistenceError
from llmrec.storage.io import CHECKSUM_NAME, MANIFEST_NAME, file_digests, write_manifest

#: Quick options: no held-out users (every run applies its weights), a few steps.
QUICK = {
    "max_steps": 6,
    "batch_size": 8,
    "lr": 1e-3,
    "valid_fraction": 0.0,
    "show_progress": False,
}


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    """A 2-layer BERT of width 32 with the embedded model's tokenizer, saved locally."""
    transformers = pytest.importorskip("transformers")
    from llmrec.encoding.transformers import default_encoder_path

    try:
        source = default_encoder_path()
    except Exception:  # noqa: BLE001 - the embedded model is an optional package
        pytest.skip("the embedded encoder package is not installed")
    path = tmp_path_factory.mktemp("tiny-bert")
    config = transformers.BertConfig(
        vocab_size=30522,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
    )
    torch.manual_seed(0)
    transformers.BertModel(config).save_pretrained(path)
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
        if (source / name).exists():
            shutil.copy(source / name, path / name)
    return path


def tiny_encoder(tiny_model: Path) -> ItemEncoder:
    return ItemEncoder(
        "transformers", model=str(tiny_model), device="cpu", dtype="float32", show_progress=False
    )


def tiny_pipeline(tiny_model: Path, items=None, **options) -> Pipeline:
    items = make_items(40) if items is None else items
    encoder_options = {"model": str(tiny_model), "dtype": "float32"}
    return build_pipeline(
        items, encoder="transformers", encoder_options=encoder_options, models=(), **options
    )


def rows_of(events: list[Event], items: list[Item]) -> list[list[int]]:
    position = {item.item_id: n for n, item in enumerate(items)}
    per_user: dict[str, list[int]] = {}
    for event in events:
        per_user.setdefault(event.user_id, []).append(position[event.item_id])
    return list(per_user.values())


# --------------------------------------------------------------------------- pairs


def test_pairs_join_each_item_to_the_next_window_items() -> None:
    pairs = co_consumed_pairs([[1, 2, 3, 4], [5], [7, 7, 8]], window=2)
    assert sorted(map(tuple, pairs.tolist())) == sorted(
        [(1, 2), (2, 3), (3, 4), (1, 3), (2, 4), (7, 8), (7, 8)]
    )
    assert co_consumed_pairs([], window=3).shape == (0, 2)
    with pytest.raises(ConfigError, match="window"):
        co_consumed_pairs([[1, 2]], window=0)


# --------------------------------------------------------------------------- bad input


def test_the_hashing_encoder_cannot_be_finetuned_and_the_error_names_the_fix() -> None:
    items = make_items(40)
    events, _ = make_events(items, n_users=20, per_user=8)
    pipe = build_pipeline(items, models=())
    before = pipe.retriever.item_vectors.copy()
    with pytest.raises(ConfigError, match="encoder='default'") as info:
        pipe.fit(events, show_progress=False, finetune_encoder=True)
    assert "'hashing'" in str(info.value)
    np.testing.assert_array_equal(pipe.retriever.item_vectors, before)
    assert len(pipe.profiles) == 0  # nothing was fitted
    with pytest.raises(ConfigError, match="no weights to fine-tune"):
        ContrastiveFinetuner().train(pipe.encoder, ["a", "b"], [[0, 1]])


@pytest.mark.parametrize(
    "option, words",
    [
        ("yes", "must be a bool or a mapping"),
        ({"lr": 0}, "lr must be"),
        ({"train_layers": 0}, "train_layers must be"),
        ({"temperature": -1.0}, "temperature must be"),
        ({"max_steps": True}, "max_steps must be"),
        ({"epochs": 3}, "unknown finetune_encoder option(s) ['epochs']"),
    ],
)
def test_bad_finetune_options_are_config_errors(option, words) -> None:
    items = make_items(40)
    events, _ = make_events(items, n_users=10, per_user=6)
    pipe = build_pipeline(items, models=())
    with pytest.raises(ConfigError) as info:
        pipe.fit(events, show_progress=False, finetune_encoder=option)
    assert words in str(info.value)


def test_rows_outside_the_texts_and_too_few_pairs_are_refused(tiny_model) -> None:
    encoder = tiny_encoder(tiny_model)
    with pytest.raises(InvalidInputError, match="outside the 2 texts"):
        ContrastiveFinetuner(**QUICK).train(encoder, ["a", "b"], [[0, 5]])
    with pytest.raises(InvalidInputError, match=f"at least {MIN_PAIRS}"):
        ContrastiveFinetuner(**QUICK).train(encoder, ["a", "b", "c"], [[0, 1, 2]])


def test_too_few_pairs_skip_finetuning_with_a_warning(tiny_model, caplog) -> None:
    items = make_items(40)
    events, _ = make_events(items, n_users=3, per_user=4)
    pipe = tiny_pipeline(tiny_model, items)
    before = pipe.retriever.item_vectors.copy()
    with caplog.at_level(logging.WARNING, logger="llmrec.pipeline._training"):
        pipe.fit(events, show_progress=False, finetune_encoder=QUICK)
    assert "not fine-tuning the encoder" in caplog.text
    assert not pipe.encoder.finetuned
    np.testing.assert_array_equal(pipe.retriever.item_vectors, before)
    assert len(pipe.profiles) == 3  # the rest of the fit ran


# --------------------------------------------------------------------------- the method


def test_the_same_seed_gives_identical_weights(tiny_model) -> None:
    items = make_items(40)
    events, _ = make_events(items, n_users=20, per_user=8)
    texts = [item.title + " " + item.text for item in items]
    sequences = rows_of(events, items)

    def run(seed: int) -> dict[str, torch.Tensor]:
        report = ContrastiveFinetuner(**QUICK, seed=seed).train(
            tiny_encoder(tiny_model), texts, sequences
        )
        assert report.steps == QUICK["max_steps"] and report.stopped == "max_steps"
        return report.weights

    first, again, other = run(1), run(1), run(2)
    assert first.keys() == again.keys() and first
    assert all(torch.equal(first[name], again[name]) for name in first)
    assert any(not torch.equal(first[name], other[name]) for name in first)


def test_top_layers_are_tuned_on_kept_lower_outputs(tiny_model) -> None:
    items = make_items(40)
    events, _ = make_events(items, n_users=20, per_user=8)
    texts = [item.title for item in items]
    encoder = tiny_encoder(tiny_model)
    top = ContrastiveFinetuner(**QUICK, train_layers=1).train(
        encoder, texts, rows_of(events, items)
    )
    assert top.cached and top.train_layers == 1
    assert top.weights and all(name.startswith("encoder.layer.1.") for name in top.weights)
    whole = ContrastiveFinetuner(**QUICK, train_layers="all").train(
        encoder, texts, rows_of(events, items)
    )
    assert not whole.cached and whole.train_layers == 2
    assert any(name.startswith("embeddings.") for name in whole.weights)
    assert not encoder.finetuned  # train() leaves the encoder alone


def test_max_seconds_bounds_the_frozen_layers_pass(tiny_model, caplog) -> None:
    items = make_items(40)
    events, _ = make_events(items, n_users=20, per_user=8)
    options = {**QUICK, "train_layers": 1, "max_seconds": 1e-6}
    with caplog.at_level(logging.WARNING, logger="llmrec.encoding.finetune"):
        report = ContrastiveFinetuner(**options).train(
            tiny_encoder(tiny_model), [i.title for i in items], rows_of(events, items)
        )
    assert report.steps == 0 and not report.changed and report.stopped == "max_seconds"
    assert "before its first step" in caplog.text


def test_held_out_pairs_keep_the_best_weights_and_stop_early(tiny_model) -> None:
    items = make_items(60)
    events, _ = make_events(items, n_users=60, per_user=10)
    options = {**QUICK, "valid_fraction": 0.2, "max_steps": 40, "eval_every": 2, "patience": 2}
    report = ContrastiveFinetuner(**options).train(
        tiny_encoder(tiny_model), [i.title + " " + i.text for i in items], rows_of(events, items)
    )
    assert report.valid_pairs > 0 and report.valid_recall_before is not None
    assert report.valid_recall >= report.valid_recall_before
    assert report.changed == (report.best_step > 0)
    assert report.stopped in ("patience", "max_steps")
    assert json.dumps(report.to_dict())  # JSON-ready, weights left out


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_tuning_follows_the_encoders_device(tiny_model) -> None:
    items = make_items(40)
    events, _ = make_events(items, n_users=20, per_user=8)
    encoder = ItemEncoder("transformers", model=str(tiny_model), device="cuda", show_progress=False)
    report = ContrastiveFinetuner(**QUICK).train(
        encoder, [i.title for i in items], rows_of(events, items)
    )
    assert report.train_layers == 2 and not report.cached  # "auto": every layer on a GPU
    encoder.apply_tuned_weights(report.weights)
    assert all(p.device.type == "cuda" for p in encoder.backend.model.parameters())
    assert np.isfinite(encoder.encode_texts(["a cowboy"])).all()


# --------------------------------------------------------------------------- the pipeline


@pytest.fixture(scope="module")
def tuned_and_frozen(tiny_model) -> tuple[Pipeline, np.ndarray]:
    """A pipeline fitted with fine-tuning, and its item vectors before the fit."""
    items = make_items(40)
    events, _ = make_events(items, n_users=20, per_user=8)
    pipe = tiny_pipeline(tiny_model, items)
    frozen = pipe.retriever.item_vectors.copy()
    pipe.fit(events, show_progress=False, finetune_encoder=QUICK)
    return pipe, frozen


@pytest.fixture(scope="module")
def tuned(tuned_and_frozen) -> Pipeline:
    return tuned_and_frozen[0]


def test_fit_replaces_the_item_vectors_everywhere(tuned_and_frozen) -> None:
    pipe, frozen = tuned_and_frozen
    assert pipe.encoder.finetuned and pipe.encoder.finetune_report_.changed
    items = list(pipe.catalog)
    rows = pipe.catalog.rows([item.item_id for item in items])
    vectors = pipe.retriever.item_vectors[rows]
    assert np.abs(vectors - frozen[rows]).max() > 1e-3
    # The cache holds the tuned vectors only: a fresh encoder with the same weights agrees.
    fresh = ItemEncoder(
        "transformers", device="cpu", cache_size=0, **pipe.encoder.config()["backend_config"]
    )
    fresh.apply_tuned_weights(pipe.encoder.backend.tuned_tensors())
    np.testing.assert_allclose(vectors, fresh.encode_items(items), atol=1e-5)
    np.testing.assert_allclose(pipe.encoder.encode_items(items), vectors, atol=1e-6)
    labels, scores = pipe.retriever.index.search(vectors[:3], 1)
    assert labels[:, 0].tolist() == rows[:3].tolist()
    np.testing.assert_allclose(scores[:, 0], 1.0, atol=1e-5)
    user = sorted(pipe.profiles)[0]
    assert pipe.recommend(user, 5, generate=False)


def test_save_then_load_gives_identical_vectors(tuned, tmp_path) -> None:
    path = tmp_path / "save"
    tuned.save_pretrained(path)
    assert (path / "encoder" / WEIGHTS_NAME).is_file()
    assert json.loads((path / MANIFEST_NAME).read_text())["components"]["encoder"]["finetuned"]
    loaded = Pipeline.from_pretrained(path, device="cpu")
    assert loaded.encoder.finetuned
    texts = ["a cowboy in the desert", "space robots and lasers"]
    np.testing.assert_array_equal(
        loaded.encoder.encode_texts(texts), tuned.encoder.encode_texts(texts)
    )
    np.testing.assert_array_equal(loaded.retriever.item_vectors, tuned.retriever.item_vectors)
    frozen = tiny_pipeline(Path(tuned.encoder.config()["backend_config"]["model"]))
    assert not np.array_equal(
        frozen.encoder.encode_texts(texts), loaded.encoder.encode_texts(texts)
    )


# --------------------------------------------------------------------------- hostile saves


@pytest.fixture(scope="module")
def pristine(tuned, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("tuned") / "save"
    tuned.save_pretrained(path)
    return path


@pytest.fixture
def save(pristine, tmp_path) -> Path:
    target = tmp_path / "save"
    shutil.copytree(pristine, target)
    return target


def reseal(path: Path, edit=None) -> None:
    """Re-list every file and rewrite the manifest (what a deliberate forger does)."""
    manifest = json.loads((path / MANIFEST_NAME).read_text())
    if edit is not None:
        edit(manifest)
    manifest["files"] = file_digests(path, exclude=(MANIFEST_NAME, CHECKSUM_NAME))
    write_manifest(path, manifest)


def weights_of(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(path / "encoder" / WEIGHTS_NAME)


def write_weights(path: Path, tensors: dict[str, torch.Tensor]) -> None:
    from safetensors.torch import save_file

    save_file(tensors, path / "encoder" / WEIGHTS_NAME)


def refused(path: Path, *words: str) -> None:
    with pytest.raises(PersistenceError) as info:
        Pipeline.from_pretrained(path, device="cpu")
    for word in words:
        assert word in str(info.value), str(info.value)


def test_a_tampered_weights_file_is_refused(save) -> None:
    data = bytearray((save / "encoder" / WEIGHTS_NAME).read_bytes())
    data[-5] ^= 0xFF
    (save / "encoder" / WEIGHTS_NAME).write_bytes(bytes(data))
    refused(save, "checksum")


def test_a_tensor_of_another_shape_is_refused(save) -> None:
    tensors = weights_of(save)
    name = sorted(tensors)[0]
    tensors[name] = torch.zeros(*[n + 1 for n in tensors[name].shape])
    write_weights(save, tensors)
    reseal(save)
    refused(save, name, "shape")


def test_a_tensor_the_model_lacks_is_refused(save) -> None:
    tensors = weights_of(save)
    tensors["encoder.layer.7.output.dense.weight"] = torch.zeros(32, 64)
    write_weights(save, tensors)
    reseal(save)
    refused(save, "encoder.layer.7.output.dense.weight", "not a floating-point tensor")


def test_non_finite_weights_are_refused(save) -> None:
    tensors = weights_of(save)
    name = sorted(tensors)[0]
    tensors[name] = torch.full_like(tensors[name], float("nan"))
    write_weights(save, tensors)
    reseal(save)
    refused(save, "NaN")


@pytest.mark.parametrize(
    "data",
    [
        b"\x80\x04\x95" + b"cos\nsystem\n(S'echo owned'\ntR." * 4,  # a pickle
        b"",
        struct.pack("<Q", 1 << 40) + b"{}",  # a header length far beyond the file
        struct.pack("<Q", 2) + b"[]",
        struct.pack("<Q", 2) + b"{}",
    ],
    ids=["pickle", "empty", "huge header", "list header", "no tensors"],
)
def test_a_weights_file_that_is_not_safetensors_is_refused(save, data) -> None:
    (save / "encoder" / WEIGHTS_NAME).write_bytes(data)
    reseal(save)
    refused(save, WEIGHTS_NAME)


def test_offsets_that_do_not_tile_the_data_are_refused(save) -> None:
    raw = (save / "encoder" / WEIGHTS_NAME).read_bytes()
    size = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8 : 8 + size])
    name = sorted(k for k in header if k != "__metadata__")[0]
    start, stop = header[name]["data_offsets"]
    header[name]["data_offsets"] = [start + 4, stop + 4]
    text = json.dumps(header).encode()
    (save / "encoder" / WEIGHTS_NAME).write_bytes(
        struct.pack("<Q", len(text)) + text + raw[8 + size :]
    )
    reseal(save)
    refused(save, "overlaps or leaves gaps")


def test_a_missing_weights_file_or_a_bad_flag_is_refused(save, tmp_path) -> None:
    (save / "encoder" / WEIGHTS_NAME).unlink()
    reseal(save)
    refused(save, "missing file", WEIGHTS_NAME)
    other = tmp_path / "flag"
    shutil.copytree(save, other)
    reseal(other, lambda m: m["components"]["encoder"].update(finetuned="yes"))
    refused(other, "finetuned must be a bool")


def test_a_hashing_encoder_marked_finetuned_is_refused(tmp_path) -> None:
    items = make_items(40)
    events, _ = make_events(items, n_users=8, per_user=6)
    path = tmp_path / "save"
    build_pipeline(items, models=()).fit(events, show_progress=False).save_pretrained(path)
    reseal(path, lambda m: m["components"]["encoder"].update(finetuned=True))
    refused(path, "marked fine-tuned", "'hashing'")


# --------------------------------------------------------------------------- it learns

#: Unrelated words: group membership is not in the text.
WORDS = (
    "apple river stone cloud paper engine violin garden lamp mirror candle bridge "
    "forest copper silk tiger harbor pencil meadow castle"
).split()


def grouped_catalog(seed: int = 0) -> tuple[list[str], np.ndarray]:
    rng = np.random.default_rng(seed)
    texts = [" ".join(rng.choice(WORDS, 3, replace=False)) for _ in range(24)]
    return texts, np.arange(24) % 2


def group_gap(vectors: np.ndarray, group: np.ndarray) -> float:
    """Mean within-group cosine minus mean between-group cosine."""
    sims = vectors @ vectors.T
    same = group[:, None] == group[None, :]
    off_diagonal = ~np.eye(len(group), dtype=bool)
    return float(sims[same & off_diagonal].mean() - sims[~same].mean())


@pytest.mark.slow
@pytest.mark.parametrize("co_consumed", ["within group", "at random"])
def test_finetuning_pulls_co_consumed_items_together(co_consumed) -> None:
    texts, group = grouped_catalog()
    rng = np.random.default_rng(1)
    sequences = []
    for user in range(40):
        pool = np.flatnonzero(group == user % 2) if co_consumed == "within group" else np.arange(24)
        sequences.append(rng.choice(pool, 8).tolist())
    encoder = ItemEncoder("default", device="cpu", show_progress=False)
    frozen = group_gap(encoder.encode_texts(texts), group)
    options = {**QUICK, "max_steps": 20, "batch_size": 16, "lr": 1e-3, "train_layers": 1}
    report = ContrastiveFinetuner(**options).train(encoder, texts, sequences)
    encoder.apply_tuned_weights(report.weights)
    tuned = group_gap(encoder.encode_texts(texts), group)
    if co_consumed == "within group":
        assert tuned > frozen + 0.08, (frozen, tuned)
    else:  # the control: the same training without the structure moves nothing
        assert abs(tuned - frozen) < 0.05, (frozen, tuned)
