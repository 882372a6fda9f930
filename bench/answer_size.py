"""Answer size: the bytes of POST /v1/evaluations for typical profiles, default view against the full one.

A clinician's answer travels to EHRs, phones and logs; issue 11 sets the default view of a typical profile at
no more than 12 KB (the full view inlines every detail, evidence note and citation, as the service answered
before the layered texts). The requests go through the real Flask app and its JSON encoder in process (size
does not depend on the server); the ratio default / full is printed beside the sizes.
"""

from __future__ import annotations

import tempfile
from typing import Any

from service import create_app
from service.config import ROOT

TARGET_BYTES = 12 * 1024
RULESET = "androgenetic-alopecia"
NO_FACTS: dict[str, Any] = {"conditions": [], "medications": [], "preferences": []}
MAN = {
    "sex": "male",
    "age": 34,
    "diagnosis": "androgenetic_alopecia",
    "pattern": "norwood-III",
    "prior_finasteride": "not_tried",
    "transplant_history": "none",
    **NO_FACTS,
}
PROFILES: dict[str, dict[str, Any]] = {
    "man after finasteride failure": {**MAN, "prior_finasteride": "non_responder"},
    "man with heart failure": {**MAN, "conditions": ["heart_failure"]},
    "woman on contraception": {
        **MAN,
        "sex": "female",
        "age": 31,
        "pattern": "ludwig-I",
        "pregnant": False,
        "breastfeeding": False,
        "trying_to_conceive": False,
        "childbearing_potential": True,
        "reliable_contraception": True,
    },
}


def run() -> dict[str, dict[str, int]]:
    with tempfile.TemporaryDirectory() as instance:
        app = create_app({"RULESETS_DIR": str(ROOT / "rulesets"), "INSTANCE_PATH": instance})
        client = app.test_client()
        sizes: dict[str, dict[str, int]] = {}
        for name, profile in PROFILES.items():
            row = {}
            for view in ("default", "full"):
                response = client.post("/v1/evaluations", json={"ruleset": RULESET, "profile": profile, "view": view})
                if response.status_code != 200:
                    raise RuntimeError(
                        f"{name} ({view}): HTTP {response.status_code}: {response.get_data(as_text=True)}"
                    )
                row[view] = len(response.get_data())
            sizes[name] = row
    print(f"{'profile':32} {'default':>10} {'full':>10} {'default/full':>13}  target: default <= {TARGET_BYTES} B")
    for name, row in sizes.items():
        verdict = "ok" if row["default"] <= TARGET_BYTES else "MISSED"
        ratio = row["default"] / row["full"]
        print(f"{name:32} {row['default']:>10} {row['full']:>10} {ratio:>13.2f}  {verdict}")
    return sizes
