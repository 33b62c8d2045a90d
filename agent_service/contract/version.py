"""The version of the message contract shared with the Node team (the AsyncAPI document's
``info.version``). Bump it as contracts/CHANGELOG.md says: major for a breaking change, minor for
an addition, patch for documentation; ``harness contracts check`` holds every release to it."""

CONTRACT_VERSION = "1.2.0"
