"""Private and public pools (CN-1, 私海/公海) and duplicate protection (CN-2, 查重/撞单).

Importing the package registers the duplicate check with the account and lead services, so that
every way an account or a lead is created (API, pages, lead conversion) passes through it;
and an owner changed by editing an account is logged as a transfer and restarts its protection.
"""

from __future__ import annotations

from closeloop.crm.accounts import service as _accounts
from closeloop.crm.leads import service as _leads
from closeloop.pools import duplicates as _duplicates
from closeloop.pools import service as _service

if _duplicates.guard_account not in _accounts.CREATE_GUARDS:
    _accounts.CREATE_GUARDS.append(_duplicates.guard_account)
if _duplicates.guard_lead not in _leads.CREATE_GUARDS:
    _leads.CREATE_GUARDS.append(_duplicates.guard_lead)
if _duplicates.merge_target not in _leads.MERGE_TARGETS:
    _leads.MERGE_TARGETS.append(_duplicates.merge_target)
if _service.on_owner_edited not in _accounts.OWNER_CHANGE_HOOKS:
    _accounts.OWNER_CHANGE_HOOKS.append(_service.on_owner_edited)
