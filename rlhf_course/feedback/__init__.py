"""Human feedback: what a ranking is and how far annotators agree (`rankings`), simulated annotators
(`annotators`), where rankings are kept safely (`preference_store`; a line of its files: `preference_records`;
reading them back: `preference_loading`; annotators' names: `annotator_names`; how files are opened: `safe_files`),
the notebook widget that collects them (`widgets`), and a whole class ranking together (`classroom`, with
`class_numbers`, `class_view` and `simulated_students`)."""
