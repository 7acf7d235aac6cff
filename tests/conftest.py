import os

# Nothing in the test session may reach a model hub.
os.environ["HF_HUB_OFFLINE"] = "1"
