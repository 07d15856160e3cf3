# nooelint: oelint.var.mandatoryvar.HOMEPAGE,oelint.var.suggestedvar.BUGTRACKER,oelint.var.bbclassextend
# (the project has no public home page or bug tracker yet; an application with
# a systemd unit and a system user, never built for the build host: no
# BBCLASSEXTEND)
SUMMARY = "EV charger display agent for EVerest's session cost consumer API"
DESCRIPTION = "Micro agent for the embedded board of an EV charger: it follows \
               EVerest's session cost messages over MQTT and drives the station \
               display (serial, HD44780 LCD, GPIO, file or exec outputs)."
SECTION = "console/utils"
CVE_PRODUCT = "cost-agent"
LICENSE = "Apache-2.0"
LIC_FILES_CHKSUM = "file://LICENSE;md5=3b83ef96387f14655fc854ddc3c6bd57"

# A `git archive` of the project tree, not the Python sdist: the sdist lacks
# systemd/ and etc/. From the project tree:
#     make yocto-tarball            # or: make yocto-tarball REV=v0.1.0
# writes files/cost-agent-${PV}.tar.gz next to this recipe, its top directory
# cost-agent-${PV}/ (= ${S}). Or build a checkout with externalsrc:
#     INHERIT += "externalsrc"
#     EXTERNALSRC:pn-cost-agent = "/path/to/cost-agent"
SRC_URI = "file://cost-agent-${PV}.tar.gz"

inherit python_setuptools_build_meta systemd useradd

# Without the tarball, skip the recipe (saying why) rather than fail the parse
# of every recipe; with externalsrc the tree is the source, no tarball needed.
# (oelint-adv discourages anonymous python: nothing declarative can test a file.)
# nooelint: oelint.task.noanonpython
python () {
    if d.getVar("EXTERNALSRC"):
        d.setVar("SRC_URI", "")
        return
    tarball = d.expand("cost-agent-${PV}.tar.gz")
    found, looked = bb.utils.which(d.getVar("FILESPATH"), tarball, history=True)
    # parse again once it is made (bitbake caches the skip), not only on edits
    for path in looked:
        bb.parse.mark_dependency(d, path)
    if not found:
        raise bb.parse.SkipRecipe("%s not found: run `make yocto-tarball` in the cost-agent tree" % tarball)
}

# The extras of pyproject.toml, by the same names; none by default
# (python3-uvloop has no recipe in meta-python).
PACKAGECONFIG ??= ""
PACKAGECONFIG[fast] = ",,,python3-uvloop"
PACKAGECONFIG[gpio] = ",,,python3-gpiod"
PACKAGECONFIG[qr] = ",,,python3-segno"
PACKAGECONFIG[web] = ",,,python3-h11 python3-segno"

# Where the Buildroot package puts them (buildroot/package/cost-agent/): the
# units in ${systemd_system_unitdir} (/usr/lib/systemd/system with usrmerge),
# the example config as /etc/cost-agent/config.toml.
do_install:append() {
    install -d ${D}${sysconfdir}/cost-agent
    install -m 0644 ${S}/etc/cost-agent.toml ${D}${sysconfdir}/cost-agent/config.toml
    install -d ${D}${systemd_system_unitdir}
    install -m 0644 ${S}/systemd/cost-agent.service ${D}${systemd_system_unitdir}/cost-agent.service
    install -m 0644 ${S}/systemd/cost-agent@.service ${D}${systemd_system_unitdir}/cost-agent@.service
}

# The unit runs with DynamicUser=yes and User=cost-agent: like the Buildroot
# package, create a static system user of that name (systemd then uses it), a
# member of dialout for the serial displays.
USERADD_PACKAGES = "${PN}"
USERADD_PARAM:${PN} = "--system --no-create-home --home-dir /nonexistent --shell /bin/false --user-group --groups dialout cost-agent"

SYSTEMD_SERVICE:${PN} = "cost-agent.service"
# Instances (cost-agent@NAME.service) are enabled by the integrator.
FILES:${PN} += "${systemd_system_unitdir}/cost-agent@.service"
CONFFILES:${PN} += "${sysconfdir}/cost-agent/config.toml"

# gmqtt: the agent is tested with 0.6.10 to 0.8.0 (pyproject.toml); meta-python
# has 0.6.14 (scarthgap), 0.6.16 (styhead), 0.7.0 (walnascar).
# msgspec: pinned 0.22.0, recipes-devtools/python/python3-msgspec_0.22.0.bb.
# The rest: the python3 packages of the standard library modules agent/ imports
# (tests/test_deploy_yocto.py checks the list against the source).
RDEPENDS:${PN} += "\
    python3-asyncio \
    python3-core \
    python3-crypt \
    python3-datetime \
    python3-email \
    python3-fcntl \
    python3-gmqtt \
    python3-html \
    python3-io \
    python3-json \
    python3-logging \
    python3-math \
    python3-msgspec \
    python3-netclient \
    python3-numbers \
    python3-stringold \
    python3-threading \
    python3-tomllib \
"
