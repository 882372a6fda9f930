"""What every HTML page shares, for the clinicians (http/pages) and the auditors (http/audit) alike.

- `common`      security headers, telling browsers from other clients, the HTML error page renderer
- `presenting`  the Jinja filters and view helpers that turn rulesets, profiles and decisions into words
"""
