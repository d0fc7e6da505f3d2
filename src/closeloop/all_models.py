"""Imports every table so ``Base.metadata`` is complete (for Alembic and the test database)."""

from closeloop.approvals.models import Approval, ApprovalEvent, ApprovalFlow, ApprovalTask
from closeloop.assistant.compliance.models import ComplianceFinding, ComplianceReview, ComplianceScan
from closeloop.assistant.contracts.models import ContractTemplate
from closeloop.assistant.feedback.models import AdoptionReport, SuggestionVerdict
from closeloop.assistant.knowledge.models import (
    KnowledgeAccessRule,
    KnowledgeChunk,
    KnowledgeCollection,
    KnowledgeDocument,
)
from closeloop.assistant.workflows.models import AssistantWorkflow, AssistantWorkflowRun
from closeloop.automation.models import (
    Decision,
    PendingAction,
    Playbook,
    PlaybookRun,
    ReviewRequest,
    Rule,
    RuleVersion,
    WebhookDelivery,
    WebhookHost,
)
from closeloop.cash.models import Collection, Instalment, Invoice
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
from closeloop.fieldwork.models import CheckIn, VisitPhoto, VisitPlan, VisitPlanItem
from closeloop.forecasting.models import (
    BookingsForecastRow,
    BookingsSnapshot,
    BookingsSnapshotDeal,
    DealerStock,
    InquirySignal,
    StockReservation,
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
from closeloop.reports.models import ReportReminder, ReportRule, WorkReport
from closeloop.targets.models import Target

metadata = Base.metadata

__all__ = [
    "Account",
    "Activity",
    "AdoptionReport",
    "AlertThreshold",
    "ApiToken",
    "Approval",
    "ApprovalEvent",
    "ApprovalFlow",
    "ApprovalTask",
    "AssistantWorkflow",
    "AssistantWorkflowRun",
    "AuditEntry",
    "AuditHead",
    "BookingsForecastRow",
    "BookingsSnapshot",
    "BookingsSnapshotDeal",
    "ChangeApproval",
    "ChangeRequest",
    "CheckIn",
    "Collection",
    "ComplianceFinding",
    "ComplianceReview",
    "ComplianceScan",
    "Contact",
    "Contract",
    "ContractTemplate",
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
    "InquirySignal",
    "Instalment",
    "Invoice",
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
    "ReportReminder",
    "ReportRule",
    "ReviewRequest",
    "Rule",
    "RuleVersion",
    "Scan",
    "StageChange",
    "StockReservation",
    "SuggestionVerdict",
    "Target",
    "Task",
    "Ticket",
    "User",
    "VisitPhoto",
    "VisitPlan",
    "VisitPlanItem",
    "WebhookDelivery",
    "WebhookHost",
    "WinProbabilityModel",
    "WorkReport",
    "metadata",
]
