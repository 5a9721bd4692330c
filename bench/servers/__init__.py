"""Servers the load benchmark starts: yardsticks (bare aiohttp, the Bolt floor) and fakes."""
