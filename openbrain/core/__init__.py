"""Layer 0, the basics every layer uses: errors, ids, the clock and the one settings object."""
