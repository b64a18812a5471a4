"""The answer generator: a causal LM (by default the packaged SmolLM2-135M-Instruct; any
Hugging Face id, folder or .gguf file) adapted with LoRA on retrieval-augmented examples,
and the batching worker that serves it. Nothing here loads a model or imports torch at
import time.
"""
