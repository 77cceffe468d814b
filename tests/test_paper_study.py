"""The paper-reproduction study (studies/paper_reproduction/run.py): plan, tables, end to end."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

RUN_PY = Path(__file__).resolve().parents[1] / "studies" / "paper_reproduction" / "run.py"


@pytest.fixture(scope="module")
def study():
    spec = importlib.util.spec_from_file_location("paper_reproduction_run", RUN_PY)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up by name
    spec.loader.exec_module(mod)
    yield mod
    sys.modules.pop(spec.name, None)


def _rows(md: str, section: str) -> dict[str, list[str]]:
    """Table rows under the heading starting with ``section``: first cell(s) -> cells."""
    body = md.split(f"## {section}", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in body.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if (
            line.startswith("|")
            and not set(cells[0]) <= {"-"}
            and cells[0] not in ("model", "group")
        ):
            key = cells[0] if section != "Ablation" else f"{cells[0]}={cells[1]}"
            rows[key] = cells
    return rows


def test_full_plan_covers_the_paper_tables_and_ablation(study):
    full = study.PRESETS["full"]
    runs = study.plan(full)
    main = {(s.task, s.label, s.seed): s for s in runs if s.label in study.MODELS}
    assert len(main) == 2 * 9 * 3
    for (task, label, _), s in main.items():
        assert s.epochs == {"hierarchical": 50, "long-range": 20}[task]
        assert s.n_samples == {"hierarchical": 5000, "long-range": 3000}[task]
        cfg = study.run_config(s)
        if label.startswith("rsgn"):
            assert cfg.model.hebbian == (label != "rsgn-no-hebbian")
            assert cfg.model.n_steps == (7 if task == "long-range" else 5)
        if label == "rsgn-paper":  # the paper-faithful preset: every improvement off
            paper = study.run_config(s).model
            assert paper.encoder_width == 0 and not paper.token_skip
            assert (paper.d_hidden, paper.affinity_rank, paper.init_state) == (128, 32, "mean")
            assert paper.d_space == 3 and not paper.node_readout
        elif label.startswith("rsgn"):
            assert cfg.model.encoder_width == 5 and not cfg.model.token_skip
            assert (cfg.model.init_state, cfg.model.d_space) == ("attend", 8)
        # without --lr: the model's default (3e-3 RSGN, 1e-3 baselines and the paper config)
        assert cfg.train.lr == (1e-3 if label == "rsgn-paper" else None)
    assert dict(main["long-range", "transformer", 0].model_kwargs) == {"n_layers": 3}
    assert dict(main["hierarchical", "transformer", 0].model_kwargs) == {}
    ablation = {s.label: study.run_config(s).model for s in runs if s.label not in study.MODELS}
    assert sorted(n for n in ablation) == sorted(
        [
            "nodes-128", "nodes-512", "steps-1", "steps-3", "active-1", "active-2",
            "active-10", "skip-on", "no-encoder", "init-mean", "space-3", "node-readout",
        ]
    )  # fmt: skip
    assert [ablation[f"nodes-{n}"].n_nodes for n in (128, 512)] == [128, 512]
    assert [ablation[f"steps-{n}"].n_steps for n in (1, 3)] == [1, 3]
    assert [ablation[f"active-{n}"].target_active for n in (1, 2, 10)] == [0.01, 0.02, 0.1]
    assert ablation["init-mean"].init_state == "mean"
    assert all(m.hebbian for m in ablation.values())
    assert ablation["skip-on"].token_skip and ablation["skip-on"].encoder_width == 5
    assert ablation["no-encoder"].encoder_width == 0 and not ablation["no-encoder"].token_skip
    assert ablation["init-mean"].init_state == "mean" and ablation["space-3"].d_space == 3
    assert ablation["node-readout"].node_readout
    with_lr = study.plan(study.dataclasses.replace(full, lr=3e-3))
    assert {study.run_config(s).train.lr for s in with_lr} == {3e-3}


def test_only_selects_by_task_model_point_and_glob(study):
    runs = study.plan(study.PRESETS["full"])

    def ids(*only):
        return {s.id for s, names in runs.items() if study.selected(s, names, list(only))}

    assert ids("mlp") == {f"{t}/mlp/seed{i}" for t in study.TASKS for i in range(3)}
    assert ids("nodes-512") == {"hierarchical/nodes-512/seed0"}
    assert "hierarchical/rsgn-hebbian/seed0" in ids("ablation")  # the default point is shared
    assert ids("long-range/*/seed2") == {f"long-range/{m}/seed2" for m in study.MODELS}
    assert len(ids("main")) == 54 and len(ids()) == len(runs)
    assert "hierarchical/rsgn-paper/seed0" in ids("ablation")  # the paper-config point


def test_tiny_study_end_to_end(study, tmp_path):
    out, runs_dir = tmp_path / "out", tmp_path / "runs"
    assert study.main(["--tiny", "--out", str(out), "--runs", str(runs_dir)]) == 0
    md = (out / "tables.md").read_text()
    res = json.loads((out / "results.json").read_text())
    assert res["meta"]["ran"] == 5 and res["meta"]["failed"] == 0
    assert "learning rate config default (0.003 for the RSGN, 0.001 for the baselines" in md
    assert "--tiny" in md
    for png in ("accuracy_vs_params.png", "training_curves.png", "ablation_curves.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    hier = _rows(md, "Hierarchical")
    lr = _rows(md, "Long-range")
    titles = [study.TITLES[k] for k in study.MODELS]
    assert sorted(hier) == sorted(titles) and sorted(lr) == sorted(titles)
    # paper numbers, spec §6: accuracy and parameters
    paper = {
        "Transformer": ("30.1 ± 0.2", "403,348", "100.0", "600,330"),
        "RSGN + Hebbian": ("23.8 ± 0.2", "41,672", "96.5 ± 0.5", "40,382"),
        "RSGN": ("23.8 ± 0.1", "41,672", "96.1 ± 0.2", "40,382"),
        "RSGN, paper config + Hebbian": ("23.8 ± 0.2", "41,672", "96.5 ± 0.5", "40,382"),
        "LSTM": ("18.1 ± 0.4", "566,292", "100.0", "563,722"),
        "MLP": ("16.0 ± 0.8", "281,364", "—", "—"),
        "Sparse Transformer": ("15.9 ± 0.2", "403,348", "—", "—"),
    }
    for title, (h_acc, h_n, l_acc, l_n) in paper.items():
        assert (hier[title][2], hier[title][4]) == (h_acc, h_n)
        assert (lr[title][2], lr[title][4]) == (l_acc, l_n)
    # measured rows: the models run, with the paper's parameter counts where they are defined
    # (the default RSGN goes beyond the paper: encoder, skip path, d 96, r 16)
    assert hier["RSGN + Hebbian"][3] == "41,085" and lr["RSGN + Hebbian"][3] == "40,115"
    assert hier["MLP"][3] == "281,364"
    for rows in (hier, lr):
        for title in ("RSGN + Hebbian", "MLP"):
            acc = float(rows[title][1].split()[0])
            assert 0.0 <= acc <= 100.0
        assert rows["Transformer"][1] == "not run"
    active = float(hier["RSGN + Hebbian"][5].rstrip("%"))
    assert 0 < active <= 5.0

    abl = _rows(md, "Ablation")
    expected = {
        "nodes": ["128", "256 (default)", "512"],
        "steps": ["1", "3", "5 (default)"],
        "Hebbian": ["on (default)", "off"],
        "init_state": ["attend (default)", "mean (paper)"],
        "space dimension": ["8 (default)", "3 (paper)"],
        "improvements": [
            "encoder on, skip off (default)",
            "+ token_skip (max-pool path)",
            "encoder off (raw tokens)",
            "+ node_readout",
            "paper config (all off)",
        ],
        "active fraction": ["1%", "2%", "5% (default)", "10%"],
    }
    assert sorted(abl) == sorted(f"{g}={s}" for g, ss in expected.items() for s in ss)
    paper_abl = {"nodes=128": "24.4", "nodes=256 (default)": "24.1", "nodes=512": "23.6"}
    paper_abl |= {"steps=1": "24.1", "steps=3": "24.1", "Hebbian=off": "23.7"}
    paper_abl |= {"improvements=paper config (all off)": "23.8"}
    for key, value in paper_abl.items():
        assert abl[key][3] == value
    assert abl["steps=1"][2] != "not run" and abl["nodes=256 (default)"][2] != "not run"
    assert abl["nodes=512"][2] == "not run"

    # resume: a second invocation reuses every finished run
    assert study.main(["--tiny", "--out", str(out), "--runs", str(runs_dir)]) == 0
    res2 = json.loads((out / "results.json").read_text())
    assert res2["meta"]["ran"] == 0 and res2["meta"]["reused"] == 5
    assert res2["aggregate"] == res["aggregate"]
    # ... and keeps the record of the invocation that trained (its wall time), as --report does
    last = res2["meta"]["last_training"]
    assert last["ran"] == 5 and last["wall_seconds"] == res["meta"]["wall_seconds"]
    assert "python studies/paper_reproduction/run.py --tiny --workers 2 --threads 1" in md
    assert study.main(["--tiny", "--report", "--out", str(out), "--runs", str(runs_dir)]) == 0
    md3 = (out / "tables.md").read_text()
    assert "Last invocation that trained" in md3 and "5 runs trained" in md3


def test_report_writes_the_finished_runs_without_training(study, tmp_path):
    out, runs_dir = tmp_path / "out", tmp_path / "runs"
    assert study.main(["--tiny", "--report", "--out", str(out), "--runs", str(runs_dir)]) == 0
    res = json.loads((out / "results.json").read_text())
    assert res["meta"]["ran"] == 0 and res["runs"] == []
    assert len(res["meta"]["missing"]) == 5  # every planned run is listed as missing
    assert not runs_dir.exists() or not any(runs_dir.rglob("metrics.json"))
    assert "not run" in (out / "tables.md").read_text()


def test_full_record_trains_as_before_and_generalised_mode_as_the_default(study):
    """full/ keeps the pre-issue-18 training; --generalised trains with the package default
    (selection split, early stopping, min_steps) except the paper config, which trains as the
    paper did in both."""
    from rsgn.config import RunConfig

    default = RunConfig().train
    for mode, before in (("full", True), ("generalised", False)):
        runs = study.plan(study.PRESETS[mode])
        for s in runs:
            cfg = study.run_config(s)
            paperlike = before or s.label in ("rsgn-paper", "paper-config")
            assert (cfg.data.select_fraction == 0) == paperlike, (mode, s.id)
            assert cfg.train.min_steps == (0 if paperlike else default.min_steps)
            assert cfg.train.patience == (0 if paperlike else default.patience)


def test_epochs_option_trains_its_own_folders_and_tables(study, monkeypatch, tmp_path):
    """--epochs N (N != the mode's) names the mode MODE-eN: its own run folders, its own
    output folder and a reproduce command that repeats --epochs; the mode's default epochs keep
    the plain mode."""
    seen = {}

    def fake_run_study(st, out, runs, **kw):
        seen["st"], seen["out"] = st, out
        return {"failed": []}

    monkeypatch.setattr(study, "run_study", fake_run_study)
    assert study.main(["--generalised", "--epochs", "150", "--runs", str(tmp_path)]) == 0
    st = seen["st"]
    assert (st.mode, st.epochs, st.epochs_for("hierarchical"), st.epochs_for("long-range")) == (
        "generalised-e150",
        150,
        150,
        20,
    )
    assert seen["out"].name == "generalised-e150"
    spec = next(iter(study.plan(st)))
    assert spec.folder(tmp_path, st.mode).parts[-4] == "generalised-e150"
    assert "--generalised --epochs 150" in study.reproduce_command(st)
    assert study.main(["--generalised", "--epochs", "50", "--runs", str(tmp_path)]) == 0
    assert seen["st"].mode == "generalised" and seen["out"].name == "generalised"
    with pytest.raises(SystemExit):
        study.parse_args(["--epochs", "0"])
