"""The console scripts: `ob`, `ob-chat`, `ob-admin`, `ob-serve` and `ob-tuner` (each parses, calls a
service or starts an adapter, prints)."""
