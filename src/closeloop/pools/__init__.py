"""Private and public pools (CN-1, 私海/公海) and duplicate protection (CN-2, 查重/撞单).

Importing the package registers the duplicate check with the account and lead services, so that
every way an account is created (API, pages, lead conversion) passes through it.
"""

from __future__ import annotations

from closeloop.crm.accounts import service as _accounts
from closeloop.crm.leads import service as _leads
from closeloop.pools import duplicates as _duplicates

if _duplicates.guard_account not in _accounts.CREATE_GUARDS:
    _accounts.CREATE_GUARDS.append(_duplicates.guard_account)
if _duplicates.merge_target not in _leads.MERGE_TARGETS:
    _leads.MERGE_TARGETS.append(_duplicates.merge_target)
