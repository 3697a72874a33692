"""Clinical rules: value ranges, implications and ICD-10-CM sex- and age-specific codes.

One :class:`Rule` object serves both sides of the library: generators use it to keep invalid
rows out of a sample, and the ``rule_violations`` metric counts the rows that break it.

>>> from healthsynth.knowledge import Predicate, Rule, RuleSet
>>> rule = Rule(
...     name="range:age",
...     when=(),
...     then=Predicate("age", minimum=0, maximum=120),
... )
>>> rule.description
'age in [0, 120] (always)'
"""

from healthsynth.knowledge._codes import PACKAGED_CODE_MAPS, CodeEntry, CodeMap, load_code_map
from healthsynth.knowledge._equal import EqualWhen, EqualWhenSet, learn_equal_when
from healthsynth.knowledge._icd10cm import CODE_GROUPS, CodeGroup, group_prefixes, icd10cm_rules
from healthsynth.knowledge._orders import ColumnOrder, OrderSet, learn_orders, resolve_orders
from healthsynth.knowledge._rules import (
    RULES_VERSION,
    Predicate,
    Rule,
    RuleSet,
    normalize_code,
)
from healthsynth.knowledge._sums import Relation, RelationSet, learn_relations
from healthsynth.knowledge._together import (
    MissingTogether,
    MissingWhen,
    MissingWhenSet,
    learn_missing_together,
    learn_missing_when,
)
from healthsynth.knowledge._yaml import load_rules, rules_from_yaml_data

__all__ = [
    "CODE_GROUPS",
    "PACKAGED_CODE_MAPS",
    "RULES_VERSION",
    "CodeEntry",
    "CodeGroup",
    "CodeMap",
    "EqualWhen",
    "EqualWhenSet",
    "MissingTogether",
    "MissingWhen",
    "MissingWhenSet",
    "ColumnOrder",
    "OrderSet",
    "Predicate",
    "Relation",
    "RelationSet",
    "Rule",
    "RuleSet",
    "group_prefixes",
    "icd10cm_rules",
    "learn_equal_when",
    "learn_missing_together",
    "learn_missing_when",
    "learn_orders",
    "resolve_orders",
    "learn_relations",
    "load_code_map",
    "load_rules",
    "normalize_code",
    "rules_from_yaml_data",
]
