"""The ``llmrec`` command line: build, recommend, evaluate (with a report), help and errors."""

from __future__ import annotations

import csv
import json
import random
import re
from pathlib import Path

import pytest
from conftest import GENRES, make_events, make_items

from llmrec.apps.cli import main
from llmrec.datasets import load_movielens, read_events, read_items
from llmrec.errors import DatasetError
from llmrec.evaluation import leave_one_out


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("cli")
    items = make_items(90)
    with open(root / "items.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["item_id", "title", "text", "genres", "year"])
        for it in items:
            writer.writerow(
                [it.item_id, it.title, it.text, "|".join(it.tags), it.attributes["year"]]
            )
    events, _ = make_events(items, n_users=20, per_user=8)
    with open(root / "events.jsonl", "w", encoding="utf-8") as f:
        for e in events:
            f.write(
                json.dumps(
                    {
                        "user_id": e.user_id,
                        "item_id": e.item_id,
                        "kind": e.kind,
                        "timestamp": e.timestamp,
                    }
                )
                + "\n"
            )
    return {"root": root, "items": root / "items.csv", "events": root / "events.jsonl"}


@pytest.fixture(scope="module")
def built(files) -> Path:
    out = files["root"] / "pipe"
    code = main(
        [
            "build",
            str(files["items"]),
            "--events",
            str(files["events"]),
            "-o",
            str(out),
            "--encoder",
            "hashing",
            "--llm",
            "template",
            "--models",
            "none",
            "--quiet",
            "--device",
            "cpu",
        ]
    )
    assert code == 0
    return out


def test_readers_round_trip_the_files(files) -> None:
    items = read_items(files["items"])
    assert len(items) == 90 and items[3].tags == ("scifi",) and items[3].attributes["year"] == 1973
    events = read_events(files["events"])
    assert len(events) == 160 and events[0].user_id == "u000"


@pytest.mark.parametrize(
    "content, message",
    [
        ("item_id,title\na,A\na,B\n", "appears twice"),
        ("item_id,text\na,x\n", "title"),
        ("item_id,title\n", "no items"),
    ],
)
def test_bad_item_files_name_the_problem(tmp_path, content, message) -> None:
    path = tmp_path / "items.csv"
    path.write_text(content)
    with pytest.raises(DatasetError, match=message):
        read_items(path)


def test_bad_event_rows_name_the_line(tmp_path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text('{"user_id": "u", "item_id": "a"}\n{"user_id": "u", "kind": "nope"}\n')
    with pytest.raises(DatasetError, match=r"events.jsonl:2"):
        read_events(path)
    (tmp_path / "events.txt").write_text("x")
    with pytest.raises(DatasetError, match="unknown file type"):
        read_events(tmp_path / "events.txt")


def test_recommend_json(built, capsys) -> None:
    assert (
        main(
            ["recommend", str(built), "u003", "-k", "4", "--json", "--template", "--device", "cpu"]
        )
        == 0
    )
    out = json.loads(capsys.readouterr().out)
    recs = out["recommendations"]
    assert out["user_id"] == "u003" and [r["rank"] for r in recs] == [1, 2, 3, 4]
    assert all(r["generated"]["source"] == "template" for r in recs)
    # User u003 favours scifi (3 % 6): the list shows it.
    genre = {it.item_id: it.tags[0] for it in make_items(90)}
    assert sum(genre[r["item_id"]] == GENRES[3] for r in recs) >= 3


def test_recommend_table_for_a_new_user_with_a_query(built, capsys) -> None:
    assert (
        main(
            [
                "recommend",
                str(built),
                "stranger",
                "-k",
                "3",
                "--query",
                "cowboy sheriff saloon",
                "--no-text",
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "User stranger: unknown" in out and out.count("score") == 3


def test_recommend_for_a_session_and_similar_items(built, capsys) -> None:
    base = ["--device", "cpu", "--json"]
    session = ["recommend", str(built), "--session", "i003,i009", "-k", "4", "--no-text"]
    assert main(session + base) == 0
    recs = json.loads(capsys.readouterr().out)["recommendations"]
    assert len(recs) == 4 and not {"i003", "i009"} & {r["item_id"] for r in recs}
    assert main(["similar", str(built), "i003", "-k", "3"] + base) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["item_id"] == "i003" and len(out["recommendations"]) == 3
    assert main(["similar", str(built), "i003", "-k", "2", "--device", "cpu"]) == 0
    assert "Items like" in capsys.readouterr().out
    assert main(["similar", str(built), "no-such-item", "--device", "cpu"]) == 2
    assert "no-such-item" in capsys.readouterr().err
    assert main(["recommend", str(built), "u003", "--session", "i003", "--device", "cpu"]) == 2
    assert main(["recommend", str(built), "--device", "cpu"]) == 2
    assert "--session" in capsys.readouterr().err


def test_errors_exit_2_with_a_message(built, files, capsys) -> None:
    assert main(["recommend", str(built), "nobody", "--device", "cpu", "--no-text"]) == 0
    assert "User nobody: unknown" in capsys.readouterr().out  # a cold-start list
    assert main(["recommend", str(built), "--session", "nope", "--device", "cpu"]) == 2
    assert "nope" in capsys.readouterr().err
    assert main(["recommend", str(files["root"] / "missing"), "u1"]) == 2
    assert main(["build", str(files["items"]), "-o", str(built), "--encoder", "hashing"]) == 2
    assert "--overwrite" in capsys.readouterr().err


@pytest.mark.parametrize(
    "command",
    ["demo", "build", "recommend", "similar", "evaluate", "serve", "download-models", "fetch-data"],
)
def test_every_command_has_help(command, capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    assert "usage: llmrec " + command in capsys.readouterr().out


def test_unknown_command_exits_2(capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["frobnicate"])
    assert exit_info.value.code == 2


def _mini_movielens(tmp_path: Path) -> Path:
    """A small MovieLens-style folder (ml-latest CSV layout) with planted genre taste."""
    rng = random.Random(3)
    data = tmp_path / "mini"
    data.mkdir()
    items = make_items(60)
    with open(data / "movies.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["movieId", "title", "genres"])
        for n, it in enumerate(items):
            writer.writerow([n + 1, f"{it.title} ({it.attributes['year']})", it.tags[0]])
    with open(data / "ratings.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["userId", "movieId", "rating", "timestamp"])
        for u in range(1, 41):
            liked = [n for n in range(60) if n % 6 == u % 6]
            for t, n in enumerate(rng.sample(liked, 8)):
                writer.writerow([u, n + 1, 4, 1000 * u + t])
    return data


def test_evaluate_with_report(tmp_path, capsys) -> None:
    data = _mini_movielens(tmp_path)
    report = tmp_path / "report"
    assert (
        main(
            [
                "evaluate",
                str(data),
                "--encoder",
                "hashing",
                "--models",
                "none",
                "--device",
                "cpu",
                "--quiet",
                "--report",
                str(report),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "recall" in out and "Report written" in out
    assert "Estimated fit time: about 0s (no trainable model" in out
    summary = json.loads((report / "metrics.json").read_text())
    ours = summary["models"]["llmrec"]["metrics"]
    assert ours["recall@10"] > summary["models"]["popularity"]["metrics"]["recall@10"]
    assert summary["latency_ms"]["n"] == 40
    assert summary["dataset"] == "mini" and summary["seed"] == 0
    assert summary["configuration"]["fast"] is False
    assert summary["configuration"]["encoder"] == "hashing"
    assert summary["split_fingerprint"] == leave_one_out(load_movielens(path=data)).fingerprint()
    pytest.importorskip("matplotlib")
    for name in ("models.png", "activity.png", "latency.png"):
        assert (report / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_evaluate_fast_caps_the_sequential_epochs_and_says_so(tmp_path, capsys) -> None:
    data = _mini_movielens(tmp_path)
    report = tmp_path / "report"
    args = ["evaluate", str(data), "--encoder", "hashing", "--device", "cpu", "--quiet"]
    assert main([*args, "--models", "ease,sequential", "--fast", "--report", str(report)]) == 0
    out = capsys.readouterr().out
    assert "--fast: sequential 100 -> 5 epochs" in out
    estimate = re.search(r"Estimated fit time: about (\d+)s \(ease ~\d+s, sequential ~\d+s;", out)
    assert estimate, out
    assert re.search(r"fit and ranking took [\d.]+s \(estimated \d+s\)", out)
    config = json.loads((report / "metrics.json").read_text())["configuration"]
    assert config["fast"] is True
    assert config["models"] == {"ease": {}, "sequential": {"epochs": 5}}


def test_version(capsys) -> None:
    import llmrec

    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out == f"llmrec {llmrec.__version__}\n"
    pyproject = (Path(__file__).parents[2] / "pyproject.toml").read_text(encoding="utf-8")
    assert re.search(r'^version = "([^"]+)"$', pyproject, re.M).group(1) == llmrec.__version__


def test_a_save_sending_prompts_elsewhere_needs_allow_remote(built, tmp_path, capsys) -> None:
    import shutil

    from llmrec import Pipeline
    from llmrec.apps.cli import generator_notice
    from llmrec.storage.io import MANIFEST_NAME, write_manifest

    save = tmp_path / "remote"
    shutil.copytree(built, save)
    manifest = json.loads((save / MANIFEST_NAME).read_text())
    manifest["components"]["generator"] = {
        "backend": "openai",
        "options": {"model": "m", "backend_options": {"base_url": "http://127.0.0.1:9/v1"}},
    }
    write_manifest(save, manifest)
    args = ["recommend", str(save), "u003", "-k", "2", "--no-text", "--device", "cpu"]
    assert main(args) == 2
    assert "--allow-remote" in capsys.readouterr().err
    assert main([*args, "--allow-remote", "--json"]) == 0
    loaded = Pipeline.from_pretrained(save, device="cpu", allow_remote=True)
    assert generator_notice(loaded) == (
        "Generator: openai; prompts are sent to http://127.0.0.1:9/v1"
    )
    local = Pipeline.from_pretrained(built, device="cpu")
    assert generator_notice(local).endswith("(runs in this process)")
