"""The names of built-in approval flows, branches and steps in the reader's language.

The flows Closeloop seeds (the demo's, a new flow's starting branch, a rule's one-step approval)
carry a stable ``key`` beside their name: a reader sees the name in their language, whichever
language it was stored in. A name someone typed is theirs and is shown as typed: the key counts
only while the name is still one of the key's own names (rename a step and its key is dropped
when the definition is saved).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: key → (Chinese, English) of every built-in name
BUILTIN_NAMES: dict[str, tuple[str, str]] = {
    # flows
    "contract_approval": ("合同审批", "Contract approval"),
    "quote_discount_approval": ("报价折扣审批", "Quote discount approval"),
    "collection_approval": ("回款审批", "Collection approval"),
    "account_transfer_approval": ("客户转移审批", "Account transfer approval"),
    "expense_approval": ("费用报销审批", "Expense claim approval"),
    # branches
    "default": ("默认", "Default"),
    "large_contract": ("大额合同", "Large contract"),
    "large_discount": ("大折扣", "Large discount"),
    "large_expense": ("大额报销", "Large expense claim"),
    # steps
    "supervisor": ("直属主管", "Direct supervisor"),
    "two_supervisors": ("两级主管", "Two levels of supervisors"),
    "sales_vp": ("销售副总", "Sales VP"),
    "finance": ("财务", "Finance"),
    "cfo": ("财务总监", "CFO"),
    # the one step of a rule's approval: the role that decides (GLOSSARY.md)
    "role:rep": ("销售代表", "Sales rep"),
    "role:manager": ("销售经理", "Sales manager"),
    "role:director": ("区域总监", "Regional director"),
    "role:sales_vp": ("销售副总裁", "Sales VP"),
    "role:cfo": ("财务总监", "CFO"),
    "role:it_director": ("IT 总监", "IT director"),
    "role:admin": ("管理员", "Administrator"),
}


def builtin_key(key: Any, name: Any) -> str | None:
    """``key`` when it is a built-in key and ``name`` still one of its names, else ``None``."""
    if not isinstance(key, str) or key not in BUILTIN_NAMES or not isinstance(name, str):
        return None
    if key == f"role:{name}":  # a rule's approval names its step by the role's code
        return key
    return key if name.strip() in BUILTIN_NAMES[key] else None


def shown(name: str | None, key: Any, locale: str) -> str:
    """``name`` as the reader of ``locale`` sees it: a built-in name in their language, any other as typed."""
    if builtin_key(key, name) is None:
        return name or ""
    zh, en = BUILTIN_NAMES[key]
    return en if locale.startswith("en") else zh


def flow_label(flow_name: str, definition: Mapping[str, Any] | None, locale: str) -> str:
    """A flow's name for the reader (its key lives in its definition)."""
    return shown(flow_name, (definition or {}).get("key"), locale)


def branch_label(definition: Mapping[str, Any] | None, branch_name: str | None, locale: str) -> str:
    """A branch's name for the reader, its key found in the flow's definition by name."""
    for branch in (definition or {}).get("branches") or []:
        if isinstance(branch, Mapping) and branch.get("name") == branch_name:
            return shown(branch_name, branch.get("key"), locale)
    return branch_name or ""
