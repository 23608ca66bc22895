"""Where the next cameras should go (issue 17; MVS-3, MVS-4, R7): the city's incidents,
its cameras' fields of view and its candidate sites in, hot spots and a proposal of k new
sites out. Reads incident places, never video (docs/design/placement.md)."""
