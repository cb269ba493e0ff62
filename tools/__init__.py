"""What agents can do: fetch and trim videos, measure behaviour from pixels, compare clips, and
check, sandbox, test and edit reward programs; plus the LangChain tool wrappers over these.
Imports sim/ only."""
