"""Lepton Pipelines: the data and model-delivery plane, as a Dagster code location."""
from setuptools import find_packages, setup

DAGSTER = "1.13.27"
DAGSTER_LIBS = "0.29.27"  # every dagster-* library is released in lockstep with dagster; pin both together

setup(
    name="lepton_pipelines",
    version="0.1.0",
    description="Config-driven lakehouse, data governance, IoT collection and model delivery on Dagster.",
    packages=find_packages(exclude=["lepton_pipelines_tests*", "bench*"]),
    include_package_data=True,
    package_data={"lepton_pipelines": ["sources/registry/*.yaml", "models/*.yaml"]},
    python_requires=">=3.11",
    install_requires=[
        f"dagster=={DAGSTER}",
        f"dagster-webserver=={DAGSTER}",
        f"dagster-graphql=={DAGSTER}",
        f"dagster-pipes=={DAGSTER}",
        f"dagster-k8s=={DAGSTER_LIBS}",
        f"dagster-docker=={DAGSTER_LIBS}",
        f"dagster-postgres=={DAGSTER_LIBS}",
        f"dagster-aws=={DAGSTER_LIBS}",
        "pandas>=2.2",
        "pyarrow>=17",
        "great-expectations>=1.24,<2",
        "s3fs>=2024.6",
        "universal-pathlib>=0.2.2",  # UPath: one path API for local and S3, what UPathIOManager builds on
        "paho-mqtt>=2.1,<3",
        "orjson>=3.10",  # strict, fast JSON validation of every MQTT payload; valid payloads land byte for byte
        "pydantic>=2.7,<3",
        "pyyaml>=6",
        "requests>=2.31",
        "sqlalchemy>=2.0",
        "psycopg2-binary>=2.9",
        "scikit-learn>=1.5",
        "joblib>=1.4",
        "docker>=7.1",
        "kubernetes>=30",
        "kubernetes-validate>=1.30",
        "matplotlib>=3.8",
        "psutil>=5.9",
        "packaging>=23",
    ],
    extras_require={
        "test": [
            "pytest>=8",
            "pytest-timeout>=2.3",
            "moto[server]>=5.0",
            "duckdb>=1.0",
        ],
        "dev": [
            "pytest>=8",
            "pytest-timeout>=2.3",
            "moto[server]>=5.0",
            "duckdb>=1.0",
            "ruff>=0.6",
        ],
    },
    entry_points={
        "console_scripts": [
            "lepton-demo=lepton_pipelines.demo:main",
            "lepton-samples=lepton_pipelines.samples.__main__:main",
            "lepton-collector=lepton_pipelines.iot.collector:main",
            "lepton-simulate=lepton_pipelines.iot.simulator:main",
            "lepton-lake=lepton_pipelines.lake.backup_cli:main",
        ]
    },
)
