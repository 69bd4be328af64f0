"""What `pip install .` ships (the user-code and collector images install the package this way):
every Python folder is a package and every YAML the code location reads is package data."""

from pathlib import Path

from setuptools import find_packages

ROOT = Path(__file__).resolve().parents[1]


def test_every_python_folder_is_an_installed_package():
    packages = set(find_packages(where=str(ROOT), exclude=["lepton_pipelines_tests*", "bench*"]))
    folders = {
        ".".join(p.relative_to(ROOT).parts)
        for p in (ROOT / "lepton_pipelines").rglob("*")
        if p.is_dir() and "__pycache__" not in p.parts and any(p.glob("*.py"))
    }
    assert folders - packages == set(), "folders without __init__.py are left out of the wheel"


def test_registry_and_model_yaml_are_package_data():
    import re

    setup_text = (ROOT / "setup.py").read_text()
    patterns = re.findall(r'"([^"]+\.yaml)"', setup_text)
    shipped = {p for pattern in patterns for p in (ROOT / "lepton_pipelines").glob(pattern)}
    needed = set((ROOT / "lepton_pipelines").rglob("*.yaml"))
    assert needed <= shipped, sorted(str(p) for p in needed - shipped)
