"""What each model of a run costs to serve: parameters, FLOPs per example, latency per example.

KD-DAGFM (Tian et al., WSDM 2023, Table 3) sets a distilled student's
accuracy beside its parameters, FLOPs and latency, and the teacher's, so
that the ratio is read off.  `report(model_dir)` measures, the same way for
every model:

- each SavedModel under `model_dir/export/*/` (the student, and a two-tower
  student's towers and retrieval model), through its `serving_default`
  signature: raw columns in, probability out, the encoder included;
- with `teachers=True`, each teacher of the run, rebuilt from the run's
  checkpoint (`pfd_tf.evaluation.build_local_model`, as evaluation rebuilds
  the run's networks), wrapped the way the export wraps the student (the
  `FeatureEncoder` of the features it reads, then the network, in a
  `tf.function` over the raw columns), saved as a SavedModel in a temporary
  directory and loaded back: measured through its `serving_default`
  signature too, so that a teacher and a student are one kind of callable
  and their ratio compares the networks, not two ways of calling them.

The latencies of one report are measured side by side (`latency`): each
round calls every model once, the order rotating from round to round, so
the load of a shared machine falls on all of them alike.

Parameters: the variables the serving function reads that were created
trainable (weights, a frozen teacher's too; not batch norm's moving
statistics), split into
`embedding` (the tables of Keras `Embedding` layers, first-order ones
included) and `other`.  FLOPs: `pfd_tf.flops` (per example, per call, by op).
Latency: the median wall time of `repeats` calls after `warmup` calls, on a
batch built from the signature (every string column "1", every number 1.0,
sequences full length), at each batch size of `batches`, divided by the
batch size; the counts are in the report, and the devices it ran on (a
number from a shared machine is a rough one).
"""
from __future__ import annotations

import dataclasses
import glob
import os
import re
import statistics
import tempfile
import time
from typing import Any, Callable, Mapping, Sequence

from pfd_tf._keras import tf
from pfd_tf.flops import serving_flops

BATCHES = (1, 1024)
WARMUP = 5
REPEATS = 30
REPORT = "cost_report.json"
_TABLE = re.compile(r"(^|/)embeddings(_\d+)?(:\d+)?$")  # a Keras Embedding layer's weight


class ReportError(ValueError):
    """Nothing to measure in the model_dir, or what is there cannot be measured; the message says which."""


def parameters(variables: Sequence[tf.Variable]) -> dict[str, int]:
    """Parameters (variables created trainable) by kind: `embedding` (Keras Embedding tables), `other`, `total`."""
    seen, counts = set(), {"embedding": 0, "other": 0}
    for variable in variables:
        if not variable.trainable or variable.ref() in seen:
            continue
        seen.add(variable.ref())
        counts["embedding" if _TABLE.search(variable.name) else "other"] += int(variable.shape.num_elements())
    return {**counts, "total": counts["embedding"] + counts["other"]}


def input_specs(function) -> dict[str, tf.TensorSpec]:
    """The named inputs of a concrete function (a SavedModel signature's keywords or a dict argument)."""
    specs = {}
    for spec in tf.nest.flatten(function.structured_input_signature):
        specs[spec.name] = spec
    return specs


def example_batch(specs: Mapping[str, tf.TensorSpec], rows: int) -> dict[str, tf.Tensor]:
    """A batch of `rows` for `specs`: "1" in every string, 1 in every number, every other dimension full."""
    batch = {}
    for name, spec in specs.items():
        shape = [rows] + [int(d) for d in spec.shape[1:]]
        if spec.dtype == tf.string:
            batch[name] = tf.fill(shape, "1")
        else:
            batch[name] = tf.ones(shape, spec.dtype)
    return batch


def latency(calls: Mapping[str, tuple[Callable[[dict], object], Mapping[str, tf.TensorSpec]]],
            batches: Sequence[int] = BATCHES, warmup: int = WARMUP,
            repeats: int = REPEATS) -> dict[str, dict[str, dict]]:
    """Name -> batch size -> `ms_per_example` (the median call's time over the batch size), the fastest
    call's time (`min_ms_per_call`: the least disturbed by other work on a shared machine) and how it was
    measured, for each `(call, input specs)` of `calls`, timed side by side.

    At each batch size every model is warmed up, then `repeats` rounds each
    call every model once, the first of a round rotating, so that no model
    is always timed right after another's (caches, the CPU's clock) and a
    change of load on the machine falls on every model of the report alike.
    """
    timings: dict[str, dict[str, dict]] = {name: {} for name in calls}
    names = list(calls)
    for rows in batches if names else ():
        runs = {name: _runner(call, example_batch(specs, rows)) for name, (call, specs) in calls.items()}
        for name in names:
            for _ in range(warmup):
                runs[name]()
        times: dict[str, list[float]] = {name: [] for name in names}
        for round_ in range(repeats):
            first = round_ % len(names)
            for name in names[first:] + names[:first]:
                start = time.perf_counter()
                runs[name]()
                times[name].append(time.perf_counter() - start)
        for name in names:
            median = 1000.0 * statistics.median(times[name])
            timings[name][str(rows)] = {"ms_per_example": median / rows, "median_ms_per_call": median,
                                        "min_ms_per_call": 1000.0 * min(times[name]), "batch": rows,
                                        "warmup": warmup, "calls": repeats}
    return timings


