"""Layer 2, the tables: the PynamoDB models (the ORM), their errors mapped to ours."""
