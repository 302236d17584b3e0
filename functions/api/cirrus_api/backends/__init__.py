"""Model backends ApiFunction can call: ModelFunction (Lambda) and, later, SageMaker."""
