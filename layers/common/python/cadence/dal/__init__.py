"""Data access: the only code that imports boto3. One module per table or service."""
