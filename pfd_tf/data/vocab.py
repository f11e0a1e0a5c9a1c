"""Vocabularies from one streaming pass over the training files, and the copies a run keeps of them.

The paper's preprocessing (Section 4.1 of Zhu et al. 2020, following
AutoInt): a category seen fewer than a threshold's times (10 for Criteo, 5
for Avazu) becomes the one out-of-vocabulary id.  A feature asks for that
with `min_count`; its vocabulary is then every token (`features.lookup_tokens`:
the very strings the encoder looks up) seen at least `min_count` times in
`data.train_files`, most frequent first (ties by the token's bytes), the
empty value left out (it is out of vocabulary, or has its `missing_id`).

`count` makes one pass: each batch of rows is parsed by the parse function
training uses and its tokens go into one `tf.lookup` hash table of counts
per feature (in C++; a Python dict of the full Criteo's 34M distinct tokens
would take minutes more and more memory).  Rows that do not parse raise a
DataError naming file and line (`diagnose`).

A vocabulary file holds one token per line: line n is id n, 0 the
out-of-vocabulary id.  Three places give one:
- `vocabulary_file: PATH` (relative to the config's directory): that file;
- `min_count` with `data.vocabulary_dir` set: `DIR/<feature>.txt`, which
  `pfd-vocab --config C --out DIR` writes beforehand (one pass for every
  run that shares the data); its `DIR/vocabularies.json` says which
  min_count made each;
- `min_count` alone: counted when the run starts (`for_run`, in
  `pfd_tf.trainer.train`, before anything is written).

Whatever the source, a run trains from its own copy,
`model_dir/vocabularies/<feature>.txt` (`write`, with
`vocabularies.json`), and its config is resolved to it
(`install`, `with_vocabularies`): the table in the exported graph is initialized from
that copy, which the SavedModel carries as an asset.  A resumed run reads a
counted vocabulary back, and refuses a source file that no longer holds
what the copy holds (RunDirError naming the key).  `resolve` points a run's
config at its copies (pfd-export, the evaluator sidecar, through
`feature_stats.resolve`).
"""
from __future__ import annotations

import dataclasses
import json
import os
import sys
from typing import Mapping, Sequence

import numpy as np

from pfd_tf._keras import tf
from pfd_tf import run_dir
from pfd_tf.config import Config, ConfigError, FeatureSpec
from pfd_tf.data.checks import diagnose
from pfd_tf.data.files import DataError, file_order, layout, resolve_files, tf_reason
from pfd_tf.data.parse import PARSE_BATCH, parser
from pfd_tf.features import lookup_tokens

INDEX = "vocabularies.json"  # beside the vocabulary files: how each was made


@dataclasses.dataclass(frozen=True)
class Vocabulary:
    """A feature's tokens, in id order (id 1 first), and where they came from."""

    tokens: tuple[bytes, ...]
    source: str  # "train_files" (counted) or the file it was read from
    min_count: int = 0
    distinct: int = 0  # counted: distinct tokens seen (the empty value left out)
    rows: int = 0  # counted: rows read

    def info(self) -> dict:
        return {"tokens": len(self.tokens), "source": self.source, "min_count": self.min_count,
                "distinct": self.distinct, "rows": self.rows}


def features_with_vocabulary(config: Config) -> list[tuple[int, FeatureSpec]]:
    """(index, spec) of every feature whose vocabulary is a file the run keeps (`needs_vocabulary`)."""
    return [(i, spec) for i, spec in enumerate(config.features) if spec.needs_vocabulary]


