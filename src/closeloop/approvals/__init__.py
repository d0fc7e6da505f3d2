"""Conditional approval flows (CN-4, 审批流): flows as data per record type, branches, approver
resolution, all/any/sequence steps, 加签, CC, withdraw and resubmit, and a snapshot of what was approved."""
