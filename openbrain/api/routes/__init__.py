"""One module per concept; each has a `router` the app includes."""
