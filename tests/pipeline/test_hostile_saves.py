"""A save directory is untrusted input: hostile saves are refused with PersistenceError.

Each damage below made ``from_pretrained`` hang, follow a link out of the save, recurse
without bound, load nonsense silently or crash before the loader checked it.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest
from conftest import build_pipeline, make_events, make_items, no_network

from llmrec import Pipeline
from llmrec.errors import PersistenceError
from llmrec.storage.io import CHECKSUM_NAME, MANIFEST_NAME, write_manifest

pytestmark = pytest.mark.skipif(os.name != "posix", reason="links and FIFOs are POSIX")


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> Path:
    items = make_items(60)
    events, _ = make_events(items, n_users=20, per_user=8)
    pipe = build_pipeline(items, models=("ease",)).fit(events, show_progress=False)
    path = tmp_path_factory.mktemp("hostile") / "model"
    pipe.save_pretrained(path)
    return path


@pytest.fixture
def save(pristine: Path, tmp_path: Path) -> Path:
    target = tmp_path / "save"
    shutil.copytree(pristine, target)
    return target


def load_within(path: Path, seconds: float = 60.0) -> BaseException | None:
    """Load ``path`` in a thread; the error it raised (None if it loaded). Fails on a hang."""
    outcome: list[BaseException | None] = []

    def run() -> None:
        try:
            Pipeline.from_pretrained(path, device="cpu")
            outcome.append(None)
        except BaseException as exc:  # noqa: BLE001 - the test inspects it
            outcome.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert outcome, f"from_pretrained({str(path)!r}) hung"
    return outcome[0]


def assert_refused(path: Path, *words: str) -> PersistenceError:
    error = load_within(path)
    assert isinstance(error, PersistenceError), f"expected PersistenceError, got {error!r}"
    for word in words:
        assert word in str(error), f"{word!r} not in {error}"
    return error


def manifest(path: Path) -> dict:
    return json.loads((path / MANIFEST_NAME).read_text())


def reseal(path: Path, edit) -> None:
    """Edit the manifest and write a matching checksum (what a deliberate forger does)."""
    data = manifest(path)
    edit(data)
    write_manifest(path, data)


def as_old_save(path: Path) -> None:
    """Make ``path`` look like a save from before file lists and checksums, so a
    component's own loader meets the damage."""
    data = manifest(path)
    data.pop("files")
    (path / MANIFEST_NAME).write_text(json.dumps(data))
    (path / CHECKSUM_NAME).unlink()


def test_a_pristine_save_loads_and_is_sealed(save: Path) -> None:
    assert load_within(save) is None
    assert (save / CHECKSUM_NAME).is_file()


# --------------------------------------------------------------------------- 1. regular files


@pytest.mark.parametrize("target", ["/dev/zero", "/dev/urandom", "fifo"])
def test_a_file_replaced_by_a_special_file_is_refused_without_hanging(save, target) -> None:
    victim = save / "catalog" / "items.jsonl"
    victim.unlink()
    if target == "fifo":
        os.mkfifo(victim)
    else:
        victim.symlink_to(target)
    assert_refused(save, "items.jsonl")


@pytest.mark.parametrize("target", ["/dev/zero", "fifo"])
def test_an_empty_unlisted_file_replaced_by_a_special_file(save, target) -> None:
    # Without a file list (an old save) nothing checks the size first.
    as_old_save(save)
    victim = save / "ranker" / "ranker.json"
    victim.unlink()
    if target == "fifo":
        os.mkfifo(victim)
    else:
        victim.symlink_to(target)
    assert_refused(save, "ranker.json")


def test_a_manifest_that_links_elsewhere_is_refused(save, tmp_path) -> None:
    outside = tmp_path / "elsewhere.json"
    shutil.copy(save / MANIFEST_NAME, outside)
    (save / MANIFEST_NAME).unlink()
    (save / MANIFEST_NAME).symlink_to(outside)
    assert_refused(save, MANIFEST_NAME)


def test_a_manifest_linked_to_a_system_file_is_refused(save) -> None:
    (save / MANIFEST_NAME).unlink()
    (save / MANIFEST_NAME).symlink_to("/etc/passwd")
    assert_refused(save, MANIFEST_NAME)


