"""Event target handlers (EventBridge -> SQS -> Lambda), one folder per target."""
