"""buildroot/: the BR2_EXTERNAL tree, checked as far as possible without Buildroot.

- every package has Config.in, <pkg>.mk and <pkg>.hash, and the top Config.in
  sources it;
- the .mk versions are the versions pyproject.toml pins (for a tested range, its newest);
- the .hash sums match the sdists `pip download --no-binary :all: --no-deps`
  fetches and the license files in them (skipped offline, saying why);
- cost-agent selects the python3 modules and packages the agent imports;
- with BUILDROOT=/path/to/buildroot set, utils/check-package --br2-external
  runs on every file of the tree.
"""

from __future__ import annotations

import ast
import hashlib
import os
import re
import subprocess
import sys
import tarfile
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BR = ROOT / "buildroot"
PACKAGES = BR / "package"
PYPI_PACKAGES = {"python-gmqtt": "gmqtt", "python-msgspec": "msgspec"}

# stdlib modules that Buildroot's python3 only builds with an option
PYTHON3_OPTION_FOR_MODULE = {
    "decimal": "BR2_PACKAGE_PYTHON3_DECIMAL",
    "ssl": "BR2_PACKAGE_PYTHON3_SSL",
    "unicodedata": "BR2_PACKAGE_PYTHON3_UNICODEDATA",
    "sqlite3": "BR2_PACKAGE_PYTHON3_SQLITE",
    "zlib": "BR2_PACKAGE_PYTHON3_ZLIB",
    "gzip": "BR2_PACKAGE_PYTHON3_ZLIB",
    "bz2": "BR2_PACKAGE_PYTHON3_BZIP2",
    "lzma": "BR2_PACKAGE_PYTHON3_XZ",
    "curses": "BR2_PACKAGE_PYTHON3_CURSES",
    "readline": "BR2_PACKAGE_PYTHON3_READLINE",
    "xml": "BR2_PACKAGE_PYTHON3_PYEXPAT",
    "pyexpat": "BR2_PACKAGE_PYTHON3_PYEXPAT",
    "dbm": "BR2_PACKAGE_PYTHON3_BERKELEYDB",
}
# third-party imports -> the Buildroot option that provides them
PACKAGE_OPTION_FOR_MODULE = {
    "gmqtt": "BR2_PACKAGE_PYTHON_GMQTT",
    "msgspec": "BR2_PACKAGE_PYTHON_MSGSPEC",
    "uvloop": "BR2_PACKAGE_PYTHON_UVLOOP",
    "gpiod": "BR2_PACKAGE_PYTHON_GPIOD",
    "segno": "BR2_PACKAGE_PYTHON_SEGNO",
    "h11": "BR2_PACKAGE_PYTHON_H11",
}


def mk_vars(path: Path) -> dict[str, str]:
    """Plain `NAME = value` assignments of a .mk file (first one wins)."""
    out: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        m = re.match(r"^([A-Z0-9_]+)\s*[+:]?=\s*(.*)$", line)
        if m:
            out.setdefault(m.group(1), m.group(2).strip())
    return out


