"""``rsgn sweep``: content-addressed units are cached and an interrupted sweep reruns only the
missing ones; the process pool and (if installed) Ray run units; bad sweep files are rejected
with a message naming the key."""

from __future__ import annotations

import csv
import os
import sys

import pytest

from rsgn.cli import main
from rsgn.errors import RsgnError
from rsgn.sweep import load_sweep, parse_sweep, plan_units, run_sweep, unit_dir

BASE = """
[sweep]
task = "hierarchical"

[base.model]
n_nodes = 32
d_hidden = 8
affinity_rank = 4
k_in = 4
k_sprout = 1
n_steps = 2
target_active = 0.25

[base.train]
epochs = 1
min_steps = 0
batch_size = 16

[base.data]
n_samples = 30
seq_len = 8
"""

GRID_2X2 = (
    BASE
    + """
[grid]
"model.n_nodes" = [32, 40]
"train.lr" = [1e-3, 3e-3]

[eval]
backends = ["torch"]
limit = 4
batch_size = 4
"""
)


def _write(tmp_path, text, name="sweep.toml"):
    p = tmp_path / name
    p.write_text(text)
    return p


class Stop(Exception):
    pass


def test_cache_and_resume_runs_only_missing_units(tmp_path):
    spec = load_sweep(_write(tmp_path, GRID_2X2))
    trains, evals = plan_units(spec)
    assert len(trains) == 4 and len(evals) == 4
    assert len({u.id for u in trains + evals}) == 8
    out = tmp_path / "out"

    done = []

    def fault(unit, res):  # injected crash after two finished trainings
        done.append(unit.name)
        if len(done) == 2:
            raise Stop

    with pytest.raises(Stop):
        run_sweep(spec, out, workers=1, on_unit_done=fault)
    first = set(done)
    assert all((unit_dir(out, n) / "result.json").is_file() for n in first)
    mtimes = {n: os.path.getmtime(unit_dir(out, n) / "result.json") for n in first}

    s = run_sweep(load_sweep(tmp_path / "sweep.toml"), out, workers=1)
    assert set(s["cached"]) == first
    assert set(s["ran"]) == {u.name for u in trains + evals} - first
    assert not s["failed"]
    assert {n: os.path.getmtime(unit_dir(out, n) / "result.json") for n in first} == mtimes

    again = run_sweep(spec, out, workers=1)
    assert again["ran"] == [] and len(again["cached"]) == 8

    with open(s["results"]) as f:
        rows = list(csv.DictReader(f))
    assert {"unit", "kind", "model.n_nodes", "train.lr", "backend", "metric", "value"} <= set(
        rows[0]
    )
    assert len({r["unit"] for r in rows}) == 8
    acc = [r for r in rows if r["kind"] == "eval" and r["metric"] == "accuracy"]
    assert len(acc) == 4 and all(0.0 <= float(r["value"]) <= 1.0 for r in acc)
    energy = [r for r in rows if r["metric"] == "energy_j_per_inference"]
    assert energy and all(float(r["value"]) > 0 for r in energy)
    with open(s["plot"], "rb") as f:
        assert f.read(4) == b"\x89PNG"

    # a changed spec (another eval limit) is a different unit; the trainings stay cached
    s2 = run_sweep(
        load_sweep(_write(tmp_path, GRID_2X2.replace("limit = 4", "limit = 3"))), out, workers=1
    )
    assert len(s2["ran"]) == 4 and all(n.startswith("eval-") for n in s2["ran"])


def test_process_pool_via_cli(tmp_path, capsys):
    text = BASE + '\n[grid]\n"train.seed" = [0, 1]\n'
    p = _write(tmp_path, text)
    rc = main(["sweep", str(p), "--workers", "2", "--out", str(tmp_path / "o")])
    assert rc == 0, capsys.readouterr().err
    s = __import__("json").loads(capsys.readouterr().out)
    assert s["units"] == 2 and s["ran"] == 2 and s["cached"] == 0
    pids = set()
    for d in (tmp_path / "o" / "units").iterdir():
        res = __import__("json").loads((d / "result.json").read_text())
        pids.add(res["pid"])
    assert os.getpid() not in pids  # ran in pool workers


def test_random_mode_draws_in_range(tmp_path):
    text = BASE.replace(
        'task = "hierarchical"', 'task = "hierarchical"\nmode = "random"\nsamples = 5\nseed = 3'
    ) + (
        '\n[random]\n"train.lr" = { low = 1e-4, high = 1e-2, log = true }\n'
        '"model.n_steps" = [1, 2]\n'
    )
    spec = load_sweep(_write(tmp_path, text))
    assert len(spec.configs) == 5
    for cfg, pt in spec.configs:
        assert 1e-4 <= pt["train.lr"] <= 1e-2 and pt["model.n_steps"] in (1, 2)
        assert cfg["train"]["lr"] == pt["train.lr"]
    assert [pt for _, pt in load_sweep(tmp_path / "sweep.toml").configs] == [
        pt for _, pt in spec.configs
    ]


