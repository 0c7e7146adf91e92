"""Summaries over seeds: mean and 90 % Student-t confidence interval per dataset, label fraction, method and
metric; paired differences between methods; what each result cost; the paper's table form in Markdown and
CSV."""

from __future__ import annotations

import csv
import io
import math
from collections import defaultdict
from dataclasses import dataclass

from scipy import stats

# volume Dice: slices stacked; pooled: every test pixel counted together (the authors' code's 2D measure)
METRICS = {"volume_dice": "volume Dice", "dice": "Dice", "jaccard": "Jaccard", "pooled_dice": "pooled Dice",
           "pooled_jaccard": "pooled Jaccard"}
# with the best validation Dice of each run (the score that selected its model), which the paired tables show
# beside the test's: settings are chosen on it
SCORE_NAMES = {**METRICS, "val_dice": "validation Dice"}


@dataclass(frozen=True)
class Summary:
    n: int
    mean: float
    std: float          # sample standard deviation (n - 1); nan for one value
    half_width: float   # of the confidence interval; nan for one value

    @property
    def low(self) -> float:
        return self.mean - self.half_width

    @property
    def high(self) -> float:
        return self.mean + self.half_width


def t_interval(values: list[float], confidence: float = 0.90) -> Summary:
    """Mean and the two-sided Student-t interval ``mean ± t_{(1+c)/2, n-1} s / sqrt(n)``."""
    n = len(values)
    if n == 0:
        raise ValueError("no values to summarise.")
    mean = sum(values) / n
    if n == 1:
        return Summary(1, mean, math.nan, math.nan)
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    return Summary(n, mean, std, stats.t.ppf((1 + confidence) / 2, n - 1) * std / math.sqrt(n))


def scores_by_seed(records: list[dict], validation: bool = False) -> dict[tuple, dict[int, float]]:
    """``{(dataset, fraction, method, metric): {seed: mean test score}}`` from finished run records; with
    ``validation``, also each run's best validation Dice (metric ``val_dice``)."""
    scores = defaultdict(dict)
    for record in records:
        values = {metric: record["test"].get(metric, {}).get("mean") for metric in METRICS}
        if validation:
            values["val_dice"] = record.get("validation", {}).get("best", {}).get("val_mean_dice")
        for metric, value in values.items():
            if value is not None:
                scores[record["dataset"], record["label_fraction"], record["method"], metric][record["seed"]] = value
    return scores


def summarise(records: list[dict], confidence: float = 0.90) -> dict[tuple, Summary]:
    return {key: t_interval(list(by_seed.values()), confidence) for key, by_seed in scores_by_seed(records).items()}


def _paired(first: dict[int, float], second: dict[int, float], confidence: float) -> Summary | None:
    """``first - second`` over the seeds both have (same seed: same labeled subset and split)."""
    seeds = sorted(set(first) & set(second))
    return t_interval([first[s] - second[s] for s in seeds], confidence) if seeds else None


def paired_differences(records: list[dict], reference: str, confidence: float = 0.90) -> dict[tuple, Summary]:
    """``reference`` minus each other method, paired by seed, over the seeds both finished:
    ``{(dataset, fraction, other method, metric): Summary}``, validation Dice included."""
    scores = scores_by_seed(records, validation=True)
    differences = {}
    for (dataset, fraction, method, metric), by_seed in scores.items():
        difference = _paired(scores.get((dataset, fraction, reference, metric), {}), by_seed, confidence)
        if method != reference and difference is not None:
            differences[dataset, fraction, method, metric] = difference
    return differences


def contrast(records: list[dict], first: str, second: str, confidence: float = 0.90) -> dict[tuple, Summary]:
    """``first`` minus ``second``, paired by seed: ``{(dataset, fraction, metric): Summary}``, validation Dice
    included."""
    scores = scores_by_seed(records, validation=True)
    differences = {}
    for (dataset, fraction, method, metric), by_seed in scores.items():
        if method == first:
            difference = _paired(by_seed, scores.get((dataset, fraction, second, metric), {}), confidence)
            if difference is not None:
                differences[dataset, fraction, metric] = difference
    return differences


