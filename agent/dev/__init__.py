"""Development tools: private broker, EVerest simulator, demo, pty display stand-in.

Nothing in the runtime imports this package; it ships for `cost-agent simulate|demo` only.
"""
