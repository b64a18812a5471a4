"""The answer generator: a causal LM (any Hugging Face id, or one bootstrapped offline from
the logs) adapted with LoRA on retrieval-augmented examples, and the batching worker that
serves it. Nothing here loads a model or imports torch at import time.
"""