def _runner(call: Callable[[dict], object], batch: dict) -> Callable[[], None]:
    def run():
        tf.nest.map_structure(lambda t: t.numpy(), call(batch))  # the result, computed and copied out
    return run


@dataclasses.dataclass(frozen=True)
class Served:
    """A model as it is measured: the `serving_default` signature of a loaded SavedModel (`function`), the
    loaded object that holds its variables (`holder`), and where the model came from (`source`)."""

    source: str
    function: Any
    holder: Any

    def __call__(self, batch: Mapping[str, tf.Tensor]):
        return self.function(**batch)


def load_export(path: str, source: str | None = None) -> Served:
    """The SavedModel at `path`, served through its `serving_default` signature (how every model is measured)."""
    loaded = tf.saved_model.load(path)
    return Served(source or path, loaded.signatures["serving_default"], loaded)


def measure(models: Mapping[str, Served], batches=BATCHES, warmup=WARMUP, repeats=REPEATS) -> dict[str, dict]:
    """Name -> `source`, parameters, FLOPs and latency of each model, the latencies timed side by side."""
    timings = latency({name: (served, input_specs(served.function)) for name, served in models.items()},
                      batches, warmup, repeats)
    return {name: {"source": served.source, "params": parameters(served.function.variables),
                   "flops": serving_flops(served.function), "latency": timings[name]}
            for name, served in models.items()}


def measure_export(path: str, **timing) -> dict:
    """`measure` of the SavedModel at `path` alone."""
    return measure({"export": load_export(path)}, **timing)["export"]


class ServingNetwork(tf.Module):
    """Raw columns -> logits of one network: the `FeatureEncoder` of its features, then the network (as
    `pfd_tf.export.ServingStudent` serves the student)."""

    def __init__(self, features, network, name: str):
        from pfd_tf.features import FeatureEncoder, serving_signature

        super().__init__(name=name)
        self.encoder = FeatureEncoder(features, name=f"{name}_encoder")
        self.network = network
        self.serve = tf.function(self._serve, input_signature=[serving_signature(features)])

    def _serve(self, features):
        logits = self.network(self.encoder(features), training=False)
        return {"probability": tf.sigmoid(logits), "logit": logits}  # as the exported student's signature


def export_teachers(config, checkpoint: str, directory: str) -> dict[str, Served]:
    """`teacher/<name>` -> each teacher of the run, its weights restored from `checkpoint`, saved as a
    SavedModel under `directory` (a `ServingNetwork`) and loaded back, as an exported student is served."""
    from pfd_tf.evaluation import build_local_model

    model = build_local_model(config)
    tf.train.Checkpoint(model=model).read(checkpoint).expect_partial()
    out = {}
    for spec in config.teacher_specs:
        module = ServingNetwork(config.view_features(spec.features), model.teachers[spec.name], f"teacher_{spec.name}")
        path = os.path.join(directory, spec.name)
        tf.saved_model.save(module, path, signatures={"serving_default": module.serve.get_concrete_function()})
        out[f"teacher/{spec.name}"] = load_export(path, f"{checkpoint} (teacher {spec.name!r}, {spec.model.value})")
    return out


def exports(model_dir: str, export_dir: str | None = None) -> dict[str, str]:
    """Name -> path of each SavedModel under `export_dir` (default `model_dir/export/`, the served student's)."""
    found = sorted(glob.glob(os.path.join(export_dir or os.path.join(model_dir, "export"), "*", "saved_model.pb")))
    return {os.path.basename(os.path.dirname(p)): os.path.dirname(p) for p in found}


