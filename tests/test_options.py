"""Component options are checked from their factory's annotations, for built-ins and plugins alike."""

from __future__ import annotations

from typing import Annotated, Literal

import pytest

from ganforge.errors import ConfigError
from ganforge.options import Rule, checked_options
from ganforge.registry import Registry

Rate = Annotated[float, Rule("a probability in [0, 1)", lambda p: 0 <= p < 1, "0.3")]


def plugin_generator(z_dim: int, sample_shape: tuple[int, ...], width: int = 64, gain: float = 1.0,
                     skip: bool = False, act: Literal["relu", "gelu"] = "relu", sizes: tuple[int, ...] = (8, 8),
                     dropout: Rate | None = None, anything: object = None) -> str:
    return "built"


@pytest.fixture
def registry():
    registry = Registry()
    registry.add("generator", "plug", plugin_generator)
    return registry


def build(registry, **options):
    return registry.get("generator", "plug").build(z_dim=2, sample_shape=(2,), **options)


@pytest.mark.parametrize("option, value, expects", [
    ("width", "wide", "gen.width must be a whole number, such as --set gen.width=64"),
    ("width", True, "gen.width must be a whole number"),
    ("width", 2.5, "gen.width must be a whole number"),
    ("gain", "x", "gen.gain must be a number, such as --set gen.gain=1.0"),
    ("skip", 1, "gen.skip must be true or false, such as --set gen.skip=true"),
    ("act", "tanh", "gen.act must be one of relu, gelu, such as --set gen.act=relu"),
    ("sizes", (8, "a"), "gen.sizes must be a comma-separated list of whole numbers"),
    ("dropout", 1.5, "gen.dropout must be a probability in [0, 1), such as --set gen.dropout=0.3; got 1.5"),
])
def test_a_plugin_option_of_the_wrong_type_names_component_option_type_and_example(registry, option, value, expects):
    with pytest.raises(ConfigError, match="generator 'plug' cannot be built with") as info:
        build(registry, **{option: value})
    assert expects in str(info.value)


@pytest.mark.parametrize("options", [{}, {"width": 3, "gain": 2, "skip": True, "act": "gelu", "sizes": [4, 4],
                                          "dropout": None, "anything": object()}, {"dropout": 0.0}])
def test_values_that_fit_their_annotations_build(registry, options):
    assert build(registry, **options) == "built"


def test_a_decorated_class_checks_direct_construction_too():
    @checked_options("disc")
    class Net:
        def __init__(self, sample_shape: tuple[int, ...], dropout: Rate = 0.0) -> None:
            self.dropout = dropout

    assert Net((2,), dropout=0.5).dropout == 0.5
    with pytest.raises(ConfigError, match=r"disc\.dropout must be a probability in \[0, 1\), such as --set disc"):
        Net((2,), dropout=2)


def test_unresolvable_annotations_check_nothing():
    registry = Registry()

    def factory(size: NoSuchType = 3) -> int:  # noqa: F821 - only a type checker sees it
        return size

    registry.add("dataset", "odd", factory)
    assert registry.get("dataset", "odd").build(size="anything") == "anything"
