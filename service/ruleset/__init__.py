"""The ruleset language: model, strict loading with precise errors, profile validation."""

from .errors import Problem, RulesetError
from .loader import load_file, load_text, ruleset_files
from .model import Ruleset
from .profile import ProfileCheck, validate_profile

__all__ = [
    "Problem",
    "ProfileCheck",
    "Ruleset",
    "RulesetError",
    "load_file",
    "load_text",
    "ruleset_files",
    "validate_profile",
]
