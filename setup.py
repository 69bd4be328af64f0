"""Lepton Pipelines: the data and model-delivery plane, as a Dagster code location."""

from pathlib import Path

from setuptools import find_packages, setup

DAGSTER = "1.13.27"
DAGSTER_LIBS = "0.29.27"  # every dagster-* library is released in lockstep with dagster; pin both together

# The collector image installs only these (deployments/collector/Dockerfile); the code location needs them too.
COLLECTOR_REQUIRES = [
    line.strip()
    for line in (Path(__file__).parent / "deployments" / "collector" / "requirements.txt").read_text().splitlines()
    if line.strip() and not line.startswith("#")
]

SHIPPED_SOURCES = Path(__file__).parent / "lepton_pipelines" / "defs" / "sources"

setup(
    name="lepton_pipelines",
    version="0.1.0",
    description="Config-driven lakehouse, data governance, IoT collection and model delivery on Dagster.",
    # defs/sources/<name>/ hold only YAML (one SourceComponent each): listed as data-only packages so
    # setuptools does not warn that importable-looking folders are missing from `packages`.
    packages=[
        *find_packages(exclude=["lepton_pipelines_tests*", "bench*"]),
        "lepton_pipelines.defs.sources",
        *(
            f"lepton_pipelines.defs.sources.{p.name}"
            for p in sorted(SHIPPED_SOURCES.iterdir() if SHIPPED_SOURCES.is_dir() else ())  # absent: a deps-only build
            if p.is_dir() and p.name != "__pycache__"
        ),
    ],
    include_package_data=True,
    package_data={
        "lepton_pipelines": ["defs/sources/*/defs.yaml", "models/*.yaml", "governance/expectations_manifest.json"]
    },
    python_requires=">=3.11",
    install_requires=[
        # paho-mqtt, orjson (fast strict JSON), pandas, pyarrow, pydantic, s3fs, universal-pathlib, ...
        *COLLECTOR_REQUIRES,
        f"dagster=={DAGSTER}",
        f"dagster-webserver=={DAGSTER}",
        f"dagster-graphql=={DAGSTER}",
        f"dagster-pipes=={DAGSTER}",
        f"dagster-k8s=={DAGSTER_LIBS}",
        f"dagster-docker=={DAGSTER_LIBS}",
        f"dagster-postgres=={DAGSTER_LIBS}",
        f"dagster-aws=={DAGSTER_LIBS}",
        "great-expectations>=1.24,<2",
        "psycopg2-binary>=2.9",
        "scikit-learn>=1.5",
        "joblib>=1.4",
        "docker>=7.1",
        "kubernetes>=30",
        "kubernetes-validate>=1.30",
        "matplotlib>=3.8",
        # analytics marts, `lepton-lake sql` and the README's queries (SQL over Hive-partitioned Parquet)
        "duckdb>=1.1,<3",
        "plotly>=6,<8",  # the self-contained HTML dashboard (plotly.js is inlined)
        "psutil>=5.9",
        "packaging>=23",
        "tenacity>=8.2",  # the pulled connectors' retry policy (HTTP and SQL alike, the response body included)
    ],
    extras_require={
        "test": [
            # lint + format, enforced by lepton_pipelines_tests/test_style.py
            # (pinned: formatting changes between releases)
            "ruff==0.17.6",
            # `dg check defs` / `dg list defs` / `dg scaffold defs` (sources as Components)
            f"dagster-dg-cli=={DAGSTER}",
            "pytest>=8",
            "pytest-timeout>=2.3",
            "moto[server]>=5.0",
            "vega_datasets>=0.9",  # real public data sets (CSV files inside the wheel) for the governance tests
            "playwright>=1.45,<2",  # drives the system Chromium in the UI test (no browser download)
        ],
        "dev": [
            f"dagster-dg-cli=={DAGSTER}",
            "pytest>=8",
            "pytest-timeout>=2.3",
            "moto[server]>=5.0",
            "vega_datasets>=0.9",
            "playwright>=1.45,<2",
            "ruff==0.17.6",
        ],
    },
    entry_points={
        "console_scripts": [
            "lepton-demo=lepton_pipelines.demo:main",
            "lepton-samples=lepton_pipelines.samples.__main__:main",
            "lepton-collector=lepton_pipelines.iot.collector:main",
            "lepton-simulate=lepton_pipelines.iot.simulator:main",
            "lepton-lake=lepton_pipelines.analytics.sql_cli:main",
        ]
    },
)
