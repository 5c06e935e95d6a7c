"""Layer 2, the tables: the stores (interfaces) and their DynamoDB implementation over the PynamoDB models
(the ORM, whose errors are mapped to ours), and the memory codec (a session's stored messages)."""
