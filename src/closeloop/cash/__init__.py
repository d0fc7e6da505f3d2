"""Lead to cash (CN-3, 线索到回款): collection plans, collections and invoices on contracts."""
