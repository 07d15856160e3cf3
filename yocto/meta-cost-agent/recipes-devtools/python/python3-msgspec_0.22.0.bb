SUMMARY = "Fast serialization and validation library for JSON, MessagePack, YAML and TOML"
DESCRIPTION = "msgspec decodes and validates JSON and MessagePack into typed \
               structs in one pass, in a C extension. cost-agent pins 0.22.0 \
               (pyproject.toml); meta-python of these releases has no msgspec."
HOMEPAGE = "https://msgspec.dev"
BUGTRACKER = "https://github.com/msgspec/msgspec/issues"
SECTION = "devel/python"
LICENSE = "BSD-3-Clause"
LIC_FILES_CHKSUM = "file://LICENSE;md5=c21402f8022478021f697044388b97c4"

DEPENDS += "python3-setuptools-scm-native"

# The PyPI sdist; its sha256 is the one in buildroot/package/python-msgspec/.
SRC_URI += "file://0001-pyproject.toml-build-with-setuptools-older-than-77.patch"
SRC_URI[sha256sum] = "0a13624a4969159fe35d8c2a3d377b2b61bbd8585e327440d5e52725affcce38"

CVE_PRODUCT = "msgspec"

inherit pypi python_setuptools_build_meta

# The version comes from setuptools-scm, which finds no git metadata in an sdist.
export SETUPTOOLS_SCM_PRETEND_VERSION = "${PV}"

# What the extension imports when it loads (datetime, decimal, uuid; the rest
# is in python3-core).
RDEPENDS:${PN} += "\
    python3-core \
    python3-datetime \
    python3-netclient \
    python3-numbers \
"

BBCLASSEXTEND = "native nativesdk"
