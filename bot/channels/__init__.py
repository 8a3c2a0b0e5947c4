"""Messaging channels that `rasa run` mounts through credentials.yml."""