def hash_entries(path: Path) -> dict[tuple[str, str], str]:
    """(algo, file) -> digest from a Buildroot .hash file."""
    out: dict[tuple[str, str], str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        algo, digest, name = line.split()
        out[(algo, name)] = digest
    return out


def pinned_versions() -> dict[str, str]:
    """Each dependency's version as Buildroot ships it: the pin, or a tested range's newest."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    pins: dict[str, str] = {}
    for dep in project["dependencies"]:
        name, sep, version = dep.partition("==")
        if not sep:  # `>=oldest,<=newest`: both ends tested, nothing open-ended
            name, sep, bounds = dep.partition(">=")
            _, upper, version = bounds.partition(",<=")
            assert sep and upper, f"dependency {dep!r} is neither pinned nor a closed range"
        pins[name.strip().lower()] = version.strip()
    return pins


def package_dirs() -> list[Path]:
    return sorted(p for p in PACKAGES.iterdir() if p.is_dir())


def variable_prefix(pkg: str) -> str:
    return pkg.upper().replace("-", "_")


# ------------------------------------------------------------- tree layout


def test_external_tree_files() -> None:
    desc = (BR / "external.desc").read_text(encoding="utf-8")
    assert re.search(r"^name: COST_AGENT$", desc, re.M)
    assert re.search(r"^desc: \S", desc, re.M)
    mk = (BR / "external.mk").read_text(encoding="utf-8")
    assert "$(BR2_EXTERNAL_COST_AGENT_PATH)/package/*/*.mk" in mk


@pytest.mark.parametrize("pkg", [p.name for p in package_dirs()])
def test_every_package_has_its_files(pkg: str) -> None:
    d = PACKAGES / pkg
    for name in ("Config.in", f"{pkg}.mk", f"{pkg}.hash"):
        assert (d / name).is_file(), f"{pkg}/{name} missing"
    top = (BR / "Config.in").read_text(encoding="utf-8")
    assert f'source "$BR2_EXTERNAL_COST_AGENT_PATH/package/{pkg}/Config.in"' in top
    config = (d / "Config.in").read_text(encoding="utf-8")
    assert re.search(rf"^config BR2_PACKAGE_{variable_prefix(pkg)}$", config, re.M)
    mk = (d / f"{pkg}.mk").read_text(encoding="utf-8")
    assert mk.rstrip().endswith("$(eval $(python-package))")
    assert f"{variable_prefix(pkg)}_VERSION" in mk


def test_all_expected_packages_exist() -> None:
    assert {p.name for p in package_dirs()} == {"cost-agent", *PYPI_PACKAGES}


# ---------------------------------------------------------- versions, hashes


@pytest.mark.parametrize(("pkg", "dist"), sorted(PYPI_PACKAGES.items()))
def test_mk_versions_match_pyproject_pins(pkg: str, dist: str) -> None:
    v = mk_vars(PACKAGES / pkg / f"{pkg}.mk")
    prefix = variable_prefix(pkg)
    assert v[f"{prefix}_VERSION"] == pinned_versions()[dist]
    assert v[f"{prefix}_SOURCE"] == f"{dist}-$({prefix}_VERSION).tar.gz"
    assert v[f"{prefix}_SITE"].startswith("https://files.pythonhosted.org/packages/")
    assert v[f"{prefix}_SETUP_TYPE"] == "setuptools"
    # every license file has a locally computed hash
    hashes = hash_entries(PACKAGES / pkg / f"{pkg}.hash")
    for lic in v[f"{prefix}_LICENSE_FILES"].split():
        assert ("sha256", lic) in hashes


def test_cost_agent_version_matches_project() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    v = mk_vars(PACKAGES / "cost-agent" / "cost-agent.mk")
    assert v["COST_AGENT_VERSION"] == project["version"]
    assert v["COST_AGENT_SETUP_TYPE"] == "setuptools"


@pytest.fixture(scope="module")
def sdists(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The pinned sdists, fetched the way the issue says; skip when offline."""
    if os.environ.get("COST_AGENT_EXPECT_QEMU_USER") == "1":
        # Files and their hashes are the same on every architecture; pip under qemu-user takes
        # about 3 minutes of CI to say what the native suite of the same run already said.
        pytest.skip("architecture-independent: checked by the native suite")
    dest = tmp_path_factory.mktemp("sdists")
    pins = pinned_versions()
    specs = [f"{dist}=={pins[dist]}" for dist in PYPI_PACKAGES.values()]
    try:
        result = subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-binary", ":all:", "--no-deps",
             "--disable-pip-version-check", "-d", str(dest), *specs],
            capture_output=True, text=True, timeout=300, check=False)
    except subprocess.TimeoutExpired:
        pytest.skip("pip download timed out: PyPI unreachable?")
    if result.returncode != 0:
        tail = (result.stderr.strip().splitlines() or ["no output"])[-1]
        pytest.skip(f"pip download failed (offline or PyPI unreachable): {tail}")
    return {dist: dest / f"{dist}-{pins[dist]}.tar.gz" for dist in PYPI_PACKAGES.values()}


