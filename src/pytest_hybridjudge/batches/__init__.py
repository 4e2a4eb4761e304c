"""Provider batch APIs (`--judge-batch`): OpenAI Batch and Anthropic Message Batches.

transport.py   the one interface a provider's batch API is driven through, and its types
openai.py      OpenAI's /v1/files + /v1/batches behind that interface
anthropic.py   Anthropic's /v1/messages/batches behind that interface
broker.py      gathers the calls of a wave into batches, polls, hands each result back
attempts.py    what a result means for its call: its answer, another attempt, or its error
retrying.py    the batch API's own transient failures asked again, a create never twice
ledger.py      the write-ahead record of every batch in the run folder; what a rerun collects
"""
