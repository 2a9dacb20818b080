"""The LLM layer: an OpenAI-compatible client with a disk cache, the embedded local server,
and the LLM-written training data (synthetic examples, explanations).

Import from the submodules (`fsre_cli.llm.client`, `.server`, `.synth`): this package
imports nothing heavy itself so that `fsre --help` stays fast.
"""
