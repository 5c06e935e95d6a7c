"""Layer 4, the chat turn: memory policy, the langchain agent run, the models and the tools."""
