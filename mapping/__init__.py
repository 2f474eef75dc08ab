"""The unified sales-project schema and the pure mappers from each tool's raw records into it."""
