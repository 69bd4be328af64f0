"""The lake store: layout contract, atomic publish, idempotent rewrites, on local disk and on S3."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time

import duckdb
import pandas as pd
import pytest

from lepton_pipelines.lake.quarantine import quarantine_frame, write_quarantine
from lepton_pipelines.lake.store import FILE_IDENTITY_ATTR, Lake, read_parquet_dir


def frame(n: int, offset: int = 0) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": range(offset, offset + n),
            "value": [float(i) * 1.5 for i in range(n)],
            "tag": ["a", "b"] * (n // 2) + ["a"] * (n % 2),
        }
    )


@pytest.mark.parametrize("lake_fixture", ["tmp_lake", "s3_lake"])
def test_write_then_read_round_trip_follows_the_layout_contract(lake_fixture, request):
    lake: Lake = request.getfixturevalue(lake_fixture)
    df = frame(1000)
    result = lake.write_table("clean", "transactions", "2026-11-25", df)

    assert result.path.endswith("/clean/transactions/date=2026-11-25/data.parquet")
    assert result.rows == 1000 and result.bytes > 0
    pd.testing.assert_frame_equal(lake.read_table("clean", "transactions", "2026-11-25"), df)
    assert lake.partitions("clean", "transactions") == ["2026-11-25"]
    # no temporary object is left visible next to the published file
    names = [p.name for p in lake.table_dir("clean", "transactions", "2026-11-25").iterdir()]
    assert names == ["data.parquet"]


def test_unpartitioned_tables_drop_the_date_level(tmp_lake):
    result = tmp_lake.write_table("governed", "customers", None, frame(3))
    assert result.path.endswith("/governed/customers/data.parquet")


def test_rewriting_a_partition_replaces_it(tmp_lake):
    tmp_lake.write_table("raw", "transactions", "2026-11-25", frame(10))
    tmp_lake.write_table("raw", "transactions", "2026-11-25", frame(4, offset=100))
    again = tmp_lake.read_table("raw", "transactions", "2026-11-25")
    assert again["id"].tolist() == [100, 101, 102, 103]


def test_duckdb_reads_the_lake_with_hive_partitioning(tmp_lake):
    tmp_lake.write_table("clean", "transactions", "2026-11-24", frame(5))
    tmp_lake.write_table("clean", "transactions", "2026-11-25", frame(7))
    rows = duckdb.sql(
        f"select date, count(*) from read_parquet('{tmp_lake.url}/clean/transactions/*/*.parquet', "
        "hive_partitioning=true) group by 1 order by 1"
    ).fetchall()
    assert [(str(d), n) for d, n in rows] == [("2026-11-24", 5), ("2026-11-25", 7)]


def test_a_write_killed_midway_leaves_the_previous_partition_intact(tmp_lake):
    """SIGKILL a writer while it streams a large table: readers still get the old, complete version."""
    tmp_lake.write_table("clean", "big", "2026-11-25", frame(10))
    script = textwrap.dedent(
        f"""
        import numpy as np, pandas as pd
        from lepton_pipelines.lake.store import Lake
        df = pd.DataFrame({{"id": np.arange(30_000_000), "value": np.random.default_rng(1).random(30_000_000)}})
        print("writing", flush=True)
        Lake({tmp_lake.url!r}).write_table("clean", "big", "2026-11-25", df)
        print("done", flush=True)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "writing"
    folder = tmp_lake.table_dir("clean", "big", "2026-11-25")
    deadline = time.time() + 60
    while time.time() < deadline and not any(p.name.endswith(".tmp") for p in folder.iterdir()):
        time.sleep(0.01)
    assert any(p.name.endswith(".tmp") for p in folder.iterdir()), "writer never started its temporary file"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)

    survivor = tmp_lake.read_table("clean", "big", "2026-11-25")
    pd.testing.assert_frame_equal(survivor, frame(10))
    glob = f"{tmp_lake.url}/clean/big/*/*.parquet"
    assert duckdb.sql(f"select count(*) from read_parquet('{glob}', hive_partitioning=true)").fetchall()[0][0] == 10


def test_quarantine_stage_files_coexist_and_an_empty_rerun_clears_its_own(tmp_lake):
    bad = quarantine_frame(
        "raw", pd.DataFrame({"_source_line": [3]}), ["id"], reason="wrong field count", rule="read", raw="x,y"
    )
    write_quarantine(tmp_lake, "transactions", "2026-11-25", "raw", bad)
    removed = quarantine_frame("clean", pd.DataFrame({"id": [1]}), ["id"], reason="amount is required", rule="required")
    write_quarantine(tmp_lake, "transactions", "2026-11-25", "clean", removed)
    folder = tmp_lake.table_dir("quarantine", "transactions", "2026-11-25")
    assert sorted(p.name for p in folder.iterdir()) == ["clean.parquet", "raw.parquet"]

    write_quarantine(tmp_lake, "transactions", "2026-11-25", "raw", pd.DataFrame())
    assert sorted(p.name for p in folder.iterdir()) == ["clean.parquet"]
    stored = read_parquet_dir(folder / "clean.parquet")
    assert (
        stored["_stage"].tolist() == ["clean"]
        and stored["id"].tolist() == ["1"]
        and stored["_rule"].tolist() == ["required"]
    )
    with pytest.raises(ValueError, match="lack _stage"):  # one schema: a frame that is not in it is refused
        write_quarantine(tmp_lake, "transactions", "2026-11-25", "clean", pd.DataFrame({"id": [1], "_reason": ["x"]}))


