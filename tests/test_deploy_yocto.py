"""yocto/meta-cost-agent: the Yocto layer, checked as far as possible without bitbake.

- oelint-adv, with the layer's .oelint.cfg, finds nothing in the layer, for every release
  the layer declares itself compatible with (skipped only when oelint-adv is not installed);
- cost-agent_<version>.bb has pyproject.toml's version and license (the md5 of LICENSE);
- it runs on python3-gmqtt, python3-msgspec and the python3 packages of the standard
  library modules agent/ imports, nothing more, and states gmqtt's tested range;
- its PACKAGECONFIG flags are pyproject.toml's extras, each adding the python3-<dist> of that
  extra's requirements; none pulls a package without a recipe by default;
- it installs the units and the config where the Buildroot package does, with the same
  modes, from files in the tree; `make yocto-tarball` packs them under cost-agent-<version>/;
- python3-msgspec_<version>.bb has msgspec's pin and the sdist sha256 of Buildroot's .hash.

The bitbake parse itself needs poky and meta-openembedded: see docs/deployment.md.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tomllib
from importlib.util import find_spec
from pathlib import Path

import pytest

from tests.test_deploy_buildroot import (
    PACKAGES,
    agent_imports,
    hash_entries,
    mk_vars,
    pinned_versions,
)

ROOT = Path(__file__).resolve().parent.parent
LAYER = ROOT / "yocto" / "meta-cost-agent"
OELINT_CONFIG = LAYER / ".oelint.cfg"
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]

# Standard library modules outside python3-core, by the oe-core python3 package holding them
# (meta/recipes-devtools/python/python3/python3-manifest.json, scarthgap to walnascar).
PYTHON3_PACKAGES_FOR_MODULE: dict[str, tuple[str, ...]] = {
    "asyncio": ("python3-asyncio",),
    "concurrent": ("python3-asyncio",),
    "datetime": ("python3-datetime",),
    "decimal": ("python3-numbers",),
    "fractions": ("python3-numbers",),
    "fcntl": ("python3-fcntl",),
    "hashlib": ("python3-crypt",),
    "html": ("python3-html",),
    "http": ("python3-netclient",),
    "urllib": ("python3-netclient",),  # urllib.parse is in core, urllib.request is not
    "uuid": ("python3-netclient",),
    # importlib (and csv) is core, but importlib.metadata (plugin output types) imports email
    "importlib": ("python3-email",),
    "json": ("python3-json",),
    "logging": ("python3-logging",),
    "queue": ("python3-threading",),
    "random": ("python3-math",),
    "socket": ("python3-io",),
    "ssl": ("python3-io",),
    "tempfile": ("python3-io",),
    "termios": ("python3-io",),
    "string": ("python3-stringold",),
    "tomllib": ("python3-tomllib",),
}
# ... and those in python3-core (or built into the interpreter). A module in neither set fails
# the test below until someone looks it up in the manifest.
PYTHON3_CORE_MODULES = {
    "__future__", "argparse", "atexit", "collections", "contextlib", "errno", "functools", "gc",
    "itertools", "os", "pathlib", "re", "shutil", "signal", "stat", "subprocess", "sys",
    "textwrap", "types",
    "threading", "time", "typing", "unicodedata",
}
# Runtime packages that no recipe of this layer provides, and where they come from.
ELSEWHERE = {
    "python3-gmqtt": "meta-python",
    "python3-gpiod": "meta-python",
    "python3-h11": "meta-python",
    "python3-uvloop": None,  # no recipe in meta-python (scarthgap to master)
}
# The Buildroot package's installs that the layer leaves out, and why.
NOT_IN_YOCTO = {
    "/etc/init.d/S95cost-agent": "the layer supports systemd images only",
}
# oe-core's path variables, as they expand with DISTRO_FEATURES usrmerge (which oe-core's systemd
# requires from scarthgap on), the layout Buildroot uses.
OE_PATHS = {
    "${sysconfdir}": "/etc",
    "${systemd_system_unitdir}": "/usr/lib/systemd/system",
    "${bindir}": "/usr/bin",
}


# ----------------------------------------------------------------- parsing


def recipe_vars(path: Path) -> dict[str, str]:
    """The assignments of a recipe or conf file: `VAR[flag] op "value"`, continuation lines
    joined, `+=` appended, whitespace collapsed. Enough for these flat recipes."""
    text = path.read_text(encoding="utf-8")
    text = re.sub(r"\\\n", " ", text)
    out: dict[str, str] = {}
    for line in text.splitlines():
        m = re.match(r'^(?:export\s+)?([A-Za-z0-9_:${}\-]+(?:\[[^\]]+\])?)\s*(\?\?=|\?=|:=|\+=|=)'
                     r'\s*"(.*)"\s*$', line)
        if not m:
            continue
        name, op, value = m.groups()
        value = " ".join(value.split())
        if op == "+=" and name in out:
            out[name] = f"{out[name]} {value}".strip()
        elif op in ("?=", "??=") and name in out:
            continue
        else:
            out[name] = value
    return out


def function_body(path: Path, name: str) -> str:
    m = re.search(rf"^{re.escape(name)}\s*\(\)\s*\{{\n(.*?)^\}}", path.read_text(encoding="utf-8"),
                  re.M | re.S)
    assert m, f"{path.name}: no {name}()"
    return m.group(1)


def only_recipe(pattern: str) -> Path:
    found = sorted(LAYER.glob(pattern))
    assert len(found) == 1, f"{pattern}: {[p.name for p in found]}"
    return found[0]


def recipe_version(path: Path) -> str:
    return path.stem.rpartition("_")[2]


def requirement_name(req: str) -> str:
    return re.split(r"[<>=!~;\[ ]", req, maxsplit=1)[0].strip().lower()


def extras() -> dict[str, list[str]]:
    """pyproject.toml's extras an integrator installs (dev and host are this repository's)."""
    optional: dict[str, list[str]] = PROJECT["optional-dependencies"]
    return {name: reqs for name, reqs in optional.items() if name not in ("dev", "host")}


def packageconfig(recipe: dict[str, str]) -> dict[str, list[str]]:
    """PACKAGECONFIG[flag] -> its four fields (enable, disable, DEPENDS, RDEPENDS)."""
    out: dict[str, list[str]] = {}
    for name, value in recipe.items():
        m = re.fullmatch(r"PACKAGECONFIG\[(.+)\]", name)
        if m:
            fields = value.split(",")
            out[m.group(1)] = fields + [""] * (4 - len(fields))
    return out


def layer_recipes() -> set[str]:
    return {p.stem.rpartition("_")[0] for p in LAYER.glob("recipes-*/*/*.bb")}


COST_AGENT = only_recipe("recipes-cost-agent/cost-agent/cost-agent_*.bb")
MSGSPEC = only_recipe("recipes-devtools/python/python3-msgspec_*.bb")


# ------------------------------------------------------------ oelint-adv


def layer_files() -> list[str]:
    files = [p for p in LAYER.rglob("*")
             if p.suffix in (".bb", ".bbappend", ".bbclass") or p.name == "layer.conf"]
    return sorted(str(p.relative_to(ROOT)) for p in files)


def compatible_releases() -> list[str]:
    conf = recipe_vars(LAYER / "conf" / "layer.conf")
    return conf["LAYERSERIES_COMPAT_cost-agent-layer"].split()


def oelint(release: str, files: list[str], cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    if find_spec("oelint_adv") is None:
        pytest.skip("oelint-adv is not installed (`make setup` installs it: the host extra)")
    env = {**os.environ, "OELINT_CONFIG": str(OELINT_CONFIG)}
    env.pop("OELINT_SKIP_CONFIG", None)
    return subprocess.run(
        [sys.executable, "-m", "oelint_adv", "--release", release, "--jobs", "1", *files],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.parametrize("release", compatible_releases())
def test_oelint_adv_finds_nothing(release: str) -> None:
    files = layer_files()
    assert any(f.endswith("layer.conf") for f in files)
    assert sum(f.endswith(".bb") for f in files) >= 2
    result = oelint(release, files)
    assert result.returncode == 0 and not result.stdout.strip() and not result.stderr.strip(), (
        result.stdout + result.stderr)


def test_oelint_adv_would_say_so(tmp_path: Path) -> None:
    """The run above can fail: the same config finds a fault put into a copy of a recipe."""
    copy = tmp_path / COST_AGENT.name
    copy.write_text(COST_AGENT.read_text(encoding="utf-8").replace(
        'SECTION = "console/utils"', 'SECTION = "console/utils" ', 1), encoding="utf-8")
    result = oelint("scarthgap", [str(copy)], cwd=tmp_path)
    assert result.returncode != 0
    assert "oelint.spaces.lineend" in result.stdout + result.stderr


def test_oelint_suppressions_have_reasons() -> None:
    lines = OELINT_CONFIG.read_text(encoding="utf-8").splitlines()
    for i, line in enumerate(lines):
        if re.fullmatch(r"\s+oelint\.\S+", line):
            assert lines[i - 1].strip().startswith("#"), f"no reason above {line.strip()}"


# ------------------------------------------------------------------ layer


def test_layer_conf() -> None:
    conf = recipe_vars(LAYER / "conf" / "layer.conf")
    assert "cost-agent-layer" in conf["BBFILE_COLLECTIONS"].split()
    assert "scarthgap" in compatible_releases()  # the LTS
    depends = conf["LAYERDEPENDS_cost-agent-layer"].split()
    assert {"core", "openembedded-layer", "meta-python"} <= set(depends)


# ------------------------------------------------------------- cost-agent


def test_cost_agent_version_and_license() -> None:
    assert recipe_version(COST_AGENT) == PROJECT["version"]
    recipe = recipe_vars(COST_AGENT)
    assert recipe["LICENSE"] == PROJECT["license"]["text"]
    m = re.fullmatch(r"file://(\S+);md5=([0-9a-f]{32})", recipe["LIC_FILES_CHKSUM"])
    assert m, recipe["LIC_FILES_CHKSUM"]
    assert hashlib.md5((ROOT / m.group(1)).read_bytes()).hexdigest() == m.group(2)


def test_cost_agent_source_is_the_tarball_of_make_yocto_tarball() -> None:
    recipe = recipe_vars(COST_AGENT)
    assert recipe["SRC_URI"] == "file://cost-agent-${PV}.tar.gz"
    assert "S" not in recipe  # the default, ${WORKDIR}/${BP}: the tarball's top directory
    # without the tarball the recipe is skipped, saying how to make it (a missing file:// would
    # fail the parse of every recipe); externalsrc needs none
    anon = function_body(COST_AGENT, "python")
    assert 'd.getVar("EXTERNALSRC")' in anon
    assert "SkipRecipe" in anon and "make yocto-tarball" in anon
    assert re.search(r"^yocto-tarball:", (ROOT / "Makefile").read_text(encoding="utf-8"), re.M)
    ignored = (ROOT / ".gitignore").read_text(encoding="utf-8").splitlines()
    files = COST_AGENT.parent / "files"
    assert f"/{files.relative_to(ROOT)}/" in ignored


def test_cost_agent_inherits() -> None:
    inherits = " ".join(re.findall(r"^inherit (.*)$", COST_AGENT.read_text(encoding="utf-8"),
                                   re.M)).split()
    for cls in ("python_setuptools_build_meta", "systemd", "useradd"):
        assert cls in inherits
    build = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["build-system"]
    assert build["build-backend"] == "setuptools.build_meta"


def test_cost_agent_runtime_dependencies() -> None:
    imported = agent_imports()
    stdlib = imported & set(sys.stdlib_module_names)
    unknown = stdlib - set(PYTHON3_PACKAGES_FOR_MODULE) - PYTHON3_CORE_MODULES
    assert not unknown, f"look these up in python3-manifest.json: {sorted(unknown)}"
    expected = {"python3-core"}
    for mod in stdlib & set(PYTHON3_PACKAGES_FOR_MODULE):
        expected.update(PYTHON3_PACKAGES_FOR_MODULE[mod])
    required = {requirement_name(r) for r in PROJECT["dependencies"]}
    assert required == {"gmqtt", "msgspec"}
    expected.update(f"python3-{dist}" for dist in required)
    rdepends = recipe_vars(COST_AGENT)["RDEPENDS:${PN}"].split()
    assert len(rdepends) == len(set(rdepends))
    assert set(rdepends) == expected
    # third-party imports: the required ones and those of the extras, nothing else
    optional = {requirement_name(r) for reqs in extras().values() for r in reqs}
    assert imported - set(sys.stdlib_module_names) - {"agent"} <= required | optional


def test_cost_agent_states_the_gmqtt_range() -> None:
    (gmqtt,) = [r for r in PROJECT["dependencies"] if requirement_name(r) == "gmqtt"]
    m = re.fullmatch(r"gmqtt>=(\S+),<=(\S+)", gmqtt)
    assert m, f"gmqtt is not a closed range: {gmqtt}"
    low, high = m.groups()
    assert f"tested with {low} to {high}" in COST_AGENT.read_text(encoding="utf-8")


def test_packageconfig_flags_are_the_extras() -> None:
    recipe = recipe_vars(COST_AGENT)
    flags = packageconfig(recipe)
    assert set(flags) == set(extras()) == {"fast", "gpio", "qr", "web"}
    for extra, reqs in extras().items():
        enable, disable, depends, rdepends = flags[extra]
        assert (enable, disable, depends) == ("", "", ""), extra
        assert sorted(rdepends.split()) == sorted(f"python3-{requirement_name(r)}"
                                                  for r in reqs), extra


def test_runtime_packages_have_a_recipe() -> None:
    recipe = recipe_vars(COST_AGENT)
    flags = packageconfig(recipe)
    third_party = {p for p in recipe["RDEPENDS:${PN}"].split()
                   if p.removeprefix("python3-") in {requirement_name(r)
                                                     for r in PROJECT["dependencies"]}}
    for fields in flags.values():
        third_party.update(fields[3].split())
    for pkg in sorted(third_party):
        assert pkg in layer_recipes() or pkg in ELSEWHERE, f"{pkg}: no recipe here or known"
    # an image with the default PACKAGECONFIG builds without a recipe from elsewhere
    for flag in recipe["PACKAGECONFIG"].split():
        for pkg in flags[flag][3].split():
            assert ELSEWHERE.get(pkg, "this layer") is not None, f"{flag} needs {pkg}: no recipe"


def test_segno_recipe_meets_the_extras() -> None:
    segno = only_recipe("recipes-devtools/python/python3-segno_*.bb")
    version = tuple(int(x) for x in recipe_version(segno).split("."))
    for reqs in extras().values():
        for req in reqs:
            m = re.fullmatch(r"segno>=([\d.]+)", req)
            if m:
                assert version >= tuple(int(x) for x in m.group(1).split("."))


def recipe_installs() -> dict[str, tuple[str, str]]:
    """Target path -> (mode, source path in the tree) of the recipe's do_install:append."""
    body = function_body(COST_AGENT, "do_install:append")
    out: dict[str, tuple[str, str]] = {}
    for mode, src, target in re.findall(r"install -m (\d+) \$\{S\}/(\S+) \$\{D\}(\S+)", body):
        dst = target
        for var, path in OE_PATHS.items():
            dst = dst.replace(var, path)
        assert "$" not in dst, f"unknown path variable in {target}"
        out[dst] = (mode, src)
    return out


