"""`type = "hd44780"`: character LCDs; the driver, its encoder, ROM tables, bus and devices."""