def metrics_of(summaries: dict[tuple, Summary], dataset: str) -> list[str]:
    """The metrics that some run of ``dataset`` reported, in ``METRICS`` order, then validation's."""
    reported = {metric for (d, _, _, metric) in summaries if d == dataset}
    return [metric for metric in SCORE_NAMES if metric in reported]


def _cell(summary: Summary | None, best: bool, signed: bool = False) -> str:
    if summary is None:
        return "-"
    sign = "+" if signed else ""
    text = f"{summary.mean:{sign}.3f}" + (f" ± {summary.half_width:.3f}" if summary.n > 1 else "") + f" (n={summary.n})"
    return f"**{text}**" if best else text


def best_methods(summaries: dict[tuple, Summary]) -> set[tuple]:
    """The keys whose mean is the highest of their column (dataset, fraction, metric); ties all count."""
    columns = defaultdict(list)
    for (dataset, fraction, method, metric), summary in summaries.items():
        columns[dataset, fraction, metric].append((summary.mean, method))
    best = set()
    for (dataset, fraction, metric), entries in columns.items():
        top = max(mean for mean, _ in entries)
        best.update((dataset, fraction, method, metric) for mean, method in entries if mean == top)
    return best


def markdown_table(summaries: dict[tuple, Summary], dataset: str, methods: dict[str, str],
                   fractions: list[float]) -> str:
    """Rows: methods (``{name: label}``); columns: each reported metric per label fraction; best in bold."""
    best = best_methods(summaries)
    metrics = metrics_of(summaries, dataset)
    header = ["method"] + [f"{f:g} % {METRICS[m]}" for f in fractions for m in metrics]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(["---"] + ["---:"] * (len(header) - 1)) + " |"]
    for method, label in methods.items():
        cells = [_cell(summaries.get((dataset, f, method, m)), (dataset, f, method, m) in best)
                 for f in fractions for m in metrics]
        lines.append("| " + " | ".join([label, *cells]) + " |")
    return "\n".join(lines)


def markdown_cost(records: list[dict], dataset: str, methods: dict[str, str], fractions: list[float],
                  metric: str) -> str:
    """Rows: methods; columns per label fraction: the mean wall time of a run (minutes), that time relative to
    the fastest method's, the mean training compute (PFLOP, where the runs recorded it) and the mean test
    ``metric`` over the same runs; runs whose time is not wholly known (``timed`` false) are left out."""
    minutes, scores, flops = defaultdict(list), defaultdict(list), defaultdict(list)
    for r in records:
        if r["dataset"] == dataset and r.get("seconds") is not None and r.get("timed", True):
            minutes[r["label_fraction"], r["method"]].append(r["seconds"] / 60)
            scores[r["label_fraction"], r["method"]].append(r["test"].get(metric, {}).get("mean", math.nan))
            flops[r["label_fraction"], r["method"]].append(r.get("training_flops"))
    mean = {key: sum(values) / len(values) for key, values in minutes.items()}
    columns = ("minutes", "x fastest", "PFLOP", METRICS[metric])
    header = ["method"] + [f"{f:g} % {column}" for f in fractions for column in columns]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(["---"] + ["---:"] * (len(header) - 1)) + " |"]
    for method, label in methods.items():
        cells = []
        for f in fractions:
            fastest = min((m for (fraction, _), m in mean.items() if fraction == f), default=None)
            if (f, method) not in mean:
                cells += ["-"] * len(columns)
                continue
            score = sum(scores[f, method]) / len(scores[f, method])
            counted = [v for v in flops[f, method] if v is not None]
            compute = f"{sum(counted) / len(counted) / 1e15:.3g}" + ("" if len(counted) == len(flops[f, method])
                                                                      else f" (n={len(counted)})") if counted else "-"
            cells += [f"{mean[f, method]:.1f} (n={len(minutes[f, method])})", f"{mean[f, method] / fastest:.1f}",
                      compute, f"{score:.3f}"]
        lines.append("| " + " | ".join([label, *cells]) + " |")
    return "\n".join(lines)


