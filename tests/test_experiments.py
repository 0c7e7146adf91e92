"""The experiment runner: presets and their grids, running and resuming, summaries over seeds, reports."""

import json
import math
import os

import pytest
import torch
import yaml
from monai.bundle import ConfigParser

from experiments import runner
from experiments.__main__ import main
from experiments.aggregate import (
    best_methods, contrast, csv_table, markdown_contrasts, markdown_cost, markdown_published, markdown_table,
    paired_differences, summarise, t_interval,
)
from experiments.grid import PresetError, load_preset, preset_names, select, shard
from experiments.report import write_report
from scripts.synthetic import make_synthetic_dataset

# Student t quantiles t_{0.95, n-1} from a printed table
T95 = {1: 6.313752, 2: 2.919986, 4: 2.131847}


def record(method, seed, dice, jaccard, dataset="acdc", fraction=5.0):
    return {"key": f"{dataset}/label{fraction:g}/{method}/seed{seed}", "dataset": dataset, "label_fraction": fraction,
            "method": method, "seed": seed, "seconds": 60.0, "status": "finished",
            "test": {"dice": {"mean": dice}, "jaccard": {"mean": jaccard}}}


def test_t_interval_against_hand_computed_values():
    s = t_interval([0.5, 0.6, 0.7])
    assert s.n == 3 and s.mean == pytest.approx(0.6) and s.std == pytest.approx(0.1)
    assert s.half_width == pytest.approx(T95[2] * 0.1 / math.sqrt(3), abs=1e-6)  # 0.168585
    two = t_interval([0.4, 0.6])  # s = 0.1414, t = 6.3138: the interval is +-0.6314
    assert two.half_width == pytest.approx(0.6313752, abs=1e-6)
    five = t_interval([0.70, 0.72, 0.75, 0.71, 0.77])  # mean 0.73, s = 0.029155
    assert five.half_width == pytest.approx(T95[4] * 0.0291548 / math.sqrt(5), abs=1e-6)
    assert (five.low, five.high) == pytest.approx((0.73 - five.half_width, 0.73 + five.half_width))
    one = t_interval([0.8])
    assert one.mean == 0.8 and math.isnan(one.half_width)
    with pytest.raises(ValueError):
        t_interval([])


def test_tables_mark_the_best_mean_and_pair_differences_by_seed():
    records = [record("ours", s, d, j) for s, d, j in ((0, 0.60, 0.45), (1, 0.70, 0.55), (2, 0.65, 0.50))]
    records += [record("cps", s, d, j) for s, d, j in ((0, 0.50, 0.50), (1, 0.62, 0.60), (2, 0.59, 0.55))]
    records.append(record("cps", 0, 0.9, 0.9, fraction=10.0))
    summaries = summarise(records)
    ours = summaries["acdc", 5.0, "ours", "dice"]
    assert ours.mean == pytest.approx(0.65) and ours.half_width == pytest.approx(T95[2] * 0.05 / math.sqrt(3))
    assert best_methods(summaries) == {("acdc", 5.0, "ours", "dice"), ("acdc", 5.0, "cps", "jaccard"),
                                       ("acdc", 10.0, "cps", "dice"), ("acdc", 10.0, "cps", "jaccard")}
    table = markdown_table(summaries, "acdc", {"ours": "ours", "cps": "CPS"}, [5.0, 10.0])
    assert "| ours | **0.650 ± 0.084 (n=3)** | 0.500 ± 0.084 (n=3) | - | - |" in table
    assert "| CPS | 0.570 ± 0.105 (n=3) | **0.550 ± 0.084 (n=3)** | **0.900 (n=1)** | **0.900 (n=1)** |" in table
    # CPS Dice: s = sqrt(0.0039) = 0.06245, half-width 2.919986 x 0.06245 / sqrt(3) = 0.105
    # differences ours - cps per seed: 0.10, 0.08, 0.06 (Dice): mean 0.08, s 0.02
    difference = paired_differences(records, "ours")["acdc", 5.0, "cps", "dice"]
    assert difference.mean == pytest.approx(0.08) and difference.half_width == pytest.approx(T95[2] * 0.02 / math.sqrt(3))
    rows = csv_table(summaries, {"ours": "ours", "cps": "CPS"}).splitlines()
    assert rows[0] == "dataset,label_fraction,method,label,metric,n,mean,std,ci90_low,ci90_high,best"
    assert rows[1].startswith("acdc,5,ours,ours,dice,3,0.650000,0.050000,") and rows[1].endswith(",1")


