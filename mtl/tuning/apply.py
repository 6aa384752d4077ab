"""`mtl tune --apply`: the best settings of a search written into params.yaml, keeping its
comments and layout."""

from __future__ import annotations

from pathlib import Path

import yaml

from mtl.config import load_config
from mtl.tuning.search import TuneError
from mtl.tuning.space import cell, flat

def apply_best(params_file: Path, overlay_file: Path) -> list[str]:
    """Write the overlay's values into ``params_file``, keeping its comments and layout; returns
    one line per changed key. The result is validated before anything is written."""
    from ruamel.yaml import YAML
    from ruamel.yaml.comments import CommentedMap, CommentedSeq
    from ruamel.yaml.util import load_yaml_guess_indent

    if not overlay_file.is_file():
        raise TuneError(f"{overlay_file} is missing: run `mtl tune` first (it writes the file when a trial "
                        "beats the shipped settings)")
    dotted = flat(yaml.safe_load(overlay_file.read_text()) or {})
    load_config(params_file, dotted)  # a stale or edited overlay fails here, naming the key
    text = params_file.read_text()
    _, indent, offset = load_yaml_guess_indent(text)
    rt = YAML()
    rt.preserve_quotes = True
    rt.width = 4096  # never re-wrap the file's long lines
    rt.indent(mapping=2, sequence=max(indent, offset + 2), offset=offset)  # block lists as the file has them
    rt.representer.add_representer(type(None), lambda r, _: r.represent_scalar("tag:yaml.org,2002:null", "null"))
    # PyYAML (what load_config reads with) takes 1e-05 for a string: write 1.0e-05
    rt.representer.add_representer(float, lambda r, v: r.represent_scalar("tag:yaml.org,2002:float",
                                                                           yaml.safe_dump(v).split("\n")[0]))
    doc = rt.load(text)
    changes = []
    for key, value in dotted.items():
        *parents, last = key.split(".")
        node = doc
        for p in parents:
            node = node.setdefault(p, CommentedMap())
        old = node.get(last)
        if isinstance(value, list):
            seq = CommentedSeq(value)
            seq.fa.set_flow_style()  # [128, 64], as params.yaml writes lists
            value = seq
        if old != value:
            changes.append(f"{key}: {'(not set)' if last not in node else cell(old)} -> {cell(value)}")
        node[last] = value
    tmp = params_file.with_suffix(".yaml.tmp")
    with open(tmp, "w") as fh:
        rt.dump(doc, fh)
    tmp.replace(params_file)
    return changes
