"""Evaluate and Probe show a model's recorded results at once (issue 22, item 6): Evaluate reads the
syntactic evaluation its card records and scores items only when asked; Probe shows the tables stored
with the bundle (probes.json), only while the weights are the ones they were recorded for."""
from __future__ import annotations

import json

import pytest

from explorer import load_model
from explorer.analysis import probe, probe_records
from explorer.model import weights_hash

from apptest_support import assert_clean, html_with, open_page
from conftest import TEXT


@pytest.fixture(scope="module")
def recorded_models(tmp_path_factory):
    """A tiny model whose vocabulary holds the project's pairs, with a card that records its syneval."""
    import torch

    from explorer import LanguageModel, ModelConfig, WordTokenizer, save_bundle
    from explorer.training.evals import agreement_pairs
    root = tmp_path_factory.mktemp("recorded-models")
    texts = [TEXT] + [s for d in agreement_pairs() for s in [d["good"], *d["bad"]]]
    tok = WordTokenizer.build(texts)
    torch.manual_seed(1)
    lm = LanguageModel(ModelConfig(cell="lstm", vocab_size=len(tok), emb_size=16, hidden_size=16, layers=2,
                                   dropout=0.0)).eval()
    metrics = {
        "syneval": {"accuracy": 0.61, "items": 900, "items_total": 1000,
                    "suites": {"simple_agrmt": {"accuracy": 0.75, "items": 100, "items_total": 100},
                               "sent_comp": {"accuracy": 0.55, "items": 800, "items_total": 900}},
                    "conditions": [{"suite": "simple_agrmt", "condition": "sing", "accuracy": 0.8, "items": 50},
                                   {"suite": "simple_agrmt", "condition": "plur", "accuracy": 0.7, "items": 50},
                                   {"suite": "sent_comp", "condition": "all", "accuracy": 0.55, "items": 800}],
                    "command": "python -m explorer syneval --model tiny-rec --suite S --record"},
        "agreement_pairs": {"accuracy": 0.5, "items": 216, "items_total": 216,
                            "suites": {"address": {"accuracy": 0.5, "items": 108, "items_total": 108}},
                            "conditions": [{"suite": "address", "condition": "far_male", "accuracy": 1.0, "items": 54},
                                           {"suite": "address", "condition": "far_female", "accuracy": 0.0,
                                            "items": 54}]}}
    save_bundle(root / "tiny-rec", lm, tok, {"name": "tiny-rec", "metrics": metrics})
    return root


def test_evaluate_shows_the_recorded_results_and_scores_nothing(recorded_models, monkeypatch, tmp_path):
    monkeypatch.setenv("RNN_EXPLORER_CACHE", str(tmp_path / "cache"))
    at = open_page(recorded_models, monkeypatch, "ui/pages/evaluate.py")
    table = at.dataframe[0].value
    got = dict(zip(table["suite"], table["tiny-rec"]))
    assert got == {"address": 0.5, "sent_comp": 0.55, "simple_agrmt": 0.75}
    assert any("python -m explorer syneval --model tiny-rec" in c.value for c in at.caption)
    assert not (tmp_path / "cache" / "evaluations").exists()          # nothing was scored
    assert at.button(key="ev_find") is not None
    at.toggle(key="ev_by_cond").set_value(True).run()
    assert_clean(at)
    cond = at.dataframe[0].value
    assert "condition" in cond.columns and len(cond) == 5
    # the wrong items: scored when asked, with the word that differs in its own column
    at.button(key="ev_find").click().run()
    assert_clean(at)
    assert list((tmp_path / "cache" / "evaluations").glob("eval-tiny-rec-*.parquet"))
    at.selectbox(key="ev_suite").set_value("pronoun").run()
    wrong = at.dataframe[-1].value
    assert len(wrong) > 0 and wrong["differs"].str.contains("→").all()
    assert list(wrong.columns)[0] == "differs"


def _report_json(model_name: str) -> dict:
    scores = (probe.ProbeScore(1, "h", 0.9, 0.6, 0.7, 0.7), probe.ProbeScore(1, "c", 0.8, 0.7, 0.7, 0.7),
              probe.ProbeScore(2, "h", 0.85, 0.5, 0.7, 0.7), probe.ProbeScore(2, "c", 0.75, 0.74, 0.7, 0.7))
    rep = probe.ProbeReport(task="quote", label_names=("outside", "inside"), model=model_name,
                            train_books=("v.txt",), test_books=("t.txt",), n_train=3000, n_test=1500,
                            train_counts=(2100, 900), test_counts=(1000, 500), scores=scores)
    return rep.to_json()


def _write_record(bundle, corpus, sha: str):
    (bundle / probe_records.RECORD_FILE).write_text(json.dumps({"weights_sha256": sha, "runs": [
        {"command": f"python -m explorer probe --model {bundle.name} --corpus {corpus} --task quote "
                    "--max-train 3000 --max-test 1500", "corpus": str(corpus), "max_train": 3000, "max_test": 1500,
         "recorded": "2026-12-02T15:40:00+00:00", "report": _report_json(bundle.name)}]}))


def test_recorded_report_round_trips():
    d = _report_json("m")
    rep = probe_records.report_from_json(d)
    assert rep.to_json() == d and rep.best().layer == 2 and rep.probes == {}


def test_probe_shows_the_recorded_tables_at_once(recorded_models, monkeypatch, tmp_path):
    bundle = recorded_models / "tiny-rec"
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    _write_record(bundle, corpus, weights_hash(load_model(bundle).lm))
    try:
        at = open_page(recorded_models, monkeypatch, "ui/pages/probe.py", query={"corpus": str(corpus)})
        if at.text_input(key="pr_corpus").value != str(corpus):
            at.text_input(key="pr_corpus").set_value(str(corpus)).run()
        assert_clean(at)
        assert not at.toggle(key="pr_run").value                        # nothing fitted
        verdict = html_with(at, "probe-verdict")
        assert "layer 2 h" in verdict and "85.0%" in verdict
        assert not any("Switch on Fit to train" in i.value for i in at.info)
        assert any("Recorded, not fitted now" in c.value and "python -m explorer probe" in c.value for c in at.caption)
        assert len(at.dataframe[0].value) == 4
        # the weights changed since: the stored tables are not shown
        _write_record(bundle, corpus, "0" * 64)
        at.run()
        assert any("recorded for other weights" in w.value for w in at.warning)
        assert not [h for h in at.get("html") if "probe-verdict" in h.proto.body]
    finally:
        (bundle / probe_records.RECORD_FILE).unlink(missing_ok=True)