def test_categorical_columns_round_trip_dictionary_encoded(tmp_lake):
    """Lineage paths are stored dictionary-encoded and read back as the same categorical."""
    import pyarrow.parquet as pq

    paths = pd.Categorical(
        ["landing/b.csv", "landing/a.csv", "landing/b.csv"], categories=["landing/a.csv", "landing/b.csv"]
    )
    written = tmp_lake.write_table(
        "raw", "transactions", "2026-11-25", pd.DataFrame({"id": [1, 2, 3], "_source_file": paths})
    )
    assert str(pq.read_schema(written.path).field("_source_file").type).startswith("dictionary<values=string")
    back = tmp_lake.read_table("raw", "transactions", "2026-11-25")
    assert isinstance(back["_source_file"].dtype, pd.CategoricalDtype)
    assert back["_source_file"].tolist() == ["landing/b.csv", "landing/a.csv", "landing/b.csv"]
    assert list(back["_source_file"].cat.categories) == ["landing/a.csv", "landing/b.csv"]


def test_only_repeating_text_and_categoricals_are_dictionary_encoded(tmp_lake):
    """Ids skip Parquet's dictionary attempt; codes and categoricals keep it; every value reads back."""
    import pyarrow.parquet as pq

    n = 200
    df = pd.DataFrame(
        {
            "txn_id": pd.Series([f"T{i:06d}" for i in range(n)], dtype="str"),
            "currency": pd.Series(["USD", "EUR"] * (n // 2), dtype="str"),
            "_source_file": pd.Categorical(["a.csv"] * n),
            "amount": [float(i) for i in range(n)],
        }
    )
    written = tmp_lake.write_table("clean", "transactions", "2026-11-25", df)
    column_chunks = pq.ParquetFile(written.path).metadata.row_group(0)
    encodings = {
        column_chunks.column(i).path_in_schema: column_chunks.column(i).encodings
        for i in range(column_chunks.num_columns)
    }
    dictionary = {"RLE_DICTIONARY", "PLAIN_DICTIONARY"}
    assert dictionary & set(encodings["currency"]) and dictionary & set(encodings["_source_file"])
    assert not dictionary & set(encodings["txn_id"])
    pd.testing.assert_frame_equal(tmp_lake.read_table("clean", "transactions", "2026-11-25"), df)


def test_file_identity_ties_a_read_frame_to_the_published_file_version(tmp_path):
    lake = Lake(str(tmp_path / "lake"))
    first = lake.write_table("clean", "orders", "2026-03-01", frame(10))
    read = lake.read_table("clean", "orders", "2026-03-01")
    assert read.attrs[FILE_IDENTITY_ATTR] == first.identity and first.identity.startswith(first.path)
    second = lake.write_table("clean", "orders", "2026-03-01", frame(10, offset=1))  # same size, new version
    assert second.identity != first.identity
    assert lake.read_table("clean", "orders", "2026-03-01").attrs[FILE_IDENTITY_ATTR] == second.identity
    lake.write_table("clean", "orders", "2026-03-02", read)  # attrs of a read frame are not written along
    assert lake.read_table("clean", "orders", "2026-03-02").attrs[FILE_IDENTITY_ATTR] != first.identity


@pytest.mark.parametrize("codec", ["zstd", "snappy", "none"])
def test_tables_are_written_with_the_configured_codec(tmp_lake, monkeypatch, codec):
    import pyarrow.parquet as pq

    monkeypatch.setenv("LEPTON_PARQUET_COMPRESSION", codec)
    written = tmp_lake.write_table("clean", "s", "2026-01-01", pd.DataFrame({"x": range(100)}))
    column = pq.ParquetFile(written.path).metadata.row_group(0).column(0)
    assert column.compression == ("UNCOMPRESSED" if codec == "none" else codec.upper())
    assert tmp_lake.read_table("clean", "s", "2026-01-01")["x"].tolist() == list(range(100))


def test_an_unknown_codec_is_an_error_naming_the_variable(tmp_lake, monkeypatch):
    monkeypatch.setenv("LEPTON_PARQUET_COMPRESSION", "zip")
    with pytest.raises(
        ValueError, match="LEPTON_PARQUET_COMPRESSION='zip' is not a Parquet codec; allowed: snappy, zstd"
    ):
        tmp_lake.write_table("clean", "s", "2026-01-01", pd.DataFrame({"x": [1]}))