def test_a_symlinked_component_folder_is_refused(save, tmp_path) -> None:
    shutil.move(save / "ranker", tmp_path / "ranker")
    (save / "ranker").symlink_to(tmp_path / "ranker")
    assert_refused(save, "ranker")


@pytest.mark.parametrize("name", ["/etc/passwd", "../elsewhere", "ranker/../../x", "./llmrec.json"])
def test_file_names_leaving_the_save_are_refused(save, name) -> None:
    reseal(save, lambda m: m["files"].update({name: {"size": 1, "sha256": "0" * 64}}))
    assert_refused(save, "bad file name")


def test_an_oversized_json_file_is_refused(save) -> None:
    as_old_save(save)
    with open(save / "ranker" / "ranker.json", "ab") as f:
        f.truncate(65 << 20)  # sparse: no disk used
    assert_refused(save, "ranker.json", "bytes")


# --------------------------------------------------------------------------- 2. sealed manifest


def test_an_edited_manifest_is_refused(save) -> None:
    data = manifest(save)
    data["components"]["profiles"]["half_life"] = 3.0
    (save / MANIFEST_NAME).write_text(json.dumps(data))
    assert_refused(save, CHECKSUM_NAME)


def test_a_manifest_whose_file_list_was_deleted_is_refused(save) -> None:
    data = manifest(save)
    del data["files"]
    (save / MANIFEST_NAME).write_text(json.dumps(data))
    np.save(save / "retriever" / "item_vectors.npy", np.zeros((3, 3), np.float32))
    assert_refused(save, CHECKSUM_NAME)


def test_a_sealed_manifest_must_list_its_files(save) -> None:
    reseal(save, lambda m: m.pop("files"))
    assert_refused(save, "lists no files")


def test_a_bad_checksum_file_is_refused(save) -> None:
    (save / CHECKSUM_NAME).write_text("not a digest\n")
    assert_refused(save, CHECKSUM_NAME)


def test_a_save_without_a_checksum_still_loads(save) -> None:
    # Saves made before the checksum existed hold none.
    (save / CHECKSUM_NAME).unlink()
    assert load_within(save) is None


# --------------------------------------------------------------------------- 3. JSON nesting


