"""ModelFunction: the container-image Lambda that serves generation and embeddings on CPU.

Importing this package (or cirrus_model.app) never imports torch or transformers; the modules
that need them import them inside functions, so a cold start pays for them only when a request
actually needs a model.
"""