@pytest.mark.parametrize(("pkg", "dist"), sorted(PYPI_PACKAGES.items()))
def test_hashes_match_the_sdists(pkg: str, dist: str, sdists: dict[str, Path]) -> None:
    sdist = sdists[dist]
    assert sdist.is_file(), f"pip did not save {sdist.name}"
    data = sdist.read_bytes()
    hashes = hash_entries(PACKAGES / pkg / f"{pkg}.hash")
    assert hashes[("sha256", sdist.name)] == hashlib.sha256(data).hexdigest()
    if ("md5", sdist.name) in hashes:
        assert hashes[("md5", sdist.name)] == hashlib.md5(data).hexdigest()
    prefix = variable_prefix(pkg)
    v = mk_vars(PACKAGES / pkg / f"{pkg}.mk")
    top = sdist.name.removesuffix(".tar.gz")
    with tarfile.open(sdist) as tar:
        for lic in v[f"{prefix}_LICENSE_FILES"].split():
            member = tar.extractfile(f"{top}/{lic}")
            assert member is not None
            assert hashes[("sha256", lic)] == hashlib.sha256(member.read()).hexdigest(), lic
        # SETUP_TYPE = setuptools: the sdist builds with setuptools
        names = tar.getnames()
        if f"{top}/pyproject.toml" in names:
            pyproject = tar.extractfile(f"{top}/pyproject.toml")
            assert pyproject is not None
            build = tomllib.loads(pyproject.read().decode())["build-system"]
            assert build["build-backend"] == "setuptools.build_meta"
            if any(r.startswith("setuptools-scm") or r.startswith("setuptools_scm")
                   for r in build["requires"]):
                assert "host-python-setuptools-scm" in v.get(f"{prefix}_DEPENDENCIES", "")
        else:
            assert f"{top}/setup.py" in names


# ------------------------------------------------------ cost-agent package


def _runtime_nodes(tree: ast.AST) -> list[ast.AST]:
    """Every node except those under `if TYPE_CHECKING:` (never imported at run time)."""
    out: list[ast.AST] = []
    todo = [tree]
    while todo:
        node = todo.pop()
        out.append(node)
        if isinstance(node, ast.If) and ast.unparse(node.test) in ("TYPE_CHECKING",
                                                                   "typing.TYPE_CHECKING"):
            todo.extend(node.orelse)
            continue
        todo.extend(ast.iter_child_nodes(node))
    return out


def agent_imports() -> set[str]:
    """Top-level modules the agent package imports at run time (absolute imports only)."""
    mods: set[str] = set()
    for path in (ROOT / "agent").rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in _runtime_nodes(tree):
            if isinstance(node, ast.Import):
                mods.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                mods.add(node.module.split(".")[0])
    return mods


def cost_agent_config() -> str:
    return (PACKAGES / "cost-agent" / "Config.in").read_text(encoding="utf-8")


def test_cost_agent_selects_the_python3_modules_it_imports() -> None:
    config = cost_agent_config()
    imported = agent_imports() & set(PYTHON3_OPTION_FOR_MODULE)
    needed = {PYTHON3_OPTION_FOR_MODULE[m] for m in imported}
    assert "BR2_PACKAGE_PYTHON3_DECIMAL" in needed  # the agent computes money in Decimal
    for option in sorted(needed):
        assert re.search(rf"^\tselect {option}\b", config, re.M), f"{option} not selected"


def test_cost_agent_selects_its_third_party_packages() -> None:
    config = cost_agent_config()
    imported = agent_imports()
    known = set(PACKAGE_OPTION_FOR_MODULE) | set(sys.stdlib_module_names) | {"agent"}
    unknown = imported - known
    assert not unknown, f"imports without a Buildroot package here: {sorted(unknown)}"
    for mod in sorted(imported & set(PACKAGE_OPTION_FOR_MODULE)):
        option = PACKAGE_OPTION_FOR_MODULE[mod]
        assert re.search(rf"^\tselect {option}\b", config, re.M), f"{option} ({mod}) not selected"
    # required ones unconditionally, optional ones behind their own option
    for option in ("BR2_PACKAGE_PYTHON_GMQTT", "BR2_PACKAGE_PYTHON_MSGSPEC"):
        block = config.split("config BR2_PACKAGE_COST_AGENT\n", 1)[1].split("\n\n", 1)[0]
        assert f"select {option}" in block


