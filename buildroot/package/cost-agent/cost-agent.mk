################################################################################
#
# cost-agent
#
################################################################################

COST_AGENT_VERSION = 0.1.0
ifeq ($(BR2_PACKAGE_COST_AGENT_SOURCE_TARBALL),y)
COST_AGENT_TARBALL = $(call qstrip,$(BR2_PACKAGE_COST_AGENT_TARBALL_LOCATION))
COST_AGENT_SITE = $(patsubst %/,%,$(dir $(COST_AGENT_TARBALL)))
COST_AGENT_SOURCE = $(notdir $(COST_AGENT_TARBALL))
# A tarball of the integrator's choosing: its hash cannot be known here.
BR_NO_CHECK_HASH_FOR += $(COST_AGENT_SOURCE)
else
# The project tree around this BR2_EXTERNAL tree.
COST_AGENT_SITE = $(BR2_EXTERNAL_COST_AGENT_PATH)/..
COST_AGENT_SITE_METHOD = local
COST_AGENT_OVERRIDE_SRCDIR_RSYNC_EXCLUSIONS = \
	--exclude .venv --exclude .mypy_cache --exclude .pytest_cache \
	--exclude .ruff_cache --exclude __pycache__ --exclude output
endif
COST_AGENT_SETUP_TYPE = setuptools
COST_AGENT_LICENSE = Apache-2.0

define COST_AGENT_USERS
	cost-agent -1 cost-agent -1 * - - dialout cost-agent display agent
endef

define COST_AGENT_INSTALL_CONFIG
	$(INSTALL) -D -m 0644 $(@D)/etc/cost-agent.toml \
		$(TARGET_DIR)/etc/cost-agent/config.toml
endef
COST_AGENT_POST_INSTALL_TARGET_HOOKS += COST_AGENT_INSTALL_CONFIG

define COST_AGENT_INSTALL_INIT_SYSTEMD
	$(INSTALL) -D -m 0644 $(@D)/systemd/cost-agent.service \
		$(TARGET_DIR)/usr/lib/systemd/system/cost-agent.service
	$(INSTALL) -D -m 0644 $(@D)/systemd/cost-agent@.service \
		$(TARGET_DIR)/usr/lib/systemd/system/cost-agent@.service
endef

define COST_AGENT_INSTALL_INIT_SYSV
	$(INSTALL) -D -m 0755 $(@D)/systemd/S95cost-agent \
		$(TARGET_DIR)/etc/init.d/S95cost-agent
endef

# DevicePolicy=/DeviceAllow= of the unit need cgroup BPF; the other
# sandboxing options need what systemd already asks the kernel for.
ifeq ($(BR2_INIT_SYSTEMD),y)
define COST_AGENT_LINUX_CONFIG_FIXUPS
	$(call KCONFIG_ENABLE_OPT,CONFIG_BPF_SYSCALL)
	$(call KCONFIG_ENABLE_OPT,CONFIG_CGROUP_BPF)
endef
endif

$(eval $(python-package))