def test_the_cost_table_gives_each_methods_minutes_relative_to_the_fastest_beside_its_score():
    records = [record("ours", s, d, 0.5) for s, d in ((0, 0.60), (1, 0.70))]
    records += [record("supervised", s, d, 0.4) for s, d in ((0, 0.50), (1, 0.52))]
    records[0]["seconds"], records[1]["seconds"] = 600.0, 1200.0   # ours: 15 min on average, supervised 1 min
    table = markdown_cost(records, "acdc", {"ours": "ours", "supervised": "supervised only"}, [5.0, 10.0], "dice")
    assert "| ours | 15.0 (n=2) | 15.0 | - | 0.650 | - | - | - | - |" in table
    assert "| supervised only | 1.0 (n=2) | 1.0 | - | 0.510 | - | - | - | - |" in table
    records[0]["training_flops"], records[2]["training_flops"] = 3e15, 2e14   # counted by one run each
    table = markdown_cost(records, "acdc", {"ours": "ours", "supervised": "supervised only"}, [5.0], "dice")
    assert "| ours | 15.0 (n=2) | 15.0 | 3 (n=1) | 0.650 |" in table


def test_every_paper_glas_run_trains_at_the_papers_schedule(tmp_path):
    """The preset's runs merge their overlays with the paper's schedule (profiles/paper_schedule_2d.yaml): a
    preset that loses it runs the bundle's defaults under the paper's name."""
    preset = select(load_preset("paper_glas"), label_fractions=[5, 100], seeds=[0], dataset_dirs={"glas": str(tmp_path)})
    runs = preset.runs()
    assert {run.method.name for run in runs} == set(preset.methods)
    for run in runs:
        parser = ConfigParser()
        parser.read_config([*run.configs])
        parser.update(runner.settings(str(tmp_path / "experiment"), run))
        schedule = {key: parser[key] for key in ("spatial_size", "batch_size", "labeled_batch_size", "max_epochs",
                                                 "lr_step_epochs", "rounds", "amp")}
        assert schedule == {"spatial_size": [128, 128], "batch_size": 2, "labeled_batch_size": 2, "max_epochs": 200,
                            "lr_step_epochs": 50, "rounds": 0 if run.method.name == "ours_rounds0" else 5,
                            "amp": True}, run.key
        assert parser["epoch_length"] == "$-(-len(@datalist['labeled']) // @labeled_batch_size)", run.key
        bundle_lambda = ("ours", "ours_no_cp", "ours_warmup", "ours_separate_bodies", "ours_teacher_cp", "ours_rounds0",
                         "ours_channels_32", "bcp", "bcp_no_pretrain", "bcp_channels_32")
        assert parser["lambda_max"] == (1.0 if run.method.name in bundle_lambda else 5.0), run.key


def test_a_killed_attempt_counts_until_its_log_was_last_written_and_unknown_times_are_left_out(tmp_path):
    log = tmp_path / "log.txt"
    log.write_text(runner.ATTEMPT_MARK + "\n")
    os.utime(log, (1090.0, 1090.0))
    killed = {"status": "running", "seconds": 30.0, "timed": True, "attempt_started": 1000.0}
    assert runner.earlier_time(str(tmp_path), killed) == (120.0, True)
    assert runner.earlier_time(str(tmp_path), {"status": "running", "seconds": 30.0})[1] is False   # start unknown
    assert runner.earlier_time(str(tmp_path), {"status": "failed", "seconds": 30.0, "timed": True}) == (30.0, True)
    # records that do not say: timed where the log holds one attempt; not where it holds two, nor restored ones
    assert runner.is_timed(str(tmp_path), {"seconds": 5.0})
    assert not runner.is_timed(str(tmp_path), {"seconds": 5.0, "restored_from": "runs.csv"})
    log.write_text(2 * (runner.ATTEMPT_MARK + "\n"))
    assert not runner.is_timed(str(tmp_path), {"seconds": 5.0})
    records = [record("ours", s, d, 0.5) for s, d in ((0, 0.60), (1, 0.70))]
    records[1].update(seconds=6000.0, timed=False)
    table = markdown_cost(records, "acdc", {"ours": "ours"}, [5.0], "dice")
    assert "| ours | 1.0 (n=1) | 1.0 | - | 0.600 |" in table