def test_cost_agent_installs_files_that_exist() -> None:
    mk = (PACKAGES / "cost-agent" / "cost-agent.mk").read_text(encoding="utf-8")
    assert "define COST_AGENT_INSTALL_INIT_SYSTEMD" in mk
    assert "define COST_AGENT_INSTALL_INIT_SYSV" in mk
    installs = re.findall(r"\$\(INSTALL\) -D -m (\d+) \$\(@D\)/(\S+) \\\n\s+\$\(TARGET_DIR\)(\S+)",
                          mk)
    targets = {dst: (mode, src) for mode, src, dst in installs}
    assert targets["/usr/lib/systemd/system/cost-agent.service"] == (
        "0644", "systemd/cost-agent.service")
    assert targets["/usr/lib/systemd/system/cost-agent@.service"] == (
        "0644", "systemd/cost-agent@.service")
    assert targets["/etc/init.d/S95cost-agent"] == ("0755", "systemd/S95cost-agent")
    assert targets["/etc/cost-agent/config.toml"] == ("0644", "etc/cost-agent.toml")
    for _mode, src in targets.values():
        if src == "etc/cost-agent.toml" and not (ROOT / src).exists():
            continue  # checked below, once the example config exists
        assert (ROOT / src).is_file(), src


def test_config_example_exists_for_the_package() -> None:
    example = ROOT / "etc" / "cost-agent.toml"
    if not example.exists():
        pytest.skip("etc/cost-agent.toml not written yet: the package installs it")
    tomllib.loads(example.read_text(encoding="utf-8"))


def test_local_source_is_the_project_tree() -> None:
    mk = (PACKAGES / "cost-agent" / "cost-agent.mk").read_text(encoding="utf-8")
    assert re.search(r"^COST_AGENT_SITE_METHOD = local$", mk, re.M)
    m = re.search(r"^COST_AGENT_SITE = (\$\(BR2_EXTERNAL_COST_AGENT_PATH\)\S*)$", mk, re.M)
    assert m, "no local COST_AGENT_SITE in the BR2_EXTERNAL tree's parent"
    site = m.group(1).replace("$(BR2_EXTERNAL_COST_AGENT_PATH)", str(BR))
    assert (Path(site) / "pyproject.toml").resolve() == ROOT / "pyproject.toml"


def test_config_fragments_enable_the_agent() -> None:
    fragments = sorted((BR / "configs").glob("*.fragment"))
    assert fragments
    seen: set[str] = set()
    for path in fragments:
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.startswith("#") or not line.strip():
                continue
            assert re.fullmatch(r"BR2_[A-Z0-9_]+=(y|\".*\"|\d+)", line), f"{path.name}: {line}"
            seen.add(line)
    assert "BR2_PACKAGE_COST_AGENT=y" in seen
    assert "BR2_PACKAGE_PYTHON3=y" in seen
    assert "BR2_INIT_SYSTEMD=y" in seen
    assert "BR2_PACKAGE_LIBSECCOMP=y" in seen  # else systemd drops the syscall filter


# ----------------------------------------------------------- check-package


def test_buildroot_check_package() -> None:
    """Buildroot's own linter; needs a Buildroot checkout in $BUILDROOT (and a
    Python with flake8 and python-magic in $BUILDROOT_PYTHON, or this one)."""
    buildroot = os.environ.get("BUILDROOT", "")
    if not buildroot:
        pytest.skip("set BUILDROOT=/path/to/buildroot to run utils/check-package")
    tool = Path(buildroot) / "utils" / "check-package"
    if not tool.is_file():
        pytest.skip(f"{tool} not found")
    files = sorted(str(p) for p in BR.rglob("*") if p.is_file())
    # check-package imports flake8 and magic: a venv that has them may be named
    python = os.environ.get("BUILDROOT_PYTHON", sys.executable)
    result = subprocess.run([python, str(tool), "--br2-external", *files],
                            cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    if "No module named" in result.stderr:
        missing = result.stderr.strip().splitlines()[-1]
        pytest.skip(f"check-package needs flake8 and python-magic ({missing}); "
                    "point BUILDROOT_PYTHON at a Python that has them")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 warnings generated" in result.stderr + result.stdout