def report(model_dir: str, teachers: bool = True, checkpoint: str | None = None, batches=BATCHES,
           warmup: int = WARMUP, repeats: int = REPEATS, export_dir: str | None = None,
           teacher_costs: Mapping[str, dict] | None = None) -> dict:
    """The cost of every export of the run in `model_dir` (and, with `teachers`, of its teachers), with the
    ratio of each teacher to the served student.  Raises ReportError when there is nothing to measure.

    `export_dir`: another student's export (`model_dir/export/<name>/`) instead of the served one's; the
    ratios are then to that student.  `teacher_costs`: the teachers' models of an earlier report of the run,
    reused rather than measured again (their latencies were then timed beside that report's models, not
    these).  Every model measured here goes through a SavedModel's `serving_default` signature, side by
    side (`latency`)."""
    timing = {"batches": tuple(batches), "warmup": warmup, "repeats": repeats}
    served = {name: load_export(path) for name, path in exports(model_dir, export_dir).items()}
    kinds = dict.fromkeys(served, "export")
    with tempfile.TemporaryDirectory(prefix="pfd_report_") as directory:
        if teacher_costs is None and teachers:
            config = _config(model_dir)
            if config.teacher_specs:
                teacher_models = export_teachers(config, _checkpoint(model_dir, checkpoint), directory)
                served.update(teacher_models)
                kinds.update(dict.fromkeys(teacher_models, "teacher"))
        models = {name: {"kind": kinds[name], **cost} for name, cost in measure(served, **timing).items()}
    if teacher_costs is not None:
        models.update(teacher_costs)
    if not models:
        raise ReportError(f"{model_dir}: no SavedModel under {os.path.join(model_dir, 'export')} and no teacher "
                          "measured: export the run (pfd-export) or leave --teachers on")
    return {"model_dir": os.path.abspath(model_dir), "devices": _devices(), "tensorflow": tf.__version__,
            "models": models, "ratios": ratios(models)}


def ratios(models: Mapping[str, dict]) -> dict[str, dict]:
    """`<teacher> / student` -> the teacher's parameters, FLOPs per example and latencies over the student's."""
    if "student" not in models:
        return {}
    student, out = models["student"], {}
    for name, cost in models.items():
        if cost["kind"] != "teacher":
            continue
        out[f"{name} / student"] = {
            "params": _ratio(cost["params"]["total"], student["params"]["total"]),
            "flops_per_example": _ratio(cost["flops"]["per_example"], student["flops"]["per_example"]),
            **{f"latency_{b}": _ratio(cost["latency"][b]["ms_per_example"], student["latency"][b]["ms_per_example"])
               for b in cost["latency"] if b in student["latency"]}}
    return out


def teacher_costs(results: Mapping) -> dict[str, dict]:
    """The teachers' entries of a report (`report(..., teacher_costs=)` reuses them for another student)."""
    return {name: cost for name, cost in results["models"].items() if cost["kind"] == "teacher"}


def write(model_dir: str, results: dict) -> str:
    """Writes `results` to `model_dir/cost_report.json` (through a temporary file); returns the path; for another
    student's report, `model_dir` is its export directory (the report beside its SavedModels)."""
    from pfd_tf import finite_json

    path = os.path.join(model_dir, REPORT)
    with open(path + ".tmp", "w") as f:
        finite_json.dump(results, f, what=REPORT)
    os.replace(path + ".tmp", path)
    return path


def table(results: Mapping) -> str:
    """The report as text: one line per model, then each ratio."""
    batches = sorted({b for cost in results["models"].values() for b in cost["latency"]}, key=int)
    head = ["model", "params (embedding)", "params (other)", "FLOPs/example"] + [f"ms/example @{b}" for b in batches]
    rows = [head]
    for name, cost in results["models"].items():
        rows.append([name, f"{cost['params']['embedding']:,}", f"{cost['params']['other']:,}",
                     f"{cost['flops']['per_example']:,}"]
                    + [f"{cost['latency'][b]['ms_per_example']:.4g}" if b in cost["latency"] else "-" for b in batches])
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    for name, ratio in results["ratios"].items():
        lines.append(f"{name}: " + ", ".join(f"{key} {value:.3g}x" for key, value in ratio.items() if value))
    for name, cost in results["models"].items():
        if cost["flops"]["uncounted"]:
            lines.append(f"{name}: FLOPs leave out {cost['flops']['uncounted']}")
    return "\n".join(lines)


def _config(model_dir: str):
    """The run's config, as it trained (`pfd_tf.config.fingerprint`), with what it took from its files."""
    from pfd_tf.config.fingerprint import trained_config
    from pfd_tf.data import feature_stats

    return feature_stats.resolve(trained_config(model_dir), model_dir)


def _checkpoint(model_dir: str, checkpoint: str | None) -> str:
    """The checkpoint to rebuild the teachers from: `checkpoint`, or the run's latest."""
    checkpoint = checkpoint or tf.train.latest_checkpoint(os.path.join(model_dir, "checkpoints"))
    if not checkpoint or not tf.io.gfile.exists(checkpoint + ".index"):
        raise ReportError(f"{model_dir}: no checkpoint to rebuild the teachers from "
                          f"({checkpoint or os.path.join(model_dir, 'checkpoints')}); pass --noteachers")
    return checkpoint


def _ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator else None


def _devices() -> list[str]:
    return [device.name for device in tf.config.list_logical_devices()]
