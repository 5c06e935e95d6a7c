"""Event targets: what acts on the events the tools publish, one module per target.

Each target is fed by its own SQS queue (a rule on the bus -> the queue -> the target's Lambda, with
partial batch failures) and, after `maxReceiveCount` failed receives, its dead-letter queue
(`openbrain.targets.dlq` lists and redrives it). Nothing here imports langchain: a target Lambda ships and loads
only the ORM, boto3 and the standard library. See docs/targets.md.
"""
