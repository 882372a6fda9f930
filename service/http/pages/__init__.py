"""The clinician's pages: the form, the answer and the ruleset document."""
