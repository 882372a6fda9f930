"""The HL7 CDS Hooks 2.0.1 channel: discovery, service calls and feedback over HTTP."""
