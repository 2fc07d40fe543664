"""Reading a NIR file and finding its chain of nodes (refusing nested, recurrent and branching graphs)."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np

from mintaccel.core.errors import UserError


def read_graph(path: str | Path):
    """Read a NIR file without nir's type check (we check, with messages naming the node)."""
    import h5py
    import nir
    from nir.serialization import hdf2dict
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such NIR file")
    try:
        with h5py.File(path, "r") as f:
            if not isinstance(f.get("node"), h5py.Group):
                raise UserError(f"{path}: not a NIR file (no 'node' group)")
            data = hdf2dict(f["node"])
    except OSError as e:
        raise UserError(f"{path}: not a NIR file (not readable as HDF5: {e})") from None
    if data.get("type") != "NIRGraph" or not isinstance(data.get("nodes"), dict) or "edges" not in data:
        raise UserError(f"{path}: not a NIR graph (the root node is not a NIRGraph)")
    _prepare_nodes(data["nodes"])
    data["type_check"] = False
    try:
        return nir.dict2NIRNode(data)
    except (AssertionError, KeyError, TypeError, ValueError, IndexError) as e:
        raise UserError(f"{path}: damaged NIR graph ({type(e).__name__}: {e})") from None


def _prepare_nodes(nodes: dict) -> None:
    """Refuse unknown and nested nodes before nir builds them; let Input/Output lack a shape."""
    import nir
    known = set(nir.ir.__all__)
    for name, node in nodes.items():
        kind = node.get("type") if isinstance(node, dict) else None
        if kind == "NIRGraph":
            raise UserError(f"node '{name}' is a nested NIRGraph (snnTorch writes recurrent RLeaky/RSynaptic "
                            "layers this way): recurrent and nested graphs are not supported")
        if kind not in known:
            raise UserError(f"node '{name}' has type {kind!r}, which nir {nir.__version__} does not know")
        if kind in ("Input", "Output"):
            node.setdefault("shape", None)  # inferred from the neighbouring layer


def chain(graph) -> list[str]:
    """Names of the nodes from the input to the output; refuses anything but a single chain."""
    nodes, edges = graph.nodes, [tuple(e) for e in graph.edges]
    succ, pred = defaultdict(list), defaultdict(list)
    for a, b in edges:
        for n in (a, b):
            if n not in nodes:
                raise UserError(f"edge '{a}' -> '{b}' names node '{n}', which the graph does not hold")
        succ[a].append(b)
        pred[b].append(a)
    _refuse_cycles(nodes, succ)
    import nir
    inputs = [k for k, n in nodes.items() if isinstance(n, nir.Input)] or [k for k in nodes if not pred[k]]
    if len(inputs) != 1:
        raise UserError(f"the graph has {len(inputs)} inputs ({', '.join(map(repr, inputs))}): "
                        "mintaccel imports single-input chains")
    order, cur = [inputs[0]], inputs[0]
    while succ[cur]:
        if len(succ[cur]) > 1:
            raise UserError(f"node '{cur}' feeds {len(succ[cur])} nodes: only chains of layers are supported")
        cur = succ[cur][0]
        if len(pred[cur]) > 1:
            raise UserError(f"node '{cur}' has {len(pred[cur])} inputs: only chains of layers are supported")
        order.append(cur)
    stray = [k for k in nodes if k not in order]
    if stray:
        raise UserError(f"node '{stray[0]}' is not on the path from the input to the output")
    return order


def _refuse_cycles(nodes: dict, succ: dict) -> None:
    state = {}  # 1 on the DFS stack, 2 done

    def visit(n):
        state[n] = 1
        for m in succ[n]:
            if state.get(m) == 1:
                raise UserError(f"recurrent edge '{n}' -> '{m}': recurrent networks are not supported")
            if m not in state:
                visit(m)
        state[n] = 2

    for n in nodes:
        if n not in state:
            visit(n)



def _plain(d: dict) -> dict:
    """Metadata as plain Python values (h5py gives numpy scalars and bytes)."""
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out[k] = _plain(v)
        elif isinstance(v, bytes):
            out[k] = v.decode("utf8", "replace")
        elif isinstance(v, np.ndarray) and v.ndim == 0 or isinstance(v, np.generic):
            out[k] = v.item()
        else:
            out[k] = v
    return out

