"""Message schemas (``schemas/*.yaml``) and the pure field validator.

Each message key has one YAML file (data, not code) that says what kind of
message it is, which field tags its text may carry and in what format,
which tags are required, its search options, its destination and hold rules,
the response an inquiry expects and sample messages. ``_tags.yaml`` is a
catalogue of the field tags of FIELDS.md that key files refer to, so that a
tag's format is written once. ``docs/schemas.md`` describes the format and the
ER rules below.

Validation (PROTOCOL part 2 and 4) checks, in this order, raising the first
:class:`~nlets_switch.errors.MessageError` found:

1. the field grammar (``TAG/value`` separated by periods): ``.22.``;
2. tags the key does not know: ``.22.`` naming them;
3. each value in field order: ``.05.`` for DOB, ``.10.`` for a year field
   (LIY, VYR), ``.16.`` for ATN, ``.22.`` naming the field otherwise;
4. required tags: ``.05.`` if DOB is missing, else ``.10.`` if a year field
   is, else ``.14.`` naming every missing tag;
5. search options: ``.22.`` with the key's field options;
6. the data-set rule (YQ): a data set the selector does not call for is
   ``.22.``; a missing tag of the one it calls for is treated as in 4.

Everything is compiled when the schemas load, because validation runs once
per message; after :func:`load_schemas` nothing does I/O, reads the clock or
logs. The code is in three modules, re-exported here as the one surface its
users import:

* :mod:`nlets_switch.wire.fields`: the field grammar and value formats;
* :mod:`nlets_switch.wire.keyschema`: :class:`KeySchema` and its rules;
* :mod:`nlets_switch.wire.schema_load`: reading the YAML files.
"""

from __future__ import annotations

from nlets_switch.wire.domain import is_no_record
from nlets_switch.wire.fields import FieldSpec, parse_fields
from nlets_switch.wire.keyschema import (
    ADDRESS_KINDS,
    KINDS,
    DataSet,
    DataSetRule,
    DestinationRule,
    HoldRule,
    KeySchema,
    SchemaSet,
)
from nlets_switch.wire.schema_load import load_schemas

__all__ = [
    "ADDRESS_KINDS",
    "KINDS",
    "DataSet",
    "DataSetRule",
    "DestinationRule",
    "FieldSpec",
    "HoldRule",
    "KeySchema",
    "SchemaSet",
    "is_no_record",
    "load_schemas",
    "parse_fields",
]
