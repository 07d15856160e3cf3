include $(sort $(wildcard $(BR2_EXTERNAL_COST_AGENT_PATH)/package/*/*.mk))
