"""Layer 3, the AWS runtime: the backend (embedded moto or real AWS), resources, the embedded store,
secrets, the event publisher."""
