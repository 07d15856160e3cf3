"""The pure station model: display state machine, routing of sessions to EVSEs, live cost,
rendering and the view, money and text. No I/O, no asyncio, no configuration loading."""