def test_contrasts_pair_any_two_methods_and_the_published_table_is_set_beside_ours():
    records = [record("ours", s, d, 0.5) for s, d in ((0, 0.60), (1, 0.70), (2, 0.65))]
    records += [record("bcp", s, d, 0.4) for s, d in ((0, 0.55), (1, 0.66), (2, 0.64))]
    records += [record("supervised", s, d, 0.3) for s, d in ((0, 0.50), (1, 0.60))]  # seed 2 missing
    teacher = contrast(records, "ours", "bcp")["acdc", 5.0, "dice"]   # per seed 0.05, 0.04, 0.01
    assert teacher.n == 3 and teacher.mean == pytest.approx(0.1 / 3)
    copy_paste = contrast(records, "bcp", "supervised")["acdc", 5.0, "dice"]   # seeds 0 and 1 only: 0.05, 0.06
    assert copy_paste.n == 2 and copy_paste.mean == pytest.approx(0.055)
    table = markdown_contrasts([("ours − BCP: the teacher", contrast(records, "ours", "bcp"))], "acdc", [5.0])
    assert "| ours − BCP: the teacher | +0.033 ± 0.035 (n=3) | +0.100 ± 0.000 (n=3) |" in table  # Jaccard: 0.1 each
    published = {"Ours": {5.0: {"dice": (62.0, 1.9)}}}
    rows = markdown_published(summarise(records), "acdc", {"ours": "ours", "bcp": "BCP"},
                              {"ours": "Ours"}, published).splitlines()
    assert rows[0] == "| method | labeled | our Dice | published Dice | ours − published Dice |"
    assert rows[2].startswith("| ours (Ours) | 5 % | 65.00 ± ") and rows[2].endswith(" (n=3) | 62.00 ± 1.90 | +3.00 |")


def test_paper_glas_sets_the_published_table_and_the_attribution_contrasts():
    preset = load_preset("paper_glas")
    assert preset.methods["ours"].published == "Ours" and preset.methods["cps"].published == "CPS"
    assert preset.published["glas"]["Ours"][5.0]["pooled_dice"] == (77.30, 1.90)
    assert preset.published["glas"]["Fully Sup."][100.0]["pooled_jaccard"] == (82.85, 0.34)
    assert ["ours", "bcp"] in [c["methods"] for c in preset.contrasts]
    assert select(preset, methods=["ours", "supervised"], dataset_dirs={"glas": "x"}).contrasts == [
        c for c in preset.contrasts if set(c["methods"]) == {"ours", "supervised"}]


def test_presets_list_their_grids(capsys):
    assert {"acdc_cpu", "ablation_pretraining", "ablation_rounds", "ablation_round_mode", "ablation_inference",
            "paper_2d", "paper_la"} <= set(preset_names())
    assert main(["list", "acdc_cpu"]) == 0
    lines = [line.split() for line in capsys.readouterr().out.splitlines() if line.startswith("pending")]
    expected = {f"acdc/label{f}/{m}/seed{s}" for f in (5, 10) for m in ("ours", "cps", "supervised") for s in (0, 1, 2)}
    assert [key for _, key in lines][:3] == ["acdc/label5/ours/seed0", "acdc/label5/cps/seed0",
                                             "acdc/label5/supervised/seed0"]
    assert {key for _, key in lines} == expected and len(lines) == 18
    sizes = {"ablation_pretraining": 2 * 2 * 3, "ablation_rounds": 4 * 2 * 3, "ablation_round_mode": 2 * 2 * 3,
             "ablation_inference": 3 * 2 * 3, "paper_2d": 3 * (5 * 7 + 1) * 10, "paper_la": (5 * 7 + 1) * 10}
    for name, size in sizes.items():
        assert main(["list", name]) == 0
        assert f"\n{size} runs in " in capsys.readouterr().out
    rounds = load_preset("ablation_rounds").runs()
    assert sorted({r.options["rounds"] for r in rounds}) == [1, 3, 5, 10]
    inference = load_preset("ablation_inference").runs()
    assert [r.method.name for r in inference[:3]] == ["fixed_t", "random_t", "draws_8"]
    assert inference[1].configs[-1].endswith("evaluate.yaml") and inference[1].source_key() == inference[0].key
    assert inference[1].options["inference_timestep"] == "random" and inference[2].options["inference_draws"] == 8
    full = [r for r in load_preset("paper_la").runs() if r.method.name == "fully_supervised"]
    assert {r.label_fraction for r in full} == {100.0} and len(full) == 10


