"""Helpers the test folders share: fake servers, fixtures, clients. Imported as `support.<module>`."""
