"""cost-agent: shows EVerest session cost and tariff data on a charger's display."""

__version__ = "0.1.0"
