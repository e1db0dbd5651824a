"""Tables and figures from cached ``metrics.json`` files."""