# --------------------------------------------------------------------------
# Counting: one pass over the training files
# --------------------------------------------------------------------------
def count(config: Config, specs: Sequence[FeatureSpec]) -> dict[str, Vocabulary]:
    """The vocabulary of each of `specs` (by `min_count`) from one pass over `data.train_files`."""
    if not specs:
        return {}
    files = resolve_files(config, "train_files")
    parse = parser(config, files, check_labels=False)

    def tokens(records):
        raw = parse(records)
        return {s.name: tf.reshape(lookup_tokens(s, raw[s.source]), [-1]) for s in specs}

    tables = {s.name: tf.lookup.experimental.MutableHashTable(tf.string, tf.int64, default_value=0) for s in specs}
    rows = tf.Variable(0, dtype=tf.int64, trainable=False)

    @tf.function(input_signature=[{s.name: tf.TensorSpec([None], tf.string) for s in specs},
                                  tf.TensorSpec([], tf.int64)])
    def add(batch, batch_rows):
        rows.assign_add(batch_rows)
        for name, table in tables.items():
            values = batch[name]
            values = tf.boolean_mask(values, tf.not_equal(values, ""))
            seen, _, counts = tf.unique_with_counts(values, out_idx=tf.int64)
            table.insert(seen, table.lookup(seen) + counts)

    batches = file_order(files, *layout(config)).batch(PARSE_BATCH)
    batches = batches.map(lambda r: (tokens(r), tf.size(r, out_type=tf.int64)), num_parallel_calls=tf.data.AUTOTUNE)
    try:
        for batch, batch_rows in batches.prefetch(2):
            add(batch, batch_rows)
    except (tf.errors.InvalidArgumentError, tf.errors.DataLossError) as err:
        raise DataError(diagnose(config, files) or f"data.train_files: {tf_reason(err)}") from err
    out = {}
    for spec in specs:
        keys, counts = tables[spec.name].export()
        out[spec.name] = Vocabulary(cut(keys.numpy(), counts.numpy(), spec.min_count), "train_files",
                                    spec.min_count, int(keys.shape[0]), int(rows.numpy()))
    return out


def cut(tokens: np.ndarray, counts: np.ndarray, min_count: int) -> tuple[bytes, ...]:
    """The tokens seen at least `min_count` times, most frequent first, ties by the token's bytes."""
    keep = counts >= min_count
    kept = sorted(zip((-counts[keep]).tolist(), tokens[keep].tolist()))
    return tuple(token for _, token in kept)


