"""The running process: task group, inbox, panels, broker link, supervision, persistence,
status, output workers, logging and sd_notify."""
