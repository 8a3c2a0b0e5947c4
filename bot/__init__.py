"""The clinic assistant's own package: knowledge base, profile, safety, storage, channels."""
