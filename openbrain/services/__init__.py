"""Layer 5, the use cases: profiles, sessions, the API's chat rules, clients and keys, config import/export,
authentication. Each takes the backend's stores (or the backend) as an argument."""