@pytest.mark.parametrize(
    "extra, key",
    [
        ("\n[grids]\nx = [1]\n", "'grids'"),
        ('\n[grid]\n"model.n_nodez" = [32]\n', "model.n_nodez"),
        ('\n[grid]\n"model.n_nodes" = [-1]\n', "grid.model.n_nodes"),
        ('\n[grid]\n"train.lr" = []\n', "grid.train.lr"),
        ('\n[grid]\n"train.lr" = ["fast"]\n', "grid.train.lr"),
        ('\n[random]\n"train.lr" = [1e-3]\n', "'random'"),
        ('\n[eval]\nbackends = ["torch", "gpu9"]\n', "eval.backends"),
        ('\n[eval]\nbackends = ["torch"]\nbatch = 4\n', "eval.batch"),
        ('\n[eval]\nbackends = ["torch"]\nlimit = 0\n', "eval.limit"),
        (
            '\n[eval]\nbackends = ["torch"]\npresets = { optical = ["ideal"] }\n',
            "eval.presets.optical",
        ),
        (
            '\n[eval]\nbackends = ["neuromorphic"]\noptions = { neuromorphic = { speed = [1] } }\n',
            "eval.options.neuromorphic.speed",
        ),
        ("\n[base.optim]\nlr = 1\n", "base.optim"),
    ],
)
def test_bad_sweep_files_name_the_key(tmp_path, extra, key):
    with pytest.raises(RsgnError) as ei:
        load_sweep(_write(tmp_path, BASE + extra))
    assert key in str(ei.value)


def test_bad_sweep_header_keys(tmp_path, capsys):
    with pytest.raises(RsgnError, match="sweep.tasks"):
        parse_sweep({"sweep": {"tasks": "hierarchical"}})
    with pytest.raises(RsgnError, match="sweep.mode"):
        parse_sweep({"sweep": {"task": "hierarchical", "mode": "bayes"}})
    with pytest.raises(RsgnError, match="random.train.lr"):
        parse_sweep(
            {
                "sweep": {"task": "hierarchical", "mode": "random", "samples": 2},
                "random": {"train.lr": {"low": 1.0, "high": 0.1}},
            }
        )
    p = _write(tmp_path, BASE.replace("epochs = 1", "epochs = 0"))
    rc = main(["sweep", str(p), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and err.startswith("rsgn: error:") and "train.epochs" in err
    assert len(err.splitlines()) == 1


def test_ray_missing_is_a_one_line_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # makes `import ray` fail
    p = _write(tmp_path, BASE)
    rc = main(["sweep", str(p), "--executor", "ray", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "pip install 'rsgn[ray]'" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "o").exists()


def test_ray_executor_local_cluster(tmp_path):
    # Ray >= 2.5x dropped local_mode: a single-node Ray cluster on this machine instead
    ray = pytest.importorskip("ray", reason="ray is not installed (pip install 'rsgn[ray]')")
    spec = load_sweep(_write(tmp_path, BASE + '\n[grid]\n"train.seed" = [0, 1]\n'))
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        s = run_sweep(spec, tmp_path / "o", executor="ray")
    finally:
        ray.shutdown()
    assert len(s["ran"]) == 2 and not s["failed"]
    again = run_sweep(spec, tmp_path / "o", executor="local", workers=1)
    assert again["ran"] == [] and len(again["cached"]) == 2


def test_a_target_that_cannot_run_the_model_is_refused_before_any_training(tmp_path):
    text = BASE + (
        '\n[grid]\n"train.seed" = [0]\n\n[eval]\nbackends = ["torch", "neuromorphic"]\n'
        'presets = { neuromorphic = ["loihi"] }\n'
    )
    spec = load_sweep(_write(tmp_path, text))
    out = tmp_path / "o"
    with pytest.raises(RsgnError, match="loihi.*binary spikes") as ei:
        run_sweep(spec, out, workers=1)
    assert "\n" not in str(ei.value)
    assert not (out / "units").exists()  # nothing trained


def test_sweep_plot_shows_the_swept_parameter(tmp_path, monkeypatch):
    import matplotlib.axes

    labels = []
    monkeypatch.setattr(
        matplotlib.axes.Axes, "set_xlabel", lambda self, t, *a, **k: labels.append(t)
    )
    text = (
        BASE + '\n[grid]\n"model.n_nodes" = [32, 40]\n\n[eval]\nbackends = ["torch"]\nlimit = 4\n'
    )
    run_sweep(load_sweep(_write(tmp_path, text)), tmp_path / "o", workers=1)
    assert set(labels) == {"model.n_nodes"} and len(labels) >= 2  # both panels
