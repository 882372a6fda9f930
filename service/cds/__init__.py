"""CDS Hooks 2.0.1: how EHRs call the rules service.

The package knows CDS Hooks and FHIR; it knows nothing of Flask except in `setup.py`, which wires the
pieces into an app. The blueprint in service/http/cds_hooks.py only translates HTTP to these modules:

- `auth`      JWT verification of every call (trusted issuers, JWKS cache, replay cache)
- `store`     the one shared table this channel owns (seen JWT ids, so replays fail across processes)
- `mapping`   the declarative FHIR mapping file that sits next to a ruleset, loaded strictly
- `prefetch`  prefetch data per key, with the FHIR-server fallback (`fhirclient`)
- `requests`  validation of the hook request and feedback bodies
- `services`  the discovery document, derived from the active rulesets and their mappings
- `cards`     cards built from a (partial) decision
- `outcome`   OperationOutcome bodies for every error except authentication failures
"""
