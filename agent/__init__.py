"""The agent: the LangGraph state machine of the bi-level search, its typed state and chain-rule
messages, the engines that play critic and reward engineer (offline and LLM), the run log, and
the command line (run, resume, chat, trace, demo, bench). Imports tools/ and sim/."""
