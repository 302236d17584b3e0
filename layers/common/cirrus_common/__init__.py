"""Code shared by ApiFunction, ModelFunction and the authorizer (the CommonLayer).

Nothing here imports torch or transformers: the layer must stay light enough for the API
function's cold start.
"""
