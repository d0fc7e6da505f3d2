"""Lead to cash (CN-3, 线索到回款): collection plans, collections and invoices on contracts.

Importing the package registers collections as a basis of the funnel's won money
(:data:`closeloop.crm.funnel.service.WON_MONEY`) and of the performance dashboard's revenue
(:data:`closeloop.crm.performance.REVENUE_PER_DEAL`) and as a record type approval flows decide
(:mod:`closeloop.approvals.subjects`): with an enabled flow for collections, a recorded collection
is submitted at once and approved or rejected when its flow ends.
"""

from __future__ import annotations

from closeloop.cash import approval as _approval
from closeloop.cash import service as _service
from closeloop.crm import performance as _performance
from closeloop.crm.funnel import service as _funnel

_funnel.WON_MONEY[_funnel.MoneyBasis.COLLECTIONS] = _service.collected_on_deals
_performance.REVENUE_PER_DEAL[_funnel.MoneyBasis.COLLECTIONS] = _service.collected_per_deal

_approval.register()
