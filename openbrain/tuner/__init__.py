"""`ob-tuner`: a gradio workbench for a client's agent profiles (`pip install 'openbrain-agents[tuner]'`).

`workbench` holds what the buttons do (no gradio import: tested directly); `ui` is the page.
"""
