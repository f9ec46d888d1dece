"""Table 1's quartiles per group, and a results frame read in several chunks."""

from __future__ import annotations

import numpy as np
import polars as pl

from sarcokit.cohort.table1 import Group, table_one


def _frame(rows: int, seed: int) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    sarc_f = rng.choice([0, 0, 0, 0, 1, 1, 2, 3, 6, 9], rows).astype(float)
    return pl.DataFrame(
        {
            "age": rng.uniform(60, 90, rows).round(1),
            # Skewed (|skewness| > 1), with ties and missing values: shown as median [IQR].
            "sarc_f_total": pl.Series(np.where(rng.random(rows) < 0.1, np.nan, sarc_f)).fill_nan(
                None
            ),
            "sex": rng.choice(["female", "male"], rows),
            "low": rng.random(rows) < 0.3,
        }
    )


GROUPS = [
    Group("Overall", pl.lit(True)),
    Group("Low", pl.col("low")),
    Group("Not low", ~pl.col("low")),
]


def test_skewed_variable_quartiles_per_group_are_numpys_inverted_cdf() -> None:
    frame = _frame(1001, 3)
    table = table_one(frame, GROUPS, compare=(1, 2))
    line = table.filter(pl.col("variable").str.starts_with("SARC-F")).row(0, named=True)
    assert line["level"] == "median [IQR]"
    for group in GROUPS:
        values = frame.filter(group.rows)["sarc_f_total"].drop_nulls().to_numpy()
        # numpy's inverted_cdf: the smallest value whose cumulative share reaches q.
        low, mid, high = np.quantile(values, [0.25, 0.5, 0.75], method="inverted_cdf")
        assert line[group.heading] == f"{mid:.2f} [{low:.2f}, {high:.2f}]"


def test_a_frame_in_several_chunks_gives_the_same_table() -> None:
    parts = [_frame(400, seed) for seed in (1, 2, 3)]
    chunked = pl.concat(parts, rechunk=False)
    assert chunked.n_chunks() == 3
    one = table_one(chunked.rechunk(), GROUPS, compare=(1, 2))
    assert table_one(chunked, GROUPS, compare=(1, 2)).equals(one)
    assert one.row(0, named=True)["Overall"] == "1,200"
