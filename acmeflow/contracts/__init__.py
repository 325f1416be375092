"""The values that cross acmeflow's layers: workflow ↔ activity ↔ bridge.

Plain dataclasses and ``StrEnum``s, importing nothing but the standard library, so the
workflow sandbox needs to pass nothing heavy through and every layer may depend on them.
They travel through Temporal history: field names are part of the recorded histories, and
secrets appear in them only as references (``SecretRef``).
"""