def buildroot_installs() -> dict[str, tuple[str, str]]:
    mk = (PACKAGES / "cost-agent" / "cost-agent.mk").read_text(encoding="utf-8")
    installs = re.findall(r"\$\(INSTALL\) -D -m (\d+) \$\(@D\)/(\S+) \\\n\s+\$\(TARGET_DIR\)(\S+)",
                          mk)
    return {dst: (mode, src) for mode, src, dst in installs}


def test_installs_what_buildroot_installs() -> None:
    ours = recipe_installs()
    theirs = {dst: v for dst, v in buildroot_installs().items() if dst not in NOT_IN_YOCTO}
    assert "/usr/lib/systemd/system/cost-agent.service" in theirs
    assert "/etc/cost-agent/config.toml" in theirs
    assert ours == theirs
    for _mode, src in ours.values():
        assert (ROOT / src).is_file(), src
    # the unit starts what setuptools installs, with the config installed here
    unit = (ROOT / "systemd" / "cost-agent.service").read_text(encoding="utf-8")
    assert "ExecStart=/usr/bin/cost-agent run --config /etc/cost-agent/config.toml" in unit
    assert PROJECT["scripts"]["cost-agent"] == "agent.cli:main"


def test_systemd_service_and_files() -> None:
    recipe = recipe_vars(COST_AGENT)
    assert recipe["SYSTEMD_SERVICE:${PN}"] == "cost-agent.service"
    # the template is not enabled, but packaged
    assert "${systemd_system_unitdir}/cost-agent@.service" in recipe["FILES:${PN}"].split()
    assert recipe["CONFFILES:${PN}"] == "${sysconfdir}/cost-agent/config.toml"