def test_selection_shards_and_preset_errors(tmp_path):
    preset = select(load_preset("ablation_inference"), methods=["fixed_t", "random_t"], seeds=[0, 1],
                    dataset_dirs={"acdc": str(tmp_path)})
    runs = preset.runs()
    assert len(runs) == 2 * 2 * 2 and all(r.dataset_dir == str(tmp_path) for r in runs)
    jobs = [shard(runs, i, 3) for i in range(3)]
    assert sorted(r.key for job in jobs for r in job) == sorted(r.key for r in runs)
    for job in jobs:  # an evaluation goes with the run that trains its model
        keys = {r.key for r in job}
        assert all(r.source_key() in keys for r in job if r.source_key())
    with pytest.raises(PresetError, match="select both"):
        select(load_preset("ablation_inference"), methods=["random_t"])
    with pytest.raises(PresetError, match="no dataset_dir"):
        select(load_preset("paper_la"))
    bad = tmp_path / "bad.yaml"
    for text, message in (
        ("datasets: {a: {dataset_dir: x}}\nlabel_fractions: [5]\nseeds: [0]\nmethods: {m: {config: [x]}}",
         "unknown keys"),
        ("datasets: {a: {dataset_dir: x}}\nlabel_fractions: [5]\nseeds: [0]\nmethods: {e: {evaluate: m}, m: {}}",
         "listed before it"),
        ("datasets: {a: {configs: [datasets/nothing.yaml], dataset_dir: x}}\nlabel_fractions: [5]\nseeds: [0]\n"
         "methods: {m: {}}", "not found"),
        ("datasets: {a: {dataset_dir: x}}\nseeds: [0]\nmethods: {m: {}}", "label_fractions"),
        ("datasets: {a: {dataset_dir: x}}\nlabel_fractions: [5]\nseeds: [0]\nmethods: {m: {}}\n"
         "contrasts: [{methods: [m, n], meaning: x}]", "unknown methods"),
        ("datasets: {a: {dataset_dir: x}}\nlabel_fractions: [5]\nseeds: [0]\nmethods: {m: {published: Ours}}\n"
         "published: {a: {CPS: {5: {dice: [1, 1]}}}}", "lacks"),
    ):
        bad.write_text(text)
        with pytest.raises(PresetError, match=message) as error:
            load_preset(str(bad)).runs()
        assert str(bad) in str(error.value)


def fake_bundle(calls, fail=()):
    """Stands in for a bundle run: writes the test report the real one would, or fails. The run starts in the
    bundle folder, where MONAI finds the scripts package that the configs name."""
    def call(command, stdout, stderr, cwd):
        assert os.path.isfile(os.path.join(cwd, "scripts", "__init__.py")), cwd
        settings_path = json.loads(command[-1])[-1]
        with open(settings_path) as f:
            settings = yaml.safe_load(f)
        calls.append(settings)
        stdout.write("training...\n")
        if os.path.basename(os.path.dirname(settings_path)) in fail:
            stdout.write("Traceback: boom\n")
            return 1
        report = settings.get("test#report_path", os.path.join(settings["ckpt_dir"], "test_metrics.json"))
        os.makedirs(os.path.dirname(report), exist_ok=True)
        os.makedirs(settings["ckpt_dir"], exist_ok=True)
        with open(os.path.join(settings["ckpt_dir"], "model.pt"), "w") as f:
            f.write("weights")
        with open(report, "w") as f:
            json.dump({"dice": {"mean": 0.5 + settings["seed"] / 10}, "jaccard": {"mean": 0.4}}, f)
        return 0
    return call


