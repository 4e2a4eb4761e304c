"""The model-upgrade gate: may the candidate replace the baseline? PASS, REGRESSED or INCONCLUSIVE.

One module per job: `baseline` (the other side of the comparison and the pairing by case id),
`decide` (the pure decision, `gate.json`'s model and its terminal lines), `ppi` (the
prediction-powered change, reported beside the decision), `run` (loading the baseline when the
session starts and running the gate when it ends) and `exit_status` (the session's exit status
with a gate). An analysis: it reads records from the run store and the review desk, and the
case pipeline never imports it (`jobs.PairwiseBaseline` is all the pipeline sees of a baseline).
"""
