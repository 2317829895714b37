"""The evaluation report (metrics.json and plots name what was measured) and the fit-time
estimate and ``--fast`` epoch cap behind ``llmrec evaluate``."""

from __future__ import annotations

import json
import stat
import types
from pathlib import Path

import pytest
from conftest import SMALL_SEQUENTIAL, build_pipeline, make_events, make_items

import llmrec
from llmrec.errors import InvalidInputError
from llmrec.evaluation import (
    FAST_EPOCHS,
    estimate_fit_seconds,
    evaluate,
    leave_one_out,
    limit_epochs,
)
from llmrec.evaluation import driver as driver_module
from llmrec.evaluation import report as report_module
from llmrec.retrieval.models.sequential import SequentialSource


@pytest.fixture(scope="module")
def evaluated():
    items = make_items(120)
    events, _ = make_events(items, n_users=40, per_user=10)
    split = leave_one_out(events)
    pipe = build_pipeline(items, models=("ease",))
    result, predictions = evaluate(pipe, split, "test", show_progress=False, seed=3)
    return pipe, split, result, predictions


def _write(tmp_path: Path, evaluated, **options) -> list[Path]:
    pipe, split, result, predictions = evaluated
    return report_module.write_report(
        tmp_path, pipe, split, result, predictions, latency_users=25, **options
    )


def test_metrics_json_records_dataset_version_configuration_seed_fingerprint(
    tmp_path: Path, evaluated
) -> None:
    _write(tmp_path, evaluated, seed=3, dataset="synthetic", configuration={"fast": True})
    path = tmp_path / "metrics.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    summary = json.loads(path.read_text())
    split = evaluated[1]
    assert summary["dataset"] == "synthetic"
    assert summary["llmrec_version"] == llmrec.__version__
    assert summary["seed"] == 3
    assert summary["split_fingerprint"] == split.fingerprint()
    assert len(summary["split_fingerprint"]) == 64
    assert summary["configuration"] == {
        "encoder": "hashing",
        "index": evaluated[0].retriever.index.name,
        "device": "cpu",
        "models": {"ease": {}},
        "fast": True,
    }
    latency = summary["latency_ms"]
    assert latency["n"] == 25 and latency["generated_text"] is False
    assert 0 < latency["p50"] <= latency["p90"] <= latency["p99"]
    assert "mrr@20" in summary["models"]["llmrec"]["metrics"]


def test_a_different_split_gives_a_different_fingerprint(tmp_path: Path, evaluated) -> None:
    pipe, split, result, predictions = evaluated
    other = leave_one_out(make_events(make_items(120), n_users=40, per_user=10, seed=9)[0])
    report_module.write_report(tmp_path, pipe, other, result, predictions, latency_users=0)
    summary = json.loads((tmp_path / "metrics.json").read_text())
    assert summary["split_fingerprint"] == other.fingerprint() != split.fingerprint()
    assert summary["dataset"] is None and summary["latency_ms"] == {
        "n": 0,
        "generated_text": False,
    }


def test_plots_name_dataset_configuration_and_fingerprint(
    tmp_path: Path, evaluated, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("matplotlib")
    figures = {}
    real_save = report_module._save

    def capture(fig, path, plt):
        ax = fig.axes[0]
        figures[path.name] = {
            "caption": fig._suptitle.get_text(),
            "title": ax.get_title(),
            "ticks": [t.get_text() for t in ax.get_xticklabels()],
            "legend": [t.get_text() for t in ax.get_legend().get_texts()],
            "xscale": ax.get_xscale(),
            "xlabel": ax.get_xlabel(),
        }
        return real_save(fig, path, plt)

    monkeypatch.setattr(report_module, "_save", capture)
    files = _write(tmp_path, evaluated, dataset="synthetic", configuration={"fast": True})
    assert sorted(p.name for p in files) == [
        "activity.png",
        "latency.png",
        "metrics.json",
        "models.png",
    ]
    fingerprint = evaluated[1].fingerprint()[:12]
    assert set(figures) == {"models.png", "activity.png", "latency.png"}
    for name, fig in figures.items():
        for text in ("synthetic", "encoder=hashing", "models=ease", "fast=True", fingerprint):
            assert text in fig["caption"], (name, fig["caption"])
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "mrr@20" in figures["models.png"]["ticks"]
    latency = figures["latency.png"]
    assert latency["xscale"] == "log"
    assert [label.split()[0] for label in latency["legend"]] == ["p50", "p90", "p99"]
    assert "no text generated" in latency["title"] and "generate=False" in latency["xlabel"]


def test_configuration_names_epochs_of_epoch_trained_models() -> None:
    items = make_items(60)
    pipe = build_pipeline(items, models=("ease", SequentialSource(**SMALL_SEQUENTIAL)))
    config = report_module.pipeline_configuration(pipe)
    assert config["models"] == {"ease": {}, "sequential": {"epochs": 40}}
    assert "models=ease+sequential(40 ep)" in report_module._configuration_label(config)


def test_limit_epochs_caps_only_longer_epoch_trained_models() -> None:
    pipe = build_pipeline(
        make_items(60), models=("ease", SequentialSource(**{**SMALL_SEQUENTIAL, "epochs": 12}))
    )
    assert limit_epochs(pipe, FAST_EPOCHS) == {"sequential": (12, FAST_EPOCHS)}
    assert pipe.retriever.models["sequential"].epochs == FAST_EPOCHS
    assert limit_epochs(pipe, FAST_EPOCHS) == {}  # already within the cap
    with pytest.raises(InvalidInputError, match="epochs"):
        limit_epochs(pipe, 0)


def test_estimate_times_a_copy_on_a_sample_and_scales_it(monkeypatch) -> None:
    items = make_items(120)
    events, _ = make_events(items, n_users=40, per_user=10)
    split = leave_one_out(events)
    sequential = SequentialSource(**{**SMALL_SEQUENTIAL, "epochs": 7})
    pipe = build_pipeline(items, models=("ease", sequential))
    # Every probe fit "takes" exactly one second: the estimate is then the scale factor.
    clock = iter(range(1000))
    monkeypatch.setattr(
        driver_module, "time", types.SimpleNamespace(perf_counter=lambda: float(next(clock)))
    )
    # The sample is every user: one epoch's probe times the 7 epochs.
    estimate = estimate_fit_seconds(pipe, split, "test", sample_users=40, seed=0)
    assert set(estimate) == {"ease", "sequential"}
    ease = pipe.retriever.models["ease"]
    assert estimate["ease"] == (2.0 if ease.refit_on_all else 1.0)
    assert estimate["sequential"] == pytest.approx(7.0)
    # Half the users: about twice that (their histories differ in length).
    half = estimate_fit_seconds(pipe, split, "test", sample_users=20, seed=0)
    assert 7 * 1.6 < half["sequential"] < 7 * 2.5
    assert half["ease"] == estimate["ease"]  # its cost follows the catalog, not the users
    # The pipeline's own models are untouched: not fitted, same epochs.
    assert not sequential.fitted and sequential.epochs == 7 and not ease.fitted
    with pytest.raises(InvalidInputError, match="sample_users"):
        estimate_fit_seconds(pipe, split, sample_users=1)


def test_estimate_is_empty_without_trainable_models(evaluated) -> None:
    items = make_items(30)
    pipe = build_pipeline(items, models=())
    assert estimate_fit_seconds(pipe, evaluated[1]) == {}
