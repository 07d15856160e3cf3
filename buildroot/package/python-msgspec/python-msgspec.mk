################################################################################
#
# python-msgspec
#
################################################################################

PYTHON_MSGSPEC_VERSION = 0.22.0
PYTHON_MSGSPEC_SOURCE = msgspec-$(PYTHON_MSGSPEC_VERSION).tar.gz
PYTHON_MSGSPEC_SITE = https://files.pythonhosted.org/packages/d0/e6/6dcf9306ff3c5e486578f3bf29ed11dfbdbbc2a8bf0caf7e07d392887fda
PYTHON_MSGSPEC_SETUP_TYPE = setuptools
PYTHON_MSGSPEC_LICENSE = BSD-3-Clause
PYTHON_MSGSPEC_LICENSE_FILES = LICENSE
PYTHON_MSGSPEC_DEPENDENCIES = host-python-setuptools-scm

$(eval $(python-package))