def markdown_differences(differences: dict[tuple, Summary], dataset: str, reference: str,
                         methods: dict[str, str], fractions: list[float]) -> str:
    metrics = metrics_of(differences, dataset)
    header = ["difference"] + [f"{f:g} % {SCORE_NAMES[m]}" for f in fractions for m in metrics]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(["---"] + ["---:"] * (len(header) - 1)) + " |"]
    for method, label in methods.items():
        if method == reference:
            continue
        cells = [_cell(differences.get((dataset, f, method, m)), False, signed=True) for f in fractions for m in metrics]
        lines.append("| " + " | ".join([f"{methods[reference]} − {label}", *cells]) + " |")
    return "\n".join(lines)


def markdown_contrasts(contrasts: list[tuple[str, dict[tuple, Summary]]], dataset: str,
                       fractions: list[float]) -> str:
    """Rows: ``(label, contrast(...))``; columns: each reported metric per label fraction."""
    metrics = [m for m in SCORE_NAMES if any(k[0] == dataset and k[2] == m for _, c in contrasts for k in c)]
    header = ["contrast"] + [f"{f:g} % {SCORE_NAMES[m]}" for f in fractions for m in metrics]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(["---"] + ["---:"] * (len(header) - 1)) + " |"]
    for label, differences in contrasts:
        cells = [_cell(differences.get((dataset, f, m)), False, signed=True) for f in fractions for m in metrics]
        lines.append("| " + " | ".join([label, *cells]) + " |")
    return "\n".join(lines)


def markdown_published(summaries: dict[tuple, Summary], dataset: str, methods: dict[str, str],
                       rows: dict[str, str], published: dict) -> str:
    """In percent, as papers print them: for each method compared with a published row (``rows``:
    ``{method: row}``) and each fraction that row has, our mean ± interval, the published value and ours
    minus it, per metric."""
    metrics = [m for m in METRICS if any(m in scores for row in published.values() for scores in row.values())]
    header = ["method", "labeled"] + [f"{title} {METRICS[m]}" for m in metrics
                                      for title in ("our", "published", "ours − published")]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(["---"] * 2 + ["---:"] * (len(header) - 2)) + " |"]
    for method, row in rows.items():
        for fraction, scores in sorted(published.get(row, {}).items()):
            cells = []
            for metric in metrics:
                ours, theirs = summaries.get((dataset, fraction, method, metric)), scores.get(metric)
                mine = "-" if ours is None else f"{100 * ours.mean:.2f}" + (
                    f" ± {100 * ours.half_width:.2f}" if ours.n > 1 else "") + f" (n={ours.n})"
                paper = "-" if theirs is None else f"{theirs[0]:.2f} ± {theirs[1]:.2f}"
                gap = "-" if ours is None or theirs is None else f"{100 * ours.mean - theirs[0]:+.2f}"
                cells += [mine, paper, gap]
            lines.append("| " + " | ".join([f"{methods[method]} ({row})", f"{fraction:g} %", *cells]) + " |")
    return "\n".join(lines)


def csv_table(summaries: dict[tuple, Summary], labels: dict[str, str], confidence: float = 0.90) -> str:
    """One row per dataset, fraction, method and metric."""
    best = best_methods(summaries)
    level = f"{confidence * 100:g}"
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["dataset", "label_fraction", "method", "label", "metric", "n", "mean", "std",
                     f"ci{level}_low", f"ci{level}_high", "best"])
    for key in sorted(summaries, key=lambda k: (k[0], k[1], list(labels).index(k[2]), k[3])):
        s = summaries[key]
        dataset, fraction, method, metric = key
        writer.writerow([dataset, f"{fraction:g}", method, labels[method], metric, s.n, f"{s.mean:.6f}",
                         f"{s.std:.6f}", f"{s.low:.6f}", f"{s.high:.6f}", int(key in best)])
    return out.getvalue()
