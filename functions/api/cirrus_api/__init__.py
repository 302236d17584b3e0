"""ApiFunction: the OpenAI-compatible HTTP API (FastAPI, wrapped by Mangum in Lambda).

Never imports torch or transformers, directly or through the layer: its cold start is the
API's cold start. tests/unit/test_lazy_imports.py holds the line.
"""
