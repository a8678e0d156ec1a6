"""The one registry type every kind of plugin uses, and the contract every registered
dataset keeps."""

from __future__ import annotations

import pytest

from nas_hpo import backends, data, objectives, spaces, strategies
from nas_hpo._registry import Registry, UnknownNameError


def test_a_registry_refuses_duplicates_names_the_known_and_carries_metadata():
    registry: Registry[int] = Registry("widget")
    registry.add("a", 1, colour="red")
    with pytest.raises(ValueError, match="widget 'a' is registered already"):
        registry.add("a", 2)
    with pytest.raises(UnknownNameError, match="unknown widget 'b'; registered: a"):
        registry.entry("b")
    assert registry.meta("a") == {"colour": "red"}
    with pytest.raises(TypeError):
        registry.meta("a")["colour"] = "blue"  # read only
    with registry.temporarily("b", 2, colour="blue"):
        assert registry.names() == ["a", "b"] and registry.entry("b") == 2
    assert registry.names() == ["a"]
    registry.remove("a")
    assert registry.names() == []
    with pytest.raises(UnknownNameError):
        registry.remove("a")


def test_every_plugin_kind_is_a_registry():
    for module in (spaces, objectives, strategies, backends, data):
        assert isinstance(module.REGISTRY, Registry) and module.REGISTRY.names()


@pytest.mark.parametrize("name", data.names())
def test_every_dataset_loads_or_says_where_its_files_are_missing(name, tmp_path):
    meta = data.REGISTRY.meta(name)
    if meta.get("embedded"):
        splits = data.load(name)
        assert len(splits.y_train) and len(splits.y_val) and len(splits.y_test)
        assert splits.num_classes == meta["num_classes"]
        assert int(splits.y_train.max()) < splits.num_classes
        return
    with pytest.raises((FileNotFoundError, ValueError)) as info:
        data.load(name, data_dir=str(tmp_path), download=False)
    assert str(tmp_path) in str(info.value) or "data_dir" in str(info.value)
