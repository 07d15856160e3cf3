SUMMARY = "QR Code and Micro QR Code encoder"
DESCRIPTION = "segno is a pure-Python QR code encoder without dependencies; \
               cost-agent draws its receipt QR codes with it (the qr and web \
               extras). meta-python of these releases has no segno."
HOMEPAGE = "https://github.com/heuer/segno"
BUGTRACKER = "https://github.com/heuer/segno/issues"
SECTION = "devel/python"
LICENSE = "BSD-3-Clause"
LIC_FILES_CHKSUM = "file://LICENSE;md5=5d59d1644383230a2e3a4dd6bdd05676"

SRC_URI[sha256sum] = "e60933afc4b52137d323a4434c8340e0ce1e58cec71439e46680d4db188f11b3"

CVE_PRODUCT = "segno"

inherit pypi python_flit_core

# What `import segno` loads: its writers use zlib/gzip, base64, xml.sax.saxutils.
RDEPENDS:${PN} += "\
    python3-compression \
    python3-core \
    python3-io \
    python3-netclient \
    python3-xml \
"

BBCLASSEXTEND = "native nativesdk"
