"""Adapter: ob-serve, the chat API and the event targets over local HTTP on this machine."""
