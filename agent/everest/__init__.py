"""EVerest's APIs as the agent receives them: message schemas and one decoder per topic.

Nothing here knows about displays, the clock, MQTT or configuration.
"""
