"""Built-in tools an AgentConfig selects by name (see `openbrain.conversation.tools.registry`)."""
