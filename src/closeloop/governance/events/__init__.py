"""The outbox: every domain change and interaction is also an event (``"noun.verb"``), written in the
same transaction as the change, for the automation worker to consume."""
