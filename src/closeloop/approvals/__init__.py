"""Conditional approval flows (CN-4, 审批流): flows as data per record type, branches, approver
resolution, all/any/sequence steps, 加签, CC, withdraw and resubmit, and a snapshot of what was approved.

Importing the package registers the built-in record types and, with the contract service, the
check that under a contract flow a contract takes effect only once approved (on every path).
"""

from __future__ import annotations

from closeloop.approvals import builtins as _builtins
from closeloop.crm.contracts import service as _contracts

if _builtins.contract_needs_approval not in _contracts.ACTIVATION_GUARDS:
    _contracts.ACTIVATION_GUARDS.append(_builtins.contract_needs_approval)
