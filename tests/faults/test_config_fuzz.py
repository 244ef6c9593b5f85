"""Config fuzzing: random YAML workload files, override lists and command lines through the loader.
Every case ends in a RunConfig or a one-line ConfigError naming what is wrong, within a time bound;
nothing escapes as another exception (a traceback for the user, exit 1 instead of 2). The counts are
printed in the test output. Examples are derandomised: ``make test`` runs the same cases every time."""

from __future__ import annotations

import string
import time
import warnings

import pytest
import yaml
from hypothesis import HealthCheck, given, settings, strategies as st

from dlio_core.config import ConfigError, ConfigWarning, RunConfig, load_config, parse_command_line
from dlio_core.config.keys import ALIASES, canonical_keys

pytestmark = pytest.mark.filterwarnings("ignore::dlio_core.config.ConfigWarning")

BOUND_S = 2.0  # per case: the largest legal document loads in milliseconds
MAX_MESSAGE = 4096  # characters of one error message (a hostile input is quoted, never expanded)
EXAMPLES = 250
KEYS = sorted(canonical_keys()) + sorted(ALIASES)
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.function_scoped_fixture])

words = st.text(alphabet=string.ascii_letters + string.digits + "_-./:~$%{}[]*&!|>'\" \t#,\\", max_size=24)
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(allow_nan=True, allow_infinity=True),
    words, st.sampled_from(["../../etc", "s3://b/p", "http://k:pw@h", "1e12", "-1", "0", "yes", "off", "", "~",
                            "native", "pytorch", "custom", "synthetic", "npz", "hdf5", "seed", "random"]),
)
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                        st.dictionaries(words, inner, max_size=4)), max_leaves=12)
key_names = st.one_of(st.sampled_from(KEYS), words)
DEFAULTS = dict(RunConfig().items())  # every key with a value of its own type, to mutate
plausible = st.sampled_from(sorted(DEFAULTS)).flatmap(lambda k: st.tuples(st.just(k), st.one_of(
    st.just(DEFAULTS[k]), st.integers(0, 64), st.booleans(), scalars)))
pairs_strategy = st.lists(st.one_of(plausible, plausible, st.tuples(key_names, values)), max_size=8)


def _tree(pairs: list[tuple[str, object]]) -> dict:
    """Dotted keys -> a nested mapping, as a workload file spells them (a clash keeps the scalar)."""
    root: dict = {}
    for dotted, value in pairs:
        node = root
        *parents, leaf = dotted.split(".") if dotted else [""]
        for part in parents:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                break
            node = child
        else:
            node[leaf] = value
    return root


# Hand-written hostile fragments mixed into generated text.
HOSTILE = [
    "a: &a [*a]\n", "x: &x\n  y: *x\n", "l0: &l0 [1,1,1,1,1,1,1,1,1]\nl1: &l1 [*l0,*l0,*l0,*l0,*l0,*l0,*l0,*l0,*l0]\n"
    "l2: &l2 [*l1,*l1,*l1,*l1,*l1,*l1,*l1,*l1,*l1]\nl3: &l3 [*l2,*l2,*l2,*l2,*l2,*l2,*l2,*l2,*l2]\n"
    "l4: &l4 [*l3,*l3,*l3,*l3,*l3,*l3,*l3,*l3,*l3]\nl5: &l5 [*l4,*l4,*l4,*l4,*l4,*l4,*l4,*l4,*l4]\n"
    "model: {name: [*l5,*l5,*l5,*l5,*l5,*l5,*l5,*l5,*l5]}\n",
    "[" * 200 + "]" * 200 + "\n", "!!python/object/apply:os.system ['true']\n", "dataset: {a: 1, a: 2}\n",
    "\t- tab\n", "key: 'unterminated\n", "--- \n--- \n", "%YAML 9.9\n---\na: 1\n", "\x00\x01\x02\n", "",
    "# only a comment\n", "{a: &a [1,1,1,1,1,1,1,1], b: &b [*a,*a,*a,*a,*a,*a,*a,*a], c: &c [*b,*b,*b,*b,*b,*b,*b,*b], "
    "d: &d [*c,*c,*c,*c,*c,*c,*c,*c], e: &e [*d,*d,*d,*d,*d,*d,*d,*d], f: [*e,*e,*e,*e,*e,*e,*e,*e]}\n", "reader:\n  batch_size: 4\n  batch_size: 8\n", "workload:\n  workload: {}\n",
]


