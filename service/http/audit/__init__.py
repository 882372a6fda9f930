"""The auditors' side: the decision-log API, the decision pages and auditor sign-in."""