def test_system_user_like_buildroot() -> None:
    mk = (PACKAGES / "cost-agent" / "cost-agent.mk").read_text(encoding="utf-8")
    m = re.search(r"define COST_AGENT_USERS\n\t(\S+) -1 (\S+) -1 \* - - (\S+) ", mk)
    assert m, "no COST_AGENT_USERS line in the .mk"
    user, group, groups = m.groups()
    recipe = recipe_vars(COST_AGENT)
    assert recipe["USERADD_PACKAGES"] == "${PN}"
    param = recipe["USERADD_PARAM:${PN}"].split()
    assert param[-1] == user == group
    assert "--system" in param and "--user-group" in param
    assert param[param.index("--groups") + 1] == groups


def test_make_yocto_tarball(tmp_path: Path) -> None:
    """The tarball holds, under cost-agent-<version>/, every file the recipe reads."""
    if shutil.which("git") is None or shutil.which("make") is None or not (ROOT / ".git").exists():
        pytest.skip("needs git, make and a git checkout")
    result = subprocess.run(["make", "--no-print-directory", "yocto-tarball",
                             f"YOCTO_FILES={tmp_path}"],
                            cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    top = f"cost-agent-{PROJECT['version']}"
    with tarfile.open(tmp_path / f"{top}.tar.gz") as tar:
        names = set(tar.getnames())
    needed = {"pyproject.toml", "LICENSE", *(src for _mode, src in recipe_installs().values())}
    needed.update(p.relative_to(ROOT).as_posix() for p in (ROOT / "agent").glob("*.py"))
    assert {f"{top}/{n}" for n in needed} <= names
    assert all(n == top or n.startswith(f"{top}/") for n in names)


# ------------------------------------------------------------ python3-msgspec


def test_msgspec_recipe_is_the_pin_with_buildroots_hash() -> None:
    version = recipe_version(MSGSPEC)
    assert version == pinned_versions()["msgspec"]
    hashes = hash_entries(PACKAGES / "python-msgspec" / "python-msgspec.hash")
    recipe = recipe_vars(MSGSPEC)
    assert recipe["SRC_URI[sha256sum]"] == hashes[("sha256", f"msgspec-{version}.tar.gz")]
    assert mk_vars(PACKAGES / "python-msgspec" / "python-msgspec.mk")[
        "PYTHON_MSGSPEC_VERSION"] == version
    inherits = re.findall(r"^inherit (.*)$", MSGSPEC.read_text(encoding="utf-8"), re.M)
    assert inherits == ["pypi python_setuptools_build_meta"]
    assert "python3-setuptools-scm-native" in recipe["DEPENDS"].split()
    for uri in recipe["SRC_URI"].split():
        name = uri.removeprefix("file://")
        assert (MSGSPEC.parent / "python3-msgspec" / name).is_file(), name
