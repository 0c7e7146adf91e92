"""The experiment's report from its finished runs: ``results.md`` (tables per dataset, paired differences,
one row per run), ``results.csv`` (one row per dataset, fraction, method and metric), ``runs.csv`` and the
figures in ``figures/``. The runs' own ``run.json`` files stay where they are."""

from __future__ import annotations

import csv
import io
import os

from scripts.atomic import atomic_write
from . import figures
from .aggregate import (
    METRICS, contrast, csv_table, markdown_contrasts, markdown_cost, markdown_differences, markdown_published,
    markdown_table, metrics_of, paired_differences, summarise,
)
from .grid import PRESET_DIR, Preset
from .runner import is_timed, read_record, run_dir

CONFIDENCE = 0.90


def _write_text(path: str, text: str) -> str:
    def write(tmp: str) -> None:
        with open(tmp, "w") as f:
            f.write(text)

    atomic_write(path, write)
    return path


def _runs_csv(records: list[dict]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["run", "dataset", "label_fraction", "method", "seed", *(f"test_{m}" for m in METRICS),
                     "best_val_dice", "best_val_epoch", "seconds", "timed", "training_flops"])
    for r in records:
        best = r.get("validation", {}).get("best", {})
        writer.writerow([r["key"], r["dataset"], f"{r['label_fraction']:g}", r["method"], r["seed"],
                         *(_score(r, m, "") for m in METRICS), best.get("val_mean_dice", ""),
                         best.get("epoch", ""), r["seconds"], r["timed"], r.get("training_flops", "")])
    return out.getvalue()


def _score(record: dict, metric: str, missing: str = "-"):
    value = record["test"].get(metric, {}).get("mean")
    return missing if value is None else value