class Tally:
    def __init__(self) -> None:
        self.accepted = self.refused = 0
        self.slowest_s = 0.0

    def run(self, fn) -> None:
        t0 = time.perf_counter()
        try:
            fn()
            self.accepted += 1
        except ConfigError as e:
            text = str(e)
            # The CLI prints it as one line (whitespace folded); its size is bounded whatever the input.
            assert " ".join(text.split()) and len(text) < MAX_MESSAGE and "Traceback" not in text, text[:500]
            self.refused += 1
        elapsed = time.perf_counter() - t0
        self.slowest_s = max(self.slowest_s, elapsed)
        assert elapsed < BOUND_S, f"one case took {elapsed:.2f} s"

    def report(self, capsys, what: str) -> None:
        with capsys.disabled():
            print(f"\nconfig fuzzing: {self.accepted + self.refused} {what}: {self.accepted} accepted, "
                  f"{self.refused} refused with a ConfigError, none escaped; slowest {self.slowest_s * 1e3:.0f} ms")
        assert self.accepted + self.refused >= EXAMPLES * 0.9


def test_fuzzed_yaml_workload_files(tmp_path, capsys):
    tally = Tally()
    path = tmp_path / "fuzz.yaml"

    @FUZZ
    @given(pairs=pairs_strategy, hostile=st.sampled_from(["", *HOSTILE]),
           mode=st.sampled_from(["tree", "text", "both"]))
    def case(pairs, hostile, mode):
        text = "" if mode == "text" else yaml.safe_dump(_tree(pairs), allow_unicode=True)
        if mode != "tree":
            text = hostile + text if mode == "text" else text + hostile
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
        tally.run(lambda: load_config(str(path)))

    case()
    tally.report(capsys, "YAML workload files")


def test_fuzzed_overrides(capsys):
    tally = Tally()
    prefixes = st.sampled_from(["++workload.", "+workload.", "workload.", "", "++", "~", "hydra.", "++hydra."])
    raw_values = st.one_of(words, values.map(lambda v: yaml.safe_dump(v, default_flow_style=True).strip()),
                           st.sampled_from(HOSTILE).map(lambda h: h.replace("\n", " ")))

    def flow(v: object) -> str:
        return yaml.safe_dump(v, default_flow_style=True).strip().removesuffix("...").strip()

    well_formed = plausible.map(lambda kv: f"++workload.{kv[0]}={flow(kv[1])}")
    garbled = st.tuples(prefixes, key_names, st.sampled_from(["=", "", "=="]), raw_values).map("".join)

    @FUZZ
    @given(overrides=st.lists(st.one_of(well_formed, well_formed, garbled), max_size=6))
    def case(overrides):
        tally.run(lambda: load_config("default", overrides))

    case()
    tally.report(capsys, "override lists")


def test_fuzzed_command_lines(capsys):
    tally = Tally()
    flags = st.sampled_from(["--config-dir", "--config-path", "-cd", "--config-name", "--frobnicate", "workload=",
                             "workload=default", "default", "=5", "--config-dir=", "x.yaml"])

    @FUZZ
    @given(argv=st.lists(st.one_of(flags, words, st.tuples(st.sampled_from(KEYS), words).map("=".join)), max_size=6))
    def case(argv):
        tally.run(lambda: parse_command_line(argv))

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConfigWarning)
        case()
    tally.report(capsys, "command lines")
