"""forest_mlops.synthetic: seeded, schema-valid, learnable, and marked as synthetic."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from forest_mlops import schema, synthetic
from forest_mlops.dataset import is_synthetic, load_dataset, synthetic_metadata


@pytest.fixture(scope="module")
def rows() -> list[list[str]]:
    return synthetic.generate_rows(20_000, seed=11)


def test_rows_follow_the_schema(rows: list[list[str]]) -> None:
    assert len(rows) == 20_000
    for row in rows:
        schema.parse_record(row)
    assert {r[10] for r in rows} == set(schema.WILDERNESS_AREAS)
    assert len({r[11] for r in rows}) > 30


def test_same_seed_same_rows_other_seed_other_rows() -> None:
    assert synthetic.generate_rows(500, seed=1) == synthetic.generate_rows(500, seed=1)
    assert synthetic.generate_rows(500, seed=1) != synthetic.generate_rows(500, seed=2)
    assert synthetic.generate_rows(0, seed=1) == []
    with pytest.raises(ValueError, match="n_rows must be >= 0"):
        synthetic.generate_rows(-1, seed=1)


def test_class_balance_is_close_to_the_real_data(rows: list[list[str]]) -> None:
    counts = Counter(int(r[12]) for r in rows)
    shares = [counts[c] / len(rows) for c in schema.COVER_TYPES]
    assert np.allclose(shares, synthetic.CLASS_SHARES, atol=0.01)
    assert counts.most_common(2)[0][0] == 1 and counts.most_common(2)[1][0] == 0


def test_the_class_is_learnable_from_the_features(rows: list[list[str]]) -> None:
    from sklearn.tree import DecisionTreeClassifier

    records = [schema.parse_record(r) for r in rows]
    area = {name: i for i, name in enumerate(schema.WILDERNESS_AREAS)}
    soil = {name: i for i, name in enumerate(schema.SOIL_TYPES)}
    x = np.array([[*r[:10], area[r[10]], soil[r[11]]] for r in records], dtype=float)
    y = np.array([r[12] for r in records])
    # One single-threaded tree: quick, and enough to show the structure is there.
    model = DecisionTreeClassifier(max_depth=12, min_samples_leaf=5, random_state=0)
    model.fit(x[:15_000], y[:15_000])
    accuracy = model.score(x[15_000:], y[15_000:])
    majority = max(synthetic.CLASS_SHARES)
    assert accuracy > majority + 0.25, accuracy  # far better than always guessing class 1
    assert accuracy < 0.99  # and not trivially separable: the classes overlap


def test_elevation_orders_the_classes_as_in_the_real_data(rows: list[list[str]]) -> None:
    by_class: dict[int, list[int]] = {}
    for r in rows:
        by_class.setdefault(int(r[12]), []).append(int(r[0]))
    means = {c: np.mean(v) for c, v in by_class.items()}
    assert means[6] > means[0] > means[1] > means[4] > means[2] > means[3]


def test_write_csv_marks_the_file_and_loads(tmp_path: Path) -> None:
    path = synthetic.write_csv(tmp_path / "rows.csv.gz", n_rows=300, seed=9)
    assert path.read_bytes()[:2] == b"\x1f\x8b"
    dataset = load_dataset(path)
    assert dataset.synthetic and is_synthetic(path)
    assert [r for r in dataset.iter_rows()] == synthetic.generate_rows(300, seed=9)
    marker = synthetic_metadata(path)
    assert marker is not None
    assert (marker["synthetic"], marker["seed"], marker["rows"]) == (True, 9, 300)
    again = synthetic.write_csv(tmp_path / "again.csv.gz", n_rows=300, seed=9)
    assert again.read_bytes() == path.read_bytes()
    plain = synthetic.write_csv(tmp_path / "rows.csv", n_rows=10, seed=9)
    assert plain.read_text().splitlines()[0] == ",".join(schema.COLUMNS)
    assert json.loads((tmp_path / "rows.csv.synthetic.json").read_text())["rows"] == 10
