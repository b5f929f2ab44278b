"""Nested training state (optimisers, RNGs, counters) as safetensors + JSON: no pickle anywhere.

``torch.save`` writes a pickle, which can carry code; ``weights_only`` only makes reading it safe
for as long as torch's unpickler stays strict. A checkpoint's state is a tree of dicts, lists,
tuples, numbers, strings and tensors, so it splits cleanly in two: every tensor goes into a
safetensors file under a path-like key, and the rest of the tree goes into JSON with each tensor
replaced by a reference to its key. Neither format can hold code.

JSON cannot say "tuple", "dict with integer keys" or "numpy array", which the optimiser
(``state[0]``), Python's ``random`` (a tuple) and numpy's RNG (an array) need back exactly, so
those are written as small tagged objects (``{"__tuple__": [...]}`` and friends).
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import torch

_TENSOR, _TUPLE, _DICT, _ARRAY, _FLOAT = "__tensor__", "__tuple__", "__dict__", "__ndarray__", "__float__"


def split(tree: Any) -> tuple[dict[str, torch.Tensor], str]:
    """``tree`` -> (tensors by key, JSON text of everything else); :func:`join` inverts it."""
    tensors: dict[str, torch.Tensor] = {}

    def encode(node: Any, key: str) -> Any:
        if isinstance(node, torch.Tensor):
            tensors[key] = node.detach().cpu().contiguous()
            return {_TENSOR: key}
        if isinstance(node, np.ndarray):
            return {_ARRAY: node.tolist(), "dtype": str(node.dtype)}
        if isinstance(node, dict):
            if all(isinstance(k, str) for k in node):
                return {k: encode(v, f"{key}.{k}") for k, v in node.items()}
            return {_DICT: [[encode(k, f"{key}.k{i}"), encode(v, f"{key}.{i}")]
                            for i, (k, v) in enumerate(node.items())]}
        if isinstance(node, (list, tuple)):
            items = [encode(v, f"{key}.{i}") for i, v in enumerate(node)]
            return {_TUPLE: items} if isinstance(node, tuple) else items
        if isinstance(node, float) and not math.isfinite(node):
            return {_FLOAT: repr(node)}  # strict JSON has no inf/nan
        if isinstance(node, np.generic):
            return node.item()
        if node is None or isinstance(node, (bool, int, float, str)):
            return node
        raise TypeError(f"cannot store {type(node).__name__} at {key!r} in a checkpoint's state")

    text = json.dumps(encode(tree, "state"), allow_nan=False)
    return tensors, text


def join(tensors: dict[str, torch.Tensor], text: str) -> Any:
    """Rebuild the tree that :func:`split` took apart. Raises ``ValueError`` on malformed input
    (a reference to a missing tensor, an unknown tag), never anything a caller cannot name."""

    def decode(node: Any) -> Any:
        if isinstance(node, dict):
            if _TENSOR in node:
                key = node[_TENSOR]
                if not isinstance(key, str) or key not in tensors:
                    raise ValueError(f"the state refers to a tensor {key!r} that its tensor file lacks")
                return tensors[key]
            if _TUPLE in node:
                return tuple(decode(v) for v in _list(node[_TUPLE]))
            if _DICT in node:
                return {_hashable(decode(k)): decode(v) for k, v in (_pair(p) for p in _list(node[_DICT]))}
            if _ARRAY in node:
                return np.asarray(node[_ARRAY], dtype=np.dtype(str(node.get("dtype", "float64"))))
            if _FLOAT in node:
                return float(node[_FLOAT])
            return {k: decode(v) for k, v in node.items()}
        if isinstance(node, list):
            return [decode(v) for v in node]
        return node

    return decode(json.loads(text))


def _list(value: Any) -> list:
    if not isinstance(value, list):
        raise ValueError(f"expected a list in the state, found {type(value).__name__}")
    return value


def _pair(value: Any) -> tuple[Any, Any]:
    if not (isinstance(value, list) and len(value) == 2):
        raise ValueError("expected a [key, value] pair in the state")
    return value[0], value[1]


def _hashable(key: Any) -> Any:
    if isinstance(key, (dict, list)):
        raise ValueError("a dict key in the state is not a number or a string")
    return key