def write_report(root: str, preset: Preset, qualitative: bool = True) -> list[str]:
    """Write the report of every finished run of ``preset`` under ``root``; returns the files written."""
    runs = preset.runs()
    records, missing = [], []
    for run in runs:
        record = read_record(root, run)
        if record is not None and record["status"] == "finished":
            records.append({**record, "timed": is_timed(run_dir(root, run), record)})
        else:
            missing.append(f"{run.key} ({record['status'] if record else 'not started'})")
    labels = {name: method.label for name, method in preset.methods.items()}
    reference = next(iter(labels))
    summaries = summarise(records, CONFIDENCE)
    differences = paired_differences(records, reference, CONFIDENCE)
    fractions = preset.fractions
    written = []
    lines = [
        f"# {preset.name}", "", preset.description, "",
        f"Finished runs: {len(records)} of {len(runs)}; their wall time adds up to "
        f"{sum(r['seconds'] for r in records) / 60:.1f} min.",
        "Scores are the test split's mean over images of the per-image mean over foreground classes (volume "
        "Dice: over volumes, each volume's slices stacked; pooled: all test pixels counted together), for the "
        f"model that validation selected; cells give the mean over seeds ± the half-width of the "
        f"{CONFIDENCE * 100:g} % Student-t confidence interval (n = seeds). Bold: the best mean of its column.",
    ]
    machines = sorted({r["machine"] for r in records if r.get("machine")})
    name = preset.name if os.path.dirname(os.path.abspath(preset.path)) == PRESET_DIR else preset.path
    lines += ["", f"Command (from the repository root): `python -m experiments run {name}`.",
              "Ran on: " + ("; ".join(machines) if machines else "not recorded") + "."]
    if missing:
        lines += ["", "Not in the tables: " + ", ".join(missing) + "."]
    for dataset in preset.datasets:
        lines += ["", f"## {dataset}", "", markdown_table(summaries, dataset, labels, fractions)]
        if len(labels) > 1:
            lines += ["", f"Paired by seed (same labeled subset), {labels[reference]} minus each other method:", "",
                      markdown_differences(differences, dataset, reference, labels, fractions)]
        if preset.contrasts:
            contrasts = [(f"{labels[a]} − {labels[b]}: {c['meaning']}", contrast(records, a, b, CONFIDENCE))
                         for c in preset.contrasts for a, b in [c["methods"]]]
            lines += ["", "Contrasts, paired by seed:", "", markdown_contrasts(contrasts, dataset, fractions)]
        rows = {name: m.published for name, m in preset.methods.items() if m.published}
        if rows and dataset in preset.published:
            lines += ["", f"Beside the published table ({preset.published['source']}), in %; the published "
                      "interval is the paper's:", "",
                      markdown_published(summaries, dataset, labels, rows, preset.published[dataset])]
        if any(r["dataset"] == dataset for r in records):
            for metric in metrics_of(summaries, dataset):
                name = f"{dataset}_test_{metric}.png"
                written.append(figures.score_bars(summaries, dataset, labels, fractions, metric,
                                                  os.path.join(root, "figures", name), CONFIDENCE))
                lines += ["", f"![{dataset} test {METRICS[metric]}](figures/{name})"]
            metric = next(m for m in ("dice", "volume_dice", *METRICS) if m in metrics_of(summaries, dataset))
            name = f"{dataset}_cost.png"
            written.append(figures.score_against_time(records, dataset, labels, fractions, metric,
                                                      os.path.join(root, "figures", name)))
            lines += ["", f"What each result cost: the mean wall time of a run (minutes, on the machine above; "
                      "runs that shared it side by side are each slower), that time relative to the fastest "
                      "method's, the training compute (PFLOP: one iteration of each stage counted by torch's "
                      "FlopCounterMode, times its iterations; validation and test not counted) and the test "
                      "score. Runs whose time is not wholly known (restored from a table, or interrupted before "
                      "the time of the attempt was recorded) are left out: n counts the others.", "",
                      markdown_cost(records, dataset, labels, fractions, metric), "",
                      f"![{dataset} test {METRICS[metric]} against wall time](figures/{name})"]
            name = f"{dataset}_validation_dice.png"
            written.append(figures.validation_curves(records, dataset, labels, fractions,
                                                     os.path.join(root, "figures", name)))
            lines += ["", f"![{dataset} validation Dice](figures/{name})"]
            example = next((run for run in runs if run.dataset == dataset and run.method.evaluate is None
                            and read_record(root, run) in records and read_record(root, run).get("validation")
                            and os.path.isfile(os.path.join(run_dir(root, run), "models", "model.pt"))), None)
            # a run that trained (and validated) a network: a reference such as baselines/constant.yaml did not
            if qualitative and example is not None:
                folder = run_dir(root, example)
                name = f"{dataset}_qualitative.png"
                written.append(figures.qualitative_grid([*example.configs, os.path.join(folder, "settings.yaml")],
                                                        os.path.join(folder, "models"),
                                                        os.path.join(root, "figures", name)))
                teacher = os.path.isfile(os.path.join(folder, "models", figures.TEACHER_FILE))
                lines += ["", f"Test images of {example.key}: "
                          + ("the teacher's pseudo-label after co-training, " if teacher else "")
                          + "the prediction, the target, wrong pixels in red, and the normalised entropy of 8 noise "
                          "draws (0 certain, 1 uniform).", "", f"![{dataset} qualitative](figures/{name})"]
    restored = sorted({r["restored_from"] for r in records if r.get("restored_from")})
    if restored:
        lines += ["", "Runs marked * were restored from " + ", ".join(f"`{path}`" for path in restored)
                  + " (their folders were not kept): their test scores, best validation score and minutes are "
                  "in the tables, their validation curves and predictions are not."]
    if any(not r["timed"] for r in records):
        lines += ["", "Minutes marked ≥ leave out attempts that were interrupted before their time was recorded "
                  "(or, for restored runs, may): the run took at least that long."]
    shown = [m for m in METRICS if any(_score(r, m, None) is not None for r in records)]
    lines += ["", "## Runs", "", "| run | " + " | ".join(f"test {METRICS[m]}" for m in shown)
              + " | best validation Dice (epoch) | minutes |", "| --- |" + " ---: |" * (len(shown) + 2)]
    for r in records:
        best = r.get("validation", {}).get("best")
        validation = f"{best['val_mean_dice']:.3f} ({best['epoch']})" if best else "-"
        scores = " | ".join(f"{_score(r, m):.3f}" if _score(r, m, None) is not None else "-" for m in shown)
        lines.append(f"| {r['key']}{' *' if r.get('restored_from') else ''} | {scores} | {validation} | {'' if r['timed'] else '≥ '}{r['seconds'] / 60:.1f} |")
    written.append(_write_text(os.path.join(root, "results.md"), "\n".join(lines) + "\n"))
    written.append(_write_text(os.path.join(root, "results.csv"), csv_table(summaries, labels, CONFIDENCE)))
    written.append(_write_text(os.path.join(root, "runs.csv"), _runs_csv(records)))
    return written
