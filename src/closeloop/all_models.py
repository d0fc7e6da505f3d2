"""Imports every table so ``Base.metadata`` is complete (for Alembic and the test database)."""

from closeloop.assistant.compliance.models import ComplianceFinding, ComplianceReview, ComplianceScan
from closeloop.assistant.knowledge.models import (
    KnowledgeAccessRule,
    KnowledgeChunk,
    KnowledgeCollection,
    KnowledgeDocument,
)
from closeloop.automation.models import (
    ApprovalRequest,
    Decision,
    PendingAction,
    Playbook,
    PlaybookRun,
    ReviewRequest,
    Rule,
    RuleVersion,
    WebhookHost,
)
from closeloop.crm.accounts.models import Account
from closeloop.crm.activities.models import Activity
from closeloop.crm.alerts.models import AlertThreshold
from closeloop.crm.contacts.models import Contact
from closeloop.crm.contracts.models import Contract
from closeloop.crm.leads.models import Lead
from closeloop.crm.opportunities.models import Opportunity, OpportunityProductLine, StageChange
from closeloop.crm.orders.models import Order, OrderLine
from closeloop.crm.products.models import Product, ProductLine
from closeloop.crm.quotes.models import Quote, QuoteLine
from closeloop.crm.referrals.models import Referral
from closeloop.crm.tasks.models import Task
from closeloop.crm.tickets.models import Ticket
from closeloop.db.base import Base
from closeloop.db.idempotency import IdempotencyKey
from closeloop.forecasting.models import (
    BookingsForecastRow,
    BookingsSnapshot,
    BookingsSnapshotDeal,
    DealerStock,
    WinProbabilityModel,
)
from closeloop.governance.assets.models import DataAsset
from closeloop.governance.audit.models import AuditEntry, AuditHead
from closeloop.governance.changes.models import ChangeApproval, ChangeRequest
from closeloop.governance.customfields.models import CustomFieldDefinition
from closeloop.governance.events.models import OutboxEvent
from closeloop.governance.fieldsecurity.models import FieldSecurityRule
from closeloop.integrations.importing.models import ImportJob, ImportMapping
from closeloop.org.models import ApiToken, Department, Organization, Region, User
from closeloop.org.notifications import Notification
from closeloop.pools.models import OwnerChange, Pool, PoolAccount, PoolSettings
from closeloop.quality.models import Defect, FreshnessSetting, KpiSnapshot, NameKey, Scan

metadata = Base.metadata

__all__ = [
    "Account",
    "Activity",
    "AlertThreshold",
    "ApiToken",
    "ApprovalRequest",
    "AuditEntry",
    "AuditHead",
    "BookingsForecastRow",
    "BookingsSnapshot",
    "BookingsSnapshotDeal",
    "ChangeApproval",
    "ChangeRequest",
    "ComplianceFinding",
    "ComplianceReview",
    "ComplianceScan",
    "Contact",
    "Contract",
    "CustomFieldDefinition",
    "DataAsset",
    "DealerStock",
    "Decision",
    "Defect",
    "Department",
    "FieldSecurityRule",
    "FreshnessSetting",
    "IdempotencyKey",
    "ImportJob",
    "ImportMapping",
    "KnowledgeAccessRule",
    "KnowledgeChunk",
    "KnowledgeCollection",
    "KnowledgeDocument",
    "KpiSnapshot",
    "Lead",
    "NameKey",
    "Notification",
    "Opportunity",
    "OpportunityProductLine",
    "Order",
    "OrderLine",
    "Organization",
    "OutboxEvent",
    "OwnerChange",
    "PendingAction",
    "Playbook",
    "PlaybookRun",
    "Pool",
    "PoolAccount",
    "PoolSettings",
    "Product",
    "ProductLine",
    "Quote",
    "QuoteLine",
    "Referral",
    "Region",
    "ReviewRequest",
    "Rule",
    "RuleVersion",
    "Scan",
    "StageChange",
    "Task",
    "Ticket",
    "User",
    "WebhookHost",
    "WinProbabilityModel",
    "metadata",
]
