"""The HTTPS chat API: a Powertools REST resolver whose `handler` Lambda (and `ob-serve`) runs."""