def test_runs_are_skipped_once_finished_resumed_when_interrupted_and_failures_recorded(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(runner.subprocess, "call", fake_bundle(calls, fail={"seed1"}))
    preset = select(load_preset("ablation_inference"), methods=["fixed_t", "random_t"], label_fractions=[5],
                    seeds=[0, 1], dataset_dirs={"acdc": str(tmp_path)})
    runs, root = preset.runs(), str(tmp_path / "experiment")
    records = runner.run_all(root, runs, echo=lambda _: None)
    assert [r["status"] for r in records] == ["finished", "finished", "failed", "failed"]
    assert "boom" in records[2]["error"] and "has not finished" in records[3]["error"]
    assert calls[0]["resume"] is True and calls[0]["seed"] == 0 and calls[0]["label_fraction"] == 5.0
    assert calls[1]["ckpt_dir"] == os.path.join(root, "acdc", "label5", "fixed_t", "seed0", "models")
    assert calls[1]["test#report_path"].startswith(os.path.join(root, "acdc", "label5", "random_t", "seed0"))
    assert calls[1]["inference_timestep"] == "random" and len(calls) == 3   # the failed source blocks its evaluation
    assert [runner.status(root, r) for r in runs] == ["finished", "finished", "failed", "failed"]

    # an interrupted run (started, never recorded as ended) is resumed; finished ones are not run again
    monkeypatch.setattr(runner.subprocess, "call", fake_bundle(calls))
    record_path = os.path.join(runner.run_dir(root, runs[0]), "run.json")
    with open(record_path) as f:
        interrupted = {**json.load(f), "status": "running"}
    with open(record_path, "w") as f:
        json.dump(interrupted, f)
    assert runner.status(root, runs[0]) == "interrupted"
    del calls[:]
    records = runner.run_all(root, runs, echo=lambda _: None)
    assert [r["key"] for r in records] == [runs[0].key, runs[2].key, runs[3].key]
    assert all(r["status"] == "finished" for r in records)
    assert [c.get("resume") for c in calls] == [True, True, None]   # training runs continue from checkpoints
    assert runner.run_all(root, runs, echo=lambda _: None) == []
    assert records[1]["test"]["dice"]["mean"] == pytest.approx(0.6)
    assert not records[0]["timed"] and records[1]["timed"]   # the interrupted attempt's start was not recorded

    # fresh: an unfinished run's folder is removed before it starts again
    stale = os.path.join(runner.run_dir(root, runs[2]), "models", "stale.pt")
    open(stale, "w").close()
    runner.execute(root, runs[2], fresh=True)
    assert not os.path.exists(stale)


@pytest.fixture(scope="module")
def tiny_grid(tmp_path_factory):
    """A real grid on tiny synthetic data: ours and supervised-only, 2 seeds, a few iterations each."""
    tmp = tmp_path_factory.mktemp("experiment")
    data = make_synthetic_dataset(str(tmp / "data"), num_train=16, num_val=4, num_test=4, size=32)
    preset = {
        "description": "tiny", "datasets": {"shapes": {"dataset_dir": data}}, "label_fractions": [25],
        "seeds": [0, 1],
        "methods": {"ours": {"label": "ours"}, "supervised": {"label": "supervised", "configs": ["baselines/supervised.yaml"]}},
        "options": {"spatial_size": [32, 32], "batch_size": 4, "labeled_batch_size": 2, "epoch_length": 2,
                    "pretrain_epochs": 1, "max_epochs": 2, "val_interval": 1, "rounds": 1},
    }
    path = tmp / "tiny.yaml"
    path.write_text(yaml.safe_dump(preset))
    root = tmp / "runs"
    assert main(["run", str(path), "--output", str(root)]) == 0
    return path, root


def test_runs_restored_from_a_reports_runs_csv_join_the_tables(tmp_path, capsys):
    runs_csv = tmp_path / "runs.csv"
    runs_csv.write_text(
        "run,dataset,label_fraction,method,seed,test_volume_dice,test_dice,test_jaccard,best_val_dice,best_val_epoch,seconds,timed\n"
        "acdc/label5/ours/seed0,acdc,5,ours,0,0.64,0.66,0.53,0.53,36,19.7,False\n"
        "acdc/label5/ours/seed1,acdc,5,ours,1,0.70,0.69,0.58,0.63,52,5310.4,True\n"
        "acdc/label5/supervised/seed0,acdc,5,supervised,0,0.55,0.56,0.44,0.48,20,763.5,\n"   # not known
        "acdc/label5/other/seed0,acdc,5,other,0,0.1,0.1,0.1,0.1,2,1.0,True\n"   # not in the grid: ignored
    )
    root = tmp_path / "experiment"
    assert main(["restore", "acdc_confirm", "--output", str(root), "--runs_csv", str(runs_csv), "--fractions", "5",
                 "--seeds", "0", "1"]) == 0
    assert "restored 3 runs" in capsys.readouterr().out
    record = json.loads((root / "acdc" / "label5" / "ours" / "seed1" / "run.json").read_text())
    assert record["status"] == "finished" and record["test"]["volume_dice"]["mean"] == 0.70
    assert record["validation"]["best"] == {"epoch": 52, "val_mean_dice": 0.63} and record["seconds"] == 5310.4
    assert record["restored_from"] == str(runs_csv)
    assert main(["restore", "acdc_confirm", "--output", str(root), "--runs_csv", str(runs_csv)]) == 0
    assert "restored 0 runs" in capsys.readouterr().out   # recorded runs are never overwritten
    preset = select(load_preset("acdc_confirm"), label_fractions=[5], seeds=[0, 1], require_dataset_dirs=False)
    write_report(str(root), preset)
    results = (root / "results.md").read_text()
    assert "Finished runs: 3 of " in results and "| acdc/label5/ours/seed1 * | 0.700 | 0.690 | 0.580 |" in results
    assert "ours − supervised only | +0.090 (n=1)" in results and "restored from" in results
    # the paired tables also give validation's difference, on which settings are chosen: 0.53 - 0.48
    assert "5 % validation Dice |" in results and "| ours − supervised only | +0.090 (n=1) | +0.100 (n=1) | +0.090 (n=1) | +0.050 (n=1) |" in results
    # the cost table counts the restored run whose time the table says is whole, and only that one
    assert "| ours | 88.5 (n=1) |" in results and "| supervised only | - |" in results
    rows = {line.split(",")[0]: line.split(",") for line in (root / "runs.csv").read_text().splitlines()}
    assert rows["acdc/label5/ours/seed1"][-2:] == ["True", ""] and rows["acdc/label5/ours/seed0"][-2] == "False"


@pytest.mark.slow
def test_a_tiny_grid_runs_reports_and_is_not_run_again(tiny_grid, capsys):
    path, root = tiny_grid
    for name in ("ours", "supervised"):
        for seed in (0, 1):
            folder = root / "shapes" / "label25" / name / f"seed{seed}"
            run = json.loads((folder / "run.json").read_text())
            assert run["status"] == "finished" and run["test"]["dice"]["mean"] >= 0
            assert [epoch for epoch, _ in run["validation"]["val_mean_dice"]] == [1, 2]
            assert (folder / "models" / "model.pt").is_file() and (folder / "log.txt").is_file()
            teacher = folder / "models" / "cotrained_teacher.pt"  # the qualitative grid's pseudo-labels
            assert teacher.is_file() == (name == "ours")
            stages = json.loads((folder / "models" / "training_flops.json").read_text())
            assert sorted(stages) == (["pretrain", "train"] if name == "ours" else ["train"])
            assert run["training_flops"] == sum(s["flops"] for s in stages.values()) > 0
            if name == "ours":
                assert torch.load(teacher, weights_only=True).keys() == torch.load(
                    folder / "models" / "model.pt", weights_only=True).keys()
    results = (root / "results.md").read_text()
    assert "Finished runs: 4 of 4" in results and "(n=2)" in results and "ours − supervised" in results
    rows = (root / "results.csv").read_text().splitlines()[1:]
    assert sorted(tuple(row.split(",")[2:5:2]) for row in rows) == [
        (name, metric) for name in ("ours", "supervised") for metric in ("dice", "jaccard", "pooled_dice", "pooled_jaccard")]
    assert "x fastest" in results
    for figure in ("shapes_test_dice", "shapes_test_jaccard", "shapes_validation_dice", "shapes_qualitative",
                   "shapes_cost"):
        assert (root / "figures" / f"{figure}.png").stat().st_size > 10_000
    capsys.readouterr()
    assert main(["run", str(path), "--output", str(root), "--no_report"]) == 0
    assert "4 of 4 runs already finished; 0 to run" in capsys.readouterr().out
    os.remove(root / "results.md")
    write_report(str(root), load_preset(str(path)), qualitative=False)
    assert "Finished runs: 4 of 4" in (root / "results.md").read_text()