def _deep(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.mark.parametrize("where", ["manifest", "ranker", "profiles", "catalog"])
def test_deeply_nested_json_is_refused(save, where) -> None:
    if where == "manifest":
        text = (save / MANIFEST_NAME).read_text()
        (save / MANIFEST_NAME).write_text(text[:-2] + ', "x": ' + _deep(100_000) + "}")
        (save / CHECKSUM_NAME).unlink()
        assert_refused(save, "deeper")
        return
    as_old_save(save)
    file = {
        "ranker": save / "ranker" / "ranker.json",
        "profiles": save / "profiles" / "profiles.jsonl",
        "catalog": save / "catalog" / "items.jsonl",
    }[where]
    lines = file.read_text().splitlines()
    lines[0] = _deep(100_000)
    file.write_text("\n".join(lines) + "\n")
    assert_refused(save, file.name, "deeper")


# --------------------------------------------------------------------------- 4. manifest values


@pytest.mark.parametrize(
    ("key", "value", "named"),
    [
        ("retriever.cooc_shape", [60, 0], "cooc_shape"),
        ("retriever.cooc_shape", [10**12, 10**12], "cooc_shape"),
        ("retriever.cooc_shape", "x", "cooc_shape"),
        ("retriever.n_rows", -1, "n_rows"),
        ("retriever.n_rows", 10**12, "retriever"),
        ("retriever.dim", 10**9, "dim"),
        ("retriever.dim", True, "dim"),
        ("retriever.alpha", float("nan"), "alpha"),
        ("retriever.alpha", 7.0, "alpha"),
        ("retriever.neighbors", 0, "neighbors"),
        ("retriever.neighbors", 2.5, "neighbors"),
        ("profiles.half_life", 1e308, "half_life"),
        ("profiles.half_life", float("nan"), "half_life"),
        ("profiles.max_history", 0, "max_history"),
        ("profiles.max_history", 10**15, "max_history"),
        ("profiles.dim", 10**9, "dim"),
        ("profiles.dim", 3.5, "dim"),
    ],
)
def test_bad_manifest_values_are_refused(save, key, value, named) -> None:
    component, field = key.split(".")
    reseal(save, lambda m: m["components"][component].update({field: value}))
    assert_refused(save, named)


@pytest.mark.parametrize(
    ("field", "value", "named"),
    [
        ("weights", {"popularity": float("inf")}, "weights"),
        ("weights", {"popularity": float("nan")}, "weights"),
        ("bias", float("-inf"), "bias"),
        ("l2", float("inf"), "l2"),
        ("l2", -1.0, "l2"),
    ],
)
def test_bad_ranker_values_are_refused(save, field, value, named) -> None:
    state = json.loads((save / "ranker" / "ranker.json").read_text())
    state[field] = value
    (save / "ranker" / "ranker.json").write_text(json.dumps(state))
    as_old_save(save)
    assert_refused(save, named)


@pytest.mark.parametrize(
    "damage", ["index out of range", "negative index", "indptr short", "nan data"]
)
def test_inconsistent_cooccurrence_arrays_are_refused(save, damage) -> None:
    folder = save / "retriever"
    indices = np.load(folder / "cooc_indices.npy")
    data = np.load(folder / "cooc_data.npy")
    indptr = np.load(folder / "cooc_indptr.npy")
    assert len(indices) > 0
    if damage == "index out of range":
        indices[0] = 10**9
    elif damage == "negative index":
        indices[0] = -5
    elif damage == "indptr short":
        indptr = indptr[:-1]
    else:
        data[0] = np.nan
    np.save(folder / "cooc_indices.npy", indices)
    np.save(folder / "cooc_data.npy", data)
    np.save(folder / "cooc_indptr.npy", indptr)
    as_old_save(save)
    assert_refused(save, "co-occurrence")


def test_an_array_header_larger_than_its_file_is_refused(save) -> None:
    file = save / "retriever" / "popularity.npy"
    body = np.load(file).tobytes()
    buffer = io.BytesIO()
    header = {"descr": "<f8", "fortran_order": False, "shape": (10**13,)}
    np.lib.format.write_array_header_1_0(buffer, header)
    file.write_bytes(buffer.getvalue() + body)
    as_old_save(save)
    assert_refused(save, "popularity.npy")


def test_save_then_load_still_gives_identical_recommendations(pristine, tmp_path) -> None:
    loaded = Pipeline.from_pretrained(pristine, device="cpu")
    loaded.save_pretrained(tmp_path / "again")
    again = Pipeline.from_pretrained(tmp_path / "again", device="cpu")
    for user in ("u000", "u003", "u011"):
        a = loaded.recommend(user, 10, generate=False)
        b = again.recommend(user, 10, generate=False)
        assert [r.item_id for r in a] == [r.item_id for r in b]
        assert [r.score for r in a] == [r.score for r in b]


# --------------------------------------------------------------------------- 6. generation redirect


def _point_generation(path: Path, backend: str, options: dict) -> None:
    reseal(
        path, lambda m: m["components"].update(generator={"backend": backend, "options": options})
    )


def test_a_save_pointing_generation_at_a_server_is_refused(save, monkeypatch) -> None:
    tried = no_network(monkeypatch)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret")
    options = {"model": "m", "backend_options": {"base_url": "http://attacker.example/v1"}}
    _point_generation(save, "openai", options)
    error = assert_refused(save, "allow_remote=True", "attacker.example")
    assert "sk-secret" not in str(error)
    assert tried == []


def test_an_address_hidden_in_a_local_backend_is_refused(save) -> None:
    _point_generation(save, "transformers", {"backend_options": {"x": ["https://evil.example/"]}})
    assert_refused(save, "allow_remote=True", "evil.example")


def test_a_backend_the_caller_did_not_allow_is_refused(save) -> None:
    from llmrec import register_backend
    from llmrec.generation.llms.template import TemplateChat

    register_backend("llms", "hostile-test-chat", TemplateChat)
    _point_generation(save, "hostile-test-chat", {})
    assert_refused(save, "allow_llms", "hostile-test-chat")
    loaded = Pipeline.from_pretrained(save, device="cpu", allow_llms={"hostile-test-chat"})
    assert loaded.generator.backend_name == "hostile-test-chat"


def test_a_remote_save_loads_when_the_caller_opts_in_or_overrides(save, monkeypatch) -> None:
    tried = no_network(monkeypatch)
    _point_generation(
        save, "openai", {"model": "m", "backend_options": {"base_url": "http://127.0.0.1:9/v1"}}
    )
    trusted = Pipeline.from_pretrained(save, device="cpu", allow_remote=True)
    assert trusted.generator.backend_name == "openai"
    mine = Pipeline.from_pretrained(save, device="cpu", llm="template")
    assert mine.generator.backend_name == "template"
    assert tried == []


@pytest.mark.parametrize("value", ["yes", 1, None])
def test_allow_remote_must_be_a_bool(save, value) -> None:
    from llmrec.errors import ConfigError

    with pytest.raises(ConfigError, match="allow_remote"):
        Pipeline.from_pretrained(save, device="cpu", allow_remote=value)


# --------------------------------------------------------------------------- 7. signed saves

KEY = b"k" * 32


@pytest.fixture
def signed(pristine: Path, tmp_path: Path) -> Path:
    path = tmp_path / "signed"
    Pipeline.from_pretrained(pristine, device="cpu").save_pretrained(path, signing_key=KEY)
    return path


def test_a_signed_save_loads_with_its_key_and_without_one(signed) -> None:
    from llmrec.storage.io import SIGNATURE_NAME

    assert (signed / SIGNATURE_NAME).is_file()
    a = Pipeline.from_pretrained(signed, device="cpu", signing_key=KEY)
    b = Pipeline.from_pretrained(signed, device="cpu")
    assert [r.item_id for r in a.recommend("u000", 5, generate=False)] == [
        r.item_id for r in b.recommend("u000", 5, generate=False)
    ]


def _load_signed(path: Path, key: bytes = KEY) -> PersistenceError:
    with pytest.raises(PersistenceError) as info:
        Pipeline.from_pretrained(path, device="cpu", signing_key=key)
    return info.value


def test_a_resealed_manifest_fails_the_signature(signed) -> None:
    # A forger can recompute the plain checksum, not the keyed signature.
    from llmrec.storage.io import SIGNATURE_NAME

    signature = (signed / SIGNATURE_NAME).read_bytes()
    reseal(signed, lambda m: m["components"]["profiles"].update(half_life=3.0))
    (signed / SIGNATURE_NAME).write_bytes(signature)
    assert "not signed with this signing_key" in str(_load_signed(signed))


def test_another_key_or_no_signature_is_refused(signed, save) -> None:
    assert "another key" in str(_load_signed(signed, b"x" * 32))
    assert "is not signed" in str(_load_signed(save))


def test_a_replaced_file_in_a_signed_save_is_refused(signed) -> None:
    np.save(signed / "retriever" / "popularity.npy", np.zeros(3))
    assert "popularity.npy" in str(_load_signed(signed))


def test_resaving_without_a_key_drops_the_stale_signature(signed, tmp_path) -> None:
    from llmrec.storage.io import SIGNATURE_NAME

    pipe = Pipeline.from_pretrained(signed, device="cpu")
    pipe.save_pretrained(signed)
    assert not (signed / SIGNATURE_NAME).exists()


@pytest.mark.parametrize("key", [b"short", "a str key of enough length", 123])
def test_a_weak_or_mistyped_signing_key_is_a_config_error(pristine, tmp_path, key) -> None:
    from llmrec.errors import ConfigError

    pipe = Pipeline.from_pretrained(pristine, device="cpu")
    with pytest.raises(ConfigError, match="signing_key"):
        pipe.save_pretrained(tmp_path / "x", signing_key=key)
    assert not (tmp_path / "x").exists()
    with pytest.raises(ConfigError, match="signing_key"):
        Pipeline.from_pretrained(pristine, device="cpu", signing_key=key)
