"""AuthorizerFunction: the REST API's Lambda REQUEST authorizer (API keys in KeysTable)."""
