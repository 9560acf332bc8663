"""Dependencies: compatible ranges in pyproject.toml, the exact tested set in constraints.txt."""

import tomllib
from importlib.metadata import version
from pathlib import Path

from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]


def _requirements() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = [r for group in project["optional-dependencies"].values() for r in group]
    return [Requirement(r) for r in project["dependencies"] + extras]


def _constraints() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, pinned = line.partition("==")
            pins[name.strip().lower().replace("_", "-")] = pinned.strip()
    return pins


def test_pyproject_declares_ranges_that_a_cuda_torch_build_satisfies():
    for req in _requirements():
        assert not any(s.operator == "==" for s in req.specifier), f"{req} is an exact pin"
    torch = next(r for r in _requirements() if r.name == "torch")
    assert torch.specifier.contains(Version("2.13.0+cu128"), prereleases=False)


def test_constraints_pin_every_dependency_to_a_version_its_range_allows_and_we_run():
    pins = _constraints()
    for req in _requirements():
        name = req.name.lower()
        assert name in pins, f"{name} is not pinned in constraints.txt"
        assert req.specifier.contains(pins[name]), f"{name}=={pins[name]} is outside {req}"
        installed = Version(version(name))
        assert Version(pins[name]) == Version(installed.base_version if name == "torch"
                                              else str(installed)), name
