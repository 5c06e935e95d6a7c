"""Lambda handler of scheduled messages: EventBridge Scheduler invokes it with a schedule's Input (see
`openbrain.targets.scheduled.handler` and openbrain/aws/scheduler.py). A `chatbot` message runs a chat turn, so
this function ships with the chat layer."""

from openbrain.targets.scheduled import handler

__all__ = ["handler"]
