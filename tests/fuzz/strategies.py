"""Shared Hypothesis settings and input generators for the fuzz tests.

Every fuzz test is bounded (``max_examples``), has no per-example deadline (shared CI machines are
noisy) and keeps no example database (nothing is written into the checkout).
"""

from __future__ import annotations

import json
from typing import Any

import yaml
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

FUZZ = settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
FEW = settings(FUZZ, max_examples=60)  # examples that each make HTTP requests


scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=False),
    st.text(max_size=40),
)
values: st.SearchStrategy[Any] = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)
YAML_ALPHABET = ":-[]{}#&*!|>'\"%@`,? \n\tabcvision0123456789."
yaml_noise = st.text(alphabet=YAML_ALPHABET, max_size=120)


def as_yaml(value: Any) -> str:
    return yaml.safe_dump(value, allow_unicode=True)


def as_json(value: Any) -> str:
    return json.dumps(value)


documents = st.one_of(values.map(as_yaml), values.map(as_json), yaml_noise)
