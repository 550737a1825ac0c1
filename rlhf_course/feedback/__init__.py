"""Human feedback: what a ranking is (`rankings`), where rankings are kept safely (`preference_store`), the
notebook widget that collects them (`widgets`), simulated annotators (`annotators`) and a whole class
ranking together (`classroom`)."""
