"""CDS Hooks 2.0.1: how EHRs call the rules service.

The package knows CDS Hooks and FHIR; of Flask only `setup.py` (the channel's state for an app built from
its configuration) and `outcome.py` (OperationOutcome responses) know. The blueprint in
service/http/cds_hooks/ translates HTTP to these modules; extract.py turns FHIR into profile facts:

- `auth`      JWT verification of every call (trusted issuers, JWKS cache, replay cache)
- `store`     the one shared table this channel owns (seen JWT ids, so replays fail across processes)
- `mapping`   the declarative FHIR mapping file that sits next to a ruleset, loaded strictly
- `prefetch`  prefetch data per key, with the FHIR-server fallback (`fhirclient`)
- `setup`     the channel's configuration: trusted issuers, CORS origins, limits
- `hook_bodies` validation of the hook request and feedback bodies
- `urls`      which outbound URLs may receive a token (https, or http on loopback)
- `services`  the discovery document, derived from the active rulesets and their mappings
- `extract`   FHIR resources -> profile facts and selected orders, as the ruleset's mapping file says
- `cards`     cards built from a (partial) decision
- `outcome`   OperationOutcome bodies for every error except authentication failures
"""