# --------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------
def read_file(path: str, key: str) -> tuple[bytes, ...]:
    """The tokens of vocabulary file `path`; ConfigError naming `key` (and the line) if it cannot serve."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise ConfigError(f"{key}: no such vocabulary file {path!r}") from None
    except OSError as err:
        raise ConfigError(f"{key}: cannot read {path!r} ({err.strerror})") from None
    tokens = data.split(b"\n")
    if tokens and tokens[-1] == b"":
        tokens.pop()
    seen: dict[bytes, int] = {}
    for line, token in enumerate(tokens, 1):
        if token == b"" or token.endswith(b"\r"):
            why = "an empty line (the empty value is never a token)" if token == b"" else "a Windows line break"
            raise ConfigError(f"{key}: {path}: line {line}: {why}; one token per line, \\n-separated")
        if token in seen:
            raise ConfigError(f"{key}: {path}: line {line}: duplicate token {token.decode(errors='replace')!r} "
                              f"(also line {seen[token]})")
        seen[token] = line
    if not tokens:
        raise ConfigError(f"{key}: {path}: holds no token")
    return tuple(tokens)


def write_file(path: str, tokens: Sequence[bytes]) -> None:
    """One token per line, atomically."""
    with open(path + ".tmp", "wb") as f:
        f.write(b"".join(token + b"\n" for token in tokens))
    os.replace(path + ".tmp", path)


def write_dir(directory: str, vocabularies: Mapping[str, Vocabulary], train_files: Sequence[str] = ()) -> None:
    """`directory/<feature>.txt` for each vocabulary, then `directory/vocabularies.json` (how each was made)."""
    os.makedirs(directory, exist_ok=True)
    for name, vocabulary in vocabularies.items():
        write_file(os.path.join(directory, f"{name}.txt"), vocabulary.tokens)
    index = {"features": {name: v.info() for name, v in vocabularies.items()}, "train_files": list(train_files)}
    with open(os.path.join(directory, INDEX + ".tmp"), "w", encoding="utf-8") as f:
        json.dump(index, f, indent=2)
    os.replace(os.path.join(directory, INDEX + ".tmp"), os.path.join(directory, INDEX))


def read_index(directory: str) -> dict:
    """`directory/vocabularies.json`'s features ({} if there is none, e.g. vocabularies made by hand)."""
    path = os.path.join(directory, INDEX)
    if not os.path.exists(path):
        return {}
    try:
        with open(path, encoding="utf-8") as f:
            features = json.load(f)["features"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ConfigError(f"{path}: cannot read it ({err})") from None
    return features if isinstance(features, dict) else {}


# --------------------------------------------------------------------------
# A run's vocabularies
# --------------------------------------------------------------------------
def run_copy(model_dir: str, name: str) -> str:
    return os.path.join(model_dir, run_dir.VOCABULARIES, f"{name}.txt")


def _source(config: Config, i: int, spec: FeatureSpec) -> tuple[str, str] | None:
    """(path, key) of the file the feature's vocabulary is read from, or None when the run counts it."""
    if spec.vocabulary_file:
        return config.resolve_path(spec.vocabulary_file), f"features[{i}].vocabulary_file"
    if config.data.vocabulary_dir:
        directory = config.resolve_path(config.data.vocabulary_dir)
        return os.path.join(directory, f"{spec.name}.txt"), "data.vocabulary_dir"
    return None


def _read_from_dir(config: Config, i: int, spec: FeatureSpec, path: str, key: str) -> Vocabulary:
    """A pfd-vocab vocabulary from `data.vocabulary_dir`, checked against the min_count it was made with."""
    if not os.path.exists(path):
        raise ConfigError(f"{key}: no vocabulary for feature {spec.name!r} ({path} is missing): write them with "
                          f"pfd-vocab --config CONFIG --out {os.path.dirname(path)}")
    made = read_index(os.path.dirname(path)).get(spec.name, {})
    if made.get("min_count") not in (None, spec.min_count):
        raise ConfigError(f"features[{i}].min_count: {spec.min_count}, but {path} was counted with min_count "
                          f"{made['min_count']} ({INDEX} beside it): run pfd-vocab again")
    return Vocabulary(read_file(path, key), path, spec.min_count, made.get("distinct", 0), made.get("rows", 0))


def _has_checkpoints(model_dir: str) -> bool:
    directory = os.path.join(model_dir, "checkpoints")
    return os.path.isdir(directory) and bool(os.listdir(directory))


def for_run(config: Config, model_dir: str, resume: bool) -> dict[str, Vocabulary]:
    """The vocabularies a run starting in `model_dir` trains with: read or counted, nothing written.

    Resuming (`resume`): a counted vocabulary is read back from the run's
    copy; a file's vocabulary must still hold what the copy holds, else
    RunDirError naming the key.  A missing or unusable file is a
    ConfigError naming the key; a row that does not parse, a DataError
    naming file and line.
    """
    wanted = features_with_vocabulary(config)
    if not wanted:
        return {}
    out: dict[str, Vocabulary] = {}
    to_count = []
    for i, spec in wanted:
        copy = run_copy(model_dir, spec.name)
        kept = resume and os.path.exists(copy)
        if resume and not kept and _has_checkpoints(model_dir):
            raise run_dir.RunDirError(f"{copy}: missing; the run's checkpoints were trained with it (feature "
                                      f"{spec.name!r}): put it back, or pass --overwrite to start afresh")
        source = _source(config, i, spec)
        if source is None:
            if kept:
                out[spec.name] = Vocabulary(read_file(copy, f"{model_dir}: the run's vocabulary"), "train_files",
                                            spec.min_count)
            else:
                to_count.append(spec)
            continue
        path, key = source
        vocabulary = (_read_from_dir(config, i, spec, path, key) if not spec.vocabulary_file
                      else Vocabulary(read_file(path, key), path))
        if kept and read_file(copy, f"{model_dir}: the run's vocabulary") != vocabulary.tokens:
            raise run_dir.RunDirError(
                f"{key}: {path} differs from the vocabulary of feature {spec.name!r} that the run in {model_dir} "
                f"trained with ({copy}): train into another --model_dir, or pass --overwrite to start afresh")
        out[spec.name] = vocabulary
    if to_count:
        print(f"counting the vocabularies of {', '.join(s.name for s in to_count)} in data.train_files "
              f"(min_count; pfd-vocab does it once for many runs)", file=sys.stderr, flush=True)
        out.update(count(config, to_count))
    return out


def write(model_dir: str, vocabularies: Mapping[str, Vocabulary]) -> None:
    """The run's copies: `model_dir/vocabularies/<feature>.txt` and `vocabularies.json`."""
    if vocabularies:
        write_dir(os.path.join(model_dir, run_dir.VOCABULARIES), vocabularies)


def install(config: Config, model_dir: str, vocabularies: Mapping[str, Vocabulary]) -> Config:
    """Writes the run's copies (`write`); returns `config` resolved to them (`with_vocabularies`)."""
    write(model_dir, vocabularies)
    return with_vocabularies(config, model_dir)


def with_vocabularies(config: Config, model_dir: str) -> Config:
    """The config with each vocabulary feature's `vocabulary_file` the run's copy (an absolute path);
    `config` itself when it has none."""
    if not features_with_vocabulary(config):
        return config
    features = tuple(
        dataclasses.replace(spec, vocabulary_file=os.path.abspath(run_copy(model_dir, spec.name)))
        if spec.needs_vocabulary else spec for spec in config.features)
    return dataclasses.replace(config, features=features)


def resolve(config: Config, model_dir: str) -> Config:
    """`config` (a run's) pointed at the vocabularies its run kept; ConfigError naming a missing copy."""
    for _, spec in features_with_vocabulary(config):
        copy = run_copy(model_dir, spec.name)
        if not os.path.exists(copy):
            raise ConfigError(f"{copy}: missing; feature {spec.name!r} needs the vocabulary its run trained with")
    return with_vocabularies(config, model_dir)


def _check_out_dir(out: str) -> None:
    """ConfigError naming `--out` when it, or the nearest of its parents that exists, is not a writable directory."""
    existing = os.path.abspath(out)
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        what = "is a file" if existing == os.path.abspath(out) else f"is under {existing}, a file"
        raise ConfigError(f"--out {out}: {what}, not a directory: name a directory for the vocabulary files")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(f"--out {out}: cannot write into {existing} (permission denied)")


def write_vocabularies(config_path: str, out: str, overrides=(), overwrite: bool = False) -> dict:
    """What `pfd-vocab` does: counts the `min_count` features' vocabularies of the config at `config_path` and
    writes them into `out`; returns {feature: Vocabulary}.  Raises ConfigError (`out` a file or under one,
    files already there, no feature to count) or DataError, before anything is written."""
    from pfd_tf import config as config_module

    config = config_module.load(config_path, overrides)
    specs = [spec for spec in config.features if spec.min_count]
    if not specs:
        raise config_module.ConfigError(f"{config_path}: no feature has min_count: nothing to count")
    _check_out_dir(out)
    targets = [os.path.join(out, f"{spec.name}.txt") for spec in specs] + [os.path.join(out, INDEX)]
    present = [path for path in targets if os.path.exists(path)]
    if present and not overwrite:
        raise config_module.ConfigError(f"--out {out}: {present[0]} exists ({len(present)} of the files to write do); "
                                     "pass --overwrite to replace them")
    vocabularies = count(config, specs)
    write_dir(out, vocabularies, resolve_files(config, "train_files"))
    return vocabularies
