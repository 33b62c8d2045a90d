"""Load profiles: the stack service the Locust profile drives (its protocol and its process)."""
