"""Building the langchain agent for a turn: model specs, the offline model, the agent itself."""
