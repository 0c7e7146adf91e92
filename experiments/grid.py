"""Experiment presets and the grid of runs they describe: datasets x label fractions x methods x seeds.

A preset is a YAML file in ``experiments/presets`` (or any path)::

    description: one line
    datasets:                      # name: overlays (relative to configs/) and where the data is
      acdc: {configs: [datasets/acdc.yaml], dataset_dir: ../shared/data/ACDC}
    label_fractions: [5, 10]
    seeds: [0, 1, 2]
    methods:                       # name: label, overlays, options; or an evaluation of another method
      ours: {label: ours}
      cps: {label: CPS, configs: [baselines/semi_supervised.yaml, baselines/cps.yaml]}
      random_t: {label: random t, evaluate: ours, options: {inference_timestep: random}}
      full: {label: fully supervised, configs: [baselines/supervised.yaml], label_fractions: [100]}
    configs: [profiles/cpu_2d.yaml]   # overlays after the dataset's and the method's
    options: {max_epochs: 8}          # config ids set in every run
    contrasts:                        # differences of two methods' scores, paired by seed, with a meaning
      - {methods: [ours, cps], meaning: what ours adds to CPS}
    published:                        # a paper's table to set beside the results
      source: Author et al., Table 1 (%, mean ± 90 % interval over 10 seeds)
      acdc: {Ours: {5: {dice: [77.3, 1.9], jaccard: [63.0, 2.5]}}}

A method names the row of ``published`` it is compared with by ``published: Ours``.

Relative ``dataset_dir`` paths in a preset are relative to the repository root. A method with ``evaluate``
trains nothing: it runs ``evaluate.yaml`` on the model of that method's run with the same dataset,
fraction and seed, with its own options (e.g. another inferer setting). A method with ``label_fractions``
runs at those fractions only (e.g. the fully supervised reference at 100 %).
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field

import yaml

from . import BUNDLE_ROOT, REPOSITORY_ROOT

CONFIG_DIR = os.path.join(BUNDLE_ROOT, "configs")
PRESET_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "presets")


class PresetError(ValueError):
    """A preset that cannot describe a grid; the message names the file and the problem."""


@dataclass(frozen=True)
class Method:
    name: str
    label: str
    configs: tuple[str, ...] = ()
    options: dict = field(default_factory=dict, hash=False, compare=False)
    evaluate: str | None = None     # the method whose trained model this one evaluates
    label_fractions: tuple[float, ...] | None = None   # only these fractions instead of the preset's
    published: str | None = None    # the row of the preset's published table that this method is compared with


@dataclass(frozen=True)
class Run:
    """One bundle run: its place in the grid and everything its command needs."""

    dataset: str
    label_fraction: float
    method: Method
    seed: int
    dataset_dir: str | None
    configs: tuple[str, ...]         # absolute overlay paths, in order
    options: dict = field(hash=False, compare=False)

    @property
    def key(self) -> str:
        """``dataset/label<fraction>/method/seed<seed>``: the run's folder under the experiment's root."""
        return f"{self.dataset}/label{self.label_fraction:g}/{self.method.name}/seed{self.seed}"

    def source_key(self) -> str | None:
        """The key of the run whose model an evaluation-only run evaluates."""
        if self.method.evaluate is None:
            return None
        return f"{self.dataset}/label{self.label_fraction:g}/{self.method.evaluate}/seed{self.seed}"


@dataclass
class Preset:
    name: str
    path: str
    description: str
    datasets: dict[str, dict]
    label_fractions: list[float]
    seeds: list[int]
    methods: dict[str, Method]
    configs: list[str]
    options: dict
    contrasts: list[dict] = field(default_factory=list)   # {methods: [a, b], meaning: text}: a minus b
    published: dict = field(default_factory=dict)         # {source: text, dataset: {row: {fraction: {metric: [mean, ci]}}}}

    @property
    def fractions(self) -> list[float]:
        """Every label fraction some method runs at, ascending (the table's columns)."""
        own = [f for method in self.methods.values() for f in method.label_fractions or ()]
        return sorted(set(self.label_fractions) | set(own))

    def runs(self) -> list[Run]:
        """The grid in running order: seeds outermost (a finished seed is a complete table), then datasets,
        fractions and methods; evaluation-only methods follow the method they evaluate."""
        runs = []
        for seed in self.seeds:
            for dataset, spec in self.datasets.items():
                for fraction in self.fractions:
                    for method in self.methods.values():
                        if fraction not in (method.label_fractions or self.label_fractions):
                            continue
                        trained = self.methods[method.evaluate] if method.evaluate else method
                        overlays = ["train.yaml", *spec.get("configs", []), *trained.configs, *self.configs]
                        if method.evaluate:
                            overlays.append("evaluate.yaml")
                        options = {**self.options, **trained.options, **method.options}
                        runs.append(Run(
                            dataset=dataset, label_fraction=float(fraction), method=method, seed=int(seed),
                            dataset_dir=spec.get("dataset_dir"), options=options,
                            configs=tuple(_config_path(c, self.path) for c in overlays),
                        ))
        return runs


def _config_path(name: str, preset_path: str) -> str:
    path = name if os.path.isabs(name) else os.path.join(CONFIG_DIR, name)
    if not os.path.isfile(path):
        raise PresetError(f"{preset_path}: config overlay {name!r} not found (looked for {path}).")
    return path


def preset_names() -> list[str]:
    return sorted(name[: -len(".yaml")] for name in os.listdir(PRESET_DIR) if name.endswith(".yaml"))


def load_preset(name_or_path: str) -> Preset:
    """Read a preset by name (``experiments/presets/<name>.yaml``) or path and check it."""
    path = name_or_path if os.path.isfile(name_or_path) else os.path.join(PRESET_DIR, f"{name_or_path}.yaml")
    if not os.path.isfile(path):
        raise PresetError(f"no preset {name_or_path!r}: not a file, and not one of {preset_names()}.")
    with open(path) as f:
        raw = yaml.safe_load(f) or {}
    missing = [key for key in ("datasets", "label_fractions", "seeds", "methods") if not raw.get(key)]
    if missing:
        raise PresetError(f"{path}: missing or empty {', '.join(missing)}.")
    methods = {}
    for name, spec in raw["methods"].items():
        spec = spec or {}
        unknown = set(spec) - {"label", "configs", "options", "evaluate", "label_fractions", "published"}
        if unknown:
            raise PresetError(f"{path}: method {name!r} has unknown keys {sorted(unknown)}.")
        if spec.get("evaluate") is not None:
            source = methods.get(spec["evaluate"])
            if source is None or source.evaluate is not None:
                raise PresetError(
                    f"{path}: method {name!r} evaluates {spec['evaluate']!r}, which must be a trained method "
                    "listed before it."
                )
            if spec.get("configs"):
                raise PresetError(f"{path}: method {name!r} evaluates another method's model; give it options only.")
        fractions = tuple(float(f) for f in spec["label_fractions"]) if spec.get("label_fractions") else None
        if spec.get("evaluate") is not None and fractions is None:
            fractions = methods[spec["evaluate"]].label_fractions
        methods[name] = Method(
            name=name, label=str(spec.get("label", name)), configs=tuple(spec.get("configs") or ()),
            options=dict(spec.get("options") or {}), evaluate=spec.get("evaluate"), label_fractions=fractions,
            published=spec.get("published"),
        )
    datasets = {}
    for name, spec in raw["datasets"].items():
        spec = dict(spec or {})
        if spec.get("dataset_dir") and not os.path.isabs(spec["dataset_dir"]):
            spec["dataset_dir"] = os.path.normpath(os.path.join(REPOSITORY_ROOT, spec["dataset_dir"]))
        datasets[name] = spec
    return Preset(
        name=os.path.splitext(os.path.basename(path))[0], path=path, description=str(raw.get("description", "")),
        datasets=datasets, label_fractions=[float(f) for f in raw["label_fractions"]],
        seeds=[int(s) for s in raw["seeds"]], methods=methods, configs=list(raw.get("configs") or []),
        options=dict(raw.get("options") or {}), contrasts=_contrasts(raw.get("contrasts") or [], methods, path),
        published=_published(raw.get("published") or {}, methods, path),
    )


def _contrasts(contrasts: list, methods: dict[str, Method], path: str) -> list[dict]:
    for contrast in contrasts:
        pair = contrast.get("methods") if isinstance(contrast, dict) else None
        if not isinstance(pair, list) or len(pair) != 2 or not contrast.get("meaning"):
            raise PresetError(f"{path}: a contrast is {{methods: [a, b], meaning: text}}, got {contrast!r}.")
        unknown = [m for m in pair if m not in methods]
        if unknown:
            raise PresetError(f"{path}: contrast {pair} names unknown methods {unknown}; the preset has {list(methods)}.")
    return list(contrasts)


def _published(published: dict, methods: dict[str, Method], path: str) -> dict:
    """The published table as ``{source, dataset: {row: {fraction (float): {metric: (mean, half width)}}}}``."""
    tables = {"source": str(published.get("source", ""))}
    for dataset, rows in published.items():
        if dataset == "source":
            continue
        tables[dataset] = {
            row: {float(f): {m: tuple(float(v) for v in value) for m, value in scores.items()}
                  for f, scores in by_fraction.items()}
            for row, by_fraction in rows.items()
        }
    rows = {row for dataset, table in tables.items() if dataset != "source" for row in table}
    for method in methods.values():
        if method.published is not None and method.published not in rows:
            raise PresetError(f"{path}: method {method.name!r} is compared with the published row "
                              f"{method.published!r}, which the published table lacks (it has {sorted(rows)}).")
    return tables


def select(preset: Preset, datasets=None, label_fractions=None, methods=None, seeds=None,
           dataset_dirs: dict[str, str] | None = None, require_dataset_dirs: bool = True) -> Preset:
    """A copy of the preset narrowed to the given datasets, fractions, methods and seeds (``None``: all of
    them), with dataset folders replaced by ``dataset_dirs``. Fractions and seeds may also be new values."""
    preset = dataclasses.replace(preset, datasets={name: dict(spec) for name, spec in preset.datasets.items()})

    def pick(kind: str, chosen, known):
        unknown = [c for c in chosen if c not in known]
        if unknown:
            raise PresetError(f"{preset.path}: unknown {kind} {unknown}; the preset has {list(known)}.")
        return chosen

    if datasets is not None:
        preset.datasets = {d: preset.datasets[d] for d in pick("datasets", datasets, preset.datasets)}
    if methods is not None:
        chosen = pick("methods", methods, preset.methods)
        for name in chosen:
            source = preset.methods[name].evaluate
            if source is not None and source not in chosen:
                raise PresetError(f"method {name!r} evaluates {source!r}: select both.")
        preset.methods = {m: preset.methods[m] for m in preset.methods if m in chosen}
        preset.contrasts = [c for c in preset.contrasts if set(c["methods"]) <= set(chosen)]
    if label_fractions is not None:
        preset.label_fractions = [float(f) for f in label_fractions]
    if seeds is not None:
        preset.seeds = [int(s) for s in seeds]
    for name, folder in (dataset_dirs or {}).items():
        pick("datasets", [name], preset.datasets)
        preset.datasets[name]["dataset_dir"] = os.path.abspath(folder)
    for name, spec in preset.datasets.items():
        if require_dataset_dirs and not spec.get("dataset_dir"):
            raise PresetError(f"{preset.path}: dataset {name!r} has no dataset_dir; give --dataset_dir {name}=PATH.")
    return preset


def shard(runs: list[Run], index: int, count: int) -> list[Run]:
    """The runs of job ``index`` of ``count`` (a job array): training runs are dealt round-robin, and an
    evaluation-only run goes with the run it evaluates."""
    if not 0 <= index < count:
        raise ValueError(f"shard index must be in [0, {count}), got {index}.")
    owner, trained = {}, 0
    for run in runs:
        if run.method.evaluate is None:
            owner[run.key] = trained % count
            trained += 1
    return [run for run in runs if owner[run.source_key() or run.key] == index]
