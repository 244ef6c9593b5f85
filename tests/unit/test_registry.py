"""The one registry pattern (dlio_core.registry): register, clobber, lazy imports, install hints,
entry points from an installed distribution, and the nearest known name for a typo."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from dlio_core.registry import Entry, Registry


class WidgetError(Exception):
    pass


def _registry(**kw) -> Registry:
    return Registry("widget", group="dl_driver_test.widgets", error=WidgetError, **kw)


def test_register_and_load():
    r = _registry()
    r.register("dumps", "json:dumps")
    r.register("obj", len)  # an object, not a string
    assert r.load("dumps") is __import__("json").dumps and r.load("OBJ") is len
    assert "dumps" in r and r["dumps"].origin == "register()" and r.names() == ("dumps", "obj")


def test_registering_an_existing_name_needs_clobber():
    r = _registry()
    r.register("w", "json:dumps")
    r.register("w", "json:dumps")  # the same target again is fine
    with pytest.raises(ValueError, match=r"widget 'w' is already registered \(json:dumps\); pass clobber=True"):
        r.register("w", "json:loads")
    assert r.load("w").__name__ == "dumps"
    r.register("w", "json:loads", clobber=True)
    assert r.load("w").__name__ == "loads"  # the cached object went with the old entry


def test_builtins_refuse_duplicates_too():
    r = _registry()
    r.register_builtins([Entry("a", "json:dumps")])
    with pytest.raises(ValueError, match="already registered"):
        r.register_builtins([Entry("A", "json:loads")])


def test_bad_target_is_refused_when_registered():
    with pytest.raises(ValueError, match="module:attr"):
        _registry().register("w", "json.dumps")


def test_import_happens_only_when_the_name_is_loaded():
    code = textwrap.dedent("""
        import sys
        from dlio_core.registry import Registry
        r = Registry("widget", group="dl_driver_test.widgets")
        r.register("x", "xml.dom.minidom:parseString")
        before = "xml.dom.minidom" in sys.modules
        entry = r["x"]            # looking at the entry imports nothing either
        during = "xml.dom.minidom" in sys.modules
        r.load("x")
        print(before, during, "xml.dom.minidom" in sys.modules)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False", "True"]


def test_missing_dependency_names_the_extra_and_the_fallback():
    r = _registry(fallback="use the plain widget")
    r.register("fast", "no_such_module_abc:Widget", extra="fast")
    with pytest.raises(WidgetError) as ei:
        r.load("fast")
    msg = str(ei.value)
    assert "widget 'fast' needs no_such_module_abc" in msg
    assert "pip install 'dl-driver[fast]'" in msg and "(or use the plain widget)" in msg
    r.register("gpu", "json:dumps", requires="no_such_framework_abc", extra="gpu")
    with pytest.raises(WidgetError, match=r"needs no_such_framework_abc.*dl-driver\[gpu\]"):
        r.load("gpu")  # the required module is checked before the target is imported


def test_a_missing_attribute_is_named():
    r = _registry()
    r.register("w", "json:no_such_attr")
    with pytest.raises(WidgetError, match="json has no 'no_such_attr'"):
        r.load("w")


def test_known_but_unavailable_names_say_why_and_what_instead():
    r = _registry(fallback="use 'plain'")
    r.register_builtins([Entry("plain", "json:dumps"), Entry("later", None, note="is planned for a later release")])
    with pytest.raises(WidgetError, match=r"widget 'later' is planned for a later release \(available: plain\); "
                                          r"use 'plain'"):
        r.load("later")
    assert r.names(available=True) == ("plain",) and r.names() == ("later", "plain")


def test_unknown_name_suggests_the_nearest_and_lists_the_known():
    r = _registry()
    r.register_builtins([Entry("npz", "json:dumps"), Entry("hdf5", "json:dumps")])
    with pytest.raises(WidgetError, match=r"unknown widget 'npzz'; did you mean 'npz'\? \(available: hdf5, npz\)"):
        r.load("npzz")
    with pytest.raises(WidgetError, match=r"unknown widget 'zzz' \(available"):
        r.entry("zzz")
    assert "zzz" not in r
    with pytest.raises(KeyError):
        r["zzz"]


@pytest.fixture
def fake_distribution(tmp_path, monkeypatch):
    """An installed distribution ``fake-widgets`` (a dist-info directory on sys.path) declaring two
    widgets in the ``dl_driver_test.widgets`` group, one that shadows a built-in name."""
    info = tmp_path / "fake_widgets-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: fake-widgets\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        "[dl_driver_test.widgets]\n"
        "fancy = fake_widgets_mod:Fancy [gpu]\n"
        "plain = fake_widgets_mod:Plain\n")
    (tmp_path / "fake_widgets_mod.py").write_text("class Fancy: pass\nclass Plain: pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "fake-widgets"
    sys.modules.pop("fake_widgets_mod", None)


def test_entry_points_add_third_party_names(fake_distribution):
    r = _registry()
    r.register_builtins([Entry("plain", "json:dumps")])
    assert r.load("plain").__name__ == "dumps"  # a built-in name is found without reading entry points
    with pytest.warns(UserWarning, match="ignored"):  # the distribution's "plain" (next test)
        fancy = r.load("fancy")
    assert fancy.__name__ == "Fancy" and fancy.__module__ == "fake_widgets_mod"
    e = r["fancy"]
    assert e.origin == "entry point of fake-widgets" and e.install == "fake-widgets[gpu]"


def test_entry_points_never_replace_a_name_registered_in_code(fake_distribution):
    r = _registry()
    r.register_builtins([Entry("plain", "json:dumps")])
    with pytest.warns(UserWarning, match="widget 'plain' from the entry point of fake-widgets is ignored"):
        names = r.names()
    assert names == ("fancy", "plain") and r.load("plain").__name__ == "dumps"


def test_entry_points_are_read_again_on_request(tmp_path, monkeypatch):
    r = _registry()
    assert r.names() == ()
    info = tmp_path / "late_widgets-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: late-widgets\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[dl_driver_test.widgets]\nlate = json:dumps\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert "late" not in r  # entry points are read once; these came after
    assert r.names() == ()
    r.read_entry_points(again=True)
    assert r.names() == ("late",) and r.load("late").__name__ == "dumps"
